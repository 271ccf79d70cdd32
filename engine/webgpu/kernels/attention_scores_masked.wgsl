// Causal attention probabilities with one extra mask, for a block of heads and queries: queries at
// or after mask_query_start may not see keys in [mask_key_start, mask_key_end) (a query always sees
// itself). The span effect runs the whole sequence with it (queries after a span cannot see the
// span). One invocation per (head, query) row, as in attention_scores_register.wgsl; masked keys
// get probability 0 and the rest renormalise, so attention_output.wgsl consumes the rows unchanged.
// Grouped-query attention: query head h reads KV head h / (num_heads / num_kv_heads).

struct Params {
  num_tokens: u32,        // n: keys per row and the row stride of probs
  head_start: u32,        // first head of this block
  head_count: u32,
  query_start: u32,       // first query of this block
  query_count: u32,
  num_heads: u32,
  num_kv_heads: u32,
  head_dim: u32,
  mask_query_start: u32,  // first query the mask applies to
  mask_key_start: u32,    // the hidden keys [mask_key_start, mask_key_end)
  mask_key_end: u32,
  q_row_start: u32,       // first query row the q binding holds (long windows keep Q in row blocks)
  kv_head_start: u32,     // first KV head the k binding holds (long windows split K by KV heads)
  kv_heads_bound: u32,    // KV heads the k binding holds: its row stride is kv_heads_bound * head_dim
  window: u32,            // sliding window of the layer (keys before query - window + 1 get 0); 0: none
  scale: f32,             // 1 / sqrt(head_dim)
  softcap: f32,        // Gemma 2: score -> softcap * tanh(score / softcap); 0: none
}

override WORKGROUP_SIZE: u32 = 64u;
const MAX_HEAD_DIM: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;              // q: [rows, num_heads * head_dim] (rows q_row_start.., after rope)
@group(0) @binding(2) var<storage, read> k: array<f32>;              // k: [n, kv_heads_bound * head_dim] (KV heads kv_head_start.., after rope)
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;    // probs: [head_count, query_count, n]

fn is_hidden(query: u32, key: u32) -> bool {
  if (params.window > 0u && key + params.window <= query) { return true; }
  return query >= params.mask_query_start && key != query && key >= params.mask_key_start && key < params.mask_key_end;
}

// Gemma 2's soft-capping of the scores (the tanh argument clamped as in gelu.wgsl: tanh(15) is 1 in f32).
fn soft_capped(score: f32) -> f32 {
  if (params.softcap <= 0.0) { return score; }
  return params.softcap * tanh(clamp(score / params.softcap, -15.0, 15.0));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let row_index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (row_index >= params.head_count * params.query_count) { return; }
  let local_head = row_index / params.query_count;
  let local_query = row_index % params.query_count;
  let head = params.head_start + local_head;
  let query = params.query_start + local_query;
  let kv_head = head / (params.num_heads / params.num_kv_heads);
  let d = params.head_dim;
  let q_stride = params.num_heads * d;
  let k_stride = params.kv_heads_bound * d;
  let kv_local = kv_head - params.kv_head_start;

  var q_row: array<f32, MAX_HEAD_DIM>;
  for (var c = 0u; c < d; c++) {
    q_row[c] = q[(query - params.q_row_start) * q_stride + head * d + c];
  }
  let row = row_index * params.num_tokens;
  var row_max = -3.0e38;
  for (var j = 0u; j <= query; j++) {
    if (is_hidden(query, j)) { continue; }
    let k_base = j * k_stride + kv_local * d;
    var dot_product = 0.0;
    for (var c = 0u; c < d; c++) {
      dot_product += q_row[c] * k[k_base + c];
    }
    let score = soft_capped(dot_product * params.scale);
    probs[row + j] = score;
    row_max = max(row_max, score);
  }
  var total = 0.0;
  for (var j = 0u; j <= query; j++) {
    if (is_hidden(query, j)) {
      probs[row + j] = 0.0;
      continue;
    }
    let e = exp(probs[row + j] - row_max);
    probs[row + j] = e;
    total += e;
  }
  let inverse_total = 1.0 / total;
  for (var j = 0u; j <= query; j++) {
    probs[row + j] = probs[row + j] * inverse_total;
  }
}
