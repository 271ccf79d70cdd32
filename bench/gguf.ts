/**
 * Writes a Hugging Face model folder of the Llama or Qwen2 family as a GGUF file (format v3) that
 * llama.cpp loads, so that llama.cpp can run the very weights our engines run (bench/llamaCpp.ts).
 * It does what llama.cpp's convert_hf_to_gguf.py does for these two families, and nothing more:
 *
 *   - tensors get llama.cpp's names (token_embd.weight, blk.N.attn_q.weight, ..., output.weight)
 *     and GGUF's dimension order (ne[0] is the row length: a PyTorch [out, in] matrix is [in, out]);
 *   - Llama's q and k rows are permuted (convert_hf_to_gguf.py's LlamaModel.permute): llama.cpp's
 *     llama graph rotates adjacent pairs (GGML rope mode NORM) where Hugging Face rotates the two
 *     halves of each head; Qwen2 runs in NEOX mode, which is the halves, so its rows stay as they are;
 *   - metadata under llama.cpp's keys (general.architecture, <arch>.embedding_length, ...);
 *   - a synthetic tokenizer of vocab_size tokens (GPT-2 byte-level, no merges): llama.cpp refuses a
 *     model without one, and the benchmark feeds token ids, so no text is ever tokenised.
 *
 * Matrices are F32 by default, the arithmetic our engines do; `weights: 'source'` keeps F16 and
 * BF16 matrices as they are (exact too, but llama.cpp then rounds activations to that type in its
 * matrix products). Vectors (norms, biases) are always F32, as the converter writes them.
 *
 * Tensors are read from the safetensors files and written one at a time, so a model several GB
 * large never sits in memory whole.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseModelConfig } from '../engine/model/modelConfig';
import { parseWeightIndex } from '../engine/model/modelLoader';
import type { ModelSpec } from '../engine/model/modelTypes';
import { float16BitsToFloat32 } from '../engine/model/tensorData';

/** How matrices are stored: F32 always, or as in the source files (F32, F16 or BF16). */
export type GgufWeights = 'F32' | 'source';

export interface GgufConversion {
  readonly file: string;
  readonly bytes: number;
  /** general.architecture: llama.cpp's name of the graph it builds. */
  readonly architecture: 'llama' | 'qwen2';
  readonly tensorCount: number;
  /** The storage type of the matrices as written. */
  readonly matrixType: 'F32' | 'F16' | 'BF16';
  readonly spec: ModelSpec;
}

export const GGUF_ALIGNMENT = 32;

/** GGUF metadata value types (ggml/include/gguf.h). */
const enum GgufType {
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
}

/** GGML tensor types (ggml/include/ggml.h). */
const GGML_TYPE = { F32: 0, F16: 1, BF16: 30 } as const;
/** general.file_type (llama.cpp's llama_ftype): all F32, mostly F16, mostly BF16. */
const FILE_TYPE = { F32: 0, F16: 1, BF16: 32 } as const;
const WIDTH = { F32: 4, F16: 2, BF16: 2 } as const;
/** llama.cpp's llama_token_type values. */
const TOKEN_TYPE_NORMAL = 1;
const TOKEN_TYPE_CONTROL = 3;

type SourceDType = keyof typeof WIDTH;

interface SourceTensor {
  readonly file: string;
  readonly dtype: SourceDType;
  readonly shape: readonly number[];
  /** Byte offset of the data in `file`. */
  readonly position: number;
  readonly length: number;
}

interface PlannedTensor {
  readonly ggufName: string;
  readonly source: SourceTensor;
  readonly sourceName: string;
  readonly type: SourceDType;
  /** For Llama's q and k (weights and biases): rotate-half rows to adjacent pairs, per head. */
  readonly permuteHeads?: number;
  /** Offset from the start of the data section, a multiple of GGUF_ALIGNMENT. */
  offset: number;
}

/**
 * Converts the model in `folder` into the GGUF file `outFile` (overwritten). Throws an Error that
 * names the folder and what is wrong when the model is not one llama.cpp can run the same way.
 */
