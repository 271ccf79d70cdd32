/**
 * Host-side rules of incremental re-analysis: how much of a cached run a new request can reuse, and
 * how the cached summary rows and the freshly computed ones join into the summary of the whole run.
 * In a causal model the rows before the first changed token are unchanged, so only the summaries
 * of rows from there on (and their keys and values) are computed again.
 *
 * Shared by the ONNX Runtime and WebGPU engines, so both reuse exactly the same rows (no Node or
 * DOM imports: the WebGPU engine also runs in the webview).
 */
import type { AttentionRequest, AttentionSummary, TokenSpan } from './attention';

/** What a cached run was asked: reuse needs the same layers, top-k and weighting. */
export interface CachedRequest {
  readonly tokenIds: Int32Array;
  readonly spans: readonly TokenSpan[];
  readonly topK: number;
  readonly layers: readonly number[];
  readonly weighting: string;
}

/** How a new request reuses a cached run: its first `past` tokens, and each new span's column in the cached summaries (-1: zero for the cached rows). */
export interface ReusePlan {
  readonly past: number;
  readonly columns: readonly number[];
}

/**
 * Whether and how far a request can reuse a cached run: same layers, top-k and weighting; the
 * common token prefix; and for every span the cached rows' column (the same span, or one that starts
 * alike and reaches the prefix's end in both), or -1 when the span starts after the prefix (the
 * cached rows cannot see it). Undefined when nothing can be reused. `past` equals n only when the
 * tokens and spans are identical; otherwise at least the last token is recomputed (its logits are
 * the run's). `sameRotation` is false when the two lengths rotate positions differently (the rotary
 * scalings whose tables depend on the sequence length, engine/model/rope.ts's ropeTablesAgree):
 * then the cached keys are of no use.
 */
export function planReuse(cached: CachedRequest, tokenIds: Int32Array, request: AttentionRequest, layers: readonly number[], sameRotation = true): ReusePlan | undefined {
  if (!sameRotation) return undefined;
  if (cached.topK !== request.topK || cached.weighting !== (request.weighting ?? 'attention') || cached.layers.length !== layers.length || cached.layers.some((l, i) => l !== layers[i])) return undefined;
  const limit = Math.min(cached.tokenIds.length, tokenIds.length);
  let past = 0;
  while (past < limit && cached.tokenIds[past] === tokenIds[past]) past++;
  if (past === 0) return undefined;
  if (past === tokenIds.length && past === cached.tokenIds.length) {
    const same = cached.spans.length === request.spans.length && cached.spans.every((sp, i) => sp.start === request.spans[i].start && sp.end === request.spans[i].end);
    if (same) return { past, columns: cached.spans.map((_, i) => i) };
  }
  if (past === tokenIds.length) past--;
  if (past === 0) return undefined;
  const columns: number[] = [];
  for (const span of request.spans) {
    if (span.start >= past) {
      columns.push(-1);
      continue;
    }
    const column = cached.spans.findIndex((old) => old.start === span.start && (old.end === span.end || (old.end >= past && span.end >= past)));
    if (column < 0) return undefined;
    columns.push(column);
  }
  return { past, columns };
}

/**
 * The summary of n rows from a cached summary's first `past` rows (span columns mapped, -1 -> 0)
 * and a fresh summary of the remaining rows.
 */
export function mergeSummaries(cached: AttentionSummary, past: number, fresh: AttentionSummary, columns: readonly number[], n: number): AttentionSummary {
  const { numHeads: H, topK: k } = fresh;
  const L = fresh.layers.length;
  const S = fresh.numSpans;
  const m = fresh.numTokens;
  const oldN = cached.numTokens;
  const oldS = cached.numSpans;
  const topIndices = new Int32Array(L * H * n * k);
  const topWeights = new Float32Array(L * H * n * k);
  const spanMass = new Float32Array(L * H * n * S);
  const spanMassMean = new Float32Array(L * n * S);
  const spanMassMax = new Float32Array(L * n * S);
  const mapRow = (from: Float32Array, fromOffset: number, to: Float32Array, toOffset: number) => {
    for (let s = 0; s < S; s++) to[toOffset + s] = columns[s] < 0 ? 0 : from[fromOffset + columns[s]];
  };
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const row = (l * H + h) * n;
      topIndices.set(cached.topIndices.subarray((l * H + h) * oldN * k, ((l * H + h) * oldN + past) * k), row * k);
      topWeights.set(cached.topWeights.subarray((l * H + h) * oldN * k, ((l * H + h) * oldN + past) * k), row * k);
      topIndices.set(fresh.topIndices.subarray((l * H + h) * m * k, (l * H + h + 1) * m * k), (row + past) * k);
      topWeights.set(fresh.topWeights.subarray((l * H + h) * m * k, (l * H + h + 1) * m * k), (row + past) * k);
      for (let q = 0; q < past; q++) mapRow(cached.spanMass, ((l * H + h) * oldN + q) * oldS, spanMass, (row + q) * S);
      spanMass.set(fresh.spanMass.subarray((l * H + h) * m * S, (l * H + h + 1) * m * S), (row + past) * S);
    }
    for (let q = 0; q < past; q++) {
      mapRow(cached.spanMassMean, (l * oldN + q) * oldS, spanMassMean, (l * n + q) * S);
      mapRow(cached.spanMassMax, (l * oldN + q) * oldS, spanMassMax, (l * n + q) * S);
    }
    spanMassMean.set(fresh.spanMassMean.subarray(l * m * S, (l + 1) * m * S), (l * n + past) * S);
    spanMassMax.set(fresh.spanMassMax.subarray(l * m * S, (l + 1) * m * S), (l * n + past) * S);
  }
  return { numTokens: n, layers: fresh.layers, numHeads: H, topK: k, topIndices, topWeights, numSpans: S, spanMass, spanMassMean, spanMassMax };
}

export function cloneSummary(summary: AttentionSummary): AttentionSummary {
  return {
    ...summary,
    layers: [...summary.layers],
    topIndices: summary.topIndices.slice(),
    topWeights: summary.topWeights.slice(),
    spanMass: summary.spanMass.slice(),
    spanMassMean: summary.spanMassMean.slice(),
    spanMassMax: summary.spanMassMax.slice(),
  };
}

/** Host bytes of a summary's arrays. */
export function summaryArrayBytes(summary: AttentionSummary): number {
  return summary.topIndices.byteLength + summary.topWeights.byteLength + summary.spanMass.byteLength + summary.spanMassMean.byteLength + summary.spanMassMax.byteLength;
}

/**
 * Least-recently-used eviction for the engines' run caches (a Map keeps insertion order, and a run
 * is re-inserted when kept again): drops the oldest entries until their bytes fit `budget`, handing
 * each to `onEvict` (the WebGPU engine frees its device buffers there).
 */
export function evictOverBudget<E extends { readonly bytes: number }>(cache: Map<string, E>, budget: number, onEvict?: (entry: E) => void): void {
  let total = 0;
  for (const entry of cache.values()) total += entry.bytes;
  for (const [key, entry] of cache) {
    if (total <= budget) break;
    cache.delete(key);
    onEvict?.(entry);
    total -= entry.bytes;
  }
}
