/**
 * Definition heads: which (layer, head) pairs track the code's real references. For every distant
 * use of a name that the code resolves to one of the file's definitions or imports (a def-use
 * edge, src/analysis/references.ts), per head:
 * - precision@1: the head's top attended *distant* position (over the use's tokens, from the
 *   summaries' top-k) lies in the span of the definition or import the use refers to;
 * - recall@k: any of the head's top-k positions for the use's tokens lies in that span.
 * Next to them, two position-only baselines: the nearest earlier distant occurrence of the same
 * name (what a copy/induction head without understanding would pick) and a uniform choice over
 * the distant positions (in expectation). No `vscode` import: the panel and `attention-lens heads`
 * share it; tables from several files add up (`addHeadTables`).
 */
import type { AttentionSummary } from '../../engine/attention';
import type { PreparedDocument } from './documentAnalysis';
import { runSteps } from './slices';
import { sinksFor, type SinkAnalysis } from './sinks';

export interface Score {
  /** Uses where the top-1 distant position hit the referenced span. */
  readonly hits: number;
  /** Uses where a top-k position hit it. */
  readonly recallHits: number;
  /** Uses scored. */
  readonly count: number;
}

export interface HeadScore extends Score {
  readonly layer: number;
  readonly head: number;
}

export interface HeadsTable {
  /** Distant def-use edges scored (the same for every head). */
  readonly uses: number;
  readonly minDistance: number;
  readonly topK: number;
  /** Best precision first (ties: recall, then layer, head). */
  readonly heads: readonly HeadScore[];
  readonly baselines: {
    /** The nearest earlier distant occurrence of the name (recall: the k nearest). */
    readonly nearestOccurrence: Score;
    /** A uniformly random distant position (expected hits; recall: k positions without replacement). */
    readonly uniform: Score;
  };
}

/** A scored use: the token positions of the use and the token span of what it refers to. */
interface ScoredUse {
  readonly tokens: readonly number[];
  readonly name: string;
  readonly target: { readonly start: number; readonly end: number };
}

export const precisionOf = (score: Score): number => (score.count > 0 ? score.hits / score.count : 0);
export const recallOf = (score: Score): number => (score.count > 0 ? score.recallHits / score.count : 0);

/** The distant def-use edges of a document: uses whose referenced span ends >= minDistance tokens before them. */
function distantUses(doc: PreparedDocument, minDistance: number): ScoredUse[] {
  const uses: ScoredUse[] = [];
  doc.identifiers.forEach((group, g) => {
    const r = doc.identifierReference[g];
    if (r < 0) return;
    const first = group.tokens[0];
    // The first referenced definition the use can see from far enough away.
    const target = doc.references[r].targets.map((t) => doc.spans[t]).find((span) => span.end <= first && first - (span.end - 1) >= minDistance);
    if (target) uses.push({ tokens: group.tokens, name: group.name, target });
  });
  return uses;
}

function sortHeads(heads: HeadScore[]): HeadScore[] {
  return heads.sort((a, b) => precisionOf(b) - precisionOf(a) || recallOf(b) - recallOf(a) || a.layer - b.layer || a.head - b.head);
}

/**
 * The heads table of one analysed document. With `sinks`, a head's attention on its sinks is not
 * its top position (a sink at a window's first token, often an import line, would otherwise count
 * as a hit on that import for every use).
 */
export function definitionHeads(doc: PreparedDocument, summary: AttentionSummary, minDistance: number, sinks?: SinkAnalysis): HeadsTable {
  return runSteps(definitionHeadSteps(doc, summary, minDistance, sinks));
}

