/**
 * Messages between the ONNX Runtime engine's proxy (engine/hosts/nodeOnnx.ts, in the extension host
 * or the CLI) and the process that owns the InferenceSession (onnxProcess.ts). ONNX Runtime computes
 * on the thread that calls `run`, and a native crash there must not take the caller down, so the
 * engine lives in a child process; messages travel over its IPC channel with the structured-clone
 * ('advanced') serialization, typed arrays included.
 */
import type { AttentionRequest, BackendInfo, ForwardResult, TokenSpan } from '../attention';
import type { KnockoutRequest, KnockoutResult, SpanEffectResult } from '../causal';
import type { LoadedModel } from '../model/modelTypes';

/** Where the engine process gets the model: the folder it reads itself, or (in-memory models) the weights. */
export type ModelToLoad = { readonly folder: string } | { readonly model: LoadedModel };

export type ToOnnxProcess =
  | {
      readonly type: 'load';
      readonly source: ModelToLoad;
      readonly threads: number;
      readonly reason: string;
      readonly cacheBytes?: number;
      readonly blockBytes?: number;
      readonly memoryBudgetBytes?: number;
      /** Where the float32 weights files live (engine/onnx/weightsFile.ts); none: weights in memory. */
      readonly weightsCacheDir?: string;
    }
  | { readonly type: 'run'; readonly id: number; readonly request: AttentionRequest }
  | { readonly type: 'row'; readonly id: number; readonly layer: number; readonly head: number; readonly query: number }
  | { readonly type: 'knockout'; readonly id: number; readonly request: KnockoutRequest }
  | { readonly type: 'effect'; readonly id: number; readonly span: TokenSpan }
  | { readonly type: 'releaseCache'; readonly cacheKey: string }
  /** The process's memory now and at its peak (benchmarks and logs). */
  | { readonly type: 'memory'; readonly id: number }
  /** Stops request `id` at its next block boundary (its answer is an AbortError); not queued behind it. */
  | { readonly type: 'cancel'; readonly id: number }
  /**
   * For the integration test of a native crash: the process kills itself with SIGSEGV when it
   * starts its next run, as a crash inside ONNX Runtime would end it. Only development builds send it.
   */
  | { readonly type: 'crashOnNextRun' };

/** An error as it crosses the process boundary: its name survives (AbortError, RangeError, WindowTooLongError), and the longest window that fits when there is one. */
export interface ProcessError {
  readonly name: string;
  readonly message: string;
  readonly longestWindow?: number;
}

export type FromOnnxProcess =
  | { readonly type: 'loaded'; readonly backend: BackendInfo; readonly loadMs: number; readonly notes: readonly string[]; readonly error?: undefined }
  | { readonly type: 'loaded'; readonly error: ProcessError }
  | { readonly type: 'result'; readonly id: number; readonly result?: ForwardResult; readonly error?: ProcessError }
  | { readonly type: 'row'; readonly id: number; readonly row?: Float32Array; readonly error?: ProcessError }
  | { readonly type: 'knockout'; readonly id: number; readonly knockout?: KnockoutResult; readonly error?: ProcessError }
  | { readonly type: 'effect'; readonly id: number; readonly effect?: SpanEffectResult; readonly error?: ProcessError }
  | { readonly type: 'memory'; readonly id: number; readonly rssBytes: number; readonly peakRssBytes: number; readonly error?: undefined };

export function toProcessError(error: unknown): ProcessError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const longest = (error as { longestWindow?: unknown }).longestWindow;
  return { name: error.name, message: error.message, ...(typeof longest === 'number' ? { longestWindow: longest } : {}) };
}
