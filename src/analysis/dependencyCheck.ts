/**
 * "Check dependencies" for the token at the cursor: beside the attention it pays each distant
 * definition and import, what its prediction causally depends on (knockout, engine/causal.ts) and
 * value-weighted attention, and where they disagree. No `vscode` import: the controller supplies
 * the engine and the result.
 *
 * The query is the identifier at the cursor (every one of its tokens, as the attention views take
 * the strongest of its tokens); the candidates are the definitions and imports that end before it.
 * The window that owns the query is run again (its keys and values are the knockout's cache), with
 * value-weighted summaries, then every candidate is knocked out for each query token at once.
 */
import type { AttentionSummary, BackendInfo } from '../../engine/attention';
import type { KnockoutResult } from '../../engine/causal';
import type { CausalEngine } from './analysisEngines';
import { spanMassFor, type AttentionView } from './documentAnalysis';
import type { DocumentAnalysisResult, QueryAt } from './documentResult';
import { resolveReading } from './reading';
import type { AnalysisWindow } from './windows';

/** Below this KL (nats) a knockout is reported as "no effect". */
export const NO_EFFECT_KL = 0.01;
/** From this KL (nats) on, a span the model barely attends to is reported as "effect without much attention". */
export const STRONG_EFFECT_KL = 0.1;

export interface SpanDependency {
  /** Index into the document's definitions. */
  readonly definition: number;
  /** Attention mass under the current view (strongest query token), as the hover shows it. */
  readonly attention: number;
  /** Value-weighted attention mass under the same view. */
  readonly valueWeighted: number;
  /** KL(p_full || p_knocked) in nats at the query token where it is largest. */
  readonly kl: number;
  /** log p_knocked(next) - log p_full(next) at that token; null when it is the file's last token. */
  readonly deltaLogProb: number | null;
  /** How attention and effect relate, for the views. */
  readonly verdict: 'agrees' | 'attendedNoEffect' | 'effectWithoutAttention' | 'neither';
}

export interface DependencyCheck {
  readonly uri: string;
  readonly version: number;
  /** Document offsets of the checked identifier (or token). */
  readonly start: number;
  readonly end: number;
  readonly name: string;
  /** Strongest knockout effect first. */
  readonly spans: readonly SpanDependency[];
  /** The engine the check ran on. */
  readonly backend: BackendInfo;
  readonly elapsedMs: number;
}

/** The window that owns document token `token`. */
export function owningWindow(windows: readonly AnalysisWindow[], token: number): AnalysisWindow {
  const window = windows.find((w) => token >= w.ownedStart && token < w.ownedEnd);
  if (!window) throw new Error(`no analysis window owns token ${token}`);
  return window;
}

/** Classifies one span: attention at or above `threshold` is "attended"; KL decides the effect. */
export function verdictOf(attention: number, kl: number, threshold: number): SpanDependency['verdict'] {
  const attended = attention >= threshold;
  if (attended && kl < NO_EFFECT_KL) return 'attendedNoEffect';
  if (!attended && kl >= STRONG_EFFECT_KL) return 'effectWithoutAttention';
  return attended || kl >= NO_EFFECT_KL ? 'agrees' : 'neither';
}

