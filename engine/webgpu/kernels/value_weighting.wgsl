// Value-weighted attention in place, for a block of heads and queries (Kobayashi et al. 2020):
// probs[h, i, j] * ||v_j W_O^h||, renormalised over the causal row j <= i. It runs after
// attention_output.wgsl has consumed the probabilities and before the summary kernels read them.
// A row whose weights are all zero stays zero. One invocation per (head, query) row.

struct Params {
  num_tokens: u32,    // n: row stride of probs
  head_start: u32,
  head_count: u32,
  query_start: u32,
  query_count: u32,
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> probs: array<f32>;     // probs: [head_count, query_count, n]
@group(0) @binding(2) var<storage, read> norm_squares: array<f32>;    // norm_squares: [num_heads, n] (value_norms.wgsl)

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let row_index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (row_index >= params.head_count * params.query_count) { return; }
  let head = params.head_start + row_index / params.query_count;
  let query = params.query_start + row_index % params.query_count;
  let row = row_index * params.num_tokens;
  let norms = head * params.num_tokens;
  var total = 0.0;
  for (var j = 0u; j <= query; j++) {
    let weight = probs[row + j] * sqrt(norm_squares[norms + j]);
    probs[row + j] = weight;
    total += weight;
  }
  let inverse_total = select(0.0, 1.0 / total, total > 0.0);
  for (var j = 0u; j <= query; j++) {
    probs[row + j] = probs[row + j] * inverse_total;
  }
}
