// GeGLU activation in place (Gemma's gated MLP): gate[i] = gelu_tanh(gate[i]) * up[i], with the
// tanh GELU of gelu.wgsl, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), its tanh argument
// clamped as there (tanh(15) is 1 in f32; some tanh implementations return NaN past that).

struct Params {
  num_elements: u32,
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> gate: array<f32>; // gate: [num_tokens, intermediate]
@group(0) @binding(2) var<storage, read> up: array<f32>;         // up: [num_tokens, intermediate]

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (index >= params.num_elements) { return; }
  let v = gate[index];
  let inner = clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), -15.0, 15.0);
  gate[index] = 0.5 * v * (1.0 + tanh(inner)) * up[index];
}
