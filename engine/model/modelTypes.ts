/**
 * The engine's view of a model: an architecture-neutral description (ModelSpec) and the weights in
 * one canonical layout shared by the CPU reference and the WebGPU engine. Loaders for Hugging Face
 * folders (every supported architecture: modelConfig.ts) translate their tensor names and layouts into this form.
 *
 * Layout convention: every linear weight is stored as `[out, in]` row-major (nn.Linear's layout);
 * y = x W^T + b. GPT-2's Conv1D weights ([in, out]) are transposed at load time and its fused
 * c_attn is split into q, k and v.
 */

export type ModelFamily = 'llama' | 'qwen2' | 'qwen3' | 'smollm3' | 'starcoder2' | 'phi3' | 'granite' | 'gemma2' | 'gemma3' | 'gpt2';

/**
 * How the rotary frequencies are scaled for long contexts, as Hugging Face transformers computes
 * them (modeling_rope_utils.py; the fields of `rope_scaling` / `rope_parameters`). Absent: plain
 * rotary embeddings (inv_freq = 1 / theta^(2i/d)). engine/model/rope.ts turns it into frequencies.
 */
export type RopeScaling =
  /** Positions interpolated: inv_freq / factor (DeepSeek-Coder, Code Llama variants). */
  | { readonly type: 'linear'; readonly factor: number }
  /**
   * Dynamic NTK: for a sequence of n > originalMaxPositions tokens the base becomes
   * theta * (factor * n / originalMaxPositions - (factor - 1))^(d / (d - 2)); shorter ones run plain.
   */
  | { readonly type: 'dynamic'; readonly factor: number; readonly originalMaxPositions: number }
  /** YaRN: frequencies blended between interpolation and extrapolation by a ramp, cos and sin scaled by attentionFactor. */
  | {
      readonly type: 'yarn';
      readonly factor: number;
      readonly attentionFactor: number;
      readonly betaFast: number;
      readonly betaSlow: number;
      readonly originalMaxPositions: number;
      readonly truncate: boolean;
    }
  /** LongRoPE (Phi-3): per-frequency factors, the long ones for sequences longer than originalMaxPositions; cos and sin scaled by attentionFactor. */
  | {
      readonly type: 'longrope';
      readonly shortFactor: readonly number[];
      readonly longFactor: readonly number[];
      readonly attentionFactor: number;
      readonly originalMaxPositions: number;
    }
  /** Llama 3.1/3.2: long wavelengths divided by factor, short ones kept, the band between smoothed. */
  | {
      readonly type: 'llama3';
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      readonly originalMaxPositions: number;
    };

export interface ModelSpec {
  /** `architectures[0]` from config.json, e.g. "LlamaForCausalLM". */
  readonly architecture: string;
  readonly family: ModelFamily;
  readonly vocabSize: number;
  /** Model width d_model. */
  readonly hiddenSize: number;
  readonly numLayers: number;
  /** Query heads per layer. */
  readonly numHeads: number;
  /** Key/value heads per layer (grouped-query attention when < numHeads). Query head h reads KV head floor(h / (numHeads / numKvHeads)). */
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Width of the MLP's hidden layer. */
  readonly intermediateSize: number;
  /** Longest sequence the model was trained for (max_position_embeddings / n_positions). */
  readonly maxPositions: number;
  readonly norm: 'rms' | 'layer';
  readonly normEps: number;
  readonly positional: 'rope' | 'learned';
  /** Rotary base (rope_theta); unused for learned positions. Rotation uses HF's rotate-half pairing (i, i + headDim/2). */
  readonly ropeTheta: number;
  /**
   * How many of each head's dimensions rotate (Phi-3's partial_rotary_factor x head_dim); the rest
   * pass through. Rotate-half pairs (i, i + rotaryDim / 2). Absent: all headDim.
   */
  readonly rotaryDim?: number;
  /** Long-context scaling of the rotary frequencies; absent for plain rotary embeddings and learned positions. */
  readonly ropeScaling?: RopeScaling;
  /**
   * Qwen3: each head's query and key vectors pass an RMSNorm over head_dim (q_norm, k_norm, with
   * normEps) after their projection and before the rotary embedding.
   */
  readonly qkNorm?: boolean;
  /**
   * Per layer, whether it rotates its queries and keys (SmolLM3's NoPE layers, `no_rope_layers`
   * 0, do not: they attend without any positional encoding). Absent: every layer of a rotary model does.
   */
  readonly ropeLayers?: readonly boolean[];
  /**
   * Per layer, how many positions a query sees: itself and the window - 1 before it (sliding-window
   * attention, transformers' `kv_idx > q_idx - sliding_window`); 0: every earlier position. Absent:
   * every layer attends to every earlier position.
   */
  readonly slidingWindow?: readonly number[];
  /**
   * Granite's multipliers, folded into the weights when the model loads (so every engine runs them
   * without a kernel of its own): embeddings x embedding, attention scores x attention (instead of
   * 1 / sqrt(head_dim); folded into q_proj), each block's output x residual (o_proj, down_proj),
   * logits / logits (lm_head).
   */
  /**
   * Gemma 3: the rotary base of the sliding-window (local) layers (rope_local_base_freq, never
   * scaled); the other layers use ropeTheta and ropeScaling. Absent: every layer uses ropeTheta.
   */
  readonly localRopeTheta?: number;
  /**
   * Gemma 3: RMSNorms on the attention output and on the MLP output, before each residual add
   * (post_attention_layernorm, post_feedforward_layernorm); the layer's weights hold them.
   */
  readonly postNorms?: boolean;
  /** Gemma 2: attention scores soft-capped before the softmax, cap x tanh(score / cap) (attn_logit_softcapping). */
  readonly attentionSoftcap?: number;
  /** Gemma 2: logits soft-capped, cap x tanh(logit / cap) (final_logit_softcapping). */
  readonly logitSoftcap?: number;
  /** The gated MLP's activation: silu (SwiGLU, the default) or the tanh GELU (GeGLU: Gemma). */
  readonly gateActivation?: 'silu' | 'gelu_tanh';
  readonly multipliers?: { readonly embedding: number; readonly attention: number; readonly residual: number; readonly logits: number };
  /** 'swiglu': down(silu(gate x) * up x); 'gelu': proj(gelu_tanh(fc x)). */
  readonly mlp: 'swiglu' | 'gelu';
  /** q, k, v projections have biases (Qwen2, GPT-2, Llama with attention_bias). */
  readonly qkvBias: boolean;
  /** Attention output projection has a bias (GPT-2). */
  readonly outBias: boolean;
  /** MLP projections have biases (GPT-2). */
  readonly mlpBias: boolean;
  readonly tieWordEmbeddings: boolean;
}

