/**
 * Attention sinks: positions that a head's queries attend to whatever they are (Xiao et al. 2023;
 * Gu et al. 2024, "When Attention Sink Emerges"), typically the first token of the sequence, here
 * the first token of each analysis window (windows start with the file's imports, so that is often
 * an import line). They carry no information about the token that attends to them, so the views
 * show them apart: how much of a token's attention is parked there, never as one of its sources.
 *
 * Measured per (layer, head) and window from the summaries' top-k, following Gu et al.: position p
 * is a sink of a head in a window when the head's mean attention on p over the window's queries at
 * or after p (at least MIN_QUERIES of them) exceeds SINK_THRESHOLD (0.3); attention outside a
 * query's top-k counts as 0, which can only hide weak sinks. The first token of every window is
 * always a candidate; other positions (a separator, BOS) qualify the same way. The sink rate is the
 * share of (layer, head) pairs that have a sink, as in the paper.
 *
 * No `vscode` import: the CLI and the benchmarks use it too.
 */
import type { AttentionSummary } from '../../engine/attention';
import { runSteps } from './slices';
import type { AnalysisWindow } from './windows';

/** Mean attention on a position above which it is a sink (Gu et al. 2024). */
export const SINK_THRESHOLD = 0.3;
/** Queries a position needs after it before it can be called a sink. */
export const MIN_QUERIES = 32;

export interface SinkAnalysis {
  /** [layerIndex * H + head]: the document positions that are sinks of that head, per query's window (a set per window). */
  readonly sinks: readonly (readonly ReadonlySet<number>[])[];
  /** [layerIndex * H + head]: mean share of a query's attention that lands on its window's sinks. */
  readonly headSinkShare: Float32Array;
  /** Share of (layer, head) pairs with at least one sink. */
  readonly sinkRate: number;
  /** The window that owns each document token (index into the windows). */
  readonly windowOf: Int32Array;
  /** First document position of each window (the sequence's first token, as the model saw it). */
  readonly windowStarts: readonly number[];
  readonly numHeads: number;
}

/** Windows of a one-window analysis when none were recorded: the whole document from position 0. */
function wholeDocument(n: number): Pick<AnalysisWindow, 'positions' | 'ownedStart' | 'ownedEnd'>[] {
  return [{ positions: [0], ownedStart: 0, ownedEnd: n }];
}

export function analyseSinks(summary: AttentionSummary, windows?: readonly Pick<AnalysisWindow, 'positions' | 'ownedStart' | 'ownedEnd'>[]): SinkAnalysis {
  return runSteps(sinkSteps(summary, windows));
}

/** The same, one (layer, head) at a time (src/analysis/slices.ts). */
export function* sinkSteps(summary: AttentionSummary, windows?: readonly Pick<AnalysisWindow, 'positions' | 'ownedStart' | 'ownedEnd'>[]): Generator<void, SinkAnalysis> {
  const n = summary.numTokens;
  const H = summary.numHeads;
  const L = summary.layers.length;
  const k = summary.topK;
  const plan = windows && windows.length > 0 ? windows : wholeDocument(n);
  const windowOf = new Int32Array(n).fill(-1);
  plan.forEach((window, w) => windowOf.fill(w, window.ownedStart, window.ownedEnd));
  const windowStarts = plan.map((window) => window.positions[0]);
  const sinks: Set<number>[][] = [];
  const headSinkShare = new Float32Array(L * H);
  let withSink = 0;
  // Attention on each position from a window's own queries (top-k entries only), summed in one
  // array reused across heads and windows: only the positions touched are visited and reset.
  const mass = new Float32Array(n);
  const touched: number[] = [];
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const perWindow: Set<number>[] = plan.map(() => new Set<number>());
      const base = (l * H + h) * n * k;
      plan.forEach((window, w) => {
        for (let q = window.ownedStart; q < window.ownedEnd; q++) {
          const at = base + q * k;
          for (let j = 0; j < k; j++) {
            const p = summary.topIndices[at + j];
            if (p < 0) break;
            if (mass[p] === 0) touched.push(p);
            mass[p] += summary.topWeights[at + j];
          }
        }
        for (const p of touched) {
          // Queries of this window at or after p: the owned range from max(p, ownedStart).
          const queries = window.ownedEnd - Math.max(p, window.ownedStart);
          if (queries >= MIN_QUERIES && mass[p] / queries > SINK_THRESHOLD) perWindow[w].add(p);
          mass[p] = 0;
        }
        touched.length = 0;
      });
      sinks.push(perWindow);
      if (perWindow.some((set) => set.size > 0)) withSink++;
      let share = 0;
      let counted = 0;
      for (let q = 0; q < n; q++) {
        const w = windowOf[q];
        if (w < 0) continue;
        const set = perWindow[w];
        if (set.size > 0) share += sinkMassOf(summary, set, l, h, q);
        counted++;
      }
      headSinkShare[l * H + h] = counted > 0 ? share / counted : 0;
      yield;
    }
  }
  return { sinks, headSinkShare, sinkRate: L * H > 0 ? withSink / (L * H) : 0, windowOf, windowStarts, numHeads: H };
}

/** Attention of `query` (layer index `l`, head `h`) on the positions in `sinks`, from its top-k. */
export function sinkMassOf(summary: AttentionSummary, sinks: ReadonlySet<number>, l: number, h: number, query: number): number {
  if (sinks.size === 0) return 0;
  const k = summary.topK;
  const at = ((l * summary.numHeads + h) * summary.numTokens + query) * k;
  let total = 0;
  for (let j = 0; j < k; j++) {
    const p = summary.topIndices[at + j];
    if (p < 0) break;
    if (sinks.has(p)) total += summary.topWeights[at + j];
  }
  return total;
}

/** The sinks `query` sees in (layer index l, head h). */
export function sinksFor(analysis: SinkAnalysis, l: number, h: number, query: number): ReadonlySet<number> {
  const w = analysis.windowOf[query];
  return w < 0 ? NONE : analysis.sinks[l * analysis.numHeads + h][w];
}

const NONE: ReadonlySet<number> = new Set();
