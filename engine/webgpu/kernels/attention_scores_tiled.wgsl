// Causal attention probabilities for a block of heads and queries, for GPUs. A 256-invocation
// workgroup owns 16 queries of one head; keys are staged 16 at a time through workgroup memory and
// shared by the 16 queries. Invocation (query qi, lane kj) computes the scores of keys
// j = kj, kj + 16, ... of its query, so the softmax passes read only values the same invocation
// wrote; the row maximum and sum are reduced over the 16 lanes in workgroup memory.
// Entries after the query (masked) are left untouched: nothing reads them. With a sliding window
// (window > 0) the query sees keys query - window + 1 .. query; the earlier ones get probability 0.
// Grouped-query attention: query head h reads KV head h / (num_heads / num_kv_heads).

struct Params {
  num_tokens: u32,    // n: keys per row and the row stride of probs
  head_start: u32,    // first head of this block
  head_count: u32,
  query_start: u32,   // first query of this block
  query_count: u32,
  num_heads: u32,
  num_kv_heads: u32,
  head_dim: u32,
  q_row_start: u32,   // first query row the q binding holds (long windows keep Q in row blocks)
  kv_head_start: u32, // first KV head the k binding holds (long windows split K by KV heads)
  kv_heads_bound: u32,// KV heads the k binding holds: its row stride is kv_heads_bound * head_dim
  window: u32,        // sliding window of the layer; 0: every earlier key
  scale: f32,         // 1 / sqrt(head_dim)
  softcap: f32,        // Gemma 2: score -> softcap * tanh(score / softcap); 0: none
}

const TILE_Q: u32 = 16u;
const TILE_K: u32 = 16u;
const MAX_HEAD_DIM: u32 = 256u;
// Sizes the key tile in workgroup memory; the host sets it to the model's head_dim.
override HEAD_DIM: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;              // q: [rows, num_heads * head_dim] (rows q_row_start.., after rope)
@group(0) @binding(2) var<storage, read> k: array<f32>;              // k: [n, kv_heads_bound * head_dim] (KV heads kv_head_start.., after rope)
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;    // probs: [head_count, query_count, n]

var<workgroup> k_tile: array<f32, TILE_K * HEAD_DIM>;   // [TILE_K, head_dim]
var<workgroup> reduction: array<f32, 256>;              // [TILE_Q, TILE_K]

// Reduces reduction[qi * 16 .. qi * 16 + 15] to its max (is_max) or sum; every lane gets the result.
fn reduce_lanes(qi: u32, kj: u32, value: f32, is_max: bool) -> f32 {
  reduction[qi * TILE_K + kj] = value;
  workgroupBarrier();
  for (var stride = TILE_K / 2u; stride > 0u; stride /= 2u) {
    if (kj < stride) {
      let a = reduction[qi * TILE_K + kj];
      let b = reduction[qi * TILE_K + kj + stride];
      reduction[qi * TILE_K + kj] = select(a + b, max(a, b), is_max);
    }
    workgroupBarrier();
  }
  let result = reduction[qi * TILE_K];
  workgroupBarrier();
  return result;
}

// Gemma 2's soft-capping of the scores (the tanh argument clamped as in gelu.wgsl: tanh(15) is 1 in f32).
fn soft_capped(score: f32) -> f32 {
  if (params.softcap <= 0.0) { return score; }
  return params.softcap * tanh(clamp(score / params.softcap, -15.0, 15.0));
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) local_index: u32) {
  let kj = lid.x;
  let qi = lid.y;
  let local_head = wid.y;
  let head = params.head_start + local_head;
  let kv_head = head / (params.num_heads / params.num_kv_heads);
  let d = params.head_dim;
  let q_stride = params.num_heads * d;
  let k_stride = params.kv_heads_bound * d;
  let kv_local = kv_head - params.kv_head_start;
  let block_first = wid.x * TILE_Q;
  let block_end = min(block_first + TILE_Q, params.query_count);   // local queries [block_first, block_end)
  let local_query = block_first + qi;
  let query_valid = local_query < params.query_count;
  let query = params.query_start + min(local_query, params.query_count - 1u);
  // Keys 0..last_query are needed by some query of this workgroup (uniform across it).
  let last_query = params.query_start + block_end - 1u;

  var q_row: array<f32, MAX_HEAD_DIM>;
  for (var c = 0u; c < d; c++) {
    q_row[c] = q[(query - params.q_row_start) * q_stride + head * d + c];
  }
  let row = (local_head * params.query_count + min(local_query, params.query_count - 1u)) * params.num_tokens;
  var first = 0u;
  if (params.window > 0u && query + 1u > params.window) { first = query + 1u - params.window; }
  var row_max = -3.0e38;
  let num_tiles = last_query / TILE_K + 1u;
  for (var t = 0u; t < num_tiles; t++) {
    // Stage keys t*16 .. t*16+15 of this KV head.
    for (var e = local_index; e < TILE_K * d; e += 256u) {
      let key = t * TILE_K + e / d;
      var value = 0.0;
      if (key <= last_query) { value = k[key * k_stride + kv_local * d + e % d]; }
      k_tile[e] = value;
    }
    workgroupBarrier();
    let j = t * TILE_K + kj;
    if (query_valid && j < first) {
      probs[row + j] = 0.0;
    } else if (query_valid && j <= query) {
      var dot_product = 0.0;
      for (var c = 0u; c < d; c++) {
        dot_product += q_row[c] * k_tile[kj * d + c];
      }
      let score = soft_capped(dot_product * params.scale);
      probs[row + j] = score;
      row_max = max(row_max, score);
    }
    workgroupBarrier();
  }
  row_max = reduce_lanes(qi, kj, row_max, true);
  var total = 0.0;
  for (var j = kj; j <= last_query; j += TILE_K) {
    if (query_valid && j >= first && j <= query) {
      let e = exp(probs[row + j] - row_max);
      probs[row + j] = e;
      total += e;
    }
  }
  total = reduce_lanes(qi, kj, total, false);
  let inverse_total = 1.0 / total;
  for (var j = kj; j <= last_query; j += TILE_K) {
    if (query_valid && j >= first && j <= query) {
      probs[row + j] = probs[row + j] * inverse_total;
    }
  }
}
