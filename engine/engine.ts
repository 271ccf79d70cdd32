/**
 * The one interface every engine implements: the WebGPU engine (webview and Node), the ONNX Runtime
 * engine (Node, the CPU engine at native speed) and the TypeScript reference (the oracle for the
 * other engines' tests, and the last resort).
 */
import type { AttentionRequest, BackendInfo, ForwardResult, TokenSpan } from './attention';
import type { KnockoutRequest, KnockoutResult, SpanEffectResult } from './causal';
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
  /**
   * Causal checks on the most recent run (engine/causal.ts): knockout of spans for one query, and
   * a span hidden from every later token. Absent where the engine does not offer them (the
   * caller then runs them on the CPU engine with the same tokens, and says so).
   */
  knockout?(request: KnockoutRequest, signal?: AbortSignal): Promise<KnockoutResult>;
  spanEffect?(span: TokenSpan, signal?: AbortSignal): Promise<SpanEffectResult>;
  /** Forgets the cached state of `cacheKey` (a closed document); engines without a cache ignore it. */
  releaseCache?(cacheKey: string): void;
  /** Frees every device resource. The engine is unusable afterwards. */
  dispose(): void;
}
