/**
 * Loads a Hugging Face model folder (config.json + safetensors weights, single file or sharded)
 * into the engine's canonical LoadedModel. Where the files come from is abstracted by
 * ModelFileSource: a Node folder (engine/hosts/nodeModelFolder.ts), the webview's fetched files
 * (webview/engineHost.ts), or bytes in memory (tests).
 *
 * Weight files are opened for positional reads, never read whole: their headers are read and
 * validated, the model's tensors are checked by name and shape against config.json, and only then
 * is each tensor the model uses read, into a buffer of its own. Memory holds the used tensors once.
 *
 * Tensor names and layouts are translated per family:
 *   Llama / Qwen2 / Qwen3: model.embed_tokens, model.layers.{i}.{input_layernorm, self_attn.{q,k,v,o}_proj,
 *     post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm, lm_head (absent when tied);
 *     Qwen3 adds self_attn.{q,k}_norm ([head_dim] each).
 *   Gemma 3: the same plus self_attn.{q,k}_norm and four norms a layer (input_layernorm,
 *     post_attention_layernorm on the attention output, pre_/post_feedforward_layernorm).
 *   Phi-3: self_attn.qkv_proj and mlp.gate_up_proj fused, split here by rows (q, k, v; gate, up).
 *   StarCoder2: the same attention names with biases, LayerNorms with biases, mlp.{c_fc, c_proj}
 *     (nn.Linear layouts), model.norm.
 *   GPT-2: [transformer.]{wte, wpe, h.{i}.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc,
 *     mlp.c_proj}, ln_f}; Conv1D weights are [in, out] and are transposed, c_attn is split in q, k, v.
 */
import { ModelFormatError } from './modelFormatError';
import { parseModelConfig } from './modelConfig';
import type { RandomAccessFile } from './randomAccessFile';
import { readSafetensors, type SafetensorsFile } from './safetensors';
import { DTYPE_WIDTH, toFloat32 } from './tensorData';
import type { HostTensor, LayerWeights, LinearWeights, LoadedModel, ModelSpec, ModelWeights, NormWeights } from './modelTypes';

/** Read access to the files of one model, by plain file name ("config.json", "model-00001-of-00002.safetensors"). */
export interface ModelFileSource {
  /** Where the files come from, for messages: a folder path, a URL, "embedded default". */
  readonly label: string;
  exists(name: string): Promise<boolean>;
  readText(name: string): Promise<string>;
  /** Opens a binary file (a safetensors file) for positional reads; the caller closes it. */
  openBinary(name: string): Promise<RandomAccessFile>;
}

export const CONFIG_FILE = 'config.json';
export const SINGLE_WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';

/** Reads config.json and the weights, validates them and returns the model in canonical layout. */
export async function loadModel(source: ModelFileSource): Promise<LoadedModel> {
  const configName = `${source.label}/${CONFIG_FILE}`;
  if (!(await source.exists(CONFIG_FILE))) {
    throw new ModelFormatError(configName, `${source.label} has no ${CONFIG_FILE}; a model folder needs the Hugging Face config.json beside its weights.`);
  }
  // Reading errors (missing file, network) keep their own message; only parsing errors are JSON errors.
  const configText = await source.readText(CONFIG_FILE);
  let configJson: unknown;
  try {
    configJson = JSON.parse(configText);
  } catch (error) {
    throw new ModelFormatError(configName, `${configName} is not valid JSON (${error instanceof Error ? error.message : String(error)}).`);
  }
  const spec = parseModelConfig(configJson, configName);
  const build = spec.family === 'gpt2' ? gpt2Weights : spec.family === 'starcoder2' ? starcoder2Weights : llamaWeights;
  const opened: RandomAccessFile[] = [];
  try {
    const tensors = await openWeightFiles(source, opened);
    // The first pass runs on the headers alone: every tensor the model needs is checked by name and
    // shape before any is read, so weights that do not match config.json fail at once, even for a
    // 3 GB checkpoint, and the table learns which tensors to read (stored extras are never read).
    build(spec, tensors);
    await tensors.readRequested();
    const weights = foldAtLoad(spec, build(spec, tensors));
    return { spec, weights, origin: source.label };
  } finally {
    await Promise.all(opened.map((file) => file.close()));
  }
}