/** Storage type of a tensor as read from the file. BF16 is widened by the consumer. */
export type TensorDType = 'F32' | 'F16' | 'BF16';

/** One tensor in host memory, in the canonical layout. */
export interface HostTensor {
  /** Name in the source file(s), used in error messages. */
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: TensorDType;
  /** Little-endian element data, exactly product(shape) * width bytes. */
  readonly bytes: Uint8Array;
  /**
   * Where `bytes` lie, unchanged, in a file on the local disk, so that an engine can reference the
   * weights in place (ONNX external data) instead of copying them. Set by the Node loader for every
   * tensor read as stored; absent when the loader rearranged the bytes (GPT-2's transposed Conv1D
   * weights and the q, k, v parts of c_attn) and when the files did not come from a local disk (the
   * webview's fetched files, in-memory test sources).
   */
  readonly source?: TensorFileRange;
}

/** A byte range of a file on the local disk. */
export interface TensorFileRange {
  /** Absolute path of the file. */
  readonly file: string;
  /** Offset of the first byte from the start of the file (not from the start of a data section). */
  readonly offset: number;
  /** Bytes in the range: the tensor's bytes.byteLength. */
  readonly length: number;
}

export interface LinearWeights {
  /** `[out, in]`. */
  readonly weight: HostTensor;
  /** `[out]`, when the layer has a bias. */
  readonly bias?: HostTensor;
}

export interface NormWeights {
  /** `[hidden]`. */
  readonly weight: HostTensor;
  /** `[hidden]`, LayerNorm only. */
  readonly bias?: HostTensor;
}

export interface LayerWeights {
  readonly attnNorm: NormWeights;
  /** `[numHeads * headDim, hidden]`. */
  readonly q: LinearWeights;
  /** `[numKvHeads * headDim, hidden]`. */
  readonly k: LinearWeights;
  /** `[numKvHeads * headDim, hidden]`. */
  readonly v: LinearWeights;
  /** `[hidden, numHeads * headDim]`. */
  readonly o: LinearWeights;
  /** `[headDim]`: RMSNorm weight of every query head, when spec.qkNorm. */
  readonly qNorm?: NormWeights;
  /** `[headDim]`: RMSNorm weight of every key head, when spec.qkNorm. */
  readonly kNorm?: NormWeights;
  readonly mlpNorm: NormWeights;
  /** `[hidden]`: Gemma's norm of the attention output (spec.postNorms). */
  readonly postAttnNorm?: NormWeights;
  /** `[hidden]`: Gemma's norm of the MLP output (spec.postNorms). */
  readonly postMlpNorm?: NormWeights;
  /** SwiGLU: `[intermediate, hidden]`. */
  readonly gate?: LinearWeights;
  /** SwiGLU: `[intermediate, hidden]`; GELU MLP: the fc layer `[intermediate, hidden]`. */
  readonly up: LinearWeights;
  /** `[hidden, intermediate]`. */
  readonly down: LinearWeights;
}

export interface ModelWeights {
  /** `[vocab, hidden]`. */
  readonly tokenEmbedding: HostTensor;
  /** `[maxPositions, hidden]`, learned positions only. */
  readonly positionEmbedding?: HostTensor;
  readonly layers: readonly LayerWeights[];
  readonly finalNorm: NormWeights;
  /** `[vocab, hidden]`; the same object as tokenEmbedding when embeddings are tied. */
  readonly lmHead: HostTensor;
}

export interface LoadedModel {
  readonly spec: ModelSpec;
  readonly weights: ModelWeights;
  /** Where the model came from, for messages ("/path/to/folder" or "embedded default"). */
  readonly origin: string;
}

/** The first key position `query` sees in `layer`: 0, or the start of the layer's sliding window. */
export function firstVisibleKey(spec: Pick<ModelSpec, 'slidingWindow'>, layer: number, query: number): number {
  const window = spec.slidingWindow?.[layer] ?? 0;
  return window > 0 ? Math.max(0, query - window + 1) : 0;
}

/**
 * Whether the LM head is a matrix of its own in memory: untied embeddings, or tied ones that the
 * load folds a multiplier into (Gemma's sqrt(hidden), Granite's), which gives the head its own copy.
 */
export function hasSeparateLmHead(spec: Pick<ModelSpec, 'tieWordEmbeddings' | 'multipliers'>): boolean {
  const m = spec.multipliers;
  return !spec.tieWordEmbeddings || (m !== undefined && (m.embedding !== 1 || m.logits !== 1));
}

/** Norm weight vectors of `hidden` a layer holds: two, or four with Gemma's post-norms. */
export function normsPerLayer(spec: Pick<ModelSpec, 'postNorms'>): number {
  return spec.postNorms ? 4 : 2;
}
