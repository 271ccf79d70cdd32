/**
 * The model's layers as WGSL dispatches: what each architecture computes, in one place for the
 * WebGPU engine (as onnxGraph.ts is for ONNX Runtime). Every model-specific branch of the GPU forward
 * pass lives here: the norm (RMSNorm or LayerNorm), Qwen3/Gemma's per-head q/k norms, the rotary
 * embedding (partial rotary, NoPE layers, Gemma 3's local table chosen by the caller), sliding
 * windows in the scores, Gemma's post-norms, the MLP (SwiGLU, GeGLU or GELU), value norms. The
 * engine (gpuEngine.ts) owns buffers, row blocks, caching, submissions and readback, and calls these
 * to encode the work of some rows of a layer into a compute pass.
 */
import type { ModelSpec } from '../model/modelTypes';
import { layerRope, rotaryDimOf } from '../model/rope';
import type { DeviceLinear, DeviceMatrix, DeviceNorm, DeviceWeights } from './deviceWeights';
import { type Binding, type KernelConstants, type KernelLibrary, type KernelName, WORKGROUP_SIZE, dispatch, grid1d } from './kernels';

/** Which family of attention and linear kernels runs: workgroup tiles for GPUs, registers for CPU-backed adapters. */
export type KernelVariant = 'tiled' | 'register';

/** The temporaries of the output projection and the MLP for some rows: whole buffers or row ranges of them. */
export interface LayerWorkRows {
  readonly h: Binding;            // [rows, hidden]
  readonly attended: Binding;     // [rows, heads * head_dim]
  readonly projected: Binding;    // [rows, hidden]
  readonly up: Binding;           // [rows, intermediate]
  readonly gate?: Binding;        // [rows, intermediate], SwiGLU only
}

/** Keys hidden from later queries in the span effect's pass. */
export interface ScoreMask {
  readonly pipeline: GPUComputePipeline;
  readonly queryStart: number;
  readonly keyStart: number;
  readonly keyEnd: number;
}

/** The kernels of value-weighted summaries, resolved when a run asks for them. */
export interface ValuePipelines {
  readonly norms: GPUComputePipeline;
  readonly normsF16: GPUComputePipeline;
  readonly weighting: GPUComputePipeline;
}

/** The kernels one run needs, resolved before encoding starts. */
export interface Pipelines {
  readonly embedding: GPUComputePipeline;
  readonly embeddingF16: GPUComputePipeline;
  readonly add: GPUComputePipeline;
  readonly copyBlock: GPUComputePipeline;
  readonly norm: GPUComputePipeline;
  readonly linear: GPUComputePipeline;
  readonly linearF16: GPUComputePipeline;
  readonly rope: GPUComputePipeline;
  readonly scores: GPUComputePipeline;
  readonly output: GPUComputePipeline;
  readonly activation: GPUComputePipeline;
  readonly topK: GPUComputePipeline;
  readonly spanMass: GPUComputePipeline;
  readonly headReduce: GPUComputePipeline;
  /** Qwen3's per-head q/k RMSNorm; only for models with spec.qkNorm. */
  readonly headNorm?: GPUComputePipeline;
  /** Gemma 2's logit soft-capping; only for models with spec.logitSoftcap. */
  readonly softcap?: GPUComputePipeline;
}

/** Encodes the layers of one model on one device (weights uploaded, kernels compiled on first use). */
export class LayerOps {
  constructor(
    private readonly device: GPUDevice,
    private readonly kernels: KernelLibrary,
    private readonly spec: ModelSpec,
    private readonly weights: DeviceWeights,
    private readonly variant: KernelVariant,
    /** A zero buffer bound where a kernel's optional input (a bias) is absent. */
    private readonly zeros: GPUBuffer,
  ) {}

  /** The rotary table layer l turns by: Gemma 3's sliding-window layers have one of their own (`local`). */
  rotaryTable<T>(l: number, global: T, local: T | undefined): T {
    return local !== undefined && layerRope(this.spec, l) !== this.spec ? local : global;
  }

