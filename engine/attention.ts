/**
 * Attention result types shared by the engine (webview and Node), the extension host and the CLI.
 * This module imports neither `vscode` nor the DOM, so every host can use it.
 *
 * Index conventions: layers, heads, queries and source positions are counted from 0. A "token span"
 * is a half-open range of token positions [start, end). Arrays are flattened row-major in the
 * order their comment gives, e.g. `[layer][head][query][k]`.
 */

/** A half-open range of token positions whose attention mass the engine sums, e.g. one import. */
export interface TokenSpan {
  /** First token position inside the span. */
  readonly start: number;
  /** One past the last token position inside the span (`end > start`). */
  readonly end: number;
}

/** What the caller wants summarised from one forward pass. */
export interface AttentionRequest {
  /** Token ids of the sequence, position 0 first. */
  readonly tokenIds: ArrayLike<number>;
  /**
   * Source spans (definitions and imports) whose attention mass is summed per query. Spans may
   * overlap; each is summed on its own.
   */
  readonly spans: readonly TokenSpan[];
  /** How many top source positions to keep per (layer, head, query). 1..64. */
  readonly topK: number;
  /**
   * The layers to summarise (default: all). The readback grows with
   * layers * heads * n * (2 * topK + spans), so long inputs on large models ask for a few layers.
   */
  readonly layers?: readonly number[];
  /**
   * What the summaries weigh: `attention`, the probabilities (default), or `valueWeighted`, each
   * key's probability times the norm of what it writes through the output projection,
   * alpha_hj * norm(v_j W_O^h), renormalised per row (Kobayashi et al. 2020). Engines that cannot
   * weigh by value reject the request with a message that says so.
   */
  readonly weighting?: AttentionWeighting;
  /**
   * Keep this run's state under this key (e.g. a document and window) and, next time, recompute
   * only from the first token that differs: positions before it are unchanged in a causal model.
   * Engines without a cache ignore it.
   */
  readonly cacheKey?: string;
}

export type AttentionWeighting = 'attention' | 'valueWeighted';

/** Which implementation ran a forward pass. */
export type BackendInfo =
  | {
      readonly kind: 'webgpu';
      /** Adapter as the WebGPU implementation reports it. */
      readonly adapter: AdapterSummary;
      /** True when weights are stored as f16 on the GPU (the adapter has `shader-f16`). */
      readonly f16Storage: boolean;
      /** Which kernel family ran: workgroup-memory tiles for real GPUs, register-blocked for CPU-backed adapters. */
      readonly kernelVariant: 'tiled' | 'register';
    }
  | {
      /** The CPU engine at native speed: the model as an ONNX graph in ONNX Runtime (Node only). */
      readonly kind: 'onnxruntime';
      /** onnxruntime-node's version. */
      readonly version: string;
      /** Threads of ONNX Runtime's intra-op pool. */
      readonly threads: number;
      /** Why this engine ran (e.g. "the only WebGPU adapter is a software one"). */
      readonly reason: string;
    }
  | {
      /** The plain TypeScript reference engine: the oracle, slow. */
      readonly kind: 'reference';
      /** Why the reference ran (e.g. "ONNX Runtime could not load: ...", or "requested with --backend reference"). */
      readonly reason: string;
    };

/** The engines a user can ask for: `cpu` is ONNX Runtime, `reference` the TypeScript oracle. */
export type BackendKind = BackendInfo['kind'];

/** The facts about a WebGPU adapter that the UI and logs show. */
export interface AdapterSummary {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  /** True for software or otherwise limited adapters (SwiftShader, lavapipe). */
  readonly isFallbackAdapter: boolean;
  readonly features: readonly string[];
  readonly limits: {
    readonly maxBufferSize: number;
    readonly maxStorageBufferBindingSize: number;
    readonly maxComputeInvocationsPerWorkgroup: number;
    readonly maxComputeWorkgroupStorageSize: number;
    readonly maxStorageBuffersPerShaderStage: number;
  };
}

/**
 * The attention of one forward pass, reduced on the device to what the editor needs.
 * Its size is layers * heads * n * (2 * topK + spans) numbers, never layers * heads * n * n.
 */
export interface AttentionSummary {
  /** Number of tokens n. */
  readonly numTokens: number;
  /** The layers summarised, in the order of the arrays below. */
  readonly layers: readonly number[];
  /** Heads per layer (query heads; grouped-query KV heads are already expanded). */
  readonly numHeads: number;
  /** Top positions kept per row. Rows for query q < topK - 1 have fewer real entries. */
  readonly topK: number;
  /**
   * Source positions with the highest attention weight: `[layerIndex][head][query][k]`, best first;
   * -1 where the causal row has fewer than topK positions. Ties keep the lower position first.
   */
  readonly topIndices: Int32Array;
  /** The weights of `topIndices`: `[layerIndex][head][query][k]`; 0 where the index is -1. */
  readonly topWeights: Float32Array;
  /** Number of source spans S, as given in the request. */
  readonly numSpans: number;
  /**
   * Attention mass of each query on each span: `[layerIndex][head][query][span]`, the sum of the
   * probabilities of the span's positions that the query can see (positions <= query).
   */
  readonly spanMass: Float32Array;
  /** Mean over heads of `spanMass`: `[layerIndex][query][span]`. */
  readonly spanMassMean: Float32Array;
  /** Maximum over heads of `spanMass`: `[layerIndex][query][span]`. */
  readonly spanMassMax: Float32Array;
}

/** Timings and sizes of one forward pass, as measured by the engine. */
export interface ForwardStats {
  /** Wall time of the transformer forward pass including attention probabilities, ms. */
  readonly forwardMs: number;
  /** Wall time of the summary kernels and their readback, ms. */
  readonly summaryMs: number;
  /** Bytes copied from the device to the host for this pass. */
  readonly readbackBytes: number;
  /** Leading tokens taken from the cached run of the same cacheKey instead of being recomputed. */
  readonly reusedTokens?: number;
}

/** Everything one forward pass returns. */
export interface ForwardResult {
  readonly summary: AttentionSummary;
  /** Logits of the last position, one per vocabulary entry. */
  readonly lastLogits: Float32Array;
  readonly backend: BackendInfo;
  readonly stats: ForwardStats;
}
