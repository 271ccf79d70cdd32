/**
 * Plain-TypeScript reference implementations of every operation the WebGPU engine runs, one
 * function per kernel. They are the oracle the GPU kernels are tested against, and the reference
 * engine is built from them. All arrays are float32, flattened row-major in the order the shape
 * comments give. Sums accumulate in float64 (JavaScript numbers) before being stored.
 */
import type { AttentionRequest, AttentionSummary, TokenSpan } from '../attention';

/** y = x W^T + b. x: [n, inDim], w: [outDim, inDim] (nn.Linear layout), bias: [outDim]. Returns [n, outDim]. */
export function linear(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  n: number,
  inDim: number,
  outDim: number,
): Float32Array {
  const y = new Float32Array(n * outDim);
  for (let row = 0; row < n; row++) {
    const xOffset = row * inDim;
    for (let out = 0; out < outDim; out++) {
      const wOffset = out * inDim;
      let sum = 0;
      for (let i = 0; i < inDim; i++) sum += x[xOffset + i] * w[wOffset + i];
      y[row * outDim + out] = bias ? sum + bias[out] : sum;
    }
  }
  return y;
}

/** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * weight. x: [n, d], weight: [d]. */
export function rmsNorm(x: Float32Array, weight: Float32Array, n: number, d: number, eps: number): Float32Array {
  const y = new Float32Array(n * d);
  for (let row = 0; row < n; row++) {
    const offset = row * d;
    let sumSquares = 0;
    for (let i = 0; i < d; i++) sumSquares += x[offset + i] * x[offset + i];
    const scale = 1 / Math.sqrt(sumSquares / d + eps);
    for (let i = 0; i < d; i++) y[offset + i] = x[offset + i] * scale * weight[i];
  }
  return y;
}

/** LayerNorm over the last axis (biased variance): (x - mean) / sqrt(var + eps) * weight + bias. x: [n, d]. */
export function layerNorm(
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  n: number,
  d: number,
  eps: number,
): Float32Array {
  const y = new Float32Array(n * d);
  for (let row = 0; row < n; row++) {
    const offset = row * d;
    let sum = 0;
    for (let i = 0; i < d; i++) sum += x[offset + i];
    const mean = sum / d;
    let sumSquares = 0;
    for (let i = 0; i < d; i++) {
      const centred = x[offset + i] - mean;
      sumSquares += centred * centred;
    }
    const scale = 1 / Math.sqrt(sumSquares / d + eps);
    for (let i = 0; i < d; i++) y[offset + i] = (x[offset + i] - mean) * scale * weight[i] + bias[i];
  }
  return y;
}

/**
 * Rotary position embedding in place, with Hugging Face's rotate-half pairing: element i pairs with
 * i + rotaryDim/2 and both turn by token t's angle of frequency i; elements from rotaryDim on pass
 * through (partial rotary). x: [n, heads, headDim]; cos and sin: [n, rotaryDim / 2]
 * (engine/model/rope.ts's ropeCosSin, which applies any scaling).
 */
export function applyRope(
  x: Float32Array,
  n: number,
  heads: number,
  headDim: number,
  table: { readonly cos: ArrayLike<number>; readonly sin: ArrayLike<number> },
  rotaryDim = headDim,
): void {
  const half = rotaryDim / 2;
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < half; i++) {
      const cos = table.cos[t * half + i];
      const sin = table.sin[t * half + i];
      for (let h = 0; h < heads; h++) {
        const base = (t * heads + h) * headDim;
        const a = x[base + i];
        const b = x[base + i + half];
        x[base + i] = a * cos - b * sin;
        x[base + i + half] = b * cos + a * sin;
      }
    }
  }
}

/**
 * Causal softmax(q k^T / sqrt(d)) per head. q: [n, H, d], k: [n, Hkv, d]; query head h reads KV
 * head floor(h / (H / Hkv)). Returns [H, n, n] with row i zero beyond column i. `blocked(i, j)`
 * removes key j from query i's softmax (a knockout); a query always keeps itself.
 */
export function causalAttentionProbs(
  q: Float32Array,
  k: Float32Array,
  n: number,
  H: number,
  Hkv: number,
  d: number,
  blocked?: (query: number, key: number) => boolean,
  window = 0,
  softcap = 0,
): Float32Array {
  const probs = new Float32Array(H * n * n);
  // Row by row through causalAttentionRow, so a single row and the full tensor agree exactly.
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < n; i++) probs.set(causalAttentionRow(q, k, n, H, Hkv, d, h, i, blocked && ((key) => key !== i && blocked(i, key)), window, softcap), (h * n + i) * n);
  }
  return probs;
}

