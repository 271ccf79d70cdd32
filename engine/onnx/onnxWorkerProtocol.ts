/**
 * Messages between the ONNX Runtime engine's proxy (engine/hosts/nodeOnnx.ts, on the caller's
 * thread) and its worker thread (onnxWorker.ts), which owns the InferenceSession: ONNX Runtime
 * computes on the thread that calls `run`, and the extension host's event loop must stay free.
 */
import type { AttentionRequest, BackendInfo, ForwardResult, TokenSpan } from '../attention';
import type { KnockoutRequest, KnockoutResult, SpanEffectResult } from '../causal';
import type { LoadedModel } from '../model/modelTypes';

export type ToOnnxWorker =
  | { readonly type: 'load'; readonly model: LoadedModel; readonly threads: number; readonly reason: string; readonly cacheBytes?: number }
  | { readonly type: 'run'; readonly id: number; readonly request: AttentionRequest }
  | { readonly type: 'row'; readonly id: number; readonly layer: number; readonly head: number; readonly query: number }
  | { readonly type: 'knockout'; readonly id: number; readonly request: KnockoutRequest }
  | { readonly type: 'effect'; readonly id: number; readonly span: TokenSpan }
  | { readonly type: 'releaseCache'; readonly cacheKey: string };

/** An error as it crosses the thread boundary: its name survives (AbortError, RangeError). */
export interface WorkerError {
  readonly name: string;
  readonly message: string;
}

export type FromOnnxWorker =
  | { readonly type: 'loaded'; readonly backend: BackendInfo; readonly error?: undefined }
  | { readonly type: 'loaded'; readonly error: WorkerError }
  | { readonly type: 'result'; readonly id: number; readonly result?: ForwardResult; readonly error?: WorkerError }
  | { readonly type: 'row'; readonly id: number; readonly row?: Float32Array; readonly error?: WorkerError }
  | { readonly type: 'knockout'; readonly id: number; readonly knockout?: KnockoutResult; readonly error?: WorkerError }
  | { readonly type: 'effect'; readonly id: number; readonly effect?: SpanEffectResult; readonly error?: WorkerError };

export function toWorkerError(error: unknown): WorkerError {
  return error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) };
}
