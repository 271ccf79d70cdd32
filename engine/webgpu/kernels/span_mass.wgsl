// Attention mass of each query on each caller-given token span, for a block of heads and queries:
// the sum of probs[head, query, j] over span positions j <= query. One invocation per
// (head, query, span).

struct Params {
  num_tokens: u32,    // n: row stride of probs
  head_start: u32,
  head_count: u32,
  query_start: u32,
  query_count: u32,
  num_spans: u32,
  out_row_start: u32, // first query row the output holds (long windows keep summaries in row blocks)
  out_rows: u32,      // query rows per head in the output
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> probs: array<f32>;            // probs: [head_count, query_count, n]
@group(0) @binding(2) var<storage, read> spans: array<u32>;            // spans: [num_spans, 2] (start, end), end exclusive
@group(0) @binding(3) var<storage, read_write> span_mass: array<f32>;  // span_mass: [num_heads, out_rows, num_spans]

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (index >= params.head_count * params.query_count * params.num_spans) { return; }
  let span = index % params.num_spans;
  let row_index = index / params.num_spans;
  let local_head = row_index / params.query_count;
  let local_query = row_index % params.query_count;
  let head = params.head_start + local_head;
  let query = params.query_start + local_query;
  let row = row_index * params.num_tokens;
  let end = min(spans[span * 2u + 1u], query + 1u);
  var mass = 0.0;
  for (var j = spans[span * 2u]; j < end; j++) {
    mass += probs[row + j];
  }
  span_mass[(head * params.out_rows + query - params.out_row_start) * params.num_spans + span] = mass;
}