/**
 * One row of causalAttentionProbs: the query + 1 probabilities of (head, query), computed the same
 * way (same dot-product order, max-subtracted softmax), so it equals the full tensor's row exactly.
 * With a sliding `window` > 0 the query sees only keys query - window + 1 .. query; the earlier
 * ones get probability 0. With `softcap` > 0 (Gemma 2) each score becomes softcap x tanh(score / softcap).
 */
export function causalAttentionRow(
  q: Float32Array,
  k: Float32Array,
  n: number,
  H: number,
  Hkv: number,
  d: number,
  head: number,
  query: number,
  blocked?: (key: number) => boolean,
  window = 0,
  softcap = 0,
): Float32Array {
  if (query >= n) throw new RangeError(`query ${query} is outside the ${n} positions`);
  const first = window > 0 ? Math.max(0, query - window + 1) : 0;
  const scale = 1 / Math.sqrt(d);
  const kvHead = Math.floor(head / (H / Hkv));
  const qOffset = (query * H + head) * d;
  const scores = new Float64Array(query + 1);
  let max = -Infinity;
  for (let j = 0; j <= query; j++) {
    const kOffset = (j * Hkv + kvHead) * d;
    let dot = 0;
    for (let c = 0; c < d; c++) dot += q[qOffset + c] * k[kOffset + c];
    const score = softcap > 0 ? softcap * Math.tanh((dot * scale) / softcap) : dot * scale;
    scores[j] = j < first || blocked?.(j) ? -Infinity : score;
    if (scores[j] > max) max = scores[j];
  }
  let total = 0;
  for (let j = 0; j <= query; j++) {
    scores[j] = Math.exp(scores[j] - max);
    total += scores[j];
  }
  const row = new Float32Array(query + 1);
  for (let j = 0; j <= query; j++) row[j] = scores[j] / total;
  return row;
}

/** out[i, h, :] = sum_j probs[h, i, j] * v[j, kv(h), :]. probs: [H, n, n], v: [n, Hkv, d]. Returns [n, H * d]. */
export function attentionOutput(
  probs: Float32Array,
  v: Float32Array,
  n: number,
  H: number,
  Hkv: number,
  d: number,
): Float32Array {
  const out = new Float32Array(n * H * d);
  const group = H / Hkv;
  const accumulator = new Float64Array(d);
  for (let h = 0; h < H; h++) {
    const kvHead = Math.floor(h / group);
    for (let i = 0; i < n; i++) {
      accumulator.fill(0);
      const rowOffset = (h * n + i) * n;
      for (let j = 0; j <= i; j++) {
        const p = probs[rowOffset + j];
        const vOffset = (j * Hkv + kvHead) * d;
        for (let c = 0; c < d; c++) accumulator[c] += p * v[vOffset + c];
      }
      const outOffset = (i * H + h) * d;
      for (let c = 0; c < d; c++) out[outOffset + c] = accumulator[c];
    }
  }
  return out;
}

/**
 * Attention of one query position for R variants of its row (a knockout's full row and one per
 * span): row r's query qRows[r] attends to keys 0..query-1 through the run's cached kCache and
 * vCache, and to its own kRows[r], vRows[r] at `query`; keys in masks[r] = [start, end) are left out
 * of the softmax when masks are given. qRows: [R, H, d]; kCache, vCache: [n, Hkv, d]; kRows, vRows:
 * [R, Hkv, d]. Returns [R, H * d].
 */
export function attentionRowsWithOwnKeys(
  qRows: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  kRows: Float32Array,
  vRows: Float32Array,
  masks: readonly TokenSpan[] | undefined,
  query: number,
  H: number,
  Hkv: number,
  d: number,
  window = 0,
  softcap = 0,
): Float32Array {
  const R = qRows.length / (H * d);
  const width = Hkv * d;
  const out = new Float32Array(R * H * d);
  const keys = new Float32Array((query + 1) * width);
  const values = new Float32Array((query + 1) * width);
  const queries = new Float32Array((query + 1) * H * d);
  keys.set(kCache.subarray(0, query * width));
  values.set(vCache.subarray(0, query * width));
  for (let r = 0; r < R; r++) {
    keys.set(kRows.subarray(r * width, (r + 1) * width), query * width);
    values.set(vRows.subarray(r * width, (r + 1) * width), query * width);
    queries.set(qRows.subarray(r * H * d, (r + 1) * H * d), query * H * d);
    const mask = masks?.[r];
    const blocked = mask && ((key: number) => key >= mask.start && key < mask.end);
    const probs = new Float32Array(H * (query + 1) * (query + 1));
    for (let h = 0; h < H; h++) probs.set(causalAttentionRow(queries, keys, query + 1, H, Hkv, d, h, query, blocked, window, softcap), (h * (query + 1) + query) * (query + 1));
    const attended = attentionOutput(probs, values, query + 1, H, Hkv, d);
    out.set(attended.subarray(query * H * d), r * H * d);
  }
  return out;
}

