/**
 * Builds the ONNX graph of a loaded model in memory (no Python, no files): the transformer forward
 * pass with the attention probabilities computed unfused, and consumed inside the graph by the
 * summaries the editor needs, so that only O(n * (k + spans)) values per layer and head leave the
 * ONNX Runtime session:
 *
 *   probs[l]        = softmax(q k^T / sqrt(d) + mask)          [H, n, n]   (never an output)
 *   top_w, top_i    = TopK(probs[l], k)                        [H, n, k]
 *   span_mass       = probs[l] x span_indicator                [H, n, S]
 *   span_mean/max   = mean / max over heads of span_mass       [n, S]
 *
 * Weights keep their file's storage type (F32, F16, BF16) as initializers and are cast to float32 by
 * the graph; ONNX Runtime folds those casts once, when the session is created, so compute is float32.
 * Graph inputs carry what changes per run: the token ids, the position ids (learned positions) or
 * the rotary cos/sin tables (RoPE), the additive attention mask, the span indicator and k.
 *
 * Also output per layer, for exact rows and later reuse: the post-rotary queries [H, n, hd], keys
 * and values [Hkv, n, hd] (keys and values not yet expanded over query-head groups).
 */
import { onnx } from 'onnx-proto';
import type { HostTensor, LinearWeights, LoadedModel, ModelSpec, NormWeights } from '../model/modelTypes';

export const ONNX_OPSET = 17;

/** Names of the graph's inputs and outputs, shared by the builder and the engine that feeds it. */
export const GRAPH_IO = {
  inputIds: 'input_ids',
  positionIds: 'position_ids',
  ropeCos: 'rope_cos',
  ropeSin: 'rope_sin',
  mask: 'attention_mask',
  spanIndicator: 'span_indicator',
  topK: 'top_k',
  lastLogits: 'last_logits',
  topWeights: (layer: number) => `layer${layer}.top_weights`,
  topIndices: (layer: number) => `layer${layer}.top_indices`,
  spanMass: (layer: number) => `layer${layer}.span_mass`,
  spanMassMean: (layer: number) => `layer${layer}.span_mass_mean`,
  spanMassMax: (layer: number) => `layer${layer}.span_mass_max`,
  queries: (layer: number) => `layer${layer}.queries`,
  keys: (layer: number) => `layer${layer}.keys`,
  values: (layer: number) => `layer${layer}.values`,
} as const;

/**
 * Protocol buffers cannot encode a message over 2 GiB; the graph carries every weight, so larger
 * models cannot be built in memory.
 */
export const MAX_GRAPH_WEIGHT_BYTES = 2_000_000_000;

const { DataType } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

/** Integers become INT attributes; `{ float }` forces a FLOAT one (an epsilon of 1 is still a float). */
type Attribute = number | number[] | string | { readonly float: number } | onnx.ITensorProto;

