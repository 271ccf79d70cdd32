/**
 * Builds the ONNX graphs of a loaded model in memory (no Python, no files). The analysis graph is
 * the transformer forward pass over a block of rows with the attention probabilities computed
 * unfused, and consumed inside the graph by the summaries the editor needs, so that only
 * O(rows * (k + spans)) values per layer and head leave the ONNX Runtime session:
 *
 *   probs[l]        = softmax(q k^T / sqrt(d) + mask)          [H, rows, keys]  (never an output)
 *   top_w, top_i    = TopK(probs[l], k)                        [H, rows, k]
 *   span_mass       = probs[l] x span_indicator                [H, rows, S]
 *   span_mean/max   = mean / max over heads of span_mass       [rows, S]
 *
 * The rows are positions first..first+rows-1; they attend to the keys and values of the positions
 * before them (graph inputs, from earlier blocks or a cached run: zero rows for the first block)
 * and to their own. The engine runs a window as a chain of such blocks, so the n x n intermediates
 * of a whole window never exist at once: memory grows with n x block, not heads x n^2. The causal
 * mask is built inside the graph from the positions; a "hidden range" of keys can be masked for the
 * queries outside it, in the layers a flag input selects: that one graph also serves the causal
 * checks (engine/causal.ts: a knockout is one row with the span hidden; the span effect is a chain of
 * blocks with the span hidden, compared with the run by the small head graph) and exact attention
 * rows (one row at the query, whose post-rotary queries are an output).
 *
 * With value weighting the summaries are taken of probs * norm(v_j W_O^h) instead, divided by the
 * row's total (the renormalisation costs no n x n pass: TopK and the span MatMul run on the
 * unnormalised weights and only their results are divided).
 *
 * Weights keep their file's storage type (F32, F16, BF16) and are cast to float32 by the graph; ONNX
 * Runtime folds those casts once, when the session is created, so compute is float32. The weights
 * travel as external data held in memory (`OnnxGraph.externalData`), not inside the protocol
 * buffer, so no 2 GB protobuf limit applies to the model.
 */
import { hasLocalRope, layerRope, rotaryDimOf } from '../model/rope';
import { onnx } from 'onnx-proto';
import type { HostTensor, LayerWeights, LinearWeights, LoadedModel, ModelSpec, NormWeights } from '../model/modelTypes';
import type { WeightsFile } from './weightsFile';

export const ONNX_OPSET = 17;

/** Names of the graphs' inputs and outputs, shared by the builders and the engine that feeds them. */
export const GRAPH_IO = {
  inputIds: 'input_ids',
  positionIds: 'position_ids',
  ropeCos: 'rope_cos',
  ropeSin: 'rope_sin',
  /** Gemma 3's sliding-window layers' own rotary table (engine/model/rope.ts's layerRope). */
  ropeCosLocal: 'rope_cos_local',
  ropeSinLocal: 'rope_sin_local',
  firstPosition: 'first_position',
  hiddenRange: 'hidden_range',
  hiddenLayers: 'hidden_layers',
  spanIndicator: 'span_indicator',
  topK: 'top_k',
  lastLogits: 'last_logits',
  finalHidden: 'final_hidden',
  topWeights: (layer: number) => `layer${layer}.top_weights`,
  topIndices: (layer: number) => `layer${layer}.top_indices`,
  spanMass: (layer: number) => `layer${layer}.span_mass`,
  spanMassMean: (layer: number) => `layer${layer}.span_mass_mean`,
  spanMassMax: (layer: number) => `layer${layer}.span_mass_max`,
  queries: (layer: number) => `layer${layer}.queries`,
  keys: (layer: number) => `layer${layer}.keys`,
  values: (layer: number) => `layer${layer}.values`,
  pastKeys: (layer: number) => `layer${layer}.past_keys`,
  pastValues: (layer: number) => `layer${layer}.past_values`,
  // The head graph (span effect)
  hidden: 'hidden',
  referenceHidden: 'reference_hidden',
  nextIds: 'next_ids',
  effectKl: 'effect_kl',
  effectDelta: 'effect_delta_log_prob',
} as const;

/**
 * A serialized graph and the weights it refers to as external data: in memory (ONNX Runtime's
 * `externalData` session option), and, when the graph was built on a float32 weights file
 * (weightsFile.ts), in that file; the graph must then be loaded from a file in the same folder.
 */
export interface OnnxGraph {
  readonly name: string;
  readonly model: Uint8Array;
  readonly externalData: readonly { readonly path: string; readonly data: Uint8Array }[];
  readonly weightsFile?: WeightsFile;
}

const { DataType } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

/** Integers become INT attributes; `{ float }` forces a FLOAT one (an epsilon of 1 is still a float). */
type Attribute = number | number[] | string | { readonly float: number } | onnx.ITensorProto;

