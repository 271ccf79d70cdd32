// SwiGLU activation in place: gate[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + exp(-x)).

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
  let g = gate[index];
  gate[index] = g / (1.0 + exp(-g)) * up[index];
}