/** A small graph writer: unique value names, nodes in order, initializers, typed inputs and outputs. */
class GraphWriter {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  readonly inputs: onnx.IValueInfoProto[] = [];
  readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly initializerNames = new Map<HostTensor, string>();
  private counter = 0;
  weightBytes = 0;

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
    if (!name) {
      name = `w${this.initializers.length}:${tensor.name}`;
      this.initializerNames.set(tensor, name);
      this.initializers.push({ name, dims: [...tensor.shape], dataType: onnxType(tensor), rawData: tensor.bytes });
      this.weightBytes += tensor.bytes.byteLength;
      if (tensor.dtype !== 'F32') {
        const cast = this.one('Cast', [name], { to: DataType.FLOAT }, `${name}:f32`);
        this.initializerNames.set(tensor, cast);
        return cast;
      }
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
}

/** The model's forward graph as a serialized ONNX ModelProto. Throws when the weights exceed what protobuf can hold. */
export function buildOnnxModel(model: LoadedModel): Uint8Array {
  const g = new GraphWriter();
  const s = model.spec;
  const w = model.weights;
  const total = totalWeightBytes(model);
  if (total > MAX_GRAPH_WEIGHT_BYTES) {
    throw new Error(
      `${model.origin}: ${(total / 1e9).toFixed(2)} GB of weights is more than an in-memory ONNX graph can hold (2 GB); use the WebGPU backend for this model.`,
    );
  }
  const H = s.numHeads;
  const Hkv = s.numKvHeads;
  const hd = s.headDim;
  const groups = H / Hkv;

  const ids = g.input(GRAPH_IO.inputIds, DataType.INT64, ['n']);
  const mask = g.input(GRAPH_IO.mask, DataType.FLOAT, ['n', 'n']);
  const indicator = g.input(GRAPH_IO.spanIndicator, DataType.FLOAT, ['n', 'spans']);
  const topK = g.input(GRAPH_IO.topK, DataType.INT64, [1]);
  let cos = '';
  let sin = '';
  let x = g.one('Gather', [g.weight(w.tokenEmbedding), ids], { axis: 0 });
  if (s.positional === 'learned') {
    const positions = g.input(GRAPH_IO.positionIds, DataType.INT64, ['n']);
    x = g.one('Add', [x, g.one('Gather', [g.weight(w.positionEmbedding!), positions], { axis: 0 })]);
  } else {
    cos = g.input(GRAPH_IO.ropeCos, DataType.FLOAT, ['n', hd]);
    sin = g.input(GRAPH_IO.ropeSin, DataType.FLOAT, ['n', hd]);
  }
  const scale = g.float(1 / Math.sqrt(hd));
  const headsShape = (heads: number) => g.int64([-1, heads, hd]);
  const toHeadsFirst = (flat: string, heads: number) => g.one('Transpose', [g.one('Reshape', [flat, headsShape(heads)])], { perm: [1, 0, 2] });
  const rope = (t: string) => {
    // HF rotate-half: x * cos + cat(-x2, x1) * sin, with cos/sin [n, hd] broadcast over heads.
    const [x1, x2] = g.op('Split', [t, g.int64([hd / 2, hd / 2])], { axis: 2 }, 2);
    const rotated = g.one('Concat', [g.one('Neg', [x2]), x1], { axis: 2 });
    return g.one('Add', [g.one('Mul', [t, cos]), g.one('Mul', [rotated, sin])]);
  };
  /** [Hkv, n, hd] -> [H, n, hd]: query head h reads KV head floor(h / groups). */
  const expandKv = (t: string) => {
    if (groups === 1) return t;
    const grouped = g.one('Unsqueeze', [t, g.int64([1])]);
    const expanded = g.one('Expand', [grouped, g.int64([1, groups, 1, 1])]);
    return g.one('Reshape', [expanded, g.int64([H, -1, hd])]);
  };

  for (let l = 0; l < s.numLayers; l++) {
    const layer = w.layers[l];
    const h = normalize(g, s, x, layer.attnNorm);
    let q = toHeadsFirst(linear(g, h, layer.q), H);
    let k = toHeadsFirst(linear(g, h, layer.k), Hkv);
    const v = g.one('Identity', [toHeadsFirst(linear(g, h, layer.v), Hkv)], {}, GRAPH_IO.values(l));
    if (s.positional === 'rope') {
      q = rope(q);
      k = rope(k);
    }
    q = g.one('Identity', [q], {}, GRAPH_IO.queries(l));
    k = g.one('Identity', [k], {}, GRAPH_IO.keys(l));
    // Scaling q ([H, n, hd]) rather than the scores ([H, n, n]) saves one n x n tensor per head.
    const scores = g.one('MatMul', [g.one('Mul', [q, scale]), g.one('Transpose', [expandKv(k)], { perm: [0, 2, 1] })]);
    const probs = g.one('Softmax', [g.one('Add', [scores, mask])], { axis: -1 });

    // The summaries: what leaves the session instead of the [H, n, n] probabilities.
    const [, topIndices64] = g.op('TopK', [probs, topK], { axis: -1, largest: 1, sorted: 1 }, 2, [GRAPH_IO.topWeights(l), `layer${l}.top_indices_i64`]);
    g.one('Cast', [topIndices64], { to: DataType.INT32 }, GRAPH_IO.topIndices(l));
    const spanMass = g.one('MatMul', [probs, indicator], {}, GRAPH_IO.spanMass(l));
    g.one('ReduceMean', [spanMass], { axes: [0], keepdims: 0 }, GRAPH_IO.spanMassMean(l));
    g.one('ReduceMax', [spanMass], { axes: [0], keepdims: 0 }, GRAPH_IO.spanMassMax(l));

    const attended = g.one('MatMul', [probs, expandKv(v)]);
    const merged = g.one('Reshape', [g.one('Transpose', [attended], { perm: [1, 0, 2] }), g.int64([-1, H * hd])]);
    x = g.one('Add', [x, linear(g, merged, layer.o)]);

    const m = normalize(g, s, x, layer.mlpNorm);
    const up = linear(g, m, layer.up);
    let activated: string;
    if (layer.gate) {
      const gate = linear(g, m, layer.gate);
      activated = g.one('Mul', [g.one('Mul', [gate, g.one('Sigmoid', [gate])]), up]);
    } else {
      activated = geluTanh(g, up);
    }
    x = g.one('Add', [x, linear(g, activated, layer.down)]);
  }

  // Logits of the last position only: [1, d] -> [vocab].
  const last = g.one('Slice', [x, g.int64([-1]), g.int64([Number.MAX_SAFE_INTEGER]), g.int64([0])]);
  const normed = normalize(g, s, last, w.finalNorm);
  const logits = g.one('Gemm', [normed, g.weight(w.lmHead)], { transB: 1 });
  g.one('Reshape', [logits, g.int64([-1])], {}, GRAPH_IO.lastLogits);

  g.output(GRAPH_IO.lastLogits, DataType.FLOAT, [s.vocabSize]);
  for (let l = 0; l < s.numLayers; l++) {
    g.output(GRAPH_IO.topWeights(l), DataType.FLOAT, [H, 'n', 'k']);
    g.output(GRAPH_IO.topIndices(l), DataType.INT32, [H, 'n', 'k']);
    g.output(GRAPH_IO.spanMass(l), DataType.FLOAT, [H, 'n', 'spans']);
    g.output(GRAPH_IO.spanMassMean(l), DataType.FLOAT, ['n', 'spans']);
    g.output(GRAPH_IO.spanMassMax(l), DataType.FLOAT, ['n', 'spans']);
    g.output(GRAPH_IO.queries(l), DataType.FLOAT, [H, 'n', hd]);
    g.output(GRAPH_IO.keys(l), DataType.FLOAT, [Hkv, 'n', hd]);
    g.output(GRAPH_IO.values(l), DataType.FLOAT, [Hkv, 'n', hd]);
  }

  const proto = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'attention-lens',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    graph: { name: s.architecture, node: g.nodes, initializer: g.initializers, input: g.inputs, output: g.outputs },
  });
  return onnx.ModelProto.encode(proto).finish();
}