/** A small graph writer: unique value names, nodes in order, initializers, typed inputs and outputs. */
class GraphWriter {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  readonly externalData: { path: string; data: Uint8Array }[] = [];
  readonly inputs: onnx.IValueInfoProto[] = [];
  readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly initializerNames = new Map<HostTensor, string>();
  private readonly derived = new Map<string, string>();
  private counter = 0;

  /** With a float32 weights file, every weight it holds is referred to there (no Cast, no copy in memory). */
  constructor(private readonly weightsFile?: WeightsFile) {}

  /** Adds a node; returns its output names (one unless `outputs` > 1). */
  op(opType: string, inputs: string[], attributes: Record<string, Attribute> = {}, outputs = 1, outputNames?: string[]): string[] {
    const names = outputNames ?? Array.from({ length: outputs }, () => `${opType.toLowerCase()}_${this.counter++}`);
    this.nodes.push({ opType, input: inputs, output: names, name: `${opType}_${this.counter++}`, attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)) });
    return names;
  }

  /** Single-output op. */
  one(opType: string, inputs: string[], attributes: Record<string, Attribute> = {}, outputName?: string): string {
    return this.op(opType, inputs, attributes, 1, outputName ? [outputName] : undefined)[0];
  }

  /** A constant int64 tensor (shapes, axes, indices). */
  int64(values: readonly number[], name?: string): string {
    const tensor: onnx.ITensorProto = { dims: [values.length], dataType: DataType.INT64, rawData: int64Bytes(values) };
    return this.one('Constant', [], { value: tensor }, name);
  }

  /** A constant float32 scalar. */
  float(value: number): string {
    const tensor: onnx.ITensorProto = { dims: [], dataType: DataType.FLOAT, rawData: new Uint8Array(new Float32Array([value]).buffer) };
    return this.one('Constant', [], { value: tensor });
  }

  /** A weight from the model, as float32 (cast in the graph when stored as F16 or BF16). Shared tensors are stored once. */
  weight(tensor: HostTensor): string {
    let name = this.initializerNames.get(tensor);
    const inFile = name ? undefined : this.weightsFile?.locate(tensor);
    if (!name && inFile) {
      name = `w${this.initializers.length}:${tensor.name}`;
      this.initializerNames.set(tensor, name);
      this.initializers.push({
        name,
        dims: [...tensor.shape],
        dataType: DataType.FLOAT,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: this.weightsFile!.fileName },
          { key: 'offset', value: String(inFile.offset) },
          { key: 'length', value: String(inFile.length) },
        ],
      });
      return name;
    }
    if (!name) {
      name = `w${this.initializers.length}:${tensor.name}`;
      this.initializerNames.set(tensor, name);
      // The bytes stay where the loader put them: the initializer points at them as external data.
      const location = `w${this.initializers.length}.bin`;
      this.externalData.push({ path: location, data: tensor.bytes });
      this.initializers.push({
        name,
        dims: [...tensor.shape],
        dataType: onnxType(tensor),
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: location },
          { key: 'offset', value: '0' },
          { key: 'length', value: String(tensor.bytes.byteLength) },
        ],
      });
      if (tensor.dtype !== 'F32') {
        const cast = this.one('Cast', [name], { to: DataType.FLOAT }, `${name}:f32`);
        this.initializerNames.set(tensor, cast);
        return cast;
      }
    }
    return name;
  }

  /** A value computed once from constants (ONNX Runtime folds it), cached by key. */
  once(key: string, make: () => string): string {
    let name = this.derived.get(key);
    if (!name) {
      name = make();
      this.derived.set(key, name);
    }
    return name;
  }

  input(name: string, dataType: number, dims: (number | string)[]): string {
    this.inputs.push(valueInfo(name, dataType, dims));
    return name;
  }

  output(name: string, dataType: number, dims: (number | string)[]): void {
    this.outputs.push(valueInfo(name, dataType, dims));
  }

  encode(graphName: string): OnnxGraph {
    const proto = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'attention-lens',
      opsetImport: [{ domain: '', version: ONNX_OPSET }],
      graph: { name: graphName, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    });
    return { name: graphName, model: onnx.ModelProto.encode(proto).finish(), externalData: this.externalData, weightsFile: this.weightsFile };
  }
}

/** What one head group's attention hands to the summaries: probabilities and the expanded values. */
interface AttentionProbs {
  /** [heads, rows, keys] */
  readonly probs: string;
  /** [heads, keys, hd], grouped-query heads already expanded. */
  readonly values: string;
}



