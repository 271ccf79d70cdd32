/**
 * Where the windows of an analysis run: the engine the backend policy chose, behind one small
 * interface for the controller.
 *  - PanelEngine: WebGPU (or the TypeScript reference) inside the panel's webview, over the typed
 *    protocol.
 *  - HostOnnxEngine: ONNX Runtime in a worker thread of the extension host (engine/hosts/nodeOnnx.ts);
 *    the webview is not involved and the extension host's event loop stays free.
 */
import type * as vscode from 'vscode';
import type { AttentionSummary, AttentionWeighting, BackendInfo, ForwardStats, TokenSpan } from '../../engine/attention';
import type { NodeOnnxEngine } from '../../engine/hosts/nodeOnnx';
import { WindowTooLongError } from '../../engine/webgpu/memoryPlan';
import type { AttentionPanel } from '../panel/attentionPanel';
import type { KnockoutRequest, KnockoutResult, SpanEffectResult } from '../../engine/causal';
import type { AttentionEngine } from '../../engine/engine';
import { abortError } from '../../engine/requestChecks';

/** Time limit for one window in the webview; SwiftShader (a CPU adapter) is slow on large models. */
const WINDOW_TIMEOUT_MS = 10 * 60_000;

export interface WindowRequest {
  readonly tokenIds: readonly number[];
  readonly spans: readonly TokenSpan[];
  readonly topK: number;
  readonly layers?: readonly number[];
  readonly weighting?: AttentionWeighting;
  /** The engine keeps the run under this key and re-analyses only from the first changed token next time. */
  readonly cacheKey?: string;
}

export type WindowOutcome =
  | { readonly kind: 'done'; readonly summary: AttentionSummary; readonly backend: BackendInfo; readonly stats: ForwardStats; readonly runId: number }
  | { readonly kind: 'cancelled' }
  | { readonly kind: 'failed'; readonly message: string; /** When the window was too long for memory: the longest that fits. */ readonly longestWindow?: number };

export interface AnalysisEngine {
  /** The engine as it was loaded (which implementation, on what, and why). */
  readonly backend: BackendInfo;
  runWindow(request: WindowRequest, token: vscode.CancellationToken): Promise<WindowOutcome>;
  /** Forgets the cached runs of these keys (a closed document). */
  releaseCache?(keys: readonly string[]): void;
  /** The exact row of (layer, head, query) when `runId` is still the engine's latest run; undefined otherwise. */
  exactRow(runId: number, layer: number, head: number, query: number): Promise<Float32Array | undefined>;
}

export class PanelEngine implements AnalysisEngine {
  constructor(
    private readonly panel: AttentionPanel,
    readonly backend: BackendInfo,
  ) {}

  async runWindow(request: WindowRequest, token: vscode.CancellationToken): Promise<WindowOutcome> {
    let requestId = -1;
    const cancelListener = token.onCancellationRequested(() => this.panel.post({ type: 'cancel', target: requestId }));
    try {
      const response = await this.panel.request(
        { type: 'analyze', tokenIds: [...request.tokenIds], spans: request.spans, topK: request.topK, layers: request.layers, weighting: request.weighting, cacheKey: request.cacheKey },
        WINDOW_TIMEOUT_MS,
        (id) => (requestId = id),
      );
      if (response.cancelled) return { kind: 'cancelled' };
      if (response.error || !response.result) return { kind: 'failed', message: response.error ?? 'The panel returned no result.' };
      return { kind: 'done', ...response.result, runId: requestId };
    } finally {
      cancelListener.dispose();
    }
  }

  releaseCache(keys: readonly string[]): void {
    this.panel.post({ type: 'releaseCache', keys });
  }

  async exactRow(runId: number, layer: number, head: number, query: number): Promise<Float32Array | undefined> {
    try {
      const response = await this.panel.request({ type: 'attentionRow', layer, head, query, afterRun: runId }, 30_000);
      return response.probs;
    } catch {
      return undefined;
    }
  }
}

/** What the causal checks (src/analysis/dependencyCheck.ts) need of an engine. */
export type CausalEngine = Pick<AttentionEngine, 'run' | 'knockout' | 'spanEffect'>;

/** Time limit for a knockout or span effect in the webview (a span effect is a whole pass). */
const CHECK_TIMEOUT_MS = 10 * 60_000;

/**
 * The causal checks on the panel's engine (WebGPU): each run is an `analyze` request, and knockout
 * and span effect name that run, so the webview refuses them if it ran anything else in between.
 */
export class PanelCausalEngine implements CausalEngine {
  private runId = -1;