/**
 * What some architectures compute in a form of their own, folded into the weights once they are
 * read, so that every engine runs them as a Llama (the scaled tensors become float32 copies, each
 * weight rounded once, ~1e-7 relative; a tied LM head gets its own copy when the embedding is scaled):
 * - Gemma's RMSNorms multiply by (1 + w), not w: every norm weight becomes 1 + w (in float32, as
 *   Gemma3RMSNorm computes it).
 * - multipliers (Granite: modeling_granite.py; Gemma 3: sqrt(hidden) on the embeddings and
 *   query_pre_attn_scalar^-0.5 on the scores): embeddings x embedding; the scores' scale into the
 *   queries (q_norm's weight where a q norm follows q_proj and would undo a scaled projection, else
 *   q_proj), as attention x sqrt(head_dim) because the engines scale scores by 1 / sqrt(head_dim);
 *   each block's output x residual (o_proj, down_proj); logits / logits (lm_head).
 */
function foldAtLoad(spec: ModelSpec, weights: ModelWeights): ModelWeights {
  const m = spec.multipliers;
  const gemma = spec.family === 'gemma3' || spec.family === 'gemma2';
  if (!m && !gemma) return weights;
  const mapped = (t: HostTensor | undefined, f: (value: number) => number, why: string): HostTensor | undefined => {
    if (!t) return t;
    const values = toFloat32(t);
    const out = new Float32Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = f(values[i]);
    return { name: `${t.name} (${why})`, shape: t.shape, dtype: 'F32', bytes: new Uint8Array(out.buffer) };
  };
  const scaled = (t: HostTensor | undefined, factor: number, why: string): HostTensor | undefined => (factor === 1 ? t : mapped(t, (v) => v * factor, `x ${why}`));
  const linear = (l: LinearWeights, factor: number, why: string): LinearWeights => ({
    weight: scaled(l.weight, factor, why)!,
    ...(l.bias ? { bias: scaled(l.bias, factor, why) } : {}),
  });
  const plusOne = (n: NormWeights | undefined, factor = 1): NormWeights | undefined =>
    n && (gemma ? { weight: mapped(n.weight, (v) => Math.fround(1 + v) * factor, factor === 1 ? '1 + w' : `(1 + w) x ${factor}`)! } : { weight: scaled(n.weight, factor, 'attention scale')! });
  const qFactor = m ? m.attention * Math.sqrt(spec.headDim) : 1;
  const residual = m?.residual ?? 1;
  const layers = weights.layers.map((layer) => ({
    ...layer,
    attnNorm: plusOne(layer.attnNorm)!,
    mlpNorm: plusOne(layer.mlpNorm)!,
    ...(layer.postAttnNorm ? { postAttnNorm: plusOne(layer.postAttnNorm) } : {}),
    ...(layer.postMlpNorm ? { postMlpNorm: plusOne(layer.postMlpNorm) } : {}),
    ...(layer.kNorm ? { kNorm: plusOne(layer.kNorm) } : {}),
    ...(layer.qNorm ? { qNorm: plusOne(layer.qNorm, qFactor) } : {}),
    q: layer.qNorm ? layer.q : linear(layer.q, qFactor, 'attention scale x sqrt(head_dim)'),
    o: linear(layer.o, residual, 'residual_multiplier'),
    down: linear(layer.down, residual, 'residual_multiplier'),
  }));
  const embedding = m?.embedding ?? 1;
  const logits = m?.logits ?? 1;
  const tokenEmbedding = scaled(weights.tokenEmbedding, embedding, 'embedding scale')!;
  // A tied head stays tied only when neither side is scaled; scaled() returns a tensor unchanged
  // for a factor of 1, so a tied head under a scaled embedding keeps the unscaled original.
  const tied = weights.lmHead === weights.tokenEmbedding;
  const lmHead = tied && embedding === 1 && logits === 1 ? tokenEmbedding : scaled(weights.lmHead, 1 / logits, '1 / logits_scaling')!;
  return { ...weights, tokenEmbedding, layers, finalNorm: gemma ? plusOne(weights.finalNorm)! : weights.finalNorm, lmHead };
}

