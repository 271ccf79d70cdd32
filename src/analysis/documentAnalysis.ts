/**
 * The analysis of one document, independent of VS Code (the CLI and the extension share it):
 * tokenize, map tokens to ranges, find definitions and imports, turn them into token spans for the
 * engine, and afterwards read the summaries back as "this identifier attends to those definitions".
 */
import type { AttentionSummary, TokenSpan } from '../../engine/attention';
import type { SourceDefinition } from './definitions';
import type { CodeReference } from './references';
import { alignTokens, identifierGroups, type IdentifierGroup, type TokenRange, type TokenSpelling } from './tokenOffsets';

/** What the analysis needs from a tokenizer. */
export interface DocumentTokenizer {
  /** Ids and vocabulary strings of `text`, without special tokens. */
  encodeWithTokens(text: string): { ids: number[]; tokens: string[] };
  readonly spelling: TokenSpelling;
  readonly specialTokens: ReadonlySet<string>;
}

export interface PreparedDocument {
  readonly text: string;
  readonly tokenIds: readonly number[];
  readonly tokens: readonly string[];
  /** UTF-16 range of each token. */
  readonly ranges: readonly TokenRange[];
  /** Definitions and imports that cover at least one token, in document order. */
  readonly definitions: readonly SourceDefinition[];
  /** The token span of each definition (same index). */
  readonly spans: readonly TokenSpan[];
  readonly identifiers: readonly IdentifierGroup[];
  /**
   * The code's own references (src/analysis/references.ts), targets re-indexed into `definitions`;
   * empty for languages without a grammar.
   */
  readonly references: readonly CodeReference[];
  /** For each identifier group, the index of its reference in `references`, or -1. */
  readonly identifierReference: Int32Array;
}

/** First token whose range ends after `offset` (binary search; ranges are in document order). */
function firstTokenEndingAfter(ranges: readonly TokenRange[], offset: number): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid].end <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The tokens overlapping the character range [start, end), or undefined if none. */
export function tokenSpanOf(ranges: readonly TokenRange[], start: number, end: number): TokenSpan | undefined {
  const first = firstTokenEndingAfter(ranges, start);
  let last = first;
  while (last < ranges.length && ranges[last].start < end) last++;
  return last > first ? { start: first, end: last } : undefined;
}

export function prepareDocument(text: string, tokenizer: DocumentTokenizer, definitions: readonly SourceDefinition[], references: readonly CodeReference[] = []): PreparedDocument {
  const { ids, tokens } = tokenizer.encodeWithTokens(text);
  const ranges = alignTokens(text, tokens, tokenizer.spelling, tokenizer.specialTokens);
  const kept: SourceDefinition[] = [];
  const spans: TokenSpan[] = [];
  for (const definition of definitions) {
    const span = tokenSpanOf(ranges, definition.start, definition.end);
    if (!span) continue;
    kept.push(definition);
    spans.push(span);
  }
  const identifiers = identifierGroups(text, ranges);
  const { kept: keptReferences, byIdentifier } = attachReferences(definitions, kept, references, identifiers);
  return { text, tokenIds: ids, tokens, ranges, definitions: kept, spans, identifiers, references: keptReferences, identifierReference: byIdentifier };
}

/** Re-indexes references into the kept definitions and pairs each with its identifier group. */
function attachReferences(all: readonly SourceDefinition[], kept: readonly SourceDefinition[], references: readonly CodeReference[], identifiers: readonly IdentifierGroup[]): { kept: CodeReference[]; byIdentifier: Int32Array } {
  const index = new Map<SourceDefinition, number>(kept.map((d, i) => [d, i]));
  const remap = (i: number) => (i >= 0 && i < all.length ? (index.get(all[i]) ?? -1) : -1);
  const out: CodeReference[] = [];
  for (const reference of references) {
    const targets = reference.targets.map(remap).filter((t) => t >= 0);
    if (targets.length === 0) continue;
    out.push({ ...reference, targets, enclosing: remap(reference.enclosing) });
  }
  const byIdentifier = new Int32Array(identifiers.length).fill(-1);
  const byStart = new Map<number, number>(out.map((r, i) => [r.start, i]));
  identifiers.forEach((group, g) => {
    const r = byStart.get(group.start);
    if (r !== undefined && out[r].name === group.name) byIdentifier[g] = r;
  });
  return { kept: out, byIdentifier };
}

/** How attention is read for display: one layer or all, one head or an aggregate over heads. */
export interface AttentionView {
  /** An index into `summary.layers`, or 'all' for the maximum over the summarised layers. */
  readonly layer: number | 'all';
  /** A head, or the mean / max over heads. */
  readonly head: number | 'mean' | 'max';
}

/**
 * Attention mass of `query` on every span under `view`. With layer 'all' each span takes its
 * largest mass over layers, so a strong long-range head in any layer shows.
 */
export function spanMassFor(summary: AttentionSummary, query: number, view: AttentionView): Float32Array {
  const S = summary.numSpans;
  const n = summary.numTokens;
  const H = summary.numHeads;
  const out = new Float32Array(S);
  const layers = view.layer === 'all' ? summary.layers.map((_, i) => i) : [view.layer];
  for (const li of layers) {
    for (let s = 0; s < S; s++) {
      let value: number;
      if (view.head === 'mean') value = summary.spanMassMean[(li * n + query) * S + s];
      else if (view.head === 'max') value = summary.spanMassMax[(li * n + query) * S + s];
      else value = summary.spanMass[((li * H + view.head) * n + query) * S + s];
      if (value > out[s]) out[s] = value;
    }
  }
  return out;
}

export interface AttendedSource {
  /** Index into `PreparedDocument.definitions` / `spans`. */
  readonly definition: number;
  /** Attention mass on the span. */
  readonly weight: number;
  /** Tokens from the span's last token to the query. */
  readonly tokenDistance: number;
}

export interface DistanceRule {
  /** Minimum token distance from the span's end to the query. */
  readonly minDistance: number;
  /** Also count any span on an earlier line as distant. */
  readonly otherLineCounts: boolean;
}

/**
 * The distant definitions and imports that the tokens `queries` attend to (an identifier's tokens:
 * each span takes its largest mass over them), strongest first, at most `limit`, ignoring masses
 * below `threshold`. A span is distant when it ends at least `minDistance` tokens before the first
 * query token (or, with `otherLineCounts`, on an earlier line).
 */
export function attendedSources(doc: PreparedDocument, summary: AttentionSummary, queries: readonly number[], view: AttentionView, rule: DistanceRule, limit: number, threshold: number): AttendedSource[] {
  if (queries.length === 0) return [];
  const first = queries[0];
  const mass = spanMassFor(summary, first, view);
  for (const query of queries.slice(1)) {
    const more = spanMassFor(summary, query, view);
    for (let s = 0; s < mass.length; s++) if (more[s] > mass[s]) mass[s] = more[s];
  }
  const queryLineStart = doc.text.lastIndexOf('\n', Math.max(0, doc.ranges[first].start - 1)) + 1;
  const sources: AttendedSource[] = [];
  for (let s = 0; s < doc.spans.length; s++) {
    const span = doc.spans[s];
    if (span.end > first) continue;
    const tokenDistance = first - (span.end - 1);
    const otherLine = doc.definitions[s].end <= queryLineStart;
    const distant = tokenDistance >= rule.minDistance || (rule.otherLineCounts && otherLine);
    if (!distant || mass[s] < threshold) continue;
    sources.push({ definition: s, weight: mass[s], tokenDistance });
  }
  sources.sort((a, b) => b.weight - a.weight || a.definition - b.definition);
  return sources.slice(0, limit);
}
