/**
 * The dependency map: the file's imports and definitions as nodes, in file order, and from each
 * definition A to each earlier definition or import B an edge carrying A's attention on B:
 * the sum over A's identifiers of their mass on B's span (each identifier takes its strongest
 * token, as the hover does), normalised per A (A's edges share 1), under the view's layer/head.
 * Beside it, the code's own references from A to B (src/analysis/references.ts) and, where "Check
 * dependencies" ran on a token inside A, the largest knockout effect on B. No `vscode` import: the
 * panel and `attention-lens map` build the same map.
 */
import { runSteps } from './slices';
import { isKeyword } from './keywords';
import { spanMassFor, type AttentionView } from './documentAnalysis';
import type { DocumentAnalysisResult } from './documentResult';
import { resolveReading, type ReadingOptions } from './reading';
import { enclosingDefinition, type CodeReference } from './references';
import type { DependencyCheck } from './dependencyCheck';

export interface MapNode {
  /** Index into the document's definitions. */
  readonly definition: number;
  readonly kind: string;
  readonly name: string;
  /** 0-based line of the definition's start. */
  readonly line: number;
  readonly tokenStart: number;
  readonly tokenEnd: number;
  /** Identifier tokens (groups) owned by the node: the uses whose attention its edges sum. */
  readonly identifiers: number;
}

export interface MapEdgeToken {
  /** The identifier's name and its first token. */
  readonly name: string;
  readonly token: number;
  readonly line: number;
  readonly weight: number;
}

export interface MapEdge {
  /** Node indices: `from` is the attending definition, `to` the attended earlier one. */
  readonly from: number;
  readonly to: number;
  /** Share of `from`'s attention on definitions and imports that goes to `to` (from's edges sum to 1). */
  readonly weight: number;
  /** Mean mass per identifier of `from` on `to`. */
  readonly meanMass: number;
  /** The identifiers of `from` that attend to `to` most, strongest first (at most 3). */
  readonly tokens: readonly MapEdgeToken[];
  /** Uses inside `from` that the code resolves to `to`. */
  readonly references: number;
  /** The largest knockout KL (nats) of `to` for a checked token inside `from`, where checked. */
  readonly effect?: number;
}

export interface DependencyMap {
  readonly uri: string;
  readonly version: number;
  readonly view: AttentionView;
  readonly nodes: readonly MapNode[];
  /** Strongest first. */
  readonly edges: readonly MapEdge[];
}

/** Edges below this share and without a code reference are left out (they would never be drawn). */
export const MIN_EDGE_SHARE = 0.005;

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