export function writeGgufFromFolder(folder: string, outFile: string, options: { weights?: GgufWeights } = {}): GgufConversion {
  const configFile = path.join(folder, 'config.json');
  if (!fs.existsSync(configFile)) throw new Error(`${folder} has no config.json; give a Hugging Face model folder (config.json beside model.safetensors).`);
  const spec = parseModelConfig(JSON.parse(fs.readFileSync(configFile, 'utf8')), configFile);
  if (spec.family !== 'llama' && spec.family !== 'qwen2') {
    throw new Error(`${folder} is a ${spec.architecture} model; the GGUF writer converts only LlamaForCausalLM and Qwen2ForCausalLM.`);
  }
  if (spec.ropeScaling) {
    throw new Error(`${folder} scales its rotary embeddings (${spec.ropeScaling.type}); the GGUF writer converts only models with plain rotary embeddings.`);
  }
  const tensors = readSourceTensors(folder);
  const plan = planTensors(spec, tensors, folder, options.weights ?? 'F32');
  const matrixType = plan.find((t) => t.ggufName === 'token_embd.weight')!.type;

  let offset = 0;
  for (const tensor of plan) {
    tensor.offset = offset;
    offset = alignUp(offset + tensorBytes(tensor), GGUF_ALIGNMENT);
  }
  const header = new GgufHeaderWriter();
  header.u32(0x46554747); // "GGUF" read as a little-endian uint32
  header.u32(3);
  header.u64(plan.length);
  const metadata = metadataOf(spec, matrixType, path.basename(path.resolve(folder)));
  header.u64(metadata.length);
  for (const write of metadata) write(header);
  for (const tensor of plan) {
    header.string(tensor.ggufName);
    // GGUF lists dimensions fastest-varying first: the reverse of PyTorch's shape.
    const dims = [...tensor.source.shape].reverse();
    header.u32(dims.length);
    for (const dim of dims) header.u64(dim);
    header.u32(GGML_TYPE[tensor.type]);
    header.u64(tensor.offset);
  }
  const headerBytes = header.finish();
  const dataStart = alignUp(headerBytes.length, GGUF_ALIGNMENT);

  const fd = fs.openSync(outFile, 'w');
  try {
    writeAll(fd, headerBytes);
    writeAll(fd, new Uint8Array(dataStart - headerBytes.length));
    let written = 0;
    const sources = new Map<string, number>();
    try {
      for (const tensor of plan) {
        let sourceFd = sources.get(tensor.source.file);
        if (sourceFd === undefined) sources.set(tensor.source.file, (sourceFd = fs.openSync(tensor.source.file, 'r')));
        writeAll(fd, new Uint8Array(tensor.offset - written));
        const data = convertTensor(tensor, readAt(sourceFd, tensor.source.position, tensor.source.length, tensor.source.file));
        writeAll(fd, data);
        written = tensor.offset + data.length;
      }
    } finally {
      for (const sourceFd of sources.values()) fs.closeSync(sourceFd);
    }
  } finally {
    fs.closeSync(fd);
  }
  return { file: outFile, bytes: fs.statSync(outFile).size, architecture: spec.family, tensorCount: plan.length, matrixType, spec };
}