/** The model seen by the graph builders: spec, weights and the shared sub-graphs. */
class ModelGraph {
  readonly s: ModelSpec;
  readonly H: number;
  readonly Hkv: number;
  readonly hd: number;
  readonly groups: number;

  constructor(
    readonly g: GraphWriter,
    readonly model: LoadedModel,
  ) {
    this.s = model.spec;
    this.H = this.s.numHeads;
    this.Hkv = this.s.numKvHeads;
    this.hd = this.s.headDim;
    this.groups = this.H / this.Hkv;
  }

  /** Token (and learned position) embeddings of `ids`: [rows, d]. */
  embed(ids: string, positions?: string): string {
    const g = this.g;
    const x = g.one('Gather', [g.weight(this.model.weights.tokenEmbedding), ids], { axis: 0 });
    if (this.s.positional !== 'learned') return x;
    return g.one('Add', [x, g.one('Gather', [g.weight(this.model.weights.positionEmbedding!), positions!], { axis: 0 })]);
  }

  /** y = x W^T + b with W in nn.Linear's [out, in] layout. x: [rows, in]. */
  linear(x: string, weights: LinearWeights): string {
    const inputs = [x, this.g.weight(weights.weight)];
    if (weights.bias) inputs.push(this.g.weight(weights.bias));
    return this.g.one('Gemm', inputs, { transB: 1 });
  }

  normalize(x: string, weights: NormWeights): string {
    const g = this.g;
    if (this.s.norm === 'layer') {
      return g.one('LayerNormalization', [x, g.weight(weights.weight), g.weight(weights.bias!)], { axis: -1, epsilon: { float: this.s.normEps } });
    }
    return this.rmsNorm(x, weights);
  }

  /** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * weight (also Qwen3's per-head q/k norm on [heads, rows, hd]). */
  rmsNorm(x: string, weights: NormWeights): string {
    const g = this.g;
    const meanSquare = g.one('ReduceMean', [g.one('Mul', [x, x])], { axes: [-1], keepdims: 1 });
    const rms = g.one('Sqrt', [g.one('Add', [meanSquare, g.once(`eps`, () => g.float(this.s.normEps))])]);
    return g.one('Mul', [g.one('Div', [x, rms]), g.weight(weights.weight)]);
  }

  /** [rows, heads * hd] -> [heads, rows, hd]. */
  /** A graph input of cached keys or values, sequence-first [past, Hkv, hd], as [Hkv, past, hd]. */
  pastHeadsFirst(name: string): string {
    return this.g.one('Transpose', [this.g.input(name, DataType.FLOAT, ['past', this.Hkv, this.hd])], { perm: [1, 0, 2] });
  }

  headsFirst(flat: string, heads: number): string {
    const g = this.g;
    return g.one('Transpose', [g.one('Reshape', [flat, g.once(`shape-heads-${heads}`, () => g.int64([-1, heads, this.hd]))])], { perm: [1, 0, 2] });
  }

  /**
   * HF rotate-half RoPE: x * cos + cat(-x2, x1) * sin on the first rotaryDim dimensions of each head
   * (the rest pass through: partial rotary), with cos/sin [rows, rotaryDim] broadcast over heads.
   */
  rope(t: string, cos: string, sin: string): string {
    const g = this.g;
    const rotary = rotaryDimOf(this.s);
    const half = rotary / 2;
    const [rot, pass] = rotary < this.hd ? g.op('Split', [t, g.once('split-rotary', () => g.int64([rotary, this.hd - rotary]))], { axis: 2 }, 2) : [t, undefined];
    const [x1, x2] = g.op('Split', [rot, g.once('split-halves', () => g.int64([half, half]))], { axis: 2 }, 2);
    const rotated = g.one('Concat', [g.one('Neg', [x2]), x1], { axis: 2 });
    const turned = g.one('Add', [g.one('Mul', [rot, cos]), g.one('Mul', [rotated, sin])]);
    return pass ? g.one('Concat', [turned, pass], { axis: 2 }) : turned;
  }

  /** [Hkv, rows, hd] -> [H, rows, hd]: query head h reads KV head floor(h / groups). */
  expandKv(t: string): string {
    if (this.groups === 1) return t;
    const g = this.g;
    const grouped = g.one('Unsqueeze', [t, g.once('axis-1', () => g.int64([1]))]);
    const expanded = g.one('Expand', [grouped, g.once('kv-groups', () => g.int64([1, this.groups, 1, 1]))]);
    return g.one('Reshape', [expanded, g.once('shape-expanded', () => g.int64([this.H, -1, this.hd]))]);
  }

  /** [H, rows, hd] -> [rows, H * hd]. */
  mergeHeads(t: string): string {
    const g = this.g;
    return g.one('Reshape', [g.one('Transpose', [t], { perm: [1, 0, 2] }), g.once('shape-merged', () => g.int64([-1, this.H * this.hd]))]);
  }

