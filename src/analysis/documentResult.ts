/**
 * A finished analysis of one document version, and the queries the editor views ask of it
 * (what does the token at the cursor attend to; who attends to this definition). No `vscode`
 * import: offsets are UTF-16 offsets into the document.
 */
import { runSteps } from './slices';
import type { AttentionSummary, BackendInfo, ForwardStats } from '../../engine/attention';
import { attendedSources, type AttendedSource, type AttentionView, type DistanceRule, type PreparedDocument } from './documentAnalysis';
import { isKeyword } from './keywords';
import type { IdentifierGroup } from './tokenOffsets';
import type { AnalysisWindow } from './windows';
import { resolveReading } from './reading';

export interface AnalysedModel {
  readonly label: string;
  readonly shortName: string;
  readonly architecture: string;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly context: number;
  /** The model's rotary tables depend on the sequence length (dynamic NTK, LongRoPE scaling): the rows of a prefix change as the window grows. */
  readonly rotationDependsOnLength?: boolean;
  /** Per layer, the positions a query sees (sliding-window attention); absent or 0: all. */
  readonly slidingWindow?: readonly number[];
  /** Per layer, whether it rotates (false: a NoPE layer); absent: all do. */
  readonly ropeLayers?: readonly boolean[];
}

export interface DocumentAnalysisResult {
  readonly uri: string;
  /** The document version the analysis was computed for; views never show it for another. */
  readonly version: number;
  readonly languageId: string;
  /** Offset of the analysed text in the document (non-zero when a selection was analysed). */
  readonly baseOffset: number;
  readonly doc: PreparedDocument;
  readonly summary: AttentionSummary;
  readonly windows: number;
  readonly backend: BackendInfo;
  /** What the summaries weigh (attentionLens.weighting when the analysis ran). */
  readonly weighting?: 'attention' | 'valueWeighted';
  readonly model: AnalysedModel;
  /**
   * Timings from the start of the run, ms: `preparedMs` when tokens and definitions were ready,
   * `engineReadyMs` when the engine was loaded (both overlap: the engine loads in parallel).
   */
  readonly stats: ForwardStats & {
    /** From the start of the run to its result. */
    readonly elapsedMs: number;
    readonly preparedMs?: number;
    readonly engineReadyMs?: number;
    /** From the command (or the automatic trigger) to the views showing the whole result: the time the user waited. */
    shownMs?: number;
    /** From the command to the views showing the cursor's window (runs of more than one window). */
    readonly firstShownMs?: number;
  };
  /** The `analyze` request of a one-window analysis: exact attention rows can be asked of its run. */
  readonly runId?: number;
  /** The windows the document was analysed in (the causal checks run the query's window again). */
  readonly windowPlan?: readonly AnalysisWindow[];
  /**
   * Set when this is the part of an earlier analysis that an edit left valid (src/analysis/
   * prefixResult.ts): the tokens before the change, until the re-analysis arrives.
   */
  readonly prefixOf?: { readonly tokens: number; readonly changeOffset: number };
  /**
   * Set while the run goes on: the windows done so far (the one with the cursor first) and, per
   * token, 1 where its window is done. Views answer only for those tokens.
   */
  readonly progress?: { readonly windowsDone: number; readonly windowsTotal: number; readonly tokensDone: Uint8Array };
}

/** The identifier group (or, outside identifiers, the single token) at a document offset. */
export interface QueryAt {
  readonly tokens: readonly number[];
  readonly start: number;
  readonly end: number;
  readonly name: string;
  readonly identifier?: IdentifierGroup;
}

/** Index of the token whose range contains `offset` (document offset), or -1. */
export function tokenAt(result: DocumentAnalysisResult, offset: number): number {
  const ranges = result.doc.ranges;
  const local = offset - result.baseOffset;
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid];
    if (local < r.start) hi = mid - 1;
    else if (local >= r.end) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** What the views treat as "the token at the cursor": the whole identifier when it is one. */
export function queryAt(result: DocumentAnalysisResult, offset: number): QueryAt | undefined {
  // The token under the cursor, or the one just before it (the cursor after a word); never a
  // token of whitespace only: it has no name to ask about.
  const blank = (t: number) => t < 0 || result.doc.text.slice(result.doc.ranges[t].start, result.doc.ranges[t].end).trim() === '';
  let token = tokenAt(result, offset);
  if (blank(token)) token = tokenAt(result, offset - 1);
  if (blank(token)) return undefined;
  // While the run goes on, only the finished windows' tokens have an answer.
  if (result.progress && !result.progress.tokensDone[token]) return undefined;
  const identifier = identifierOfToken(result, token);
  if (identifier) return { tokens: identifier.tokens, start: identifier.start + result.baseOffset, end: identifier.end + result.baseOffset, name: identifier.name, identifier };
  const range = result.doc.ranges[token];
  return { tokens: [token], start: range.start + result.baseOffset, end: range.end + result.baseOffset, name: result.doc.text.slice(range.start, range.end).trim() };
}

function identifierOfToken(result: DocumentAnalysisResult, token: number): IdentifierGroup | undefined {
  const groups = result.doc.identifiers;
  let lo = 0;
  let hi = groups.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const g = groups[mid];
    if (token < g.tokens[0]) hi = mid - 1;
    else if (token > g.tokens[g.tokens.length - 1]) lo = mid + 1;
    else return g.tokens.includes(token) ? g : undefined;
  }
  return undefined;
}

/** The view's layer as an index into `summary.layers` (or 'all'). */
export function layerIndexOf(result: DocumentAnalysisResult, view: AttentionView): number | 'all' {
  if (view.layer === 'all') return 'all';
  const index = result.summary.layers.indexOf(view.layer);
  return index >= 0 ? index : 'all';
}

export function sourcesFor(result: DocumentAnalysisResult, query: QueryAt, view: AttentionView, rule: DistanceRule, limit: number, threshold: number): AttendedSource[] {
  return attendedSources(result.doc, result.summary, query.tokens, resolveReading(result, view, rule), rule, limit, threshold);
}

export interface Attender {
  readonly identifier: IdentifierGroup;
  readonly weight: number;
  readonly tokenDistance: number;
}

/**
 * The reverse view: for every definition, the identifiers (not keywords) that attend to it as a
 * distant source with at least `threshold` weight, strongest first.
 */
export function attendersByDefinition(result: DocumentAnalysisResult, view: AttentionView, rule: DistanceRule, threshold: number): Attender[][] {
  return runSteps(attenderSteps(result, view, rule, threshold));
}

/** The same, a few hundred identifiers at a time (src/analysis/slices.ts). */
export function* attenderSteps(result: DocumentAnalysisResult, view: AttentionView, rule: DistanceRule, threshold: number): Generator<void, Attender[][]> {
  const byDefinition: Attender[][] = result.doc.definitions.map(() => []);
  const resolved = resolveReading(result, view, rule);
  let done = 0;
  const inComment = result.doc.identifierInComment;
  for (const [g, identifier] of result.doc.identifiers.entries()) {
    if (++done % 256 === 0) yield;
    // Words of a comment attend too, but they are not code that uses the definition.
    if (isKeyword(identifier.name) || inComment?.[g]) continue;
    if (result.progress && !result.progress.tokensDone[identifier.tokens[0]]) continue;
    for (const source of attendedSources(result.doc, result.summary, identifier.tokens, resolved, rule, Number.MAX_SAFE_INTEGER, threshold)) {
      byDefinition[source.definition].push({ identifier, weight: source.weight, tokenDistance: source.tokenDistance });
    }
  }
  for (const list of byDefinition) list.sort((a, b) => b.weight - a.weight);
  return byDefinition;
}
