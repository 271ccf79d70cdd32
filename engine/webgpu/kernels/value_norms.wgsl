// The squared norm of what each key writes through the output projection, per head (Kobayashi et
// al. 2020): norm_squares[h, j] = || v[j, kv(h), :] W_O[:, h*hd:(h+1)*hd]^T ||^2, summed over the
// output rows of one row chunk of W_O. Weights larger than a storage binding are split by output
// rows; the first chunk writes (accumulate = 0) and the others add, so the sum covers every output.
// value_weighting.wgsl takes the square root. One invocation per (head, key).

struct Params {
  num_tokens: u32,    // n
  num_heads: u32,
  num_kv_heads: u32,
  head_dim: u32,
  row_count: u32,     // output rows in this chunk of W_O
  accumulate: u32,    // 1: add to norm_squares; 0: overwrite it
  head_start: u32,    // the heads of this dispatch: head_start .. head_start + head_count
  head_count: u32,
  kv_head_start: u32, // first KV head the v binding holds (long windows split V by KV heads)
  kv_heads_bound: u32,// KV heads the v binding holds: its row stride is kv_heads_bound * head_dim
}

override WORKGROUP_SIZE: u32 = 64u;
// Weights are stored as packed f16 pairs (unpack2x16float, core WGSL) or as f32 bits.
override WEIGHT_F16: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> v: array<f32>;                // v: [n, kv_heads_bound * head_dim] (KV heads kv_head_start..)
@group(0) @binding(2) var<storage, read> w: array<u32>;                // w: [row_count, num_heads * head_dim] (W_O chunk, f32 bits or f16 pairs)
@group(0) @binding(3) var<storage, read_write> norm_squares: array<f32>; // norm_squares: [num_heads, n]

fn weight_at(index: u32) -> f32 {
  if (WEIGHT_F16) {
    let pair = unpack2x16float(w[index >> 1u]);
    return select(pair.x, pair.y, (index & 1u) == 1u);
  }
  return bitcast<f32>(w[index]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (index >= params.head_count * params.num_tokens) { return; }
  let head = params.head_start + index / params.num_tokens;
  let key = index % params.num_tokens;
  let d = params.head_dim;
  let kv_head = head / (params.num_heads / params.num_kv_heads);
  let v_base = key * params.kv_heads_bound * d + (kv_head - params.kv_head_start) * d;
  let in_dim = params.num_heads * d;
  var sum_squares = 0.0;
  for (var out_row = 0u; out_row < params.row_count; out_row++) {
    let w_base = out_row * in_dim + head * d;
    var dot_product = 0.0;
    for (var c = 0u; c < d; c++) {
      dot_product += v[v_base + c] * weight_at(w_base + c);
    }
    sum_squares += dot_product * dot_product;
  }
  let out_index = head * params.num_tokens + key;
  if (params.accumulate != 0u) {
    sum_squares += norm_squares[out_index];
  }
  norm_squares[out_index] = sum_squares;
}