/** Bytes of every distinct weight tensor (tied embeddings counted once). */
export function totalWeightBytes(model: LoadedModel): number {
  const seen = new Set<HostTensor>();
  const add = (t?: HostTensor) => t && seen.add(t);
  const w = model.weights;
  add(w.tokenEmbedding);
  add(w.positionEmbedding);
  add(w.lmHead);
  add(w.finalNorm.weight);
  add(w.finalNorm.bias);
  for (const layer of w.layers) {
    for (const n of [layer.attnNorm, layer.mlpNorm]) {
      add(n.weight);
      add(n.bias);
    }
    for (const lin of [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]) {
      add(lin?.weight);
      add(lin?.bias);
    }
  }
  let total = 0;
  for (const t of seen) total += t.bytes.byteLength;
  return total;
}

/** y = x W^T + b with W in nn.Linear's [out, in] layout. x: [n, in]. */
function linear(g: GraphWriter, x: string, weights: LinearWeights): string {
  const inputs = [x, g.weight(weights.weight)];
  if (weights.bias) inputs.push(g.weight(weights.bias));
  return g.one('Gemm', inputs, { transB: 1 });
}

function normalize(g: GraphWriter, s: ModelSpec, x: string, weights: NormWeights): string {
  if (s.norm === 'layer') {
    return g.one('LayerNormalization', [x, g.weight(weights.weight), g.weight(weights.bias!)], { axis: -1, epsilon: { float: s.normEps } });
  }
  // RMSNorm: x / sqrt(mean(x^2) + eps) * weight.
  const meanSquare = g.one('ReduceMean', [g.one('Mul', [x, x])], { axes: [-1], keepdims: 1 });
  const rms = g.one('Sqrt', [g.one('Add', [meanSquare, g.float(s.normEps)])]);
  return g.one('Mul', [g.one('Div', [x, rms]), g.weight(weights.weight)]);
}

/** GPT-2's gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
function geluTanh(g: GraphWriter, x: string): string {
  const cube = g.one('Mul', [g.one('Mul', [x, x]), x]);
  const inner = g.one('Mul', [g.one('Add', [x, g.one('Mul', [cube, g.float(0.044715)])]), g.float(Math.sqrt(2 / Math.PI))]);
  const onePlusTanh = g.one('Add', [g.one('Tanh', [inner]), g.float(1)]);
  return g.one('Mul', [g.one('Mul', [x, onePlusTanh]), g.float(0.5)]);
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
