/**
 * Causal checks beside attention: does the model's prediction really depend on a span?
 *
 * - Knockout (direct effect; Geva et al. 2023): after a run, the next-token distribution at query q
 *   when q's attention scores to a span's positions are set to -inf before the softmax (the other
 *   weights renormalise), in every layer or a range of layers. Positions before q are unaffected, so
 *   engines reuse the run's cached keys and values and recompute only row q. The query itself is
 *   never knocked out: a span reaching q is cut at q.
 * - Span effect (total effect, the reverse view): one pass in which no query outside span S may attend
 *   to S; for every later position, how its next-token distribution changes.
 *
 * Effects are reported as KL(p_full || p_knocked) in nats and the change in log-probability of the
 * actual next token (log p_knocked - log p_full), as continuous metrics (Heimersheim & Nanda 2024).
 * This module holds the result types and the arithmetic every engine shares; no Node or DOM imports.
 */
import type { TokenSpan } from './attention';

/** A half-open token range [start, end); for knockouts it may be empty (start == end: no effect). */
export interface KnockoutSpan {
  readonly start: number;
  readonly end: number;
}

export interface KnockoutRequest {
  /** The query position (0-based) in the most recent run. */
  readonly query: number;
  readonly spans: readonly KnockoutSpan[];
  /** Knock out only in layers [start, end); default every layer. */
  readonly layers?: { readonly start: number; readonly end: number };
}

export interface NextTokenChoice {
  readonly token: number;
  readonly prob: number;
}

export interface SpanKnockout {
  readonly start: number;
  readonly end: number;
  /** KL(p_full || p_knocked) in nats; 0 when the span hides nothing from the query. */
  readonly kl: number;
  /** log p_knocked(next) - log p_full(next); null at the last position (no next token). */
  readonly deltaLogProb: number | null;
  /** The most likely next tokens with the span knocked out. */
  readonly top: readonly NextTokenChoice[];
}

export interface KnockoutResult {
  readonly query: number;
  /** The token after the query in the run, or null at the last position. */
  readonly nextToken: number | null;
  /** The most likely next tokens of the full model at the query. */
  readonly top: readonly NextTokenChoice[];
  readonly spans: readonly SpanKnockout[];
}

export interface TokenEffect {
  readonly position: number;
  readonly kl: number;
  readonly deltaLogProb: number | null;
}

export interface SpanEffectResult {
  readonly span: TokenSpan;
  /** One entry per position >= span.end, in order. */
  readonly tokens: readonly TokenEffect[];
}

/** How many next tokens results list. */
export const TOP_NEXT_TOKENS = 5;

/** log-softmax of one logits row, in float64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += Math.exp(logits[i] - max);
  const logTotal = max + Math.log(total);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - logTotal;
  return out;
}

/** KL(p || q) in nats from two log-probability rows; never negative (rounding is clamped at 0). */
export function klDivergence(logP: Float64Array, logQ: Float64Array): number {
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const p = Math.exp(logP[i]);
    if (p > 0) kl += p * (logP[i] - logQ[i]);
  }
  return Math.max(0, kl);
}

/** The `count` most likely tokens of a log-probability row, best first (ties: lower id first). */
export function topTokens(logProbs: Float64Array, count = TOP_NEXT_TOKENS): NextTokenChoice[] {
  const best: number[] = [];
  for (let i = 0; i < logProbs.length; i++) {
    if (best.length === count && logProbs[i] <= logProbs[best[count - 1]]) continue;
    let at = best.length < count ? best.length : count - 1;
    best[at] = i;
    while (at > 0 && logProbs[best[at]] > logProbs[best[at - 1]]) {
      [best[at], best[at - 1]] = [best[at - 1], best[at]];
      at--;
    }
  }
  return best.map((token) => ({ token, prob: Math.exp(logProbs[token]) }));
}

/** The per-span numbers from the full and knocked-out logits at one position. */
export function compareNextToken(fullLogits: ArrayLike<number>, knockedLogits: ArrayLike<number>, nextToken: number | null): { kl: number; deltaLogProb: number | null; top: NextTokenChoice[]; fullLogProbs: Float64Array } {
  const full = logSoftmax(fullLogits);
  const knocked = logSoftmax(knockedLogits);
  return {
    kl: klDivergence(full, knocked),
    deltaLogProb: nextToken === null ? null : knocked[nextToken] - full[nextToken],
    top: topTokens(knocked),
    fullLogProbs: full,
  };
}

/** The positions a span hides from query q: [start, min(end, q)), possibly empty. */
export function knockedPositions(span: KnockoutSpan, query: number): { start: number; end: number } {
  const start = Math.max(0, span.start);
  return { start, end: Math.max(start, Math.min(span.end, query)) };
}

/** Checks a knockout request against a run of n tokens and an L-layer model; returns the layer range. */
export function validateKnockout(request: KnockoutRequest, n: number, numLayers: number): { start: number; end: number } {
  if (!Number.isInteger(request.query) || request.query < 0 || request.query >= n) {
    throw new RangeError(`query ${request.query} is out of range (0..${n - 1})`);
  }
  for (const span of request.spans) {
    if (!Number.isInteger(span.start) || !Number.isInteger(span.end) || span.start < 0 || span.end < span.start || span.end > n) {
      throw new RangeError(`span ${span.start}:${span.end} is not a range of the ${n} token positions (A:B with 0 <= A <= B <= ${n})`);
    }
  }
  const layers = request.layers ?? { start: 0, end: numLayers };
  if (!Number.isInteger(layers.start) || !Number.isInteger(layers.end) || layers.start < 0 || layers.end > numLayers || layers.start >= layers.end) {
    throw new RangeError(`layers ${layers.start}:${layers.end} is not a non-empty range of the model's ${numLayers} layers`);
  }
  return layers;
}

/** Checks a span-effect request against a run of n tokens. */
export function validateSpanEffect(span: TokenSpan, n: number): void {
  if (!Number.isInteger(span.start) || !Number.isInteger(span.end) || span.start < 0 || span.end <= span.start || span.end > n) {
    throw new RangeError(`span ${span.start}:${span.end} is not a non-empty range of the ${n} token positions`);
  }
}