/** Every tensor of the checkpoint by name, with the file it came from for messages. */
class TensorTable {
  private readonly owners = new Map<string, { file: SafetensorsFile; label: string }>();
  /** The tensors asked for by the planning pass, read by readRequested. */
  private readonly requested = new Set<string>();
  private readonly read = new Map<string, HostTensor>();
  private planning = true;

  constructor(readonly description: string) {}

  add(file: SafetensorsFile, label: string, only?: ReadonlySet<string>): void {
    const entry = { file, label };
    for (const name of file.entries.keys()) {
      if (!only || only.has(name)) this.owners.set(name, entry);
    }
  }

  has(name: string): boolean {
    return this.owners.has(name);
  }

  /**
   * The tensor `name`, checked against `shape`. While planning, the tensor has no bytes yet (an
   * empty array): the planning pass only checks names and shapes and records what to read.
   */
  get(name: string, shape: readonly number[]): HostTensor {
    const owner = this.owners.get(name);
    if (!owner) {
      throw new ModelFormatError(
        this.description,
        `tensor ${name} is missing from ${this.description} (expected shape [${shape.join(', ')}]). The weights do not match config.json; download the model again.`,
      );
    }
    const entry = owner.file.entries.get(name)!;
    if (entry.shape.length !== shape.length || entry.shape.some((dim, i) => dim !== shape[i])) {
      throw new ModelFormatError(
        owner.label,
        `tensor ${name} in ${owner.label} has shape [${entry.shape.join(', ')}] but config.json implies [${shape.join(', ')}]. The weights do not match config.json.`,
      );
    }
    if (this.planning) {
      this.requested.add(name);
      return { name, shape: entry.shape, dtype: entry.dtype, bytes: new Uint8Array(0) };
    }
    const tensor = this.read.get(name);
    // The second pass asks for the same tensors as the first: the builders are deterministic.
    if (!tensor) throw new Error(`internal error: tensor ${name} was not requested by the planning pass`);
    return { ...tensor, name: `${name} (${owner.label})` };
  }

  /** Reads every tensor the planning pass asked for, one read each, and ends the planning. */
  async readRequested(): Promise<void> {
    // In file order, so that reads run front to back through each file (the kernel reads ahead).
    const files = new Map([...new Set([...this.owners.values()].map((owner) => owner.file))].map((file, index) => [file, index]));
    const position = (name: string): number[] => {
      const file = this.owners.get(name)!.file;
      return [files.get(file)!, file.entries.get(name)!.begin];
    };
    const names = [...this.requested].map((name) => ({ name, at: position(name) }));
    names.sort((a, b) => a.at[0] - b.at[0] || a.at[1] - b.at[1]);
    for (const { name } of names) {
      this.read.set(name, (await this.owners.get(name)!.file.readTensor(name))!);
    }
    this.planning = false;
  }
}

/** Opens and validates the weight files; everything opened goes to `opened`, for the caller to close. */
async function openWeightFiles(source: ModelFileSource, opened: RandomAccessFile[]): Promise<TensorTable> {
  const open = async (name: string, label: string): Promise<SafetensorsFile> => {
    const file = await source.openBinary(name);
    opened.push(file);
    return readSafetensors(file, label);
  };
  if (await source.exists(SINGLE_WEIGHTS_FILE)) {
    const label = `${source.label}/${SINGLE_WEIGHTS_FILE}`;
    const table = new TensorTable(label);
    table.add(await open(SINGLE_WEIGHTS_FILE, label), label);
    return table;
  }
  const indexLabel = `${source.label}/${WEIGHTS_INDEX_FILE}`;
  if (!(await source.exists(WEIGHTS_INDEX_FILE))) {
    throw new ModelFormatError(
      `${source.label}/${SINGLE_WEIGHTS_FILE}`,
      `${source.label} has neither ${SINGLE_WEIGHTS_FILE} nor ${WEIGHTS_INDEX_FILE}. Attention Lens reads safetensors weights only (pickled pytorch_model.bin files are never loaded, since unpickling can run code).`,
    );
  }
  const weightMap = parseWeightIndex(await source.readText(WEIGHTS_INDEX_FILE), indexLabel);
  const namesByShard = new Map<string, Set<string>>();
  for (const [tensorName, shard] of weightMap) {
    if (!namesByShard.has(shard)) namesByShard.set(shard, new Set());
    namesByShard.get(shard)!.add(tensorName);
  }
  const table = new TensorTable(`the shards listed in ${indexLabel}`);
  for (const [shard, names] of namesByShard) {
    const label = `${source.label}/${shard}`;
    if (!(await source.exists(shard))) {
      throw new ModelFormatError(label, `${indexLabel} lists the shard ${shard}, but ${label} does not exist. Download the model again.`);
    }
    // Each shard stays open until the model's tensors are read from it.
    const file = await open(shard, label);
    for (const name of names) {
      if (!file.entries.has(name)) {
        throw new ModelFormatError(label, `${indexLabel} says tensor ${name} is in ${shard}, but ${label} has no such tensor. Download the model again.`);
      }
    }
    table.add(file, label, names);
  }
  return table;
}