  constructor(private readonly panel: AttentionPanel) {}

  async run(request: Parameters<AttentionEngine['run']>[0], signal?: AbortSignal): ReturnType<AttentionEngine['run']> {
    let requestId = -1;
    const onAbort = () => this.panel.post({ type: 'cancel', target: requestId });
    signal?.addEventListener('abort', onAbort);
    try {
      const response = await this.panel.request(
        { type: 'analyze', tokenIds: [...Array.from(request.tokenIds)], spans: request.spans, topK: request.topK, layers: request.layers, weighting: request.weighting },
        WINDOW_TIMEOUT_MS,
        (id) => (requestId = id),
      );
      if (response.cancelled) throw abortError();
      if (response.error || !response.result) throw new Error(response.error ?? 'The panel returned no result.');
      this.runId = requestId;
      return { ...response.result, lastLogits: new Float32Array(0) };
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async knockout(request: KnockoutRequest, signal?: AbortSignal): Promise<KnockoutResult> {
    if (signal?.aborted) throw abortError();
    const response = await this.panel.request({ type: 'knockout', afterRun: this.runId, query: request.query, spans: request.spans, layers: request.layers }, CHECK_TIMEOUT_MS);
    if (response.error || !response.result) throw new Error(response.error ?? 'The panel returned no knockout result.');
    return response.result;
  }

  async spanEffect(span: TokenSpan, signal?: AbortSignal): Promise<SpanEffectResult> {
    if (signal?.aborted) throw abortError();
    const response = await this.panel.request({ type: 'spanEffect', afterRun: this.runId, span }, CHECK_TIMEOUT_MS);
    if (response.error || !response.result) throw new Error(response.error ?? 'The panel returned no span effect.');
    return response.result;
  }
}

export class HostOnnxEngine implements AnalysisEngine {
  private lastRunId = 0;
  private nextRunId = 1;

  /** Why the engine runs, as the latest analysis's policy said (one process serves several reasons). */
  reason: string;

  constructor(
    private readonly engine: NodeOnnxEngine,
    reason: string,
  ) {
    this.reason = reason;
  }

  get backend(): BackendInfo {
    return { ...this.engine.backend, reason: this.reason } as BackendInfo;
  }

  /** Why the engine's process is gone, once it is (the controller then starts a new one). */
  get stopped(): Error | undefined {
    return this.engine.stopped;
  }

  /** Integration tests: the engine's process crashes (SIGSEGV) when its next run starts. */
  crashOnNextRunForTest(): void {
    this.engine.crashOnNextRunForTest();
  }

  /** What the engine process said while loading (its float32 weights file). */
  get notes(): readonly string[] {
    return this.engine.notes;
  }

  /** The engine process's id, for the log and the crash test. */
  get pid(): number | undefined {
    return this.engine.pid;
  }

  async runWindow(request: WindowRequest, token: vscode.CancellationToken): Promise<WindowOutcome> {
    if (token.isCancellationRequested) return { kind: 'cancelled' };
    const controller = new AbortController();
    const listener = token.onCancellationRequested(() => controller.abort());
    const runId = this.nextRunId++;
    // Whatever happens, the worker's last run is no longer the one rows were promised for.
    this.lastRunId = 0;
    try {
      const result = await this.engine.run(request, controller.signal);
      this.lastRunId = runId;
      return { kind: 'done', summary: result.summary, backend: { ...result.backend, reason: this.reason } as BackendInfo, stats: result.stats, runId };
    } catch (error) {
      if (error instanceof Error && error.name === 'AbortError') return { kind: 'cancelled' };
      if (error instanceof WindowTooLongError) return { kind: 'failed', message: error.message, longestWindow: error.longestWindow };
      return { kind: 'failed', message: `The CPU engine (ONNX Runtime) failed: ${error instanceof Error ? error.message : String(error)}` };
    } finally {
      listener.dispose();
    }
  }

  async exactRow(runId: number, layer: number, head: number, query: number): Promise<Float32Array | undefined> {
    if (runId !== this.lastRunId) return undefined;
    try {
      return await this.engine.attentionRow(layer, head, query);
    } catch {
      return undefined;
    }
  }

  /**
   * The engine itself, for the causal checks: they run a window again, so the exact rows of the
   * last analysis run are no longer available afterwards.
   */
  releaseCache(keys: readonly string[]): void {
    for (const key of keys) this.engine.releaseCache(key);
  }

  forCausalChecks(): NodeOnnxEngine {
    this.lastRunId = 0;
    return this.engine;
  }

  dispose(): void {
    this.engine.dispose();
  }
}