  /** The kernels of value-weighted summaries (built on first use, then cached). */
  async valuePipelines(): Promise<ValuePipelines> {
    const [norms, normsF16, weighting] = await Promise.all([
      this.kernels.pipeline('value_norms', { WORKGROUP_SIZE, WEIGHT_F16: 0 }),
      this.kernels.pipeline('value_norms', { WORKGROUP_SIZE, WEIGHT_F16: 1 }),
      this.kernels.pipeline('value_weighting', { WORKGROUP_SIZE }),
    ]);
    return { norms, normsF16, weighting };
  }

  /**
   * normSquares[h, j] = ||v_j W_O^h||^2 for the heads reading one group of KV heads, over every
   * row chunk of W_O (the first chunk writes, the rest add).
   */
  valueNorms(pass: GPUComputePassEncoder, vw: ValuePipelines, o: DeviceLinear, v: GPUBuffer, normSquares: GPUBuffer, n: number, group: { start: number; count: number }): void {
    const s = this.spec;
    const ratio = s.numHeads / s.numKvHeads;
    const w = o.weight;
    w.chunks.forEach((chunk, index) => {
      const params = this.kernels.uniform([n, s.numHeads, s.numKvHeads, s.headDim, chunk.rowCount, index > 0 ? 1 : 0, group.start * ratio, group.count * ratio, group.start, group.count]);
      dispatch(this.device, pass, w.f16 ? vw.normsF16 : vw.norms, [params, v, chunk.buffer, normSquares], grid1d(group.count * ratio * n));
    });
  }

  /** Layer l's attention inputs: h = norm(x), then q, k, v of `rows` rows, rotated by cosSin's rows. */
  encodeProjections(
    pass: GPUComputePassEncoder,
    p: Pipelines,
    l: number,
    x: Binding,
    h: Binding,
    q: Binding,
    k: Binding,
    v: Binding,
    rows: number,
    cosSin: Binding | undefined,
  ): void {
    const s = this.spec;
    const layerWeights = this.weights.layers[l];
    this.normalize(pass, p, layerWeights.attnNorm, x, h, rows);
    this.linear(pass, p, layerWeights.q, h, q, rows);
    this.linear(pass, p, layerWeights.k, h, k, rows);
    this.linear(pass, p, layerWeights.v, h, v, rows);
    // Qwen3: each head's q and k normalised over head_dim, in place, before the rotation.
    if (layerWeights.qNorm && layerWeights.kNorm && p.headNorm) {
      dispatch(this.device, pass, p.headNorm, [this.kernels.uniform([rows * s.numHeads, s.headDim], [s.normEps]), q, layerWeights.qNorm.weight], grid1d(rows * s.numHeads));
      dispatch(this.device, pass, p.headNorm, [this.kernels.uniform([rows * s.numKvHeads, s.headDim], [s.normEps]), k, layerWeights.kNorm.weight], grid1d(rows * s.numKvHeads));
    }
    // SmolLM3's NoPE layers attend without any rotation.
    if (cosSin && s.ropeLayers?.[l] !== false) {
      const rotary = rotaryDimOf(s);
      const half = rotary / 2;
      dispatch(this.device, pass, p.rope, [this.kernels.uniform([rows, s.numHeads, s.headDim, rotary]), q, cosSin], grid1d(rows * s.numHeads * half));
      dispatch(this.device, pass, p.rope, [this.kernels.uniform([rows, s.numKvHeads, s.headDim, rotary]), k, cosSin], grid1d(rows * s.numKvHeads * half));
    }
  }