function lineOf(starts: readonly number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * `extraReferences` (e.g. from a language server; targets index the document's definitions) add to
 * tree-sitter's, except where tree-sitter already resolved the same use.
 */
export function buildDependencyMap(result: DocumentAnalysisResult, view: AttentionView, checks: readonly DependencyCheck[] = [], extraReferences: readonly CodeReference[] = [], reading: ReadingOptions = {}): DependencyMap {
  return runSteps(dependencyMapSteps(result, view, checks, extraReferences, reading));
}

/** The same, a few hundred identifiers at a time (src/analysis/slices.ts). */
export function* dependencyMapSteps(result: DocumentAnalysisResult, view: AttentionView, checks: readonly DependencyCheck[] = [], extraReferences: readonly CodeReference[] = [], reading: ReadingOptions = {}): Generator<void, DependencyMap> {
  const { doc, summary } = result;
  const starts = lineStarts(doc.text);
  const D = doc.definitions.length;
  const resolved = resolveReading(result, view, reading);
  // Owner of each identifier: the innermost definition (not an import) whose node holds it.
  // Words of comments are left out: they are not code that depends on anything.
  const owner = doc.identifiers.map((g, i) => (isKeyword(g.name) || doc.identifierInComment?.[i] ? -1 : enclosingDefinition(doc.definitions, g.start, g.end)));
  const owned = new Int32Array(D);
  for (const o of owner) if (o >= 0) owned[o]++;
  const nodes: MapNode[] = doc.definitions.map((d, i) => ({ definition: i, kind: d.kind, name: d.name, line: lineOf(starts, d.start), tokenStart: doc.spans[i].start, tokenEnd: doc.spans[i].end, identifiers: owned[i] }));

  // mass[a][b]: summed identifier mass of a on b; strongest identifiers per (a, b).
  const mass = new Float64Array(D * D);
  const strongest = new Map<number, MapEdgeToken[]>();
  for (let g = 0; g < doc.identifiers.length; g++) {
    if (g % 128 === 127) yield;
    const group = doc.identifiers[g];
    const a = owner[g];
    if (a < 0) continue;
    const first = group.tokens[0];
    const best = spanMassFor(summary, first, resolved);
    for (const t of group.tokens.slice(1)) {
      const more = spanMassFor(summary, t, resolved);
      for (let s = 0; s < best.length; s++) if (more[s] > best[s]) best[s] = more[s];
    }
    for (let b = 0; b < D; b++) {
      // Only earlier spans (the causal model sees nothing later), never the node itself.
      if (b === a || doc.spans[b].end > first || best[b] <= 0) continue;
      mass[a * D + b] += best[b];
      const key = a * D + b;
      const list = strongest.get(key) ?? [];
      list.push({ name: group.name, token: first, line: lineOf(starts, group.start), weight: best[b] });
      list.sort((x, y) => y.weight - x.weight);
      if (list.length > 3) list.length = 3;
      strongest.set(key, list);
    }
  }

  const references = new Int32Array(D * D);
  const known = new Set(doc.references.map((r) => r.start));
  for (const r of [...doc.references, ...extraReferences.filter((x) => !known.has(x.start))]) {
    if (r.enclosing < 0) continue;
    const target = r.targets[0];
    // Only references the model could follow: to a definition that ends before the use.
    if (target !== r.enclosing && doc.definitions[target].end <= r.start) references[r.enclosing * D + target]++;
  }

  const effects = new Map<number, number>();
  for (const check of checks) {
    if (check.uri !== result.uri || check.version !== result.version) continue;
    const a = enclosingDefinition(doc.definitions, check.start - result.baseOffset, check.end - result.baseOffset);
    if (a < 0) continue;
    for (const span of check.spans) {
      const key = a * D + span.definition;
      effects.set(key, Math.max(effects.get(key) ?? 0, span.kl));
    }
  }

  const edges: MapEdge[] = [];
  for (let a = 0; a < D; a++) {
    let total = 0;
    for (let b = 0; b < D; b++) total += mass[a * D + b];
    for (let b = 0; b < D; b++) {
      const key = a * D + b;
      const weight = total > 0 ? mass[key] / total : 0;
      if (weight < MIN_EDGE_SHARE && references[key] === 0) continue;
      const effect = effects.get(key);
      edges.push({
        from: a,
        to: b,
        weight,
        meanMass: owned[a] > 0 ? mass[key] / owned[a] : 0,
        tokens: strongest.get(key) ?? [],
        references: references[key],
        ...(effect === undefined ? {} : { effect }),
      });
    }
  }
  edges.sort((x, y) => y.weight - x.weight || x.from - y.from || x.to - y.to);
  return { uri: result.uri, version: result.version, view, nodes, edges };
}

/** How an edge compares with the code at a weight threshold. */
export type EdgeAgreement = 'both' | 'attentionOnly' | 'referenceOnly';

export function edgeAgreement(edge: Pick<MapEdge, 'weight' | 'references'>, threshold: number): EdgeAgreement | undefined {
  const attended = edge.weight >= threshold;
  if (attended && edge.references > 0) return 'both';
  if (attended) return 'attentionOnly';
  if (edge.references > 0) return 'referenceOnly';
  return undefined;
}