/** The same, one (layer, head) at a time (src/analysis/slices.ts). */
export function* definitionHeadSteps(doc: PreparedDocument, summary: AttentionSummary, minDistance: number, sinks?: SinkAnalysis): Generator<void, HeadsTable> {
  const uses = distantUses(doc, minDistance);
  const { numHeads: H, topK: k, numTokens: n } = summary;
  const heads: HeadScore[] = [];
  for (let li = 0; li < summary.layers.length; li++) {
    const layer = summary.layers[li];
    for (let h = 0; h < H; h++) {
      let hits = 0;
      let recallHits = 0;
      for (const use of uses) {
        let best = -1;
        let bestWeight = -1;
        let recalled = false;
        for (const q of use.tokens) {
          const base = ((li * H + h) * n + q) * k;
          const parked = sinks ? sinksFor(sinks, li, h, q) : undefined;
          for (let j = 0; j < k; j++) {
            const p = summary.topIndices[base + j];
            if (p < 0 || q - p < minDistance || parked?.has(p)) continue;
            const w = summary.topWeights[base + j];
            if (p >= use.target.start && p < use.target.end) recalled = true;
            if (w > bestWeight) {
              bestWeight = w;
              best = p;
            }
          }
        }
        if (best >= use.target.start && best < use.target.end) hits++;
        if (recalled) recallHits++;
      }
      heads.push({ layer, head: h, hits, recallHits, count: uses.length });
      yield;
    }
  }

  // Baselines from positions alone.
  const occurrences = new Map<string, number[]>();
  for (const group of doc.identifiers) {
    const list = occurrences.get(group.name) ?? [];
    list.push(group.tokens[0]);
    occurrences.set(group.name, list);
  }
  let nearestHits = 0;
  let nearestRecall = 0;
  let uniformHits = 0;
  let uniformRecall = 0;
  for (const use of uses) {
    const q = use.tokens[0];
    const earlier = (occurrences.get(use.name) ?? []).filter((p) => q - p >= minDistance).reverse();
    if (earlier.length > 0 && earlier[0] >= use.target.start && earlier[0] < use.target.end) nearestHits++;
    if (earlier.slice(0, k).some((p) => p >= use.target.start && p < use.target.end)) nearestRecall++;
    const positions = q - minDistance + 1; // distant positions 0..q-minDistance
    const inside = Math.max(0, Math.min(use.target.end, positions) - use.target.start);
    uniformHits += inside / positions;
    let miss = 1;
    for (let i = 0; i < Math.min(k, positions); i++) miss *= Math.max(0, positions - inside - i) / (positions - i);
    uniformRecall += 1 - miss;
  }
  return {
    uses: uses.length,
    minDistance,
    topK: k,
    heads: sortHeads(heads),
    baselines: {
      nearestOccurrence: { hits: nearestHits, recallHits: nearestRecall, count: uses.length },
      uniform: { hits: uniformHits, recallHits: uniformRecall, count: uses.length },
    },
  };
}

/** Adds the tables of several files (same model): counts add up per (layer, head). */
export function addHeadTables(tables: readonly HeadsTable[]): HeadsTable {
  if (tables.length === 0) throw new Error('no tables to add');
  const byHead = new Map<string, { layer: number; head: number; hits: number; recallHits: number; count: number }>();
  const add = (a: Score, b: Score): Score => ({ hits: a.hits + b.hits, recallHits: a.recallHits + b.recallHits, count: a.count + b.count });
  let nearest: Score = { hits: 0, recallHits: 0, count: 0 };
  let uniform: Score = { hits: 0, recallHits: 0, count: 0 };
  for (const table of tables) {
    for (const score of table.heads) {
      const key = `${score.layer}:${score.head}`;
      const sum = byHead.get(key) ?? { layer: score.layer, head: score.head, hits: 0, recallHits: 0, count: 0 };
      sum.hits += score.hits;
      sum.recallHits += score.recallHits;
      sum.count += score.count;
      byHead.set(key, sum);
    }
    nearest = add(nearest, table.baselines.nearestOccurrence);
    uniform = add(uniform, table.baselines.uniform);
  }
  return {
    uses: tables.reduce((total, t) => total + t.uses, 0),
    minDistance: tables[0].minDistance,
    topK: tables[0].topK,
    heads: sortHeads([...byHead.values()]),
    baselines: { nearestOccurrence: nearest, uniform },
  };
}