/** The tensors of the folder's safetensors file(s), by name (headers only; no data is read). */
function readSourceTensors(folder: string): Map<string, SourceTensor> {
  const index = path.join(folder, 'model.safetensors.index.json');
  const files = fs.existsSync(index) ? [...new Set(parseWeightIndex(fs.readFileSync(index, 'utf8'), index).values())] : ['model.safetensors'];
  const tensors = new Map<string, SourceTensor>();
  for (const name of files) {
    const file = path.join(folder, name);
    if (!fs.existsSync(file)) throw new Error(`${folder} has no ${name}; the GGUF writer reads safetensors weights (never pickles).`);
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const headerLength = Number(Buffer.from(readAt(fd, 0, 8, file)).readBigUInt64LE(0));
      if (headerLength + 8 > size) throw new Error(`${file} is truncated: its header says ${headerLength} bytes, the file has ${size}. Download it again.`);
      const header = JSON.parse(Buffer.from(readAt(fd, 8, headerLength, file)).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
      for (const [tensorName, entry] of Object.entries(header)) {
        if (tensorName === '__metadata__') continue;
        if (!(entry.dtype in WIDTH)) throw new Error(`${file}: tensor ${tensorName} is ${entry.dtype}; the GGUF writer reads F32, F16 and BF16.`);
        const [begin, end] = entry.data_offsets;
        tensors.set(tensorName, { file, dtype: entry.dtype as SourceDType, shape: entry.shape, position: 8 + headerLength + begin, length: end - begin });
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return tensors;
}

/** Hugging Face tensor names to llama.cpp's, with the shape each must have; checks every one. */
function planTensors(spec: ModelSpec, tensors: ReadonlyMap<string, SourceTensor>, folder: string, weights: GgufWeights): PlannedTensor[] {
  const { hiddenSize: d, numHeads: h, numKvHeads: kvHeads, headDim, intermediateSize: ff, vocabSize: vocab } = spec;
  const permute = spec.family === 'llama';
  const plan: PlannedTensor[] = [];
  const add = (sourceName: string, ggufName: string, shape: number[], extra: { optional?: boolean; permuteHeads?: number } = {}) => {
    const source = tensors.get(sourceName);
    if (!source) {
      if (extra.optional) return;
      throw new Error(`${folder} has no tensor ${sourceName}, which a ${spec.architecture} with this config.json has. Is the download complete?`);
    }
    if (source.shape.length !== shape.length || source.shape.some((n, i) => n !== shape[i])) {
      throw new Error(`${folder}: tensor ${sourceName} has shape [${source.shape.join(', ')}], config.json implies [${shape.join(', ')}].`);
    }
    // Vectors stay F32 whatever the source: llama.cpp's CPU kernels add and multiply by them in F32.
    const type: SourceDType = weights === 'F32' || shape.length === 1 ? 'F32' : source.dtype;
    plan.push({ ggufName, source, sourceName, type, permuteHeads: permute ? extra.permuteHeads : undefined, offset: 0 });
  };
  add('model.embed_tokens.weight', 'token_embd.weight', [vocab, d]);
  for (let layer = 0; layer < spec.numLayers; layer++) {
    const hf = `model.layers.${layer}`;
    const blk = `blk.${layer}`;
    add(`${hf}.input_layernorm.weight`, `${blk}.attn_norm.weight`, [d]);
    for (const [proj, name, rows, heads] of [['q_proj', 'attn_q', h * headDim, h], ['k_proj', 'attn_k', kvHeads * headDim, kvHeads], ['v_proj', 'attn_v', kvHeads * headDim, 0]] as const) {
      add(`${hf}.self_attn.${proj}.weight`, `${blk}.${name}.weight`, [rows, d], { permuteHeads: heads || undefined });
      if (spec.qkvBias) add(`${hf}.self_attn.${proj}.bias`, `${blk}.${name}.bias`, [rows], { permuteHeads: heads || undefined });
    }
    add(`${hf}.self_attn.o_proj.weight`, `${blk}.attn_output.weight`, [d, h * headDim]);
    if (spec.outBias) add(`${hf}.self_attn.o_proj.bias`, `${blk}.attn_output.bias`, [d]);
    add(`${hf}.post_attention_layernorm.weight`, `${blk}.ffn_norm.weight`, [d]);
    add(`${hf}.mlp.gate_proj.weight`, `${blk}.ffn_gate.weight`, [ff, d]);
    add(`${hf}.mlp.up_proj.weight`, `${blk}.ffn_up.weight`, [ff, d]);
    add(`${hf}.mlp.down_proj.weight`, `${blk}.ffn_down.weight`, [d, ff]);
    if (spec.mlpBias) {
      add(`${hf}.mlp.gate_proj.bias`, `${blk}.ffn_gate.bias`, [ff]);
      add(`${hf}.mlp.up_proj.bias`, `${blk}.ffn_up.bias`, [ff]);
      add(`${hf}.mlp.down_proj.bias`, `${blk}.ffn_down.bias`, [d]);
    }
  }
  add('model.norm.weight', 'output_norm.weight', [d]);
  // Without output.weight llama.cpp multiplies by token_embd, which is what tied embeddings mean.
  if (!spec.tieWordEmbeddings) add('lm_head.weight', 'output.weight', [vocab, d]);
  return plan;
}

function tensorBytes(tensor: PlannedTensor): number {
  return tensor.source.shape.reduce((a, b) => a * b, 1) * WIDTH[tensor.type];
}

/** The tensor's bytes as GGUF stores them: converted to its type, rows permuted where planned. */
function convertTensor(tensor: PlannedTensor, raw: Uint8Array): Uint8Array {
  let data = raw;
  if (tensor.type !== tensor.source.dtype) {
    // Only ever widening to F32, which is exact for F16 and BF16.
    data = new Uint8Array(toFloat32(raw, tensor.source.dtype).buffer);
  }
  if (tensor.permuteHeads !== undefined) data = permuteRotaryRows(data, tensor.source.shape, tensor.permuteHeads);
  return data;
}

function toFloat32(raw: Uint8Array, dtype: SourceDType): Float32Array {
  const count = raw.length / WIDTH[dtype];
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(count);
  if (dtype === 'F32') for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  else if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
  } else for (let i = 0; i < count; i++) out[i] = float16BitsToFloat32(view.getUint16(i * 2, true));
  return out;
}

/**
 * convert_hf_to_gguf.py's LlamaModel.permute on raw rows: within each head, the row of pair i's
 * half j (Hugging Face: j * headDim/2 + i) moves to 2i + j (llama.cpp: adjacent pairs). Works for
 * weights [rows, in] and biases [rows] alike, whatever the element width.
 */
export function permuteRotaryRows(data: Uint8Array, shape: readonly number[], heads: number): Uint8Array {
  const rows = shape[0];
  const rowBytes = data.length / rows;
  const headDim = rows / heads;
  const half = headDim / 2;
  const out = new Uint8Array(data.length);
  for (let head = 0; head < heads; head++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = head * headDim + j * half + i;
        const to = head * headDim + 2 * i + j;
        out.set(data.subarray(from * rowBytes, (from + 1) * rowBytes), to * rowBytes);
      }
    }
  }
  return out;
}

