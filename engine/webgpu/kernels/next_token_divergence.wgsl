// How much a change moved each position's next-token distribution, from two logits rows:
// out[r] = (KL(p_full || p_changed) in nats, log p_changed(next) - log p_full(next)), where p is
// the softmax of a row and `next` the actual next token (-1 at the last position: delta 0). The
// span effect reads back these two numbers per position instead of two vocabulary-wide rows.
// One invocation per row. Sums run in blocks of 256 terms so that f32 rounding stays small on
// vocabularies of 150k entries. The host clamps a rounding-negative KL at 0.

struct Params {
  num_rows: u32,
  vocab: u32,
  first_row: u32,     // index in next_tokens of row 0
}

override WORKGROUP_SIZE: u32 = 64u;
const BLOCK: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> full_logits: array<f32>;     // full_logits: [num_rows, vocab]
@group(0) @binding(2) var<storage, read> changed_logits: array<f32>;  // changed_logits: [num_rows, vocab]
@group(0) @binding(3) var<storage, read> next_tokens: array<i32>;     // next_tokens: [first_row + num_rows]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;       // out: [num_rows, 2] (kl, delta log-prob)

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= params.num_rows) { return; }
  let base = r * params.vocab;
  var max_full = -3.0e38;
  var max_changed = -3.0e38;
  for (var i = 0u; i < params.vocab; i++) {
    max_full = max(max_full, full_logits[base + i]);
    max_changed = max(max_changed, changed_logits[base + i]);
  }
  var sum_full = 0.0;
  var sum_changed = 0.0;
  for (var block = 0u; block < params.vocab; block += BLOCK) {
    var part_full = 0.0;
    var part_changed = 0.0;
    for (var i = block; i < min(block + BLOCK, params.vocab); i++) {
      part_full += exp(full_logits[base + i] - max_full);
      part_changed += exp(changed_logits[base + i] - max_changed);
    }
    sum_full += part_full;
    sum_changed += part_changed;
  }
  let log_total_full = max_full + log(sum_full);
  let log_total_changed = max_changed + log(sum_changed);
  var kl = 0.0;
  for (var block = 0u; block < params.vocab; block += BLOCK) {
    var part = 0.0;
    for (var i = block; i < min(block + BLOCK, params.vocab); i++) {
      let log_p = full_logits[base + i] - log_total_full;
      let log_q = changed_logits[base + i] - log_total_changed;
      part += exp(log_p) * (log_p - log_q);
    }
    kl += part;
  }
  let next = next_tokens[params.first_row + r];
  var delta = 0.0;
  if (next >= 0) {
    let t = u32(next);
    delta = (changed_logits[base + t] - log_total_changed) - (full_logits[base + t] - log_total_full);
  }
  out[r * 2u] = kl;
  out[r * 2u + 1u] = delta;
}
