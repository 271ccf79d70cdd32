/**
 * The extension-host side of the dependency map and the definition-heads table: builds the panel's
 * messages from an analysis (src/analysis/dependencyMap.ts, definitionHeads.ts) and adds the
 * references a language extension reports (VS Code's reference provider) to tree-sitter's, within a
 * time budget, once per analysis.
 */
import * as vscode from 'vscode';
import { headsTable } from '../analysis/reading';
import { limitedLayersNote } from '../shared/format';
import { precisionOf, recallOf, type HeadsTable } from '../analysis/definitionHeads';
import { buildDependencyMap, dependencyMapSteps } from '../analysis/dependencyMap';
import { runStepsSliced } from '../analysis/slices';
import type { DependencyCheck } from '../analysis/dependencyCheck';
import type { AttentionView } from '../analysis/documentAnalysis';
import type { DocumentAnalysisResult } from '../analysis/documentResult';
import { enclosingDefinition, type CodeReference } from '../analysis/references';
import type { DependencyMapMessage, HeadsTableMessage } from '../shared/protocol';

/** How long the language server may take, in all, to answer the reference queries of one analysis. */
const LANGUAGE_SERVER_BUDGET_MS = 6000;
/** Definitions asked about at most (the map's nodes are the file's definitions). */
const MAX_QUERIED_DEFINITIONS = 200;

export interface LanguageServerReferences {
  readonly references: readonly CodeReference[];
  /** In words: which provider answered, or why none did. */
  readonly note: string;
}

/**
 * Uses of the file's definitions in the same file, as the language extension's reference provider
 * reports them (targets index `result.doc.definitions`); empty when no provider answers in time.
 */
export async function languageServerReferences(document: vscode.TextDocument, result: DocumentAnalysisResult, token?: vscode.CancellationToken): Promise<LanguageServerReferences> {
  const deadline = Date.now() + LANGUAGE_SERVER_BUDGET_MS;
  const out: CodeReference[] = [];
  let answered = 0;
  let asked = 0;
  const definitions = result.doc.definitions;
  for (let index = 0; index < definitions.length && asked < MAX_QUERIED_DEFINITIONS; index++) {
    const definition = definitions[index];
    if (definition.kind === 'import' || definition.nameStart === undefined) continue;
    if (token?.isCancellationRequested || Date.now() > deadline) break;
    asked++;
    const position = document.positionAt(result.baseOffset + definition.nameStart);
    const remaining = Math.max(1, deadline - Date.now());
    let locations: unknown;
    try {
      locations = await Promise.race([
        vscode.commands.executeCommand<unknown>('vscode.executeReferenceProvider', document.uri, position),
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), remaining)),
      ]);
    } catch {
      continue;
    }
    if (!Array.isArray(locations)) continue;
    answered++;
    for (const location of locations as vscode.Location[]) {
      if (!location?.uri || location.uri.toString() !== document.uri.toString()) continue;
      const start = document.offsetAt(location.range.start) - result.baseOffset;
      const end = document.offsetAt(location.range.end) - result.baseOffset;
      if (start < 0 || end > result.doc.text.length || start === definition.nameStart) continue;
      out.push({ start, end, name: result.doc.text.slice(start, end), targets: [index], resolution: 'scoped', enclosing: enclosingDefinition(definitions, start, end) });
    }
  }
  const note = asked === 0 ? 'no named definitions to ask a language server about' : answered === 0 ? 'no language server answered with references' : `a language server answered for ${answered} of ${asked} definitions (${out.length} uses)`;
  return { references: out, note };
}

/** The definition-heads table of an analysis (computed once per analysis; sinks apart, as the definition view chooses its heads). */
export function headsTableOf(result: DocumentAnalysisResult, minDistance: number): HeadsTable {
  return headsTable(result, minDistance);
}

export function dependencyMapMessage(result: DocumentAnalysisResult, view: AttentionView, checks: readonly DependencyCheck[], server: LanguageServerReferences | undefined): DependencyMapMessage {
  return mapMessage(result, view, buildDependencyMap(result, view, checks, server?.references ?? []), server);
}

/** The same, built in slices (a big file's map must not hold up the extension host at once). */
export async function dependencyMapMessageSliced(result: DocumentAnalysisResult, view: AttentionView, checks: readonly DependencyCheck[], server: LanguageServerReferences | undefined): Promise<DependencyMapMessage> {
  return mapMessage(result, view, await runStepsSliced(dependencyMapSteps(result, view, checks, server?.references ?? [])), server);
}

function mapMessage(result: DocumentAnalysisResult, view: AttentionView, map: ReturnType<typeof buildDependencyMap>, server: LanguageServerReferences | undefined): DependencyMapMessage {
  const referenceSource = `tree-sitter (scope-aware; member accesses by name)${server ? `; ${server.note}` : '; asking the language server…'}`;
  const layerNote = limitedLayersNote(result.model, result.summary.layers);
  return {
    type: 'dependencyMap',
    uri: result.uri,
    version: result.version,
    view,
    nodes: map.nodes.map((n) => ({ kind: n.kind, name: n.name, line: n.line, tokenStart: n.tokenStart, identifiers: n.identifiers })),
    edges: map.edges.map((e) => ({ from: e.from, to: e.to, weight: e.weight, meanMass: e.meanMass, references: e.references, ...(e.effect === undefined ? {} : { effect: e.effect }), tokens: e.tokens })),
    referenceSource,
    ...(layerNote ? { layerNote } : {}),
  };
}

export function headsTableMessage(result: DocumentAnalysisResult, minDistance: number): HeadsTableMessage {
  const table = headsTableOf(result, minDistance);
  const pr = (s: Parameters<typeof precisionOf>[0]) => ({ precision: precisionOf(s), recall: recallOf(s) });
  return {
    type: 'headsTable',
    uri: result.uri,
    uses: table.uses,
    minDistance: table.minDistance,
    topK: table.topK,
    heads: table.heads.map((h) => ({ layer: h.layer, head: h.head, ...pr(h) })),
    baselines: { nearestOccurrence: pr(table.baselines.nearestOccurrence), uniform: pr(table.baselines.uniform) },
  };
}