  /** The rest of layer l after attention: x += attended W_O^T, then x += MLP(norm(x)), for `rows` rows. */
  encodeLayerTail(pass: GPUComputePassEncoder, p: Pipelines, l: number, x: Binding, work: LayerWorkRows, rows: number): void {
    const s = this.spec;
    const d = s.hiddenSize;
    const inter = s.intermediateSize;
    const layerWeights = this.weights.layers[l];
    this.linear(pass, p, layerWeights.o, work.attended, work.projected, rows);
    // Gemma normalises the attention output (and below the MLP output) before the residual add; h
    // is free then (the projections and the MLP's input have consumed it).
    if (layerWeights.postAttnNorm) this.normalize(pass, p, layerWeights.postAttnNorm, work.projected, work.h, rows);
    dispatch(this.device, pass, p.add, [this.kernels.uniform([rows * d]), x, layerWeights.postAttnNorm ? work.h : work.projected], grid1d(rows * d));
    this.normalize(pass, p, layerWeights.mlpNorm, x, work.h, rows);
    this.linear(pass, p, layerWeights.up, work.h, work.up, rows);
    if (work.gate && layerWeights.gate) {
      this.linear(pass, p, layerWeights.gate, work.h, work.gate, rows);
      dispatch(this.device, pass, p.activation, [this.kernels.uniform([rows * inter]), work.gate, work.up], grid1d(rows * inter));
      this.linear(pass, p, layerWeights.down, work.gate, work.projected, rows);
    } else {
      dispatch(this.device, pass, p.activation, [this.kernels.uniform([rows * inter]), work.up], grid1d(rows * inter));
      this.linear(pass, p, layerWeights.down, work.up, work.projected, rows);
    }
    if (layerWeights.postMlpNorm) this.normalize(pass, p, layerWeights.postMlpNorm, work.projected, work.h, rows);
    dispatch(this.device, pass, p.add, [this.kernels.uniform([rows * d]), x, layerWeights.postMlpNorm ? work.h : work.projected], grid1d(rows * d));
  }

  /** Resolves every pipeline one run needs (cached after the first run). */
  async pipelines(topK: number): Promise<Pipelines> {
    const s = this.spec;
    const wg = { WORKGROUP_SIZE };
    const get = (name: KernelName, constants: KernelConstants = wg) => this.kernels.pipeline(name, constants);
    const linearName: KernelName = this.variant === 'tiled' ? 'linear_tiled' : 'linear_register';
    const linearConstants = (f16: boolean): KernelConstants =>
      this.variant === 'tiled' ? { WEIGHT_F16: f16 ? 1 : 0 } : { WORKGROUP_SIZE, WEIGHT_F16: f16 ? 1 : 0 };
    const [embedding, embeddingF16, add, copyBlock, norm, linear, linearF16, rope, scores, output, activation, topKPipeline, spanMass, headReduce] =
      await Promise.all([
        get('embedding', { WORKGROUP_SIZE, WEIGHT_F16: 0 }),
        get('embedding', { WORKGROUP_SIZE, WEIGHT_F16: 1 }),
        get('add'),
        get('copy_block'),
        get(s.norm === 'rms' ? 'rmsnorm' : 'layernorm'),
        get(linearName, linearConstants(false)),
        get(linearName, linearConstants(true)),
        get('rope'),
        this.variant === 'tiled' ? get('attention_scores_tiled', { HEAD_DIM: s.headDim }) : get('attention_scores_register'),
        get('attention_output'),
        get(s.mlp === 'swiglu' ? (s.gateActivation === 'gelu_tanh' ? 'gelu_mul' : 'silu_mul') : 'gelu'),
        get('topk', { WORKGROUP_SIZE, TOP_K: topK }),
        get('span_mass'),
        get('head_reduce'),
      ]);
    const headNorm = s.qkNorm ? await get('head_rmsnorm') : undefined;
    const softcap = s.logitSoftcap ? await get('softcap') : undefined;
    return { embedding, embeddingF16, add, copyBlock, norm, linear, linearF16, rope, scores, output, activation, topK: topKPipeline, spanMass, headReduce, ...(headNorm ? { headNorm } : {}), ...(softcap ? { softcap } : {}) };
  }