/**
 * The norm of what each key contributes through the output projection, per head (Kobayashi et al.
 * 2020): norms[h, j] = || v[j, kv(h), :] W_O[:, h*hd:(h+1)*hd]^T ||. v: [n, Hkv, hd], oWeight:
 * [d, H * hd] (nn.Linear layout). Returns [H, n].
 */
export function valueNorms(v: Float32Array, oWeight: Float32Array, n: number, H: number, Hkv: number, hd: number, d: number): Float32Array {
  const norms = new Float32Array(H * n);
  const group = H / Hkv;
  for (let h = 0; h < H; h++) {
    const kvHead = Math.floor(h / group);
    for (let j = 0; j < n; j++) {
      const vOffset = (j * Hkv + kvHead) * hd;
      let sumSquares = 0;
      for (let out = 0; out < d; out++) {
        const wOffset = out * H * hd + h * hd;
        let dot = 0;
        for (let c = 0; c < hd; c++) dot += v[vOffset + c] * oWeight[wOffset + c];
        sumSquares += dot * dot;
      }
      norms[h * n + j] = Math.sqrt(sumSquares);
    }
  }
  return norms;
}

/**
 * Value-weighted attention: probs[h, i, j] * norms[h, j], renormalised per row. probs: [H, n, n]
 * (causal rows), norms: [H, n]. Returns [H, n, n]. A row whose weights are all zero stays zero.
 */
export function valueWeightedProbs(probs: Float32Array, norms: Float32Array, n: number, H: number): Float32Array {
  const out = new Float32Array(H * n * n);
  const row = new Float64Array(n);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < n; i++) {
      const offset = (h * n + i) * n;
      let total = 0;
      for (let j = 0; j <= i; j++) total += row[j] = probs[offset + j] * norms[h * n + j];
      if (total > 0) for (let j = 0; j <= i; j++) out[offset + j] = row[j] / total;
    }
  }
  return out;
}

/** x * sigmoid(x), elementwise. */
export function silu(x: Float32Array): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] / (1 + Math.exp(-x[i]));
  return y;
}

/** GELU with the tanh approximation (GPT-2's "gelu_new"), elementwise. */
export function geluTanh(x: Float32Array): Float32Array {
  const y = new Float32Array(x.length);
  const c = Math.sqrt(2 / Math.PI);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    y[i] = 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v * v * v)));
  }
  return y;
}

/** silu(gate) * up, elementwise. */
export function swiglu(gate: Float32Array, up: Float32Array): Float32Array {
  checkSameLength(gate, up, 'swiglu');
  const y = new Float32Array(gate.length);
  for (let i = 0; i < gate.length; i++) y[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
  return y;
}

/** cap x tanh(x / cap) in place (Gemma 2's logit soft-capping); nothing when cap is 0. */
export function softcap(x: Float32Array, cap: number): Float32Array {
  if (cap > 0) for (let i = 0; i < x.length; i++) x[i] = cap * Math.tanh(x[i] / cap);
  return x;
}

/** gelu_tanh(gate) * up, elementwise (GeGLU: Gemma's gated MLP). */
export function geglu(gate: Float32Array, up: Float32Array): Float32Array {
  checkSameLength(gate, up, 'geglu');
  const y = geluTanh(gate);
  for (let i = 0; i < y.length; i++) y[i] *= up[i];
  return y;
}

/** a + b, elementwise. */
export function add(a: Float32Array, b: Float32Array): Float32Array {
  checkSameLength(a, b, 'add');
  const y = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i] + b[i];
  return y;
}

/** target[r, :] + addend[offset .. offset + width) for each of the `rows` rows of target ([rows, width]). */
export function addRow(target: Float32Array, addend: Float32Array, offset: number, rows: number, width: number): Float32Array {
  const y = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < width; c++) y[r * width + c] = target[r * width + c] + addend[offset + c];
  }
  return y;
}

/**
 * A block of `rows` x `width` elements copied from one row-major matrix into another (a copy of
 * `dst` is returned): dst[dstOffset + r * dstStride + c] = src[srcOffset + r * srcStride + c].
 */
export function copyBlock(
  src: Float32Array,
  dst: Float32Array,
  rows: number,
  width: number,
  srcOffset: number,
  srcStride: number,
  dstOffset: number,
  dstStride: number,
): Float32Array {
  const y = dst.slice();
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < width; c++) y[dstOffset + r * dstStride + c] = src[srcOffset + r * srcStride + c];
  }
  return y;
}

