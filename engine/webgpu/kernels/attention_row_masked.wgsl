// Attention of one query position for several variants of its row at once (the rows of a
// knockout: the full row and one per span). Row r's query attends to keys 0..query-1 through the
// run's cached keys and values, and to its own key and value at `query` (each variant's residual
// stream differs, so its own k and v do too). When apply_mask is 1, the keys in row r's mask range
// [start, end) are left out of the softmax (score -inf) and the others renormalise; the range never
// contains the query itself, so every row keeps at least one key.
// One invocation per (row, head): an online softmax keeps the running maximum, sum and weighted
// sum of values in registers, so no score buffer is needed.
// Grouped-query attention: query head h reads KV head h / (num_heads / num_kv_heads).

struct Params {
  num_rows: u32,      // R: variants of the query row
  query: u32,         // the query's position: keys 0..query
  num_heads: u32,
  num_kv_heads: u32,
  head_dim: u32,
  apply_mask: u32,    // 0: plain causal attention in this layer (outside the knockout's layers)
  head_start: u32,    // the heads of this dispatch: head_start .. head_start + head_count
  head_count: u32,
  kv_head_start: u32, // first KV head the cache bindings hold (long windows split K and V by KV heads)
  kv_heads_bound: u32,// KV heads the cache bindings hold: their row stride is kv_heads_bound * head_dim
  window: u32,        // sliding window of the layer: keys before query - window + 1 are out of sight; 0: none
  scale: f32,         // 1 / sqrt(head_dim)
  softcap: f32,        // Gemma 2: score -> softcap * tanh(score / softcap); 0: none
}

override WORKGROUP_SIZE: u32 = 64u;
const MAX_HEAD_DIM: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q_rows: array<f32>;       // q_rows: [R, num_heads * head_dim] (after rope)
@group(0) @binding(2) var<storage, read> k_cache: array<f32>;      // k_cache: [n, kv_heads_bound * head_dim] (the run's, after rope)
@group(0) @binding(3) var<storage, read> v_cache: array<f32>;      // v_cache: [n, kv_heads_bound * head_dim] (the run's)
@group(0) @binding(4) var<storage, read> k_rows: array<f32>;       // k_rows: [R, num_kv_heads * head_dim] (after rope)
@group(0) @binding(5) var<storage, read> v_rows: array<f32>;       // v_rows: [R, num_kv_heads * head_dim]
@group(0) @binding(6) var<storage, read> masks: array<u32>;        // masks: [R, 2] (start, end), end exclusive
@group(0) @binding(7) var<storage, read_write> out: array<f32>;    // out: [R, num_heads * head_dim]

// Gemma 2's soft-capping of the scores (the tanh argument clamped as in gelu.wgsl: tanh(15) is 1 in f32).
fn soft_capped(score: f32) -> f32 {
  if (params.softcap <= 0.0) { return score; }
  return params.softcap * tanh(clamp(score / params.softcap, -15.0, 15.0));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let index = gid.x;
  if (index >= params.num_rows * params.head_count) { return; }
  let r = index / params.head_count;
  let head = params.head_start + index % params.head_count;
  let kv_head = head / (params.num_heads / params.num_kv_heads);
  let d = params.head_dim;
  let q_stride = params.num_heads * d;
  let kv_stride = params.num_kv_heads * d;
  let cache_stride = params.kv_heads_bound * d;
  let query = params.query;
  var mask_start = 0u;
  var mask_end = 0u;
  if (params.apply_mask != 0u) {
    mask_start = masks[r * 2u];
    mask_end = masks[r * 2u + 1u];
  }

  var q_row: array<f32, MAX_HEAD_DIM>;
  var acc: array<f32, MAX_HEAD_DIM>;
  for (var c = 0u; c < d; c++) {
    q_row[c] = q_rows[r * q_stride + head * d + c];
    acc[c] = 0.0;
  }
  var running_max = -3.0e38;
  var total = 0.0;
  var first = 0u;
  if (params.window > 0u && query + 1u > params.window) { first = query + 1u - params.window; }
  for (var j = first; j <= query; j++) {
    if (j >= mask_start && j < mask_end) { continue; }
    // Keys before the query come from the run's cache; the query's own key from this row.
    let own = j == query;
    let cache_base = j * cache_stride + (kv_head - params.kv_head_start) * d;
    let row_base = r * kv_stride + kv_head * d;
    var dot_product = 0.0;
    for (var c = 0u; c < d; c++) {
      var key: f32;
      if (own) { key = k_rows[row_base + c]; } else { key = k_cache[cache_base + c]; }
      dot_product += q_row[c] * key;
    }
    let score = soft_capped(dot_product * params.scale);
    if (score > running_max) {
      let correction = exp(running_max - score);
      total *= correction;
      for (var c = 0u; c < d; c++) { acc[c] *= correction; }
      running_max = score;
    }
    let weight = exp(score - running_max);
    total += weight;
    for (var c = 0u; c < d; c++) {
      var value: f32;
      if (own) { value = v_rows[row_base + c]; } else { value = v_cache[cache_base + c]; }
      acc[c] += weight * value;
    }
  }
  let inverse_total = 1.0 / total;
  for (var c = 0u; c < d; c++) {
    out[r * q_stride + head * d + c] = acc[c] * inverse_total;
  }
}
