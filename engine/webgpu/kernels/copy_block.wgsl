// Copies a block of a row-major matrix into another: dst[dst_offset + r * dst_stride + c] =
// src[src_offset + r * src_stride + c] for r < num_rows, c < width. Long windows keep each layer's
// keys and values in several bindings (groups of KV heads, all rows each); the projections of a
// row block are computed into one [rows, kv_heads * head_dim] buffer and scattered into the groups
// with this kernel.

struct Params {
  num_rows: u32,
  width: u32,        // elements copied per row
  src_offset: u32,   // element of src where row 0 of the block starts
  src_stride: u32,   // elements between rows of src
  dst_offset: u32,   // element of dst where row 0 of the block goes
  dst_stride: u32,   // elements between rows of dst
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;         // src: [>= src_offset + num_rows * src_stride]
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;   // dst: [>= dst_offset + num_rows * dst_stride]

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (index >= params.num_rows * params.width) { return; }
  let r = index / params.width;
  let c = index % params.width;
  dst[params.dst_offset + r * params.dst_stride + c] = src[params.src_offset + r * params.src_stride + c];
}