type MetadataWriter = (header: GgufHeaderWriter) => void;

function metadataOf(spec: ModelSpec, matrixType: SourceDType, name: string): MetadataWriter[] {
  const arch = spec.family;
  const u32 = (key: string, value: number): MetadataWriter => (w) => (w.string(key), w.u32(GgufType.UINT32), w.u32(value));
  const f32 = (key: string, value: number): MetadataWriter => (w) => (w.string(key), w.u32(GgufType.FLOAT32), w.f32(value));
  const str = (key: string, value: string): MetadataWriter => (w) => (w.string(key), w.u32(GgufType.STRING), w.string(value));
  const bool = (key: string, value: boolean): MetadataWriter => (w) => (w.string(key), w.u32(GgufType.BOOL), w.u8(value ? 1 : 0));
  const strings = (key: string, values: readonly string[]): MetadataWriter => (w) => {
    w.string(key);
    w.u32(GgufType.ARRAY);
    w.u32(GgufType.STRING);
    w.u64(values.length);
    for (const value of values) w.string(value);
  };
  const int32s = (key: string, values: readonly number[]): MetadataWriter => (w) => {
    w.string(key);
    w.u32(GgufType.ARRAY);
    w.u32(GgufType.INT32);
    w.u64(values.length);
    for (const value of values) w.i32(value);
  };
  const tokens = syntheticVocabulary(spec.vocabSize);
  // The last token is the end of text (a control token, so llama.cpp counts it as end of generation).
  const last = spec.vocabSize - 1;
  const types = tokens.map((_, i) => (i === last ? TOKEN_TYPE_CONTROL : TOKEN_TYPE_NORMAL));
  return [
    str('general.architecture', arch),
    str('general.name', name),
    u32('general.alignment', GGUF_ALIGNMENT),
    u32('general.file_type', FILE_TYPE[matrixType]),
    u32(`${arch}.context_length`, spec.maxPositions),
    u32(`${arch}.embedding_length`, spec.hiddenSize),
    u32(`${arch}.block_count`, spec.numLayers),
    u32(`${arch}.feed_forward_length`, spec.intermediateSize),
    u32(`${arch}.attention.head_count`, spec.numHeads),
    u32(`${arch}.attention.head_count_kv`, spec.numKvHeads),
    u32(`${arch}.attention.key_length`, spec.headDim),
    u32(`${arch}.attention.value_length`, spec.headDim),
    f32(`${arch}.rope.freq_base`, spec.ropeTheta),
    u32(`${arch}.rope.dimension_count`, spec.headDim),
    f32(`${arch}.attention.layer_norm_rms_epsilon`, spec.normEps),
    u32(`${arch}.vocab_size`, spec.vocabSize),
    str('tokenizer.ggml.model', 'gpt2'),
    str('tokenizer.ggml.pre', 'default'),
    strings('tokenizer.ggml.tokens', tokens),
    int32s('tokenizer.ggml.token_type', types),
    strings('tokenizer.ggml.merges', []),
    u32('tokenizer.ggml.bos_token_id', last),
    u32('tokenizer.ggml.eos_token_id', last),
    bool('tokenizer.ggml.add_bos_token', false),
  ];
}

