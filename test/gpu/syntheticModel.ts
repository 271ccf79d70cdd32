/**
 * Random-weight Llama-family models written as Hugging Face folders (config.json +
 * model.safetensors with the real tensor names), so the engines load them through the same loader
 * as a downloaded model and the PyTorch benchmark script reads the very same files.
 * Used where the fixture models are too short (max 128 positions) or too small: the n = 512
 * readback test and the SmolLM2-shaped benchmark model.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { seededRandom } from './gpuTestSupport';

export interface SyntheticLlamaShape {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly intermediateSize: number;
  readonly maxPositions: number;
  readonly ropeTheta: number;
  /** 'llama' (default), 'qwen2' (q/k/v biases, Qwen2ForCausalLM config) or 'qwen3' (per-head q/k RMSNorm, Qwen3ForCausalLM). */
  readonly family?: 'llama' | 'qwen2' | 'qwen3' | 'gemma3';
  /** head_dim when it is not hidden / heads (Qwen3: 128). */
  readonly headDim?: number;
  /** config.json's rope_scaling (e.g. Llama 3.2's llama3 scaling); default none. */
  readonly ropeScaling?: Readonly<Record<string, unknown>>;
  /** Gemma 3: the config fields that only it has (sliding window, its pattern, the local base, query_pre_attn_scalar). */
  readonly gemma?: { readonly slidingWindow: number; readonly pattern: number; readonly localBase: number; readonly queryPreAttnScalar: number };
  /** Weight dtype in the safetensors file (default F32); real checkpoints ship BF16. */
  readonly dtype?: 'F32' | 'BF16';
  /** Default 1e-5. */
  readonly rmsNormEps?: number;
  /** Default true (one matrix for the embedding and the LM head). */
  readonly tieEmbeddings?: boolean;
}

/** SmolLM2-135M's shape (HuggingFaceTB/SmolLM2-135M config.json); benchmarks may cut the layers. */
export const SMOLLM2_135M: SyntheticLlamaShape = {
  vocabSize: 49152,
  hiddenSize: 576,
  numLayers: 30,
  numHeads: 9,
  numKvHeads: 3,
  intermediateSize: 1536,
  maxPositions: 8192,
  ropeTheta: 100000,
};

/** Qwen2.5-Coder-0.5B's config.json (Qwen/Qwen2.5-Coder-0.5B): 494M parameters, BF16, 32k context. */
export const QWEN25_CODER_05B: SyntheticLlamaShape = {
  family: 'qwen2',
  vocabSize: 151936,
  hiddenSize: 896,
  numLayers: 24,
  numHeads: 14,
  numKvHeads: 2,
  intermediateSize: 4864,
  maxPositions: 32768,
  ropeTheta: 1000000,
  rmsNormEps: 1e-6,
  dtype: 'BF16',
};

/** Qwen2.5-Coder-1.5B's config.json (Qwen/Qwen2.5-Coder-1.5B): 1.54B parameters, one 3.1 GB BF16 file. */
export const QWEN25_CODER_15B: SyntheticLlamaShape = {
  family: 'qwen2',
  vocabSize: 151936,
  hiddenSize: 1536,
  numLayers: 28,
  numHeads: 12,
  numKvHeads: 2,
  intermediateSize: 8960,
  maxPositions: 32768,
  ropeTheta: 1000000,
  rmsNormEps: 1e-6,
  dtype: 'BF16',
};

/** Qwen3-0.6B's config.json (Qwen/Qwen3-0.6B): head_dim 128 with 16 heads on a 1024-wide model, q/k norms, 40,960 positions, BF16. */
export const QWEN3_06B: SyntheticLlamaShape = {
  family: 'qwen3',
  vocabSize: 151936,
  hiddenSize: 1024,
  numLayers: 28,
  numHeads: 16,
  numKvHeads: 8,
  headDim: 128,
  intermediateSize: 3072,
  maxPositions: 40960,
  ropeTheta: 1000000,
  rmsNormEps: 1e-6,
  dtype: 'BF16',
};

/** Llama-3.2-1B's config.json (meta-llama/Llama-3.2-1B): llama3 rotary scaling (factor 32 over 8,192 original positions), 131,072 positions, BF16. */
export const LLAMA32_1B: SyntheticLlamaShape = {
  vocabSize: 128256,
  hiddenSize: 2048,
  numLayers: 16,
  numHeads: 32,
  numKvHeads: 8,
  headDim: 64,
  intermediateSize: 8192,
  maxPositions: 131072,
  ropeTheta: 500000,
  ropeScaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  dtype: 'BF16',
};