/** Validates model.safetensors.index.json and returns its weight_map (tensor name -> shard file name). */
export function parseWeightIndex(text: string, label: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ModelFormatError(label, `${label} is not valid JSON (${error instanceof Error ? error.message : String(error)}).`);
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new ModelFormatError(label, `${label} has no "weight_map" object mapping tensor names to shard files.`);
  }
  const result = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || !isPlainFileName(shard)) {
      throw new ModelFormatError(
        label,
        `${label} maps tensor ${name} to ${JSON.stringify(shard)}, which is not a plain .safetensors file name in the model folder (no paths, no "..").`,
      );
    }
    result.set(name, shard);
  }
  return result;
}

function isPlainFileName(name: string): boolean {
  return (
    name.length > 0 &&
    name.endsWith('.safetensors') &&
    !name.includes('/') &&
    !name.includes('\\') &&
    !name.includes('..') &&
    !name.includes(':') &&
    !name.includes('\0')
  );
}

function llamaWeights(spec: ModelSpec, tensors: TensorTable): ModelWeights {
  const { hiddenSize: d, intermediateSize: inter, numHeads: H, numKvHeads: Hkv, headDim: hd, vocabSize: vocab } = spec;
  const linear = (name: string, out: number, inDim: number, hasBias: boolean): LinearWeights => ({
    weight: tensors.get(`${name}.weight`, [out, inDim]),
    ...(hasBias ? { bias: tensors.get(`${name}.bias`, [out]) } : {}),
  });
  const rms = (name: string): NormWeights => ({ weight: tensors.get(`${name}.weight`, [d]) });
  const layers: LayerWeights[] = [];
  for (let i = 0; i < spec.numLayers; i++) {
    const p = `model.layers.${i}`;
    if (spec.family === 'gemma3' || spec.family === 'gemma2') {
      // Gemma's post_attention_layernorm normalises the attention output; the MLP's input norm is
      // pre_feedforward_layernorm (a Llama's post_attention_layernorm), its output norm post_feedforward_layernorm.
      const headNorm = (name: string): NormWeights => ({ weight: tensors.get(`${name}.weight`, [hd]) });
      layers.push({
        attnNorm: rms(`${p}.input_layernorm`),
        q: linear(`${p}.self_attn.q_proj`, H * hd, d, spec.qkvBias),
        k: linear(`${p}.self_attn.k_proj`, Hkv * hd, d, spec.qkvBias),
        v: linear(`${p}.self_attn.v_proj`, Hkv * hd, d, spec.qkvBias),
        o: linear(`${p}.self_attn.o_proj`, d, H * hd, spec.outBias),
        ...(spec.qkNorm ? { qNorm: headNorm(`${p}.self_attn.q_norm`), kNorm: headNorm(`${p}.self_attn.k_norm`) } : {}),
        postAttnNorm: rms(`${p}.post_attention_layernorm`),
        mlpNorm: rms(`${p}.pre_feedforward_layernorm`),
        postMlpNorm: rms(`${p}.post_feedforward_layernorm`),
        gate: linear(`${p}.mlp.gate_proj`, inter, d, false),
        up: linear(`${p}.mlp.up_proj`, inter, d, false),
        down: linear(`${p}.mlp.down_proj`, d, inter, false),
      });
      continue;
    }
    if (spec.family === 'phi3') {
      // Phi-3 fuses q, k, v (rows in that order) and gate, up (gate first): split by rows.
      const qkv = tensors.get(`${p}.self_attn.qkv_proj.weight`, [(H + 2 * Hkv) * hd, d]);
      const gateUp = tensors.get(`${p}.mlp.gate_up_proj.weight`, [2 * inter, d]);
      layers.push({
        attnNorm: rms(`${p}.input_layernorm`),
        q: { weight: sliceRows(qkv, 0, H * hd, 'q') },
        k: { weight: sliceRows(qkv, H * hd, Hkv * hd, 'k') },
        v: { weight: sliceRows(qkv, (H + Hkv) * hd, Hkv * hd, 'v') },
        o: linear(`${p}.self_attn.o_proj`, d, H * hd, false),
        mlpNorm: rms(`${p}.post_attention_layernorm`),
        gate: { weight: sliceRows(gateUp, 0, inter, 'gate') },
        up: { weight: sliceRows(gateUp, inter, inter, 'up') },
        down: linear(`${p}.mlp.down_proj`, d, inter, false),
      });
      continue;
    }
    layers.push({
      attnNorm: rms(`${p}.input_layernorm`),
      q: linear(`${p}.self_attn.q_proj`, H * hd, d, spec.qkvBias),
      k: linear(`${p}.self_attn.k_proj`, Hkv * hd, d, spec.qkvBias),
      v: linear(`${p}.self_attn.v_proj`, Hkv * hd, d, spec.qkvBias),
      o: linear(`${p}.self_attn.o_proj`, d, H * hd, spec.outBias),
      ...(spec.qkNorm ? { qNorm: { weight: tensors.get(`${p}.self_attn.q_norm.weight`, [hd]) }, kNorm: { weight: tensors.get(`${p}.self_attn.k_norm.weight`, [hd]) } } : {}),
      mlpNorm: rms(`${p}.post_attention_layernorm`),
      gate: linear(`${p}.mlp.gate_proj`, inter, d, spec.mlpBias),
      up: linear(`${p}.mlp.up_proj`, inter, d, spec.mlpBias),
      down: linear(`${p}.mlp.down_proj`, d, inter, spec.mlpBias),
    });
  }
  const tokenEmbedding = tensors.get('model.embed_tokens.weight', [vocab, d]);
  // With tied embeddings the model ignores any stored lm_head copy, as transformers does.
  const lmHead = spec.tieWordEmbeddings ? tokenEmbedding : tensors.get('lm_head.weight', [vocab, d]);
  return { tokenEmbedding, layers, finalNorm: rms('model.norm'), lmHead };
}