/**
 * `size` distinct token strings: GPT-2's 256 byte-level characters first (so llama.cpp's tokenizer
 * finds the newline it looks for at load time), then placeholders, and "<|endoftext|>" last.
 */
function syntheticVocabulary(size: number): string[] {
  const bytes: number[] = [];
  for (let b = 33; b <= 126; b++) bytes.push(b);
  for (let b = 161; b <= 172; b++) bytes.push(b);
  for (let b = 174; b <= 255; b++) bytes.push(b);
  const printable = new Set(bytes);
  const byteChars: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) byteChars[b] = String.fromCodePoint(printable.has(b) ? b : 256 + extra++);
  const tokens: string[] = [];
  for (let i = 0; i < size; i++) tokens.push(i < 256 ? byteChars[i] : `<synthetic_${i}>`);
  tokens[size - 1] = '<|endoftext|>';
  return tokens;
}

/** Little-endian header bytes, grown as written. */
class GgufHeaderWriter {
  private buffer = Buffer.alloc(1 << 16);
  private length = 0;

  u8(value: number): void {
    this.reserve(1).writeUInt8(value, this.length);
    this.length += 1;
  }

  u32(value: number): void {
    this.reserve(4).writeUInt32LE(value, this.length);
    this.length += 4;
  }

  i32(value: number): void {
    this.reserve(4).writeInt32LE(value, this.length);
    this.length += 4;
  }

  f32(value: number): void {
    this.reserve(4).writeFloatLE(value, this.length);
    this.length += 4;
  }

  u64(value: number): void {
    this.reserve(8).writeBigUInt64LE(BigInt(value), this.length);
    this.length += 8;
  }

  /** gguf_string: a uint64 byte length, then UTF-8 without a terminator. */
  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8');
    this.u64(bytes.length);
    bytes.copy(this.reserve(bytes.length), this.length);
    this.length += bytes.length;
  }

  finish(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }

  private reserve(bytes: number): Buffer {
    if (this.length + bytes > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + bytes));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    return this.buffer;
  }
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

function readAt(fd: number, position: number, length: number, file: string): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const read = fs.readSync(fd, out, done, length - done, position + done);
    if (read === 0) throw new Error(`${file} ends before byte ${position + length}, where its header puts tensor data: the file is truncated. Download it again.`);
    done += read;
  }
  return out;
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done);
}
