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

/**
 * Writes a random model of `shape` into a new temporary folder and returns its path. Weights are
 * N(0, 0.02)-like uniforms scaled so activations stay in a realistic range; norms are ones.
 */
export function writeSyntheticLlama(shape: SyntheticLlamaShape, seed = 1): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-synthetic-'));
  const random = seededRandom(seed);
  const headDim = shape.hiddenSize / shape.numHeads;
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_hidden_layers: shape.numLayers,
    num_attention_heads: shape.numHeads,
    num_key_value_heads: shape.numKvHeads,
    head_dim: headDim,
    hidden_act: 'silu',
    max_position_embeddings: shape.maxPositions,
    rms_norm_eps: 1e-5,
    rope_theta: shape.ropeTheta,
    rope_scaling: null,
    tie_word_embeddings: true,
    vocab_size: shape.vocabSize,
    torch_dtype: 'float32',
  };
  fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify(config, null, 2));

  const tensors: [string, number[], Float32Array][] = [];
  const uniform = (name: string, shapeOf: number[], scale: number) => {
    const count = shapeOf.reduce((a, b) => a * b, 1);
    const values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = (random() * 2 - 1) * scale;
    tensors.push([name, shapeOf, values]);
  };
  const ones = (name: string, size: number) => tensors.push([name, [size], new Float32Array(size).fill(1)]);
  const d = shape.hiddenSize;
  const kv = shape.numKvHeads * headDim;
  // Uniform(-a, a) has standard deviation a / sqrt(3); a = sqrt(3 / fan_in) keeps unit variance.
  const scaleFor = (fanIn: number) => Math.sqrt(3 / fanIn);
  uniform('model.embed_tokens.weight', [shape.vocabSize, d], 1);
  for (let l = 0; l < shape.numLayers; l++) {
    const p = `model.layers.${l}`;
    ones(`${p}.input_layernorm.weight`, d);
    uniform(`${p}.self_attn.q_proj.weight`, [d, d], scaleFor(d) * 2);
    uniform(`${p}.self_attn.k_proj.weight`, [kv, d], scaleFor(d) * 2);
    uniform(`${p}.self_attn.v_proj.weight`, [kv, d], scaleFor(d));
    uniform(`${p}.self_attn.o_proj.weight`, [d, d], scaleFor(d) * 0.5);
    ones(`${p}.post_attention_layernorm.weight`, d);
    uniform(`${p}.mlp.gate_proj.weight`, [shape.intermediateSize, d], scaleFor(d));
    uniform(`${p}.mlp.up_proj.weight`, [shape.intermediateSize, d], scaleFor(d));
    uniform(`${p}.mlp.down_proj.weight`, [d, shape.intermediateSize], scaleFor(shape.intermediateSize) * 0.5);
  }
  ones('model.norm.weight', d);
  writeSafetensors(path.join(folder, 'model.safetensors'), tensors);
  return folder;
}

function writeSafetensors(file: string, tensors: [string, number[], Float32Array][]): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape, values] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + values.byteLength] };
    offset += values.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.byteLength));
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, length);
    fs.writeSync(fd, json);
    for (const [, , values] of tensors) fs.writeSync(fd, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  } finally {
    fs.closeSync(fd);
  }
}
