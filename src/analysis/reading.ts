/**
 * From the view the user picked to how the summaries are read: the layer index, the heads, and the
 * attention sinks left out (src/analysis/sinks.ts). The default view, "definition heads of this
 * file", is chosen by measurement on the analysed file itself: the heads whose strongest distant
 * position most often lies in the definition or import a name refers to (the Definition heads
 * table, src/analysis/definitionHeads.ts, with sinks left out), when the file has enough such uses;
 * otherwise every head, strongest. Which heads is the choice; the sources they list stay ordered
 * by the attention they show, never re-ranked by name matching. Every view says what it is
 * (describeReading) wherever a number is shown. No `vscode` import.
 */
import type { AttentionView, HeadRef, SinkContext } from './documentAnalysis';
import { definitionHeadSteps, precisionOf, type HeadsTable } from './definitionHeads';
import type { DocumentAnalysisResult } from './documentResult';

/** What reading needs of an analysis (the editor's result, or the CLI's analysed file). */
export type ReadableAnalysis = Pick<DocumentAnalysisResult, 'doc' | 'summary' | 'windowPlan'> & { readonly model?: LayerFacts };
import { sinkSteps, type SinkAnalysis } from './sinks';
import { layerScope, limitedLayersNote, type LayerFacts } from '../shared/format';
import { runSteps, runStepsSliced } from './slices';

/** attentionLens.minDistance's default. */
const DEFAULT_MIN_DISTANCE = 64;

/** Distant def-use edges a file needs before its own measurement picks the heads. */
export const MIN_MEASURED_USES = 12;
/** Heads within this share of the best one's precision join it (at most MAX_DEFINITION_HEADS). */
const NEAR_BEST = 0.75;
const MAX_DEFINITION_HEADS = 3;

export interface ReadingOptions {
  /** Distance (tokens) a use must be from what it refers to, as the views count it (attentionLens.minDistance, default 64). */
  readonly minDistance?: number;
  /** List sinks as sources after all (attentionLens.showSinks). */
  readonly showSinks?: boolean;
}

/** The heads the definition view reads, and why. */
export interface DefinitionHeadChoice {
  /** Undefined: too few uses to measure; every head is read (max), sinks apart. */
  readonly heads?: readonly HeadRef[];
  /** e.g. "layer 1 head 7: 37% of this file's 41 distant uses land in their definition or import". */
  readonly text: string;
  readonly uses: number;
}

const sinkCache = new WeakMap<ReadableAnalysis, SinkContext>();
const tableCache = new WeakMap<ReadableAnalysis, Map<number, HeadsTable>>();
const choiceCache = new WeakMap<ReadableAnalysis, Map<number, DefinitionHeadChoice>>();

function contextOf(result: ReadableAnalysis, analysis: SinkAnalysis): SinkContext {
  const positions = new Set<number>();
  for (const perWindow of analysis.sinks) for (const set of perWindow) for (const p of set) positions.add(p);
  const spansAt = new Map<number, number[]>();
  result.doc.spans.forEach((span, s) => {
    for (const p of positions) if (p >= span.start && p < span.end) spansAt.set(p, [...(spansAt.get(p) ?? []), s]);
  });
  return { analysis, spansAt };
}

/** The sinks of an analysis (computed once per result) and, per sink position, the spans holding it. */
export function sinkContext(result: ReadableAnalysis): SinkContext {
  let context = sinkCache.get(result);
  if (!context) {
    context = contextOf(result, runSteps(sinkSteps(result.summary, result.windowPlan)));
    sinkCache.set(result, context);
  }
  return context;
}

/** The definition-heads table of an analysis, sinks apart (computed once per result and distance). */
export function headsTable(result: ReadableAnalysis, minDistance = DEFAULT_MIN_DISTANCE): HeadsTable {
  let byDistance = tableCache.get(result);
  if (!byDistance) tableCache.set(result, (byDistance = new Map()));
  let table = byDistance.get(minDistance);
  if (!table) {
    table = runSteps(definitionHeadSteps(result.doc, result.summary, minDistance, sinkContext(result).analysis));
    byDistance.set(minDistance, table);
  }
  return table;
}

/**
 * Computes what reading `result` needs (its sinks, its definition-heads table) in slices, before
 * the views ask for it: on the extension host they would otherwise compute it at once, in the
 * first hover or decoration after a big file's analysis.
 */
