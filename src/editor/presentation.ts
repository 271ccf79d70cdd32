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
}

export function distanceRule(config: AttentionLensConfig): DistanceRule {
  return { minDistance: config.minDistance, otherLineCounts: config.distance === 'tokensOrOtherLine' };
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
  return { query, range: new vscode.Range(document.positionAt(query.start), document.positionAt(query.end)), sources };
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