function starcoder2Weights(spec: ModelSpec, tensors: TensorTable): ModelWeights {
  const { hiddenSize: d, intermediateSize: inter, numHeads: H, numKvHeads: Hkv, headDim: hd, vocabSize: vocab } = spec;
  const linear = (name: string, out: number, inDim: number): LinearWeights => ({
    weight: tensors.get(`${name}.weight`, [out, inDim]),
    ...(spec.qkvBias ? { bias: tensors.get(`${name}.bias`, [out]) } : {}),
  });
  const layerNorm = (name: string): NormWeights => ({ weight: tensors.get(`${name}.weight`, [d]), bias: tensors.get(`${name}.bias`, [d]) });
  const layers: LayerWeights[] = [];
  for (let i = 0; i < spec.numLayers; i++) {
    const p = `model.layers.${i}`;
    layers.push({
      attnNorm: layerNorm(`${p}.input_layernorm`),
      q: linear(`${p}.self_attn.q_proj`, H * hd, d),
      k: linear(`${p}.self_attn.k_proj`, Hkv * hd, d),
      v: linear(`${p}.self_attn.v_proj`, Hkv * hd, d),
      o: linear(`${p}.self_attn.o_proj`, d, H * hd),
      mlpNorm: layerNorm(`${p}.post_attention_layernorm`),
      // A plain (not gated) MLP: c_fc, tanh GELU, c_proj; nn.Linear layouts.
      up: linear(`${p}.mlp.c_fc`, inter, d),
      down: linear(`${p}.mlp.c_proj`, d, inter),
    });
  }
  const tokenEmbedding = tensors.get('model.embed_tokens.weight', [vocab, d]);
  const lmHead = spec.tieWordEmbeddings ? tokenEmbedding : tensors.get('lm_head.weight', [vocab, d]);
  return { tokenEmbedding, layers, finalNorm: layerNorm('model.norm'), lmHead };
}