/** Rows of `table` ([vocab, d]) for each id. Returns [ids.length, d]. */
export function embed(ids: ArrayLike<number>, table: Float32Array, d: number): Float32Array {
  const vocab = table.length / d;
  const y = new Float32Array(ids.length * d);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new RangeError(`token id ${id} at position ${t} is outside the vocabulary (0..${vocab - 1})`);
    }
    y.set(table.subarray(id * d, id * d + d), t * d);
  }
  return y;
}

/**
 * The k largest of row[from..length), best first; ties keep the lower index first. Slots beyond
 * the row's length - from entries hold index -1 and weight 0.
 */
export function topKRow(row: Float32Array, length: number, k: number, from = 0): { indices: Int32Array; weights: Float32Array } {
  const indices = new Int32Array(k).fill(-1);
  const weights = new Float32Array(k);
  let filled = 0;
  for (let p = from; p < length; p++) {
    const value = row[p];
    // Strictly greater moves an entry down, so an equal value never displaces a lower index.
    if (filled === k && !(value > weights[k - 1])) continue;
    let slot = filled < k ? filled : k - 1;
    while (slot > 0 && value > weights[slot - 1]) {
      indices[slot] = indices[slot - 1];
      weights[slot] = weights[slot - 1];
      slot--;
    }
    indices[slot] = p;
    weights[slot] = value;
    if (filled < k) filled++;
  }
  return { indices, weights };
}

/** For each span, the sum of row[p] over p in [start, min(end, query + 1)): the mass the query can see. */
export function spanMassRow(row: Float32Array, query: number, spans: readonly TokenSpan[]): Float32Array {
  const mass = new Float32Array(spans.length);
  for (let s = 0; s < spans.length; s++) {
    const end = Math.min(spans[s].end, query + 1);
    let sum = 0;
    for (let p = Math.max(0, spans[s].start); p < end; p++) sum += row[p];
    mass[s] = sum;
  }
  return mass;
}

/**
 * Builds the AttentionSummary from full attention probabilities. probsPerLayer[l] is [H, n, n]
 * for layer layers[l] (one entry per summarised layer, in the same order). `windows[l]`: the
 * layer's sliding window (0 or absent: none); its top-k never lists a key outside the window.
 */
export function summarizeAttention(
  probsPerLayer: Float32Array[],
  layers: readonly number[],
  n: number,
  H: number,
  request: AttentionRequest,
  windows?: readonly number[],
): AttentionSummary {
  if (probsPerLayer.length !== layers.length) {
    throw new Error(`summarizeAttention got ${probsPerLayer.length} probability tensors for ${layers.length} layers`);
  }
  const k = request.topK;
  const spans = request.spans;
  const S = spans.length;
  const L = layers.length;
  const topIndices = new Int32Array(L * H * n * k);
  const topWeights = new Float32Array(L * H * n * k);
  const spanMass = new Float32Array(L * H * n * S);
  const spanMassMean = new Float32Array(L * n * S);
  const spanMassMax = new Float32Array(L * n * S);
  for (let l = 0; l < L; l++) {
    const probs = probsPerLayer[l];
    for (let h = 0; h < H; h++) {
      for (let q = 0; q < n; q++) {
        const row = probs.subarray((h * n + q) * n, (h * n + q + 1) * n);
        const window = windows?.[l] ?? 0;
        const top = topKRow(row, q + 1, k, window > 0 ? Math.max(0, q - window + 1) : 0);
        const topOffset = ((l * H + h) * n + q) * k;
        topIndices.set(top.indices, topOffset);
        topWeights.set(top.weights, topOffset);
        spanMass.set(spanMassRow(row, q, spans), ((l * H + h) * n + q) * S);
      }
    }
    for (let q = 0; q < n; q++) {
      for (let s = 0; s < S; s++) {
        let sum = 0;
        let max = -Infinity;
        for (let h = 0; h < H; h++) {
          const value = spanMass[((l * H + h) * n + q) * S + s];
          sum += value;
          if (value > max) max = value;
        }
        spanMassMean[(l * n + q) * S + s] = sum / H;
        spanMassMax[(l * n + q) * S + s] = max;
      }
    }
  }
  return {
    numTokens: n,
    layers: [...layers],
    numHeads: H,
    topK: k,
    topIndices,
    topWeights,
    numSpans: S,
    spanMass,
    spanMassMean,
    spanMassMax,
  };
}

function checkSameLength(a: Float32Array, b: Float32Array, op: string): void {
  if (a.length !== b.length) throw new RangeError(`${op}: operands have ${a.length} and ${b.length} elements`);
}
