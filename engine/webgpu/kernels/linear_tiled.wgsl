// Linear layer y = x W^T + b for GPUs: a 256-invocation workgroup computes a 64x64 tile of y,
// staging 64x16 slices of x and W through workgroup memory; each invocation accumulates a 4x4
// block (rows ty + 16 i, columns tx + 16 j) in registers.
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

const TILE: u32 = 64u;     // output rows and columns per workgroup
const TILE_K: u32 = 16u;   // reduction slice staged per step
// Weights are stored as packed f16 pairs (unpack2x16float, core WGSL) or as f32 bits.
override WEIGHT_F16: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // x: [num_rows, in_dim]
@group(0) @binding(2) var<storage, read> w: array<u32>;          // w: [col_count, in_dim] (f32 bits or f16 pairs)
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // bias: [out_dim] (unused when has_bias = 0)
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // y: [num_rows, out_dim]

var<workgroup> x_tile: array<f32, 1024>;  // [TILE_K, TILE]
var<workgroup> w_tile: array<f32, 1024>;  // [TILE_K, TILE]

fn weight_at(index: u32) -> f32 {
  if (WEIGHT_F16) {
    let pair = unpack2x16float(w[index >> 1u]);
    return select(pair.x, pair.y, (index & 1u) == 1u);
  }
  return bitcast<f32>(w[index]);
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) local_index: u32) {
  let col_base = wid.x * TILE;
  let row_base = wid.y * TILE;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < params.in_dim; k0 += TILE_K) {
    // 256 invocations stage 1024 values of each operand, 4 each.
    for (var e = 0u; e < 4u; e++) {
      let element = local_index + e * 256u;
      let r = element / TILE_K;
      let kk = element % TILE_K;
      let k = k0 + kk;
      let row = row_base + r;
      let col = col_base + r;
      var xv = 0.0;
      if (row < params.num_rows && k < params.in_dim) { xv = x[row * params.in_dim + k]; }
      x_tile[kk * TILE + r] = xv;
      var wv = 0.0;
      if (col < params.col_count && k < params.in_dim) { wv = weight_at(col * params.in_dim + k); }
      w_tile[kk * TILE + r] = wv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      var xs: array<f32, 4>;
      var ws: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        xs[i] = x_tile[kk * TILE + lid.y + 16u * i];
        ws[i] = w_tile[kk * TILE + lid.x + 16u * i];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          acc[i][j] += xs[i] * ws[j];
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let row = row_base + lid.y + 16u * i;
    for (var j = 0u; j < 4u; j++) {
      let col = col_base + lid.x + 16u * j;
      if (row < params.num_rows && col < params.col_count) {
        var value = acc[i][j];
        if (params.has_bias != 0u) { value += bias[params.col_start + col]; }
        y[row * params.out_dim + params.col_start + col] = value;
      }
    }
  }
}
