// Attention output for a block of heads and queries: out[query, head * d + c] =
// sum over keys j <= query of probs[head, query, j] * v[j, kv_head * d + c]. One invocation per
// output element: neighbouring invocations read the same probability and neighbouring values, which
// suits GPUs and is no worse than the alternatives on CPU-backed adapters.

struct Params {
  num_tokens: u32,    // n: row stride of probs
  head_start: u32,
  head_count: u32,
  query_start: u32,
  query_count: u32,
  num_heads: u32,
  num_kv_heads: u32,
  head_dim: u32,
  out_row_start: u32,  // first query row the out binding holds (long windows keep rows in blocks)
  kv_head_start: u32,  // first KV head the v binding holds (long windows split V by KV heads)
  kv_heads_bound: u32, // KV heads the v binding holds: its row stride is kv_heads_bound * head_dim
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> probs: array<f32>;      // probs: [head_count, query_count, n]
@group(0) @binding(2) var<storage, read> v: array<f32>;          // v: [n, kv_heads_bound * head_dim] (KV heads kv_head_start..)
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // out: [rows, num_heads * head_dim] (rows out_row_start..)

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  let d = params.head_dim;
  if (index >= params.head_count * params.query_count * d) { return; }
  let c = index % d;
  let row_index = index / d;
  let local_head = row_index / params.query_count;
  let local_query = row_index % params.query_count;
  let head = params.head_start + local_head;
  let query = params.query_start + local_query;
  let kv_head = head / (params.num_heads / params.num_kv_heads);
  let v_stride = params.kv_heads_bound * d;
  let kv_local = kv_head - params.kv_head_start;
  let row = row_index * params.num_tokens;
  var acc = 0.0;
  for (var j = 0u; j <= query; j++) {
    acc += probs[row + j] * v[j * v_stride + kv_local * d + c];
  }
  out[(query - params.out_row_start) * params.num_heads * d + head * d + c] = acc;
}
