/**
 * What survives an edit: in a causal model every position is computed from earlier tokens only, so
 * the summaries of the tokens before the first change are exactly what a new analysis will compute
 * for them. After an edit the views keep showing that prefix (for the new document version) until
 * the re-analysis arrives: the overlay of the untouched part never goes stale and never flickers,
 * and nothing after the change is shown from the old version. No `vscode` import.
 */
import type { AttentionSummary, TokenSpan } from '../../engine/attention';
import type { SourceDefinition } from './definitions';
import type { PreparedDocument } from './documentAnalysis';
import type { DocumentAnalysisResult } from './documentResult';
import type { CodeReference } from './references';

/**
 * Tokens this close before the change are dropped too: a tokenizer may merge the characters just
 * before an edit with the new ones (an identifier that grows), so their ids can change.
 */
const BOUNDARY_TOKENS = 2;

/** The first `rows` query rows of a `[layer][head][query][width]` array of `n` queries. */
function rowsOf<T extends Float32Array | Int32Array>(array: T, blocks: number, n: number, width: number, rows: number, columns?: readonly number[]): T {
  const outWidth = columns ? columns.length : width;
  const out = new (array.constructor as new (length: number) => T)(blocks * rows * outWidth);
  for (let b = 0; b < blocks; b++) {
    for (let q = 0; q < rows; q++) {
      const from = (b * n + q) * width;
      const to = (b * rows + q) * outWidth;
      if (columns) columns.forEach((c, i) => (out[to + i] = array[from + c]));
      else out.set(array.subarray(from, from + width), to);
    }
  }
  return out;
}

/**
 * The part of `result` that a document edited from `changeOffset` (a document offset) on still
 * shows, as a result of `version`; undefined when nothing before the change can be kept.
 */
export function prefixResult(result: DocumentAnalysisResult, version: number, changeOffset: number): DocumentAnalysisResult | undefined {
  const { doc, summary } = result;
  const local = changeOffset - result.baseOffset;
  if (local <= 0) return undefined;
  // Tokens that end before the change, less the boundary tokens.
  let p = 0;
  while (p < doc.ranges.length && doc.ranges[p].end <= local) p++;
  p = Math.max(0, p - BOUNDARY_TOKENS);
  if (p === 0) return undefined;
  const cut = doc.ranges[p - 1].end;

  // Definitions whose summed span lies in the kept tokens, and their columns in the summaries.
  const keptDefinitions: number[] = [];
  doc.definitions.forEach((_, i) => {
    if (doc.spans[i].end <= p) keptDefinitions.push(i);
  });
  const newIndex = new Map(keptDefinitions.map((old, i) => [old, i]));
  const remap = (i: number) => newIndex.get(i) ?? -1;
  const references: CodeReference[] = [];
  for (const reference of doc.references) {
    if (reference.end > cut) continue;
    const targets = reference.targets.map(remap).filter((t) => t >= 0);
    if (targets.length > 0) references.push({ ...reference, targets, enclosing: remap(reference.enclosing) });
  }
  const identifiers = doc.identifiers.filter((g) => g.tokens[g.tokens.length - 1] < p);
  const byStart = new Map(references.map((r, i) => [r.start, i]));
  const identifierReference = new Int32Array(identifiers.length).fill(-1);
  identifiers.forEach((g, i) => {
    const r = byStart.get(g.start);
    if (r !== undefined && references[r].name === g.name) identifierReference[i] = r;
  });
  const definitions: SourceDefinition[] = keptDefinitions.map((i) => doc.definitions[i]);
  const spans: TokenSpan[] = keptDefinitions.map((i) => doc.spans[i]);
  const prefix: PreparedDocument = {
    text: doc.text.slice(0, cut),
    tokenIds: doc.tokenIds.slice(0, p),
    tokens: doc.tokens.slice(0, p),
    ranges: doc.ranges.slice(0, p),
    definitions,
    spans,
    identifiers,
    references,
    identifierReference,
    // The kept identifiers are the first ones (the document's order).
    ...(doc.identifierInComment ? { identifierInComment: doc.identifierInComment.slice(0, identifiers.length) } : {}),
  };

  const L = summary.layers.length;
  const H = summary.numHeads;
  const n = summary.numTokens;
  const k = summary.topK;
  const S = summary.numSpans;
  const kept: AttentionSummary = {
    numTokens: p,
    layers: summary.layers,
    numHeads: H,
    topK: k,
    topIndices: rowsOf(summary.topIndices, L * H, n, k, p),
    topWeights: rowsOf(summary.topWeights, L * H, n, k, p),
    numSpans: keptDefinitions.length,
    spanMass: rowsOf(summary.spanMass, L * H, n, S, p, keptDefinitions),
    spanMassMean: rowsOf(summary.spanMassMean, L, n, S, p, keptDefinitions),
    spanMassMax: rowsOf(summary.spanMassMax, L, n, S, p, keptDefinitions),
  };
  // Exact rows and dependency checks need the run itself: they wait for the new analysis.
  return { ...result, version, doc: prefix, summary: kept, runId: undefined, windowPlan: undefined, prefixOf: { tokens: n, changeOffset } };
}
