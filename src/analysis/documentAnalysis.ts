/**
 * The analysis of one document, independent of VS Code (the CLI and the extension share it):
 * tokenize, map tokens to ranges, find definitions and imports, turn them into token spans for the
 * engine, and afterwards read the summaries back as "this identifier attends to those definitions".
 */
import { sinkMassOf, sinksFor, type SinkAnalysis } from './sinks';
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
  /** For each identifier group, 1 when it is a word inside a comment (not code: the reverse view and the map leave it out). */
  readonly identifierInComment?: Uint8Array;
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

export function prepareDocument(text: string, tokenizer: DocumentTokenizer, definitions: readonly SourceDefinition[], references: readonly CodeReference[] = [], comments: readonly { readonly start: number; readonly end: number }[] = []): PreparedDocument {
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
  // Comments are sorted and do not overlap: one pass over both lists.
  const identifierInComment = new Uint8Array(identifiers.length);
  let c = 0;
  identifiers.forEach((group, g) => {
    while (c < comments.length && comments[c].end <= group.start) c++;
    if (c < comments.length && comments[c].start <= group.start && group.end <= comments[c].end) identifierInComment[g] = 1;
  });
  return { text, tokenIds: ids, tokens, ranges, definitions: kept, spans, identifiers, references: keptReferences, identifierReference: byIdentifier, identifierInComment };
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

/**
 * How attention is read for display: one layer or all, one head, an aggregate over heads, or
 * (`definition`) the heads that, measured on the file itself, most often attend to the definition
 * or import a name refers to (src/analysis/reading.ts resolves it to a set of heads).
 */
export interface AttentionView {
  /** A layer of the model (resolved: an index into `summary.layers`), or 'all' for the maximum over the summarised layers. */
  readonly layer: number | 'all';
  /** A head, the mean / max over heads, or this file's definition heads. */
  readonly head: number | 'mean' | 'max' | 'definition';
  /** Resolved: the (layer index, head) pairs read, the maximum over them (the definition heads). */
  readonly heads?: readonly HeadRef[];
  /** Resolved: attention on sinks is left out of every span's mass (src/analysis/sinks.ts). */
  readonly sinks?: SinkContext;
}

/** One head of the summary: `layerIndex` indexes `summary.layers`. */
export interface HeadRef {
  readonly layerIndex: number;
  readonly head: number;
}

/** The sinks of an analysis, and for each sink position the spans that contain it. */
export interface SinkContext {
  readonly analysis: SinkAnalysis;
  readonly spansAt: ReadonlyMap<number, readonly number[]>;
}

/** Attention of `query` in (li, h) on the sinks inside each span, added into `into` by span. */
function sinkMassBySpan(summary: AttentionSummary, sinks: SinkContext, li: number, h: number, query: number, into: Map<number, number>): void {
  const set = sinksFor(sinks.analysis, li, h, query);
  if (set.size === 0) return;
  const k = summary.topK;
  const at = ((li * summary.numHeads + h) * summary.numTokens + query) * k;
  for (let j = 0; j < k; j++) {
    const p = summary.topIndices[at + j];
    if (p < 0) break;
    if (!set.has(p)) continue;
    for (const s of sinks.spansAt.get(p) ?? []) into.set(s, (into.get(s) ?? 0) + summary.topWeights[at + j]);
  }
}

/** One head's mass of `query` on every span, less what lands on sinks (when the view leaves them out). */
function headMasses(summary: AttentionSummary, query: number, li: number, h: number, sinks: SinkContext | undefined): Float32Array {
  const S = summary.numSpans;
  const from = ((li * summary.numHeads + h) * summary.numTokens + query) * S;
  const out = summary.spanMass.slice(from, from + S);
  if (sinks) {
    const parked = new Map<number, number>();
    sinkMassBySpan(summary, sinks, li, h, query, parked);
    for (const [s, mass] of parked) out[s] = Math.max(0, out[s] - mass);
  }
  return out;
}

/**
 * Attention mass of `query` on every span under `view`. With layer 'all' each span takes its
 * largest mass over layers, so a strong long-range head in any layer shows; with `heads`, its
 * largest over those heads. With `sinks`, attention on sink positions does not count for the span
 * that holds them.
 */
export function spanMassFor(summary: AttentionSummary, query: number, view: AttentionView): Float32Array {
  const S = summary.numSpans;
  const n = summary.numTokens;
  const H = summary.numHeads;
  const out = new Float32Array(S);
  if (view.heads) {
    for (const { layerIndex, head } of view.heads) {
      const masses = headMasses(summary, query, layerIndex, head, view.sinks);
      for (let s = 0; s < S; s++) if (masses[s] > out[s]) out[s] = masses[s];
    }
    return out;
  }
  const layers = view.layer === 'all' ? summary.layers.map((_, i) => i) : [view.layer];
  const head = view.head === 'definition' ? 'max' : view.head;
  for (const li of layers) {
    let values: Float32Array;
    if (typeof head === 'number') values = headMasses(summary, query, li, head, view.sinks);
    else {
      const from = (li * n + query) * S;
      values = (head === 'mean' ? summary.spanMassMean : summary.spanMassMax).slice(from, from + S);
      if (view.sinks) {
        // Spans that hold a sink of some head: aggregate that head's corrected masses instead.
        const touched = new Set<number>();
        for (let h = 0; h < H; h++) {
          const parked = new Map<number, number>();
          sinkMassBySpan(summary, view.sinks, li, h, query, parked);
          for (const s of parked.keys()) touched.add(s);
        }
        if (touched.size > 0) {
          const perHead = Array.from({ length: H }, (_, h) => headMasses(summary, query, li, h, view.sinks));
          for (const s of touched) {
            let aggregate = head === 'mean' ? 0 : -Infinity;
            for (let h = 0; h < H; h++) aggregate = head === 'mean' ? aggregate + perHead[h][s] / H : Math.max(aggregate, perHead[h][s]);
            values[s] = aggregate;
          }
        }
      }
    }
    for (let s = 0; s < S; s++) if (values[s] > out[s]) out[s] = values[s];
  }
  return out;
}

/**
 * How much of `query`'s attention lands on its sinks under `view` (the same layers and heads, and
 * the same aggregation, as the span masses); 0 without sinks in the view.
 */
export function sinkShareFor(summary: AttentionSummary, query: number, view: AttentionView): number {
  const sinks = view.sinks;
  if (!sinks) return 0;
  const H = summary.numHeads;
  const of = (li: number, h: number) => sinkMassOf(summary, sinksFor(sinks.analysis, li, h, query), li, h, query);
  if (view.heads) return Math.max(0, ...view.heads.map(({ layerIndex, head }) => of(layerIndex, head)));
  const layers = view.layer === 'all' ? summary.layers.map((_, i) => i) : [view.layer];
  let best = 0;
  for (const li of layers) {
    let value: number;
    if (typeof view.head === 'number') value = of(li, view.head);
    else if (view.head === 'mean') value = Array.from({ length: H }, (_, h) => of(li, h)).reduce((a, b) => a + b, 0) / H;
    else value = Math.max(...Array.from({ length: H }, (_, h) => of(li, h)));
    best = Math.max(best, value);
  }
  return best;
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
  /** List attention sinks as sources after all (attentionLens.showSinks; default: shown apart). */
  readonly showSinks?: boolean;
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
