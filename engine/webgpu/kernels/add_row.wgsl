// Adds one row to every row of a matrix in place: target[r, c] += addend[addend_offset + c]. The
// knockout's rows all sit at one position and take that position's learned embedding.

struct Params {
  num_rows: u32,
  width: u32,
  addend_offset: u32,   // first element of the row in addend
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> target_values: array<f32>; // target: [num_rows, width]
@group(0) @binding(2) var<storage, read> addend: array<f32>;             // addend: [>= addend_offset + width]

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (index >= params.num_rows * params.width) { return; }
  target_values[index] = target_values[index] + addend[params.addend_offset + index % params.width];
}
