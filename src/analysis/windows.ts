/**
 * Files longer than the model's context are analysed in overlapping windows. Each window starts
 * with a prefix of the file's imports and top-level signatures (so distant definitions stay in
 * view), followed by a contiguous chunk of the file. Every query token is owned by exactly one
 * window, the one that gives it the most preceding context; the windows' summaries are merged back
 * into one document-level summary in document positions.
 */
import { runSteps, runStepsSliced } from './slices';
import type { AttentionSummary, TokenSpan } from '../../engine/attention';

export interface AnalysisWindow {
  /** Document token position of each window position (prefix first, then the chunk). */
  readonly positions: readonly number[];
  /** Number of prefix positions at the start of `positions`. */
  readonly prefixLength: number;
  /** Document tokens [ownedStart, ownedEnd) take their results from this window. */
  readonly ownedStart: number;
  readonly ownedEnd: number;
  /** The spans as the engine sees them (window positions), and which document span each is. */
  readonly spans: readonly TokenSpan[];
  readonly spanIds: readonly number[];
}

export interface WindowPlanInput {
  /** Number of document tokens. */
  readonly numTokens: number;
  /** Model context (maximum positions per forward pass). */
  readonly context: number;
  /** Document spans of every definition and import, in document order. */
  readonly spans: readonly TokenSpan[];
  /** Which spans may go into the prefix (imports and top-level definitions), most important first. */
  readonly prefixCandidates: readonly number[];
  /** Largest share of the context the prefix may take (default 0.25). */
  readonly prefixShare?: number;
}

/** One window when the file fits; otherwise overlapping windows with a prefix. */
export function planWindows(input: WindowPlanInput): AnalysisWindow[] {
  const { numTokens: n, context, spans } = input;
  if (context < 16) throw new Error(`The model's context (${context} tokens) is too short to analyse files.`);
  if (n <= context) {
    return [{ positions: range(0, n), prefixLength: 0, ownedStart: 0, ownedEnd: n, spans: spans.slice(), spanIds: spans.map((_, i) => i) }];
  }
  const prefixBudget = Math.floor(context * (input.prefixShare ?? 0.25));
  // The chunk must leave room for the prefix; consecutive chunks overlap by a quarter so that the
  // first owned query of a window still sees a quarter chunk of local context.
  const chunk = context - prefixBudget;
  const overlap = Math.floor(chunk / 4);
  const stride = chunk - overlap;
  const windows: AnalysisWindow[] = [];
  for (let chunkStart = 0; ; chunkStart += stride) {
    const chunkEnd = Math.min(n, chunkStart + chunk);
    const ownedStart = chunkStart === 0 ? 0 : chunkStart + overlap;
    const ownedEnd = chunkEnd === n ? n : chunkStart + chunk;
    // Prefix: whole candidate spans that end before the chunk, most important first, within budget.
    const chosen: number[] = [];
    let used = 0;
    for (const id of input.prefixCandidates) {
      const span = spans[id];
      if (span.end > chunkStart) continue;
      const length = span.end - span.start;
      if (used + length > prefixBudget) continue;
      chosen.push(id);
      used += length;
    }
    chosen.sort((a, b) => spans[a].start - spans[b].start);
    const positions: number[] = [];
    const windowSpans: TokenSpan[] = [];
    const spanIds: number[] = [];
    for (const id of chosen) {
      windowSpans.push({ start: positions.length, end: positions.length + spans[id].end - spans[id].start });
      spanIds.push(id);
      for (let p = spans[id].start; p < spans[id].end; p++) positions.push(p);
    }
    const prefixLength = positions.length;
    for (let p = chunkStart; p < chunkEnd; p++) positions.push(p);
    spans.forEach((span, id) => {
      const start = Math.max(span.start, chunkStart);
      const end = Math.min(span.end, chunkEnd);
      if (start >= end || chosen.includes(id)) return;
      windowSpans.push({ start: prefixLength + start - chunkStart, end: prefixLength + end - chunkStart });
      spanIds.push(id);
    });
    windows.push({ positions, prefixLength, ownedStart, ownedEnd, spans: windowSpans, spanIds });
    if (chunkEnd === n) break;
  }
  return windows;
}

function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}

/**
 * Merges the windows' summaries (each in window positions, for the window's spans) into one
 * summary over all `numTokens` document tokens and `numSpans` document spans. Top-k indices are
 * translated to document positions; a span missing from a window has mass 0 there. A window whose
 * summary is `undefined` (not run yet) leaves its rows empty (no sources, no mass).
 */
export function mergeWindowSummaries(windows: readonly AnalysisWindow[], summaries: readonly (AttentionSummary | undefined)[], numTokens: number, numSpans: number): AttentionSummary {
  return runSteps(mergeSteps(windows, summaries, numTokens, numSpans));
}