  /** The MLP half of a layer, with its residual. */
  mlp(x: string, layer: LayerWeights): string {
    const g = this.g;
    const m = this.normalize(x, layer.mlpNorm);
    const up = this.linear(m, layer.up);
    let activated: string;
    if (layer.gate && this.s.gateActivation === 'gelu_tanh') {
      activated = g.one('Mul', [this.geluTanh(this.linear(m, layer.gate)), up]);
    } else if (layer.gate) {
      const gate = this.linear(m, layer.gate);
      activated = g.one('Mul', [g.one('Mul', [gate, g.one('Sigmoid', [gate])]), up]);
    } else {
      activated = this.geluTanh(up);
    }
    const down = this.linear(activated, layer.down);
    // Gemma normalises the MLP output before the residual add.
    return g.one('Add', [x, layer.postMlpNorm ? this.rmsNorm(down, layer.postMlpNorm) : down]);
  }

  /** GPT-2's gelu_new (PyTorch's tanh GELU): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
  geluTanh(x: string): string {
    const g = this.g;
    const cube = g.one('Mul', [g.one('Mul', [x, x]), x]);
    const inner = g.one('Mul', [g.one('Add', [x, g.one('Mul', [cube, g.float(0.044715)])]), g.float(Math.sqrt(2 / Math.PI))]);
    const onePlusTanh = g.one('Add', [g.one('Tanh', [inner]), g.float(1)]);
    return g.one('Mul', [g.one('Mul', [x, onePlusTanh]), g.float(0.5)]);
  }

  /** 1/sqrt(hd), applied to q ([H, rows, hd]) rather than to the scores ([H, rows, keys]). */
  scale(): string {
    return this.g.once('scale', () => this.g.float(1 / Math.sqrt(this.hd)));
  }

  /**
   * One full layer over all n positions with an additive mask [n, n]. `name` names its q, k, v
   * outputs (the analysis graph exposes them).
   *
   * Attention runs one key/value head at a time, with the query heads that share it: each group's
   * [groups, n, n] scores and probabilities are consumed before the next group's are made, so
   * ONNX Runtime reuses the same buffers and the n x n intermediates stay a fraction of H x n x n
   * (at n = 2048 with 8 heads in 4 groups, 96 MiB instead of 384 MiB, and not once per layer).
   * `perGroup` turns each group's probabilities into per-head tensors (leading axis: heads); they
   * come back concatenated over all heads, by name.
   */
  layer(
    l: number,
    x: string,
    mask: string,
    rope: { cos: string; sin: string } | undefined,
    options: {
      name?: (what: 'queries' | 'keys' | 'values') => string;
      /** Per head: named outputs (leading axis heads), and the float tensors whose computation consumes the probabilities. */
      perGroup?: (a: AttentionProbs & { readonly firstHead: number }) => { outputs: Record<string, string>; consumed: string[] };
      /**
       * Cached post-rotary keys and values of earlier positions ([Hkv, past, hd]): the rows of `x`
       * are the positions after them and attend to them first (an incremental prefill).
       */
      past?: { readonly keys: string; readonly values: string };
    } = {},
  ): { x: string; perHead: Record<string, string> } {
    const g = this.g;
    const layer = this.model.weights.layers[l];
    const h = this.normalize(x, layer.attnNorm);
    let q = this.headsFirst(this.linear(h, layer.q), this.H);
    let k = this.headsFirst(this.linear(h, layer.k), this.Hkv);
    const v = this.headsFirst(this.linear(h, layer.v), this.Hkv);
    // Qwen3: each head's q and k normalised over head_dim before the rotation.
    if (layer.qNorm) q = this.rmsNorm(q, layer.qNorm);
    if (layer.kNorm) k = this.rmsNorm(k, layer.kNorm);
    // SmolLM3's NoPE layers attend without any rotation.
    if (rope && this.s.ropeLayers?.[l] !== false) {
      q = this.rope(q, rope.cos, rope.sin);
      k = this.rope(k, rope.cos, rope.sin);
    }
    if (options.name) {
      // The run's state for later exact rows, knockouts and incremental runs, sequence-first
      // ([n, heads, hd]) so that a prefix of it is a prefix of the array (no copy to reuse it).
      g.one('Transpose', [q], { perm: [1, 0, 2] }, options.name('queries'));
      g.one('Transpose', [k], { perm: [1, 0, 2] }, options.name('keys'));
      g.one('Transpose', [v], { perm: [1, 0, 2] }, options.name('values'));
    }
    // One key/value head at a time: the query heads that share it ([groups, n, hd]) against its keys
    // ([1, n, hd], broadcast), so grouped-query attention never expands keys or values.
    // ONNX Runtime runs nodes in a topological order of its own, which may compute every group's (and
    // every layer's) scores before any of their consumers run, keeping all H x L n x n buffers alive
    // at once (gigabytes at n = 2048). A zero-valued scalar that depends on a group's consumers is
    // added to the next group's queries (and to the layer's output): an ordering barrier, so each
    // group's probabilities are consumed and their buffers reused before the next group's are made.
    const kvHeads = this.Hkv;
    const split = (t: string, size: number) => (kvHeads === 1 ? [t] : g.op('Split', [t, g.once(`split-by-${size}`, () => g.int64(Array.from({ length: kvHeads }, () => size)))], { axis: 0 }, kvHeads));
    const allKeys = options.past ? g.one('Concat', [options.past.keys, k], { axis: 1 }) : k;
    const allValues = options.past ? g.one('Concat', [options.past.values, v], { axis: 1 }) : v;
    const qs = split(g.one('Mul', [q, this.scale()]), this.groups);
    const kTs = split(g.one('Transpose', [allKeys], { perm: [0, 2, 1] }), 1);
    const vs = split(allValues, 1);
    const attended: string[] = [];
    const perHead: Record<string, string[]> = {};
    let barrier: string | undefined;
    for (let i = 0; i < kvHeads; i++) {
      const query = barrier ? g.one('Add', [qs[i], barrier]) : qs[i];
      const probs = g.one('Softmax', [g.one('Add', [this.softcap(g.one('MatMul', [query, kTs[i]]), this.s.attentionSoftcap), mask])], { axis: -1 });
      const group = options.perGroup?.({ probs, values: vs[i], firstHead: i * this.groups });
      for (const [key, value] of Object.entries(group?.outputs ?? {})) (perHead[key] ??= []).push(value);
      const out = g.one('MatMul', [probs, vs[i]]);
      attended.push(out);
      const consumed = [out, ...(group?.consumed ?? [])].map((t) => g.one('ReduceSum', [t], { keepdims: 0 }));
      barrier = g.one('Mul', [consumed.reduce((a, b) => g.one('Add', [a, b])), g.once('zero', () => g.float(0))]);
    }
    const concat = (parts: string[]) => (parts.length === 1 ? parts[0] : g.one('Concat', parts, { axis: 0 }));
    const merged = this.mergeHeads(concat(attended));
    const projected = this.linear(merged, layer.o);
    // Gemma normalises the attention output before the residual add.
    const attendedOut = layer.postAttnNorm ? this.rmsNorm(projected, layer.postAttnNorm) : projected;
    const out = g.one('Add', [this.mlp(g.one('Add', [x, attendedOut]), layer), barrier!]);
    return { x: out, perHead: Object.fromEntries(Object.entries(perHead).map(([key, parts]) => [key, concat(parts)])) };
  }