  /** The LM head: logits [rows, vocab] = normed W^T, soft-capped where the model caps them (Gemma 2). */
  logits(pass: GPUComputePassEncoder, p: Pipelines, lmHead: DeviceMatrix, normed: Binding, logits: GPUBuffer, rows: number): void {
    this.linear(pass, p, { weight: lmHead }, normed, logits, rows);
    if (p.softcap && this.spec.logitSoftcap) {
      const count = rows * this.spec.vocabSize;
      dispatch(this.device, pass, p.softcap, [this.kernels.uniform([count], [this.spec.logitSoftcap]), logits], grid1d(count));
    }
  }

  embed(pass: GPUComputePassEncoder, p: Pipelines, ids: GPUBuffer, out: GPUBuffer, n: number): void {
    const table = this.weights.tokenEmbedding;
    const pipeline = table.f16 ? p.embeddingF16 : p.embedding;
    for (const chunk of table.chunks) {
      const params = this.kernels.uniform([n, table.cols, chunk.rowStart, chunk.rowCount]);
      dispatch(this.device, pass, pipeline, [params, ids, chunk.buffer, out], grid1d(n * table.cols));
    }
  }

  normalize(pass: GPUComputePassEncoder, p: Pipelines, weights: DeviceNorm, input: Binding, out: Binding, rows: number): void {
    const s = this.spec;
    const params = this.kernels.uniform([rows, s.hiddenSize], [s.normEps]);
    const buffers = s.norm === 'rms' ? [params, input, weights.weight, out] : [params, input, weights.weight, weights.bias ?? this.zeros, out];
    dispatch(this.device, pass, p.norm, buffers, [Math.ceil(rows / WORKGROUP_SIZE)]);
  }

  /** y[rows, out] = x W^T + b, one dispatch per row chunk of W. */
  linear(pass: GPUComputePassEncoder, p: Pipelines, layer: DeviceLinear, input: Binding, out: Binding, rows: number): void {
    const w: DeviceMatrix = layer.weight;
    const pipeline = w.f16 ? p.linearF16 : p.linear;
    for (const chunk of w.chunks) {
      const params = this.kernels.uniform([rows, w.cols, w.rows, chunk.rowStart, chunk.rowCount, layer.bias ? 1 : 0]);
      const groups: [number, number] =
        this.variant === 'tiled'
          ? [Math.ceil(chunk.rowCount / 64), Math.ceil(rows / 64)]
          : [Math.ceil(chunk.rowCount / 4 / WORKGROUP_SIZE), Math.ceil(rows / 4)];
      dispatch(this.device, pass, pipeline, [params, input, chunk.buffer, layer.bias ?? this.zeros, out], groups);
    }
  }

  /**
   * Probabilities of heads head0.. and queries query0.. into probs [headCount, queryCount, n], with
   * q holding the rows from qRowStart and k the KV heads of `group`. With a mask, the span effect's
   * masked kernel runs instead.
   */
  scores(
    pass: GPUComputePassEncoder,
    p: Pipelines,
    q: GPUBuffer,
    qRowStart: number,
    k: GPUBuffer,
    group: { start: number; count: number },
    probs: GPUBuffer,
    n: number,
    head0: number,
    headCount: number,
    query0: number,
    queryCount: number,
    window: number,
    mask?: ScoreMask,
  ): void {
    const s = this.spec;
    const block = [n, head0, headCount, query0, queryCount, s.numHeads, s.numKvHeads, s.headDim];
    const split = [qRowStart, group.start, group.count];
    const scale = [1 / Math.sqrt(s.headDim), s.attentionSoftcap ?? 0];
    if (mask) {
      const params = this.kernels.uniform([...block, mask.queryStart, mask.keyStart, mask.keyEnd, ...split, window], scale);
      dispatch(this.device, pass, mask.pipeline, [params, q, k, probs], grid1d(headCount * queryCount));
      return;
    }
    const groups: [number, number] =
      this.variant === 'tiled' ? [Math.ceil(queryCount / 16), headCount] : grid1d(headCount * queryCount);
    dispatch(this.device, pass, p.scores, [this.kernels.uniform([...block, ...split, window], scale), q, k, probs], groups);
  }
}
