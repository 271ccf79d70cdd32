// GELU with the tanh approximation (GPT-2's gelu_new), in place:
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). The tanh argument is clamped because some
// implementations compute tanh through exp and return NaN for large inputs; tanh(15) is 1 in f32.

struct Params {
  num_elements: u32,
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;    // x: [num_tokens, intermediate]

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (index >= params.num_elements) { return; }
  let v = x[index];
  let inner = clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), -15.0, 15.0);
  x[index] = 0.5 * v * (1.0 + tanh(inner));
}