  /**
   * norm(v_j W_O^h) per head and key, for one key/value group at a time: (values [1, n, hd] of the
   * group, its first query head) -> [groups, 1, n].
   */
  valueNormsBy(l: number): (values: string, firstHead: number) => string {
    const g = this.g;
    const o = this.model.weights.layers[l].o.weight; // [d, H * hd]
    const d = this.s.hiddenSize;
    // [d, H*hd] -> [d, H, hd] -> [H, hd, d]: head h's slice of W_O, transposed (folded at load).
    const perHead = g.one('Transpose', [g.one('Reshape', [g.weight(o), g.int64([d, this.H, this.hd])])], { perm: [1, 2, 0] });
    return (values, firstHead) => {
      const heads = this.groups;
      const slice = g.one('Slice', [perHead, g.int64([firstHead]), g.int64([firstHead + heads]), g.int64([0])]);
      const written = g.one('MatMul', [values, slice]); // [heads, n, d]
      return g.one('Transpose', [g.one('ReduceL2', [written], { axes: [-1], keepdims: 1 })], { perm: [0, 2, 1] });
    };
  }

  /** The final norm of the residual stream. */
  finalNorm(x: string): string {
    return this.normalize(x, this.model.weights.finalNorm);
  }

  /** [rows, d] (normed) -> [rows, vocab]. */
  logits(normed: string): string {
    return this.softcap(this.g.one('Gemm', [normed, this.g.weight(this.model.weights.lmHead)], { transB: 1 }), this.s.logitSoftcap);
  }

  /** Gemma 2's soft-capping, cap x tanh(x / cap); x itself without a cap. */
  softcap(x: string, cap: number | undefined): string {
    if (!cap) return x;
    const g = this.g;
    return g.one('Mul', [g.one('Tanh', [g.one('Mul', [x, g.float(1 / cap)])]), g.float(cap)]);
  }