/**
 * The same merge in slices of about `sliceMs`, yielding to the event loop between them: on the
 * extension host a 24k-token file's merge would otherwise block hovers and typing for a while.
 */
export function mergeWindowSummariesAsync(windows: readonly AnalysisWindow[], summaries: readonly (AttentionSummary | undefined)[], numTokens: number, numSpans: number, sliceMs = 15): Promise<AttentionSummary> {
  return runStepsSliced(mergeSteps(windows, summaries, numTokens, numSpans), sliceMs);
}

/** The merge, one window and layer at a time (a yield after each). */
function* mergeSteps(windows: readonly AnalysisWindow[], summaries: readonly (AttentionSummary | undefined)[], numTokens: number, numSpans: number): Generator<void, AttentionSummary> {
  if (windows.length !== summaries.length || windows.length === 0) throw new Error('one summary per window is needed');
  const first = summaries.find((s): s is AttentionSummary => s !== undefined);
  if (!first) throw new Error('no window has a summary yet');
  if (windows.length === 1 && first.numSpans === numSpans && windows[0].spanIds.every((id, i) => id === i)) return first;
  const L = first.layers.length;
  const H = first.numHeads;
  const k = first.topK;
  const n = numTokens;
  const S = numSpans;
  const topIndices = new Int32Array(L * H * n * k).fill(-1);
  const topWeights = new Float32Array(L * H * n * k);
  const spanMass = new Float32Array(L * H * n * S);
  const spanMassMean = new Float32Array(L * n * S);
  const spanMassMax = new Float32Array(L * n * S);
  for (let w = 0; w < windows.length; w++) {
    const window = windows[w];
    const summary = summaries[w];
    if (!summary) continue;
    const wn = summary.numTokens;
    const wS = summary.numSpans;
    if (wn !== window.positions.length || wS !== window.spans.length || summary.layers.length !== L || summary.numHeads !== H || summary.topK !== k) {
      throw new Error(`window ${w}: its summary does not match the window plan`);
    }
    // The window rows this window owns: consecutive window positions mapped to consecutive
    // document positions (the chunk after the prefix), so whole row ranges copy at once.
    const rows: { wq: number; q: number; count: number }[] = [];
    for (let wq = window.prefixLength; wq < wn; wq++) {
      const q = window.positions[wq];
      if (q < window.ownedStart || q >= window.ownedEnd) continue;
      const last = rows[rows.length - 1];
      if (last && last.wq + last.count === wq && last.q + last.count === q) last.count++;
      else rows.push({ wq, q, count: 1 });
    }
    const position = Int32Array.from(window.positions);
    const spanIds = Int32Array.from(window.spanIds);
    for (let l = 0; l < L; l++) {
      for (const { wq, q, count } of rows) {
        for (let h = 0; h < H; h++) {
          const from = ((l * H + h) * wn + wq) * k;
          const to = ((l * H + h) * n + q) * k;
          topWeights.set(summary.topWeights.subarray(from, from + count * k), to);
          const indices = summary.topIndices;
          for (let j = 0; j < count * k; j++) {
            const index = indices[from + j];
            topIndices[to + j] = index < 0 ? -1 : position[index];
          }
          const massFrom = ((l * H + h) * wn + wq) * wS;
          const massTo = ((l * H + h) * n + q) * S;
          const mass = summary.spanMass;
          for (let r = 0; r < count; r++) {
            const a = massFrom + r * wS;
            const b = massTo + r * S;
            for (let s = 0; s < wS; s++) spanMass[b + spanIds[s]] = mass[a + s];
          }
        }
        const aggFrom = (l * wn + wq) * wS;
        const aggTo = (l * n + q) * S;
        for (let r = 0; r < count; r++) {
          const a = aggFrom + r * wS;
          const b = aggTo + r * S;
          for (let s = 0; s < wS; s++) {
            spanMassMean[b + spanIds[s]] = summary.spanMassMean[a + s];
            spanMassMax[b + spanIds[s]] = summary.spanMassMax[a + s];
          }
        }
      }
      yield;
    }
  }
  return { numTokens: n, layers: first.layers, numHeads: H, topK: k, topIndices, topWeights, numSpans: S, spanMass, spanMassMean, spanMassMax };
}

/** Kinds whose headers lead each window: imports first, then the file's top-level definitions. */
const PREFIX_ORDER: Readonly<Record<string, number>> = { import: 0, class: 1, interface: 1, type: 1, enum: 1, function: 2, module: 2, variable: 3 };

/** The definitions (by index) that may go into a window prefix, most important first. */
export function prefixCandidates(definitions: readonly { kind: string; start: number }[]): number[] {
  return definitions
    .map((definition, index) => ({ index, rank: PREFIX_ORDER[definition.kind] ?? 9, start: definition.start }))
    .filter((entry) => entry.rank < 9)
    .sort((a, b) => a.rank - b.rank || a.start - b.start)
    .map((entry) => entry.index);
}
