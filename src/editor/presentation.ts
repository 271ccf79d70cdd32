/**
 * Shared by the overlay, hover, CodeLens and commands: what the token at a position attends to,
 * under the current view and settings, with document ranges ready for the editor.
 */
import * as vscode from 'vscode';
import type { AttentionLensConfig } from '../config';
import type { AttentionView, DistanceRule } from '../analysis/documentAnalysis';
import { queryAt, sourcesFor, type DocumentAnalysisResult, type QueryAt } from '../analysis/documentResult';
import type { SourceDefinition } from '../analysis/definitions';
import { identifierIndexOfToken, relationLabel, relationOf, type SourceRelation } from '../analysis/sourceRelations';
import { sinkShareFor, spanMassFor } from '../analysis/documentAnalysis';
import { describeReading, resolveReading } from '../analysis/reading';

export interface PresentedSource {
  readonly definition: SourceDefinition;
  readonly definitionIndex: number;
  /** The summed span (header) in the document. */
  readonly range: vscode.Range;
  readonly weight: number;
  readonly tokenDistance: number;
  /**
   * What the span is for the hovered name: its definition or import, an earlier use of the same
   * name, or unrelated (src/analysis/sourceRelations.ts); absent outside identifiers.
   */
  readonly relation?: SourceRelation;
  /** The relation in words, e.g. "definition of Money", "earlier use of Money". */
  readonly relationText?: string;
}

export interface PresentedQuery {
  readonly query: QueryAt;
  readonly range: vscode.Range;
  readonly sources: readonly PresentedSource[];
  /** Share of the token's attention on attention sinks under the view (0 when sinks are shown as sources). */
  readonly sinkShare: number;
  /** Where the strongest of those sinks is, e.g. "the window's first token (line 4)". */
  readonly sinkWhere?: string;
  /**
   * The definition or import the hovered name refers to (tree-sitter / the language server), when
   * the code resolves it to one before the token: its attention under the view, and whether the
   * sources list it.
   */
  readonly reference?: { readonly definition: SourceDefinition; readonly range: vscode.Range; readonly weight: number; readonly listed: boolean };
  /** The view in words: which heads, sinks apart or not. */
  readonly reading: string;
}

export function distanceRule(config: AttentionLensConfig): DistanceRule {
  return { minDistance: config.minDistance, otherLineCounts: config.distance === 'tokensOrOtherLine', showSinks: config.showSinks };
}

/** Maximum sources listed for one token. */
export const SOURCES_PER_TOKEN = 8;

export function presentAt(document: vscode.TextDocument, result: DocumentAnalysisResult, position: vscode.Position, view: AttentionView, config: AttentionLensConfig): PresentedQuery | undefined {
  const query = queryAt(result, document.offsetAt(position));
  if (!query) return undefined;
  const identifier = query.identifier ? identifierIndexOfToken(result.doc, query.tokens[0]) : -1;
  const sources = sourcesFor(result, query, view, distanceRule(config), SOURCES_PER_TOKEN, config.threshold).map((source) => {
    const definition = result.doc.definitions[source.definition];
    const relation = identifier >= 0 ? relationOf(result.doc, identifier, source.definition) : undefined;
    return {
      definition,
      definitionIndex: source.definition,
      range: definitionRange(document, result, definition),
      weight: source.weight,
      tokenDistance: source.tokenDistance,
      ...(relation ? { relation, relationText: relationText(relation, query.name, definition) } : {}),
    };
  });
  const rule = distanceRule(config);
  const reading = resolveReading(result, view, rule);
  // Sinks: how much attention is parked there (the strongest over the token's pieces).
  let sinkShare = 0;
  for (const token of query.tokens) sinkShare = Math.max(sinkShare, sinkShareFor(result.summary, token, reading));
  const sinkWhere = sinkShare > 0 && reading.sinks ? describeSink(document, result, reading.sinks.analysis.windowStarts[reading.sinks.analysis.windowOf[query.tokens[0]]] ?? 0) : undefined;
  // The name's own definition or import, when the code resolves it and the model barely attends.
  let reference: PresentedQuery['reference'];
  if (identifier >= 0) {
    const r = result.doc.identifierReference[identifier];
    const target = r >= 0 ? result.doc.references[r].targets.find((t) => result.doc.spans[t].end <= query.tokens[0]) : undefined;
    if (target !== undefined) {
      let weight = 0;
      for (const token of query.tokens) weight = Math.max(weight, spanMassFor(result.summary, token, reading)[target] ?? 0);
      const definition = result.doc.definitions[target];
      reference = { definition, range: definitionRange(document, result, definition), weight, listed: sources.some((s) => s.definitionIndex === target) };
    }
  }
  return { query, range: new vscode.Range(document.positionAt(query.start), document.positionAt(query.end)), sources, sinkShare, sinkWhere, reference, reading: describeReading(result, view, rule) };
}

/** A sink position in words: the window's (or file's) first token, and its line. */
function describeSink(document: vscode.TextDocument, result: DocumentAnalysisResult, position: number): string {
  const line = document.positionAt(result.baseOffset + (result.doc.ranges[position]?.start ?? 0)).line + 1;
  return `${(result.windowPlan?.length ?? 1) > 1 ? "the window's" : "the file's"} first token (line ${line})`;
}

/** The relation in words; an earlier use also says inside which definition it is. */
function relationText(relation: SourceRelation, name: string, definition: SourceDefinition): string {
  if (relation.kind === 'earlierUse') return `earlier use of ${name} in ${definition.kind} ${definition.name}, not its definition`;
  if (relation.kind === 'unrelated') return `unrelated to ${name}`;
  return relationLabel(relation, name);
}

export function definitionRange(document: vscode.TextDocument, result: DocumentAnalysisResult, definition: SourceDefinition): vscode.Range {
  return new vscode.Range(document.positionAt(result.baseOffset + definition.start), document.positionAt(result.baseOffset + definition.end));
}

export function percent(weight: number): string {
  const value = weight * 100;
  return value >= 9.95 ? `${value.toFixed(0)}%` : `${value.toFixed(1)}%`;
}