/** gemma-3-1b-pt's config.json (google/gemma-3-1b-pt): 5 local layers (512-token window, base 1e4) per global one (base 1e6), head_dim 256, one KV head, 262,144 tokens, BF16. */
export const GEMMA3_1B: SyntheticLlamaShape = {
  family: 'gemma3',
  vocabSize: 262144,
  hiddenSize: 1152,
  numLayers: 26,
  numHeads: 4,
  numKvHeads: 1,
  headDim: 256,
  intermediateSize: 6912,
  maxPositions: 32768,
  ropeTheta: 1000000,
  rmsNormEps: 1e-6,
  gemma: { slidingWindow: 512, pattern: 6, localBase: 10000, queryPreAttnScalar: 256 },
  dtype: 'BF16',
};

/** The real shapes the benchmark and the long-context tests use, by name. */
export const REAL_SHAPES: Readonly<Record<string, SyntheticLlamaShape>> = {
  'smollm2-135m': { ...SMOLLM2_135M, dtype: 'BF16' },
  'qwen2.5-coder-0.5b': QWEN25_CODER_05B,
  'qwen2.5-coder-1.5b': QWEN25_CODER_15B,
  'qwen3-0.6b': QWEN3_06B,
  'llama-3.2-1b': LLAMA32_1B,
  'gemma-3-1b': GEMMA3_1B,
};

/** A tiny shape with room for long sequences, for tests. */
export const TINY_LONG: SyntheticLlamaShape = {
  vocabSize: 256,
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 96,
  maxPositions: 1024,
  ropeTheta: 10000,
};

/** Parameters of a model of `shape` (the tied embedding counted once). */
export function syntheticParameterCount(shape: SyntheticLlamaShape): number {
  return syntheticTensors(shape).reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
}

interface TensorPlan {
  readonly name: string;
  readonly shape: number[];
  /** Uniform(-scale, scale); 0 means ones (norm weights); below 0, 1 + Uniform(scale, -scale) (norm weights that differ). */
  readonly scale: number;
}

function syntheticTensors(shape: SyntheticLlamaShape): TensorPlan[] {
  const headDim = shape.headDim ?? shape.hiddenSize / shape.numHeads;
  const d = shape.hiddenSize;
  const qWidth = shape.numHeads * headDim;
  const kv = shape.numKvHeads * headDim;
  // Uniform(-a, a) has standard deviation a / sqrt(3); a = sqrt(3 / fan_in) keeps unit variance.
  const scaleFor = (fanIn: number) => Math.sqrt(3 / fanIn);
  const plan: TensorPlan[] = [{ name: 'model.embed_tokens.weight', shape: [shape.vocabSize, d], scale: 1 }];
  const qwen = shape.family === 'qwen2';
  for (let l = 0; l < shape.numLayers; l++) {
    const p = `model.layers.${l}`;
    plan.push({ name: `${p}.input_layernorm.weight`, shape: [d], scale: 0 });
    plan.push({ name: `${p}.self_attn.q_proj.weight`, shape: [qWidth, d], scale: scaleFor(d) * 2 });
    if (qwen) plan.push({ name: `${p}.self_attn.q_proj.bias`, shape: [qWidth], scale: 0.1 });
    plan.push({ name: `${p}.self_attn.k_proj.weight`, shape: [kv, d], scale: scaleFor(d) * 2 });
    if (qwen) plan.push({ name: `${p}.self_attn.k_proj.bias`, shape: [kv], scale: 0.1 });
    plan.push({ name: `${p}.self_attn.v_proj.weight`, shape: [kv, d], scale: scaleFor(d) });
    if (qwen) plan.push({ name: `${p}.self_attn.v_proj.bias`, shape: [kv], scale: 0.1 });
    plan.push({ name: `${p}.self_attn.o_proj.weight`, shape: [d, qWidth], scale: scaleFor(qWidth) * 0.5 });
    if (shape.family === 'qwen3' || shape.family === 'gemma3') {
      // Uniform around 1, so the per-head norms shape the scores (ones would hide a missing norm's weight).
      plan.push({ name: `${p}.self_attn.q_norm.weight`, shape: [headDim], scale: -0.5 });
      plan.push({ name: `${p}.self_attn.k_norm.weight`, shape: [headDim], scale: -0.5 });
    }
    plan.push({ name: `${p}.post_attention_layernorm.weight`, shape: [d], scale: 0 });
    if (shape.family === 'gemma3') {
      // Gemma's four norms a layer (weights are offsets: the model multiplies by 1 + w).
      plan.push({ name: `${p}.pre_feedforward_layernorm.weight`, shape: [d], scale: 0.5 });
      plan.push({ name: `${p}.post_feedforward_layernorm.weight`, shape: [d], scale: 0.5 });
    }
    plan.push({ name: `${p}.mlp.gate_proj.weight`, shape: [shape.intermediateSize, d], scale: scaleFor(d) });
    plan.push({ name: `${p}.mlp.up_proj.weight`, shape: [shape.intermediateSize, d], scale: scaleFor(d) });
    plan.push({ name: `${p}.mlp.down_proj.weight`, shape: [d, shape.intermediateSize], scale: scaleFor(shape.intermediateSize) * 0.5 });
  }
  plan.push({ name: 'model.norm.weight', shape: [d], scale: 0 });
  if (shape.tieEmbeddings === false) plan.push({ name: 'lm_head.weight', shape: [shape.vocabSize, d], scale: scaleFor(d) });
  return plan;
}