  /**
   * The inputs of a block of rows: ids, positions or rotary tables (of these rows' positions), and
   * the additive masks of every layer, built here from first_position (the position of the first
   * row, = the number of earlier keys), hidden_range ([start, end) of keys hidden from the queries
   * outside it) and hidden_layers (1 where a layer applies the hidden range). Returns the ids, the
   * positions/rope inputs and `maskOf(layer)`: [rows, keys] with 0 where a query may attend, -inf
   * elsewhere.
   */
  blockInputs(): { ids: string; positions?: string; ropeOf: (layer: number) => { cos: string; sin: string } | undefined; maskOf: (layer: number) => string } {
    const g = this.g;
    const ids = g.input(GRAPH_IO.inputIds, DataType.INT64, ['rows']);
    const first = g.input(GRAPH_IO.firstPosition, DataType.INT64, [1]);
    const range = g.input(GRAPH_IO.hiddenRange, DataType.INT64, [2]);
    const hiddenLayers = g.input(GRAPH_IO.hiddenLayers, DataType.INT64, [this.s.numLayers]);
    const scalar = (t: string) => g.one('Reshape', [t, g.once('shape-scalar', () => g.int64([]))]);
    const one = g.once('int-one', () => scalar(g.int64([1])));
    const rows = scalar(g.one('Shape', [ids]));
    const firstScalar = scalar(first);
    const keysCount = g.one('Add', [firstScalar, rows]);
    const keyPositions = g.one('Unsqueeze', [g.one('Range', [scalar(g.int64([0])), keysCount, one]), g.int64([0])]); // [1, keys]
    const queryPositions = g.one('Unsqueeze', [g.one('Range', [firstScalar, keysCount, one]), g.int64([1])]); // [rows, 1]
    const future = g.one('Greater', [keyPositions, queryPositions]); // [rows, keys]
    const [hiddenStart, hiddenEnd] = g.op('Split', [range, g.int64([1, 1])], { axis: 0 }, 2); // [1] each
    const keyHidden = g.one('And', [g.one('GreaterOrEqual', [keyPositions, hiddenStart]), g.one('Less', [keyPositions, hiddenEnd])]); // [1, keys]
    const queryOutside = g.one('Or', [g.one('Less', [queryPositions, hiddenStart]), g.one('GreaterOrEqual', [queryPositions, hiddenEnd])]); // [rows, 1]
    const withHidden = g.one('Or', [future, g.one('And', [keyHidden, queryOutside])]);
    const blocked = g.float(-Infinity);
    const open = g.float(0);
    // [2, rows, keys] per sliding window (0: none): plain (0) or hidden (1); a layer picks one by its flag.
    const masksFor = new Map<number, string>();
    const masksOfWindow = (window: number): string => {
      let both = masksFor.get(window);
      if (!both) {
        let plainBlocked = future;
        let hiddenBlocked = withHidden;
        if (window > 0) {
          // A query sees itself and the window - 1 keys before it (transformers' kv > q - window).
          const tooFar = g.one('GreaterOrEqual', [g.one('Sub', [queryPositions, keyPositions]), g.int64([window])]); // [rows, keys]
          plainBlocked = g.one('Or', [future, tooFar]);
          hiddenBlocked = g.one('Or', [withHidden, tooFar]);
        }
        const plain = g.one('Where', [plainBlocked, blocked, open]);
        const hidden = g.one('Where', [hiddenBlocked, blocked, open]);
        both = g.one('Concat', [g.one('Unsqueeze', [plain, g.int64([0])]), g.one('Unsqueeze', [hidden, g.int64([0])])], { axis: 0 });
        masksFor.set(window, both);
      }
      return both;
    };
    const maskOf = (layer: number) =>
      g.one('Gather', [masksOfWindow(this.s.slidingWindow?.[layer] ?? 0), scalar(g.one('Gather', [hiddenLayers, g.int64([layer])], { axis: 0 }))], { axis: 0 });
    if (this.s.positional === 'learned') return { ids, positions: g.input(GRAPH_IO.positionIds, DataType.INT64, ['rows']), ropeOf: () => undefined, maskOf };
    const rotary = rotaryDimOf(this.s);
    const rope = { cos: g.input(GRAPH_IO.ropeCos, DataType.FLOAT, ['rows', rotary]), sin: g.input(GRAPH_IO.ropeSin, DataType.FLOAT, ['rows', rotary]) };
    const local = hasLocalRope(this.s) ? { cos: g.input(GRAPH_IO.ropeCosLocal, DataType.FLOAT, ['rows', rotary]), sin: g.input(GRAPH_IO.ropeSinLocal, DataType.FLOAT, ['rows', rotary]) } : undefined;
    return { ids, ropeOf: (layer) => (local && layerRope(this.s, layer) !== this.s ? local : rope), maskOf };
  }
}

