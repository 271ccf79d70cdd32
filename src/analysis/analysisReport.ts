/**
 * What the analysis commands return: a small summary of the outcome (which engine ran, on what
 * model, how many tokens and windows, how long), never the analysis itself. VS Code serializes a
 * command's return value as JSON for its caller, and run from the command palette or a key binding
 * that caller is the workbench: an analysis result of tens of MB of typed arrays froze it for tens
 * of seconds. Views read the result from the controller, not from the command.
 */
import type { BackendInfo } from '../../engine/attention';
import type { AnalysisOutcome } from './analysisController';

export interface AnalysisReport {
  readonly kind: AnalysisOutcome['kind'];
  readonly message?: string;
  readonly warnings?: readonly string[];
  readonly result?: {
    readonly backend: BackendInfo;
    readonly model: { readonly label: string; readonly architecture: string; readonly numLayers: number; readonly numHeads: number };
    readonly tokens: number;
    readonly windows: number;
    readonly definitions: number;
    readonly stats: { readonly elapsedMs: number; readonly forwardMs: number; readonly summaryMs: number; readonly readbackBytes: number; readonly reusedTokens?: number; readonly preparedMs?: number; readonly engineReadyMs?: number };
  };
}

export function reportOf(outcome: AnalysisOutcome): AnalysisReport {
  if (outcome.kind !== 'done') return { kind: outcome.kind, message: outcome.message };
  const { result } = outcome;
  const { stats } = result;
  return {
    kind: 'done',
    warnings: [...outcome.warnings],
    result: {
      backend: result.backend,
      model: { label: result.model.label, architecture: result.model.architecture, numLayers: result.model.numLayers, numHeads: result.model.numHeads },
      tokens: result.doc.tokenIds.length,
      windows: result.windows,
      definitions: result.doc.definitions.length,
      stats: { elapsedMs: stats.elapsedMs, forwardMs: stats.forwardMs, summaryMs: stats.summaryMs, readbackBytes: stats.readbackBytes, reusedTokens: stats.reusedTokens, preparedMs: stats.preparedMs, engineReadyMs: stats.engineReadyMs },
    },
  };
}
