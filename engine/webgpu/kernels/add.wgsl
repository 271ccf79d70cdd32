// Elementwise in-place add: target[i] += addend[i]. The residual connection, and learned position
// embeddings (whose first num_elements values are the rows of positions 0..n-1).

struct Params {
  num_elements: u32,
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> target_values: array<f32>; // target: [num_elements]
@group(0) @binding(2) var<storage, read> addend: array<f32>;             // addend: [>= num_elements]

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (index >= params.num_elements) { return; }
  target_values[index] = target_values[index] + addend[index];
}
