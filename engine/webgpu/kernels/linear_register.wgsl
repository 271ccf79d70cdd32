// Linear layer y = x W^T + b for CPU-backed adapters: each invocation computes a 4x4 block of y
// in registers (4 tokens x 4 output features) with no workgroup memory and no barriers, which
// software adapters run several times faster than tiled kernels.
// W may be one row chunk [col_count, in_dim] of a larger weight; it fills columns
// col_start..col_start+col_count of y.

struct Params {
  num_rows: u32,     // tokens
  in_dim: u32,
  out_dim: u32,      // row stride of y (the full weight's out dimension)
  col_start: u32,    // first output feature this chunk computes
  col_count: u32,    // rows of this weight chunk
  has_bias: u32,
}

override WORKGROUP_SIZE: u32 = 64u;
// Weights are stored as packed f16 pairs (unpack2x16float, core WGSL) or as f32 bits.
override WEIGHT_F16: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // x: [num_rows, in_dim]
@group(0) @binding(2) var<storage, read> w: array<u32>;          // w: [col_count, in_dim] (f32 bits or f16 pairs)
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // bias: [out_dim] (unused when has_bias = 0)
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // y: [num_rows, out_dim]

fn weight_at(index: u32) -> f32 {
  if (WEIGHT_F16) {
    let pair = unpack2x16float(w[index >> 1u]);
    return select(pair.x, pair.y, (index & 1u) == 1u);
  }
  return bitcast<f32>(w[index]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col0 = gid.x * 4u;
  let row0 = gid.y * 4u;
  if (col0 >= params.col_count || row0 >= params.num_rows) { return; }
  // Out-of-range rows and columns read a clamped (valid) address so the inner loop has no branches;
  // their results are never written. Named scalars (not arrays) keep everything in registers.
  let last_row = params.num_rows - 1u;
  let last_col = params.col_count - 1u;
  let x0 = min(row0, last_row) * params.in_dim;
  let x1 = min(row0 + 1u, last_row) * params.in_dim;
  let x2 = min(row0 + 2u, last_row) * params.in_dim;
  let x3 = min(row0 + 3u, last_row) * params.in_dim;
  let w0 = min(col0, last_col) * params.in_dim;
  let w1 = min(col0 + 1u, last_col) * params.in_dim;
  let w2 = min(col0 + 2u, last_col) * params.in_dim;
  let w3 = min(col0 + 3u, last_col) * params.in_dim;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k = 0u; k < params.in_dim; k++) {
    let wv = vec4<f32>(weight_at(w0 + k), weight_at(w1 + k), weight_at(w2 + k), weight_at(w3 + k));
    acc0 += x[x0 + k] * wv;
    acc1 += x[x1 + k] * wv;
    acc2 += x[x2 + k] * wv;
    acc3 += x[x3 + k] * wv;
  }
  let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + i;
    if (row >= params.num_rows) { break; }
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + j;
      if (col >= params.col_count) { break; }
      var value = acc[i][j];
      if (params.has_bias != 0u) { value += bias[params.col_start + col]; }
      y[row * params.out_dim + params.col_start + col] = value;
    }
  }
}
