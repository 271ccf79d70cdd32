/**
 * The one interface both engines implement: the WebGPU engine (webview and Node) and the CPU
 * reference (the oracle for GPU tests and the fallback when no adapter exists).
 */
import type { AttentionRequest, BackendInfo, ForwardResult } from './attention';
import type { ModelSpec } from './model/modelTypes';

export interface AttentionEngine {
  readonly spec: ModelSpec;
  /** Which implementation runs, and on what. */
  readonly backend: BackendInfo;
  /**
   * Runs the forward pass on `request.tokenIds` and returns the attention summaries and the
   * last position's logits. Rejects with an Error whose name is 'AbortError' when `signal` aborts.
   * The sequence length must be 1..spec.maxPositions.
   */
  run(request: AttentionRequest, signal?: AbortSignal): Promise<ForwardResult>;
  /**
   * The exact attention probabilities of one (layer, head, query) of the most recent run:
   * `query + 1` values (causal), summing to 1. For hovers and the CLI's `--attention L:H:Q`.
   */
  attentionRow(layer: number, head: number, query: number): Promise<Float32Array>;
  /** Frees every device resource. The engine is unusable afterwards. */
  dispose(): void;
}