export async function checkDependencies(
  result: DocumentAnalysisResult,
  windows: readonly AnalysisWindow[],
  query: QueryAt,
  engine: CausalEngine,
  view: AttentionView,
  threshold: number,
  topK: number,
  signal?: AbortSignal,
): Promise<DependencyCheck> {
  const started = performance.now();
  const window = owningWindow(windows, query.tokens[0]);
  const local = (token: number) => window.positions.indexOf(token);
  const queryPositions = query.tokens.map(local).filter((p) => p >= 0);
  if (queryPositions.length === 0) throw new Error(`the token at the cursor is not in the window that analysed it`);
  // Candidates: definitions and imports in this window that end before the identifier.
  const first = query.tokens[0];
  const candidates = window.spanIds.map((definition, s) => ({ definition, span: window.spans[s], s })).filter(({ definition }) => result.doc.spans[definition].end <= first);
  const weighted = await engine.run({ tokenIds: window.positions.map((p) => result.doc.tokenIds[p]), spans: window.spans, topK, weighting: 'valueWeighted', layers: result.summary.layers }, signal);
  const knockouts: KnockoutResult[] = [];
  for (const q of queryPositions) {
    knockouts.push(await engine.knockout!({ query: q, spans: candidates.map((c) => c.span) }, signal));
  }
  const attentionOf = massUnderView(result.summary, result, query.tokens, view);
  const weightedOf = massUnderView(weighted.summary, result, queryPositions, view);
  const spans: SpanDependency[] = candidates.map(({ definition, s }, c) => {
    let kl = 0;
    let deltaLogProb: number | null = null;
    for (const knockout of knockouts) {
      if (knockout.spans[c].kl >= kl) {
        kl = knockout.spans[c].kl;
        deltaLogProb = knockout.spans[c].deltaLogProb;
      }
    }
    const attention = attentionOf(definition);
    return { definition, attention, valueWeighted: weightedOf(s), kl, deltaLogProb, verdict: verdictOf(attention, kl, threshold) };
  });
  spans.sort((a, b) => b.kl - a.kl || b.attention - a.attention);
  return { uri: result.uri, version: result.version, start: query.start, end: query.end, name: query.name, spans, backend: weighted.backend, elapsedMs: performance.now() - started };
}

export interface SpanEffectOnFile {
  readonly uri: string;
  readonly version: number;
  /** The hidden definition or import. */
  readonly definition: number;
  /** Per document token after the span: KL of its next-token distribution (NaN where not computed). */
  readonly kl: Float32Array;
  /** Per document token: log p_hidden(next) - log p_full(next) (NaN where not computed or no next token). */
  readonly deltaLogProb: Float32Array;
  readonly backend: BackendInfo;
  readonly elapsedMs: number;
}

/**
 * The span hidden from every token outside it (total effect), over the whole file: each window that
 * holds the whole span (in its prefix or its chunk) is run again and the span hidden there; every
 * token takes the effect from the window that owns it.
 */
export async function spanEffectOnFile(result: DocumentAnalysisResult, windows: readonly AnalysisWindow[], definition: number, engine: CausalEngine, signal?: AbortSignal): Promise<SpanEffectOnFile> {
  const started = performance.now();
  const span = result.doc.spans[definition];
  const n = result.doc.tokenIds.length;
  const kl = new Float32Array(n).fill(NaN);
  const deltaLogProb = new Float32Array(n).fill(NaN);
  let backend: BackendInfo | undefined;
  for (const window of windows) {
    if (window.ownedEnd <= span.end) continue;
    const first = window.positions.indexOf(span.start);
    if (first < 0 || window.positions[first + (span.end - span.start) - 1] !== span.end - 1) continue;
    const ran = await engine.run({ tokenIds: window.positions.map((p) => result.doc.tokenIds[p]), spans: [], topK: 1 }, signal);
    backend = ran.backend;
    const effect = await engine.spanEffect!({ start: first, end: first + (span.end - span.start) }, signal);
    for (const token of effect.tokens) {
      const position = window.positions[token.position];
      if (position < window.ownedStart || position >= window.ownedEnd || position < span.end) continue;
      kl[position] = token.kl;
      deltaLogProb[position] = token.deltaLogProb ?? NaN;
    }
  }
  if (!backend) throw new Error('no analysis window holds the whole span; analyse the file again');
  return { uri: result.uri, version: result.version, definition, kl, deltaLogProb, backend, elapsedMs: performance.now() - started };
}

/**
 * Span mass of the strongest of `queries` under the view, by span index of `summary`. The view's
 * layer is a model layer; both summaries hold the result's layers in the same order.
 */
function massUnderView(summary: AttentionSummary, result: DocumentAnalysisResult, queries: readonly number[], view: AttentionView): (span: number) => number {
  const resolved = resolveReading(result, view, {});
  const masses = queries.map((q) => spanMassFor(summary, q, resolved));
  return (span) => Math.max(0, ...masses.map((mass) => mass[span] ?? 0));
}