export interface AnalysisGraphOptions {
  /** Summaries of value-weighted attention instead of the probabilities. */
  readonly valueWeighted?: boolean;
  /** The float32 weights file the graph refers to for the weights (weightsFile.ts). */
  readonly weightsFile?: WeightsFile;
}

/**
 * The analysis graph (see the module comment). Inputs: input_ids [rows], rope_cos/rope_sin
 * [rows, hd] (or position_ids [rows]), first_position [1], hidden_range [2], hidden_layers [L],
 * span_indicator [keys, max(1, S)], top_k [1], per layer past_keys and past_values
 * [first, Hkv, hd] (sequence-first). Outputs cover the rows: last_logits [vocab] (of the last row),
 * final_hidden [rows, d] (normed), per layer the summaries and the rows' post-rotary queries
 * [rows, H, hd], keys and values [rows, Hkv, hd].
 */
export function buildAnalysisModel(model: LoadedModel, options: AnalysisGraphOptions = {}): OnnxGraph {
  const g = new GraphWriter(options.weightsFile);
  const m = new ModelGraph(g, model);
  const { s, H, Hkv, hd } = m;
  const inputs = m.blockInputs();
  const indicator = g.input(GRAPH_IO.spanIndicator, DataType.FLOAT, ['keys', 'spans']);
  const topK = g.input(GRAPH_IO.topK, DataType.INT64, [1]);

  let x = m.embed(inputs.ids, inputs.positions);
  for (let l = 0; l < s.numLayers; l++) {
    const norms = options.valueWeighted ? m.valueNormsBy(l) : undefined;
    const past = { keys: m.pastHeadsFirst(GRAPH_IO.pastKeys(l)), values: m.pastHeadsFirst(GRAPH_IO.pastValues(l)) };
    const layer = m.layer(l, x, inputs.maskOf(l), inputs.ropeOf(l), {
      past,
      name: (what) => GRAPH_IO[what](l),
      perGroup: ({ probs, values, firstHead }) => {
        // The summaries: what leaves the session instead of the [H, rows, keys] probabilities.
        let weights = probs;
        let rowTotal: string | undefined;
        if (norms) {
          weights = g.one('Mul', [probs, norms(values, firstHead)]);
          rowTotal = g.one('ReduceSum', [weights, g.once('last-axis', () => g.int64([-1]))], { keepdims: 1 }); // [heads, rows, 1]
        }
        const normalise = (t: string) => (rowTotal ? g.one('Div', [t, rowTotal]) : t);
        const [topValues, topIndices] = g.op('TopK', [weights, topK], { axis: -1, largest: 1, sorted: 1 }, 2);
        const spanMass = normalise(g.one('MatMul', [weights, indicator]));
        const topWeights = normalise(topValues);
        return { outputs: { topWeights, topIndices, spanMass }, consumed: [topWeights, spanMass] };
      },
    });
    x = layer.x;
    g.one('Identity', [layer.perHead.topWeights], {}, GRAPH_IO.topWeights(l));
    g.one('Cast', [layer.perHead.topIndices], { to: DataType.INT32 }, GRAPH_IO.topIndices(l));
    const spanMass = g.one('Identity', [layer.perHead.spanMass], {}, GRAPH_IO.spanMass(l));
    g.one('ReduceMean', [spanMass], { axes: [0], keepdims: 0 }, GRAPH_IO.spanMassMean(l));
    g.one('ReduceMax', [spanMass], { axes: [0], keepdims: 0 }, GRAPH_IO.spanMassMax(l));
  }
  const normed = g.one('Identity', [m.finalNorm(x)], {}, GRAPH_IO.finalHidden);
  // Logits of the last row only: [1, d] -> [vocab].
  const last = g.one('Slice', [normed, g.int64([-1]), g.int64([Number.MAX_SAFE_INTEGER]), g.int64([0])]);
  g.one('Reshape', [m.logits(last), g.int64([-1])], {}, GRAPH_IO.lastLogits);

  g.output(GRAPH_IO.lastLogits, DataType.FLOAT, [s.vocabSize]);
  g.output(GRAPH_IO.finalHidden, DataType.FLOAT, ['rows', s.hiddenSize]);
  for (let l = 0; l < s.numLayers; l++) {
    g.output(GRAPH_IO.topWeights(l), DataType.FLOAT, [H, 'rows', 'k']);
    g.output(GRAPH_IO.topIndices(l), DataType.INT32, [H, 'rows', 'k']);
    g.output(GRAPH_IO.spanMass(l), DataType.FLOAT, [H, 'rows', 'spans']);
    g.output(GRAPH_IO.spanMassMean(l), DataType.FLOAT, ['rows', 'spans']);
    g.output(GRAPH_IO.spanMassMax(l), DataType.FLOAT, ['rows', 'spans']);
    g.output(GRAPH_IO.queries(l), DataType.FLOAT, ['rows', H, hd]);
    g.output(GRAPH_IO.keys(l), DataType.FLOAT, ['rows', Hkv, hd]);
    g.output(GRAPH_IO.values(l), DataType.FLOAT, ['rows', Hkv, hd]);
  }
  return g.encode(options.valueWeighted ? `${s.architecture}-value-weighted` : s.architecture);
}