function gpt2Weights(spec: ModelSpec, tensors: TensorTable): ModelWeights {
  const { hiddenSize: d, intermediateSize: inter, vocabSize: vocab } = spec;
  const prefix = tensors.has('transformer.wte.weight') ? 'transformer.' : '';
  const layerNorm = (name: string): NormWeights => ({
    weight: tensors.get(`${prefix}${name}.weight`, [d]),
    bias: tensors.get(`${prefix}${name}.bias`, [d]),
  });
  /** A Conv1D layer: weight stored [in, out], returned as canonical [out, in]. */
  const conv1d = (name: string, inDim: number, out: number): LinearWeights => ({
    weight: transpose(tensors.get(`${prefix}${name}.weight`, [inDim, out])),
    bias: tensors.get(`${prefix}${name}.bias`, [out]),
  });
  const layers: LayerWeights[] = [];
  for (let i = 0; i < spec.numLayers; i++) {
    const p = `h.${i}`;
    const qkv = conv1d(`${p}.attn.c_attn`, d, 3 * d);
    // c_attn's output features are q, then k, then v.
    const [q, k, v] = ['q', 'k', 'v'].map((part, index) => ({
      weight: sliceRows(qkv.weight, index * d, d, part),
      bias: sliceRows(qkv.bias!, index * d, d, part),
    }));
    layers.push({
      attnNorm: layerNorm(`${p}.ln_1`),
      q,
      k,
      v,
      o: conv1d(`${p}.attn.c_proj`, d, d),
      mlpNorm: layerNorm(`${p}.ln_2`),
      up: conv1d(`${p}.mlp.c_fc`, d, inter),
      down: conv1d(`${p}.mlp.c_proj`, inter, d),
    });
  }
  const tokenEmbedding = tensors.get(`${prefix}wte.weight`, [vocab, d]);
  const lmHead = spec.tieWordEmbeddings ? tokenEmbedding : tensors.get('lm_head.weight', [vocab, d]);
  return {
    tokenEmbedding,
    positionEmbedding: tensors.get(`${prefix}wpe.weight`, [spec.maxPositions, d]),
    layers,
    finalNorm: layerNorm('ln_f'),
    lmHead,
  };
}

/** Transposes a 2-D tensor of any dtype, byte-wise. */
function transpose(t: HostTensor): HostTensor {
  const [rows, cols] = t.shape;
  // Nothing to move: a zero-size tensor, or the planning pass's tensor that has no bytes yet.
  if (t.bytes.byteLength === 0) return { name: t.name, shape: [cols, rows], dtype: t.dtype, bytes: t.bytes };
  const width = DTYPE_WIDTH[t.dtype];
  const out = new Uint8Array(t.bytes.byteLength);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const from = (r * cols + c) * width;
      const to = (c * rows + r) * width;
      for (let b = 0; b < width; b++) out[to + b] = t.bytes[from + b];
    }
  }
  return { name: t.name, shape: [cols, rows], dtype: t.dtype, bytes: out };
}

/** Rows [start, start + count) of a tensor (first axis), as a view. */
function sliceRows(t: HostTensor, start: number, count: number, part: string): HostTensor {
  const rowBytes = t.bytes.byteLength / t.shape[0];
  return {
    name: `${t.name} [${part} part]`,
    shape: [count, ...t.shape.slice(1)],
    dtype: t.dtype,
    bytes: t.bytes.subarray(start * rowBytes, (start + count) * rowBytes),
    // Rows of a tensor stored as is are a range of its file too (an engine may still map them).
    ...(t.source ? { source: { file: t.source.file, offset: t.source.offset + start * rowBytes, length: count * rowBytes } } : {}),
  };
}