export async function prepareReading(result: ReadableAnalysis, minDistance = DEFAULT_MIN_DISTANCE): Promise<void> {
  if (!sinkCache.has(result)) sinkCache.set(result, contextOf(result, await runStepsSliced(sinkSteps(result.summary, result.windowPlan))));
  let byDistance = tableCache.get(result);
  if (!byDistance) tableCache.set(result, (byDistance = new Map()));
  if (!byDistance.has(minDistance)) byDistance.set(minDistance, await runStepsSliced(definitionHeadSteps(result.doc, result.summary, minDistance, sinkContext(result).analysis)));
}

/**
 * The part of `from` kept after an edit (src/analysis/prefixResult.ts) reads as `from` did: the
 * same sinks (its tokens are a prefix of `from`'s) and the same definition heads (measured on the
 * whole file before the edit), so typing never recomputes them and the view stays put.
 */
export function inheritReading(from: ReadableAnalysis, to: ReadableAnalysis): void {
  // The sink positions carry over; which of `to`'s spans hold them is worked out again (cheap: a
  // few positions), since the kept definitions are renumbered.
  const sinks = sinkCache.get(from);
  if (sinks) sinkCache.set(to, contextOf(to, sinks.analysis));
  const tables = tableCache.get(from);
  if (tables) tableCache.set(to, new Map(tables));
  const choices = choiceCache.get(from);
  if (choices) choiceCache.set(to, new Map(choices));
}

/** The definition heads of this file (computed once per result and distance). */
export function definitionHeadChoice(result: ReadableAnalysis, minDistance = DEFAULT_MIN_DISTANCE): DefinitionHeadChoice {
  let byDistance = choiceCache.get(result);
  if (!byDistance) choiceCache.set(result, (byDistance = new Map()));
  let choice = byDistance.get(minDistance);
  if (!choice) {
    const table = headsTable(result, minDistance);
    const best = table.heads[0];
    if (table.uses < MIN_MEASURED_USES || !best || precisionOf(best) === 0) {
      choice = { uses: table.uses, text: `all heads, strongest (this file has ${table.uses} distant use${table.uses === 1 ? '' : 's'} of an earlier definition or import, too few to pick its definition heads)` };
    } else {
      const chosen = table.heads.filter((h) => precisionOf(h) >= NEAR_BEST * precisionOf(best)).slice(0, MAX_DEFINITION_HEADS);
      const names = chosen.map((h) => `layer ${h.layer} head ${h.head} (${Math.round(precisionOf(h) * 100)}%)`).join(', ');
      choice = {
        uses: table.uses,
        heads: chosen.map((h) => ({ layerIndex: result.summary.layers.indexOf(h.layer), head: h.head })),
        text: `this file's definition heads: ${names} of its ${table.uses} distant uses land first in the name's definition or import`,
      };
    }
    byDistance.set(minDistance, choice);
  }
  return choice;
}

/** The view resolved for reading `result`: layer index, heads, sinks apart (unless shown). */
export function resolveReading(result: ReadableAnalysis, view: AttentionView, options: ReadingOptions): AttentionView {
  const sinks = options.showSinks ? undefined : sinkContext(result);
  if (view.head === 'definition') {
    const choice = definitionHeadChoice(result, options.minDistance);
    return choice.heads ? { layer: 'all', head: 'max', heads: choice.heads, sinks } : { layer: 'all', head: 'max', sinks };
  }
  const index = view.layer === 'all' ? -1 : result.summary.layers.indexOf(view.layer);
  return { layer: index >= 0 ? index : 'all', head: view.head, sinks };
}

/** What the view reads, in words, for the hover footer, the status bar tooltip and the CLI. */
export function describeReading(result: ReadableAnalysis, view: AttentionView, options: ReadingOptions): string {
  const sinks = options.showSinks ? 'sinks shown' : 'attention sinks apart';
  if (view.head === 'definition') {
    const choice = definitionHeadChoice(result, options.minDistance);
    const read = choice.heads ? [...new Set(choice.heads.map((h) => result.summary.layers[h.layerIndex]))].sort((a, b) => a - b) : result.summary.layers;
    const scope = limitedLayersNote(result.model, read);
    return `${choice.text}; ${sinks}${scope ? `; ${scope}` : ''}`;
  }
  // A layer that sees only part of the window says so, wherever its numbers are shown.
  const scope = view.layer === 'all' ? limitedLayersNote(result.model, result.summary.layers) : layerScope(result.model, view.layer);
  const layer = view.layer === 'all' ? `all layers (strongest${scope ? `; ${scope}` : ''})` : `layer ${view.layer}${scope ? ` (${scope})` : ''}`;
  const head = view.head === 'mean' ? 'mean of heads' : view.head === 'max' ? 'max of heads' : `head ${view.head}`;
  return `${layer}, ${head}; ${sinks}`;
}