/**
 * The head graph of the span effect: the LM head on the rows' final normed hidden states with the
 * span hidden (hidden [rows, d]) and on the run's (reference_hidden [rows, d]), compared per row:
 * effect_kl [rows] = KL(p_full || p_hidden), effect_delta_log_prob [rows] = log p_hidden(next) -
 * log p_full(next) for next_ids [rows] (any id at the last position; the caller ignores it). Its only
 * weight is the LM head.
 */
export function buildHeadModel(model: LoadedModel, weightsFile?: WeightsFile): OnnxGraph {
  const g = new GraphWriter(weightsFile);
  const m = new ModelGraph(g, model);
  const { s } = m;
  const hidden = g.input(GRAPH_IO.hidden, DataType.FLOAT, ['rows', s.hiddenSize]);
  const reference = g.input(GRAPH_IO.referenceHidden, DataType.FLOAT, ['rows', s.hiddenSize]);
  const nextIds = g.input(GRAPH_IO.nextIds, DataType.INT64, ['rows']);
  const logFull = g.one('LogSoftmax', [m.logits(reference)], { axis: -1 });
  const logHidden = g.one('LogSoftmax', [m.logits(hidden)], { axis: -1 });
  const lastAxis = g.int64([-1]);
  g.one('ReduceSum', [g.one('Mul', [g.one('Exp', [logFull]), g.one('Sub', [logFull, logHidden])]), lastAxis], { keepdims: 0 }, GRAPH_IO.effectKl);
  const next = g.one('Unsqueeze', [nextIds, lastAxis]);
  const picked = (logProbs: string) => g.one('GatherElements', [logProbs, next], { axis: 1 });
  g.one('Reshape', [g.one('Sub', [picked(logHidden), picked(logFull)]), lastAxis], {}, GRAPH_IO.effectDelta);
  g.output(GRAPH_IO.effectKl, DataType.FLOAT, ['rows']);
  g.output(GRAPH_IO.effectDelta, DataType.FLOAT, ['rows']);
  return g.encode(`${s.architecture}-head`);
}

/** Bytes of every distinct weight tensor in its file dtype (tied embeddings counted once). */
export function totalWeightBytes(model: LoadedModel): number {
  let total = 0;
  for (const t of distinctWeights(model)) total += t.bytes.byteLength;
  return total;
}

/** Values in every distinct weight tensor (tied embeddings counted once). */
export function totalWeightElements(model: LoadedModel): number {
  let total = 0;
  for (const t of distinctWeights(model)) total += t.shape.reduce((a, b) => a * b, 1);
  return total;
}

/** Every distinct weight tensor of the model (tied embeddings once), in the order the graphs use them. */
export function distinctWeights(model: LoadedModel): Set<HostTensor> {
  const seen = new Set<HostTensor>();
  const add = (t?: HostTensor) => {
    if (t) seen.add(t);
  };
  const w = model.weights;
  add(w.tokenEmbedding);
  add(w.positionEmbedding);
  add(w.lmHead);
  add(w.finalNorm.weight);
  add(w.finalNorm.bias);
  for (const layer of w.layers) {
    for (const n of [layer.attnNorm, layer.qNorm, layer.kNorm, layer.postAttnNorm, layer.mlpNorm, layer.postMlpNorm]) {
      add(n?.weight);
      add(n?.bias);
    }
    for (const lin of [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]) {
      add(lin?.weight);
      add(lin?.bias);
    }
  }
  return seen;
}

function onnxType(tensor: HostTensor): number {
  switch (tensor.dtype) {
    case 'F32':
      return DataType.FLOAT;
    case 'F16':
      return DataType.FLOAT16;
    case 'BF16':
      return DataType.BFLOAT16;
  }
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

function attribute(name: string, value: Attribute): onnx.IAttributeProto {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value };
  }
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  return { name, type: AttributeType.TENSOR, t: value };
}

function int64Bytes(values: readonly number[]): Uint8Array {
  const out = new BigInt64Array(values.length);
  values.forEach((v, i) => (out[i] = BigInt(v)));
  return new Uint8Array(out.buffer);
}