/**
 * Writes a random model of `shape` into a new temporary folder and returns its path. Weights are
 * uniforms scaled so activations stay in a realistic range; norms are ones. Tensors are generated
 * and written one at a time (a 1.5B-parameter shape never sits in memory whole).
 */
export function writeSyntheticLlama(shape: SyntheticLlamaShape, seed = 1): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-synthetic-'));
  const random = seededRandom(seed);
  const headDim = shape.headDim ?? shape.hiddenSize / shape.numHeads;
  const qwen = shape.family === 'qwen2' || shape.family === 'qwen3';
  const dtype = shape.dtype ?? 'F32';
  const names = { llama: ['LlamaForCausalLM', 'llama'], qwen2: ['Qwen2ForCausalLM', 'qwen2'], qwen3: ['Qwen3ForCausalLM', 'qwen3'], gemma3: ['Gemma3ForCausalLM', 'gemma3_text'] }[shape.family ?? 'llama'];
  const config = {
    architectures: [names[0]],
    model_type: names[1],
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_hidden_layers: shape.numLayers,
    num_attention_heads: shape.numHeads,
    num_key_value_heads: shape.numKvHeads,
    ...(qwen ? { use_sliding_window: false, sliding_window: shape.maxPositions, max_window_layers: shape.numLayers } : {}),
    ...(shape.family !== 'qwen2' ? { head_dim: headDim } : {}),
    ...(shape.gemma
      ? {
          hidden_activation: 'gelu_pytorch_tanh',
          sliding_window: shape.gemma.slidingWindow,
          sliding_window_pattern: shape.gemma.pattern,
          rope_local_base_freq: shape.gemma.localBase,
          query_pre_attn_scalar: shape.gemma.queryPreAttnScalar,
          final_logit_softcapping: null,
          attn_logit_softcapping: null,
        }
      : { hidden_act: 'silu' }),
    max_position_embeddings: shape.maxPositions,
    rms_norm_eps: shape.rmsNormEps ?? 1e-5,
    rope_theta: shape.ropeTheta,
    rope_scaling: shape.ropeScaling ?? null,
    tie_word_embeddings: shape.tieEmbeddings !== false,
    vocab_size: shape.vocabSize,
    torch_dtype: dtype === 'BF16' ? 'bfloat16' : 'float32',
  };
  fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify(config, null, 2));
  writeSafetensors(path.join(folder, 'model.safetensors'), syntheticTensors(shape), dtype, random);
  return folder;
}

/** Rounds float32 values to bfloat16 (nearest, ties to even), as torch's .to(torch.bfloat16) does. */
function toBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

function writeSafetensors(file: string, tensors: TensorPlan[], dtype: 'F32' | 'BF16', random: () => number): void {
  const bytesPer = dtype === 'BF16' ? 2 : 4;
  // Real checkpoints carry this; transformers checks it when it loads the file.
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const { name, shape } of tensors) {
    const bytes = shape.reduce((a, b) => a * b, 1) * bytesPer;
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.byteLength));
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, length);
    fs.writeSync(fd, json);
    const chunk = 1 << 22;
    for (const { shape, scale } of tensors) {
      const count = shape.reduce((a, b) => a * b, 1);
      for (let begin = 0; begin < count; begin += chunk) {
        const values = new Float32Array(Math.min(chunk, count - begin));
        if (scale === 0) values.fill(1);
        else if (scale < 0) for (let i = 0; i < values.length; i++) values[i] = 1 + (random() * 2 - 1) * -scale;
        else for (let i = 0; i < values.length; i++) values[i] = (random() * 2 - 1) * scale;
        const data = dtype === 'BF16' ? toBf16(values) : values;
        fs.writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}
