/**
 * Which engine runs, decided in one place for the editor and the CLI, with the reason shown to the
 * user (status bar, log, the CLI's stderr).
 *
 *   setting     hardware WebGPU   software/fallback adapter or none
 *   auto        WebGPU            ONNX Runtime (CPU, native), else the reference with the reason
 *   webgpu      WebGPU            WebGPU on a software adapter; an error without any adapter
 *   cpu         ONNX Runtime      ONNX Runtime; the reference where ONNX Runtime cannot load
 *   reference   the TypeScript reference engine (the oracle, slow)
 */
import type { AdapterSummary, BackendInfo, BackendKind } from './attention';

export type BackendSetting = 'auto' | 'webgpu' | 'cpu' | 'reference';
export const BACKEND_SETTINGS: readonly BackendSetting[] = ['auto', 'webgpu', 'cpu', 'reference'];

/** What each engine can do beyond the attention summaries (capabilities are data, not if chains). */
export const ENGINE_CAPABILITIES: Record<BackendKind, { readonly valueWeighting: boolean; readonly causalChecks: boolean }> = {
  webgpu: { valueWeighting: true, causalChecks: true },
  onnxruntime: { valueWeighting: true, causalChecks: true },
  reference: { valueWeighting: true, causalChecks: true },
};

/** What the run needs from the engine. */
export interface BackendNeeds {
  /** Value-weighted summaries (the attentionLens.weighting setting). */
  readonly valueWeighting?: boolean;
}

export interface BackendFacts {
  /** The WebGPU adapter the engine would get, when there is one. */
  readonly adapter?: AdapterSummary;
  /** Why there is no adapter (when `adapter` is undefined). */
  readonly adapterProblem?: string;
  /** Why ONNX Runtime cannot load here; undefined when it can. */
  readonly onnxProblem?: string;
}

export type BackendChoice =
  | { readonly kind: BackendKind; readonly reason: string; readonly error?: undefined }
  | { readonly kind?: undefined; readonly error: string };

/** True when the policy needs to know about a WebGPU adapter for this setting (the CLI probes only then). */
export function needsAdapterProbe(setting: BackendSetting): boolean {
  return setting === 'auto' || setting === 'webgpu';
}

export function adapterName(adapter: AdapterSummary): string {
  return [adapter.vendor, adapter.architecture].filter(Boolean).join(' ') || adapter.description || adapter.device || 'unnamed adapter';
}

export function chooseBackend(setting: BackendSetting, facts: BackendFacts, needs: BackendNeeds = {}): BackendChoice {
  const adapter = facts.adapter;
  if (needs.valueWeighting && !ENGINE_CAPABILITIES.webgpu.valueWeighting && (setting === 'auto' || setting === 'webgpu')) {
    // When WebGPU cannot weigh attention by value, the CPU engine does.
    if (setting === 'webgpu') return { error: 'value-weighted attention is not available on the WebGPU engine yet, and the backend is set to "webgpu". Set the backend to "auto" or "cpu", or the weighting to "attention".' };
    if (adapter && !adapter.isFallbackAdapter) {
      const why = `value-weighted attention runs on the CPU engine (WebGPU on ${adapterName(adapter)} does not compute it yet)`;
      return facts.onnxProblem ? { kind: 'reference', reason: `${why}; ONNX Runtime cannot load (${facts.onnxProblem}), so the slow TypeScript reference engine runs` } : { kind: 'onnxruntime', reason: why };
    }
  }
  const noAdapter = `no WebGPU adapter (${facts.adapterProblem ?? 'none found'})`;
  const software = adapter?.isFallbackAdapter ? `the only WebGPU adapter is a software one (${adapterName(adapter)})` : undefined;
  const reference = (why: string): BackendChoice => ({ kind: 'reference', reason: `${why}; ONNX Runtime cannot load (${facts.onnxProblem}), so the slow TypeScript reference engine runs` });
  switch (setting) {
    case 'reference':
      return { kind: 'reference', reason: 'requested (backend "reference")' };
    case 'webgpu':
      if (!adapter) return { error: `${noAdapter}, and the backend is set to "webgpu". Set it to "auto" or "cpu" to run on the CPU.` };
      return { kind: 'webgpu', reason: software ? `requested (backend "webgpu"), on a software adapter: slow` : 'requested (backend "webgpu")' };
    case 'cpu':
      if (facts.onnxProblem) return reference('requested (backend "cpu")');
      return { kind: 'onnxruntime', reason: 'requested (backend "cpu")' };
    case 'auto':
      if (adapter && !adapter.isFallbackAdapter) return { kind: 'webgpu', reason: `hardware WebGPU adapter (${adapterName(adapter)})` };
      if (facts.onnxProblem) return reference(software ?? noAdapter);
      return { kind: 'onnxruntime', reason: software ?? noAdapter };
  }
}

/** Tokens per window when the user leaves the window size automatic (0). */
export const SLOW_BACKEND_WINDOW = 1024;

/**
 * The window size a run uses: the setting when it is positive (never beyond the model's context);
 * otherwise the model's whole context on a fast engine (ONNX Runtime, a hardware WebGPU adapter) and
 * SLOW_BACKEND_WINDOW tokens on a slow one (the reference, a software WebGPU adapter), whose cost
 * grows with the square of the window.
 */
export function windowTokens(setting: number, backend: { kind: BackendKind; adapter?: AdapterSummary }, maxPositions: number): number {
  if (setting > 0) return Math.min(setting, maxPositions);
  const slow = backend.kind === 'reference' || (backend.kind === 'webgpu' && backend.adapter?.isFallbackAdapter === true);
  return slow ? Math.min(SLOW_BACKEND_WINDOW, maxPositions) : maxPositions;
}

/** One line for logs and stderr: which engine, on what, and why. */
export function describeBackend(backend: BackendInfo): string {
  switch (backend.kind) {
    case 'webgpu':
      return `WebGPU on ${adapterName(backend.adapter)}${backend.adapter.isFallbackAdapter ? ' (software adapter)' : ''}, ${backend.kernelVariant} kernels`;
    case 'onnxruntime':
      return `ONNX Runtime ${backend.version} on the CPU, ${backend.threads} thread${backend.threads === 1 ? '' : 's'} (${backend.reason})`;
    case 'reference':
      return `the TypeScript reference engine (${backend.reason})`;
  }
}
