// Top-k source positions of each causal probability row in a block of heads and queries: one
// invocation per row scans keys 0..query in order and keeps the best TOP_K in registers by
// insertion; a strictly-greater comparison keeps the lower position first among ties.
// Rows with fewer than TOP_K keys (in sight: a sliding window hides the earlier ones) pad with index -1 and weight 0.

struct Params {
  num_tokens: u32,    // n: row stride of probs
  head_start: u32,
  head_count: u32,
  query_start: u32,
  query_count: u32,
  out_row_start: u32, // first query row the outputs hold (long windows keep summaries in row blocks)
  out_rows: u32,      // query rows per head in the outputs
  window: u32,        // sliding window of the layer: only keys query - window + 1 .. query; 0: 0 .. query
}

override WORKGROUP_SIZE: u32 = 64u;
override TOP_K: u32 = 8u;
const MAX_K: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> probs: array<f32>;             // probs: [head_count, query_count, n]
@group(0) @binding(2) var<storage, read_write> top_indices: array<i32>; // top_indices: [num_heads, out_rows, TOP_K]
@group(0) @binding(3) var<storage, read_write> top_weights: array<f32>; // top_weights: [num_heads, out_rows, TOP_K]

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let row_index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (row_index >= params.head_count * params.query_count) { return; }
  let local_head = row_index / params.query_count;
  let local_query = row_index % params.query_count;
  let head = params.head_start + local_head;
  let query = params.query_start + local_query;
  let row = row_index * params.num_tokens;

  var best_weights: array<f32, MAX_K>;
  var best_indices: array<i32, MAX_K>;
  var filled = 0u;
  var first = 0u;
  if (params.window > 0u && query + 1u > params.window) { first = query + 1u - params.window; }
  for (var j = first; j <= query; j++) {
    let value = probs[row + j];
    if (filled == TOP_K && value <= best_weights[TOP_K - 1u]) { continue; }
    var slot = min(filled, TOP_K - 1u);
    while (slot > 0u && best_weights[slot - 1u] < value) {
      best_weights[slot] = best_weights[slot - 1u];
      best_indices[slot] = best_indices[slot - 1u];
      slot--;
    }
    best_weights[slot] = value;
    best_indices[slot] = i32(j);
    filled = min(filled + 1u, TOP_K);
  }
  let out_base = (head * params.out_rows + query - params.out_row_start) * TOP_K;
  for (var r = 0u; r < TOP_K; r++) {
    if (r < filled) {
      top_indices[out_base + r] = best_indices[r];
      top_weights[out_base + r] = best_weights[r];
    } else {
      top_indices[out_base + r] = -1;
      top_weights[out_base + r] = 0.0;
    }
  }
}
