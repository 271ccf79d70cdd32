/**
 * The WebGPU engine: the model's forward pass in WGSL kernels, with the exact attention
 * probabilities summarised on the device. The same code runs in the webview (navigator.gpu) and in
 * Node (npm `webgpu`, see engine/hosts/nodeWebGpu.ts): it is built from a GPUDevice, the adapter's
 * description and a LoadedModel.
 *
 * Invariant: the attention tensor [layers, heads, n, n] never leaves the device. Each layer's
 * probabilities are computed into a scratch buffer block by block (heads x queries, sized to the
 * storage-binding limit), consumed by P·V and by the summary kernels (top-k, span masses), and
 * overwritten by the next block. The host reads back only the summaries and the last position's
 * logits: n * (2k + spans) numbers per (layer, head), never n * n.
 *
 * Each layer's post-rope Q and K stay resident, so attentionRow() recomputes one exact row with the
 * same scores kernel the forward pass used. Each layer's V and the final residual stream stay too,
 * for the causal checks (engine/causal.ts): knockout() recomputes only the query's row, one variant
 * per span, against the cached keys and values; spanEffect() runs one masked pass and compares each
 * later position's next-token distribution with the run's on the device, reading back two numbers
 * per position.
 *
 * Value-weighted summaries (Kobayashi et al. 2020) rescale each probability block by the norms of
 * what the keys write through W_O after P·V has consumed it, just before the summary kernels.
 *
 * Timing: the summary kernels run in their own compute passes between the forward pass's blocks.
 * With `timestamp-query` their GPU time is measured and reported as summaryMs (plus the readback's
 * wall time); forwardMs is the rest of the wall time. Without timestamps summaryMs is the readback
 * alone and forwardMs includes the summary kernels.
 */
import type { AdapterSummary, AttentionRequest, AttentionSummary, BackendInfo, ForwardResult, TokenSpan } from '../attention';
import { compareNextToken, knockedPositions, logSoftmax, topTokens, validateKnockout, validateSpanEffect, type KnockoutRequest, type KnockoutResult, type SpanEffectResult, type SpanKnockout, type TokenEffect } from '../causal';
import type { AttentionEngine } from '../engine';
import type { LoadedModel, ModelSpec } from '../model/modelTypes';
import { type DeviceLinear, type DeviceMatrix, type DeviceNorm, type DeviceWeights, destroyWeights, uploadWeights } from './deviceWeights';
import { type KernelConstants, KernelLibrary, type KernelName, WORKGROUP_SIZE, dispatch, grid1d } from './kernels';
import { MAX_TIMED_PASSES, PassTimer } from './passTimer';
import { throwIfAborted, validateAttentionRequest, validateRowRequest, validateTokenIds } from '../requestChecks';

export type KernelVariant = 'tiled' | 'register';

export interface GpuEngineOptions {
  /** Kernel family; by default 'register' on CPU-backed adapters and 'tiled' on GPUs. */
  readonly kernelVariant?: KernelVariant;
  /** Weight storage: 'auto' (default) stores f16 when the device has `shader-f16`, else f32. */
  readonly weightFormat?: 'auto' | 'f32' | 'f16';
  /**
   * Caps the bytes one storage binding may see, below the device's own limit. Probabilities and
   * weights are split to fit; tests set a tiny cap to exercise the splitting on small inputs.
   */
  readonly maxBindingBytes?: number;
}

/** Device memory the engine holds, for benchmarks and logs. */
export interface GpuMemoryStats {
  readonly weightBytes: number;
  readonly scratchBytes: number;
  readonly totalBytes: number;
}

/** How one layer's probabilities are split into blocks of heads x queries. */
interface BlockPlan {
  readonly headsPerBlock: number;
  readonly queriesPerBlock: number;
}

/** The per-layer summary buffers of one summarised layer. */
interface LayerSummaryBuffers {
  readonly topIndices: GPUBuffer;   // [H, n, k] i32
  readonly topWeights: GPUBuffer;   // [H, n, k] f32
  readonly spanMass: GPUBuffer;     // [H, n, S] f32
  readonly spanMean: GPUBuffer;     // [n, S] f32
  readonly spanMax: GPUBuffer;      // [n, S] f32
  readonly staging: GPUBuffer;      // the five above, back to back, mappable
}

/** The most recent run, for attentionRow() and the causal checks. */
interface LastRun {
  readonly n: number;
  readonly tokenIds: Int32Array;
  /** The residual stream after the last layer, [n, hidden] (the run's scratch buffer, kept until the next run). */
  readonly hidden: GPUBuffer;
}

/** One layer's temporaries for `rows` rows: they hold nothing between layers. */
interface LayerWork {
  readonly h: GPUBuffer;          // [rows, hidden]
  readonly attended: GPUBuffer;   // [rows, heads * head_dim]
  readonly projected: GPUBuffer;  // [rows, hidden]
  readonly up: GPUBuffer;         // [rows, intermediate]
  readonly gate?: GPUBuffer;      // [rows, intermediate], SwiGLU only
}

/** The kernels of value-weighted summaries, resolved when a run asks for them. */
interface ValuePipelines {
  readonly norms: GPUComputePipeline;
  readonly normsF16: GPUComputePipeline;
  readonly weighting: GPUComputePipeline;
}

/** The kernels one run needs, resolved before encoding starts. */
interface Pipelines {
  readonly embedding: GPUComputePipeline;
  readonly embeddingF16: GPUComputePipeline;
  readonly add: GPUComputePipeline;
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
}

const MAX_HEAD_DIM = 256;
/**
 * Largest probability block by default: the smallest storage-binding limit seen (lavapipe). Larger
 * blocks save no time worth the memory: a [9, 4096, 4096] layer would take 604 MB in one block.
 */
const DEFAULT_PROBABILITY_BLOCK_BYTES = 128 * 1024 * 1024;
const TILED_SCORES_KEYS = 16;
/** Largest logits block of the span effect: rows x vocabulary, two of them (full and changed). */
const LOGITS_BLOCK_BYTES = 32 * 1024 * 1024;
/** The residual stream of the last run; only runNow() may use this scratch label. */
const RUN_RESIDUAL_LABEL = 'residual [n, hidden]';

/** Describes a GPUAdapter in the project's shared form. */
export function summarizeAdapter(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacy = adapter as GPUAdapter & { isFallbackAdapter?: boolean };
  const limits = adapter.limits;
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    isFallbackAdapter: !!(info.isFallbackAdapter ?? legacy.isFallbackAdapter) || isSoftwareAdapterName(info),
    features: [...adapter.features].sort(),
    limits: {
      maxBufferSize: limits.maxBufferSize,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    },
  };
}

function isSoftwareAdapterName(info: GPUAdapterInfo): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return /swiftshader|llvmpipe|lavapipe|softpipe|warp|microsoft basic render/i.test(text);
}

/** The kernel family that suits an adapter: CPU-backed adapters run register-blocked kernels faster. */
export function defaultKernelVariant(adapter: AdapterSummary): KernelVariant {
  return adapter.isFallbackAdapter ? 'register' : 'tiled';
}

export class GpuEngine implements AttentionEngine {
  readonly spec: ModelSpec;
  readonly backend: BackendInfo;
  private readonly kernels: KernelLibrary;
  private readonly scratch = new Map<string, GPUBuffer>();
  private readonly layerQ: (GPUBuffer | undefined)[] = [];
  private readonly layerK: (GPUBuffer | undefined)[] = [];
  private readonly layerV: (GPUBuffer | undefined)[] = [];
  private readonly summaryBuffers: LayerSummaryBuffers[] = [];
  private readonly bindingBudget: number;
  private readonly zeros: GPUBuffer;
  private timer?: PassTimer;
  private lastRun?: LastRun;
  private deviceError?: Error;
  private intentionalDestroy = false;
  private disposed = false;
  /** Runs and row requests are serialised: they share scratch buffers and the device's error scopes. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly device: GPUDevice,
    adapter: AdapterSummary,
    model: LoadedModel,
    private readonly weights: DeviceWeights,
    private readonly variant: KernelVariant,
    bindingBudget: number,
  ) {
    this.spec = model.spec;
    this.bindingBudget = bindingBudget;
    this.backend = { kind: 'webgpu', adapter, f16Storage: weights.anyF16, kernelVariant: variant };
    this.kernels = new KernelLibrary(device);
    this.zeros = device.createBuffer({ label: 'zeros (absent bias)', size: 16, usage: GPUBufferUsage.STORAGE });
    device.lost.then((info) => {
      if (this.intentionalDestroy) return;
      this.deviceError = new Error(
        `The GPU device was lost (${info.reason}): ${info.message || 'no detail'}. Reopen the analysis to start a new device.`,
      );
    });
    device.addEventListener('uncapturederror', (event) => {
      const message = (event as GPUUncapturedErrorEvent).error.message;
      this.deviceError ??= new Error(`WebGPU reported an error: ${message}`);
    });
  }

  /** Uploads the weights and builds the kernels. The engine owns `device` and destroys it on dispose. */
  static async create(device: GPUDevice, adapter: AdapterSummary, model: LoadedModel, options: GpuEngineOptions = {}): Promise<GpuEngine> {
    const spec = model.spec;
    if (spec.headDim > MAX_HEAD_DIM || spec.headDim % 2 !== 0) {
      throw new Error(`head size ${spec.headDim} is not supported by the WebGPU kernels (even sizes up to ${MAX_HEAD_DIM})`);
    }
    if (spec.numHeads % spec.numKvHeads !== 0) {
      throw new Error(`${spec.numHeads} query heads cannot share ${spec.numKvHeads} key/value heads evenly`);
    }
    let variant = options.kernelVariant ?? defaultKernelVariant(adapter);
    const tiledScoresBytes = (TILED_SCORES_KEYS * spec.headDim + 256) * 4;
    if (variant === 'tiled' && tiledScoresBytes > device.limits.maxComputeWorkgroupStorageSize) variant = 'register';
    const bindingBudget = Math.min(device.limits.maxStorageBufferBindingSize, options.maxBindingBytes ?? Infinity);
    const format = options.weightFormat ?? 'auto';
    const f16 = format === 'f16' || (format === 'auto' && device.features.has('shader-f16'));

    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    const weights = uploadWeights(device, model, { f16, maxBindingBytes: bindingBudget });
    const validation = await device.popErrorScope();
    const outOfMemory = await device.popErrorScope();
    const failure = outOfMemory ?? validation;
    if (failure) {
      destroyWeights(weights);
      device.destroy();
      throw new Error(`Uploading the weights of ${model.origin} to the GPU failed: ${failure.message}`);
    }
    const engine = new GpuEngine(device, adapter, model, weights, variant, bindingBudget);
    try {
      await engine.pipelines(1);
    } catch (error) {
      engine.dispose();
      throw error;
    }
    return engine;
  }

  run(request: AttentionRequest, signal?: AbortSignal): Promise<ForwardResult> {
    return this.serialised(() => this.runNow(request, signal));
  }

  attentionRow(layer: number, head: number, query: number): Promise<Float32Array> {
    return this.serialised(() => this.attentionRowNow(layer, head, query));
  }

  knockout(request: KnockoutRequest, signal?: AbortSignal): Promise<KnockoutResult> {
    return this.serialised(() => this.knockoutNow(request, signal));
  }

  spanEffect(span: TokenSpan, signal?: AbortSignal): Promise<SpanEffectResult> {
    return this.serialised(() => this.spanEffectNow(span, signal));
  }

  /** Device memory held now: resident weights plus scratch, summary and staging buffers. */
  memoryStats(): GpuMemoryStats {
    let scratchBytes = this.kernels.uniformBufferBytes + this.zeros.size + (this.timer?.bytes ?? 0);
    for (const buffer of this.scratch.values()) scratchBytes += buffer.size;
    for (const buffer of [...this.layerQ, ...this.layerK, ...this.layerV]) scratchBytes += buffer?.size ?? 0;
    for (const set of this.summaryBuffers) {
      for (const buffer of Object.values(set) as GPUBuffer[]) scratchBytes += buffer.size;
    }
    return { weightBytes: this.weights.bytes, scratchBytes, totalBytes: this.weights.bytes + scratchBytes };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.intentionalDestroy = true;
    this.releaseScratch();
    destroyWeights(this.weights);
    this.zeros.destroy();
    this.kernels.dispose();
    this.device.destroy();
  }

  private serialised<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task, task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async runNow(request: AttentionRequest, signal?: AbortSignal): Promise<ForwardResult> {
    this.checkUsable();
    const s = this.spec;
    const tokenIds = validateTokenIds(request.tokenIds, s);
    const n = tokenIds.length;
    const layers = validateAttentionRequest(request, n, s);
    const spans = request.spans;
    const numSpans = spans.length;
    const k = request.topK;
    const layerIndexOf = new Map(layers.map((layer, index) => [layer, index]));
    throwIfAborted(signal);

    const p = await this.pipelines(k);
    const vw = request.weighting === 'valueWeighted' ? await this.valuePipelines() : undefined;
    const forwardStart = now();
    this.kernels.trimUniforms();
    this.lastRun = undefined;

    // Allocation failures (out of memory) inside the scopes become this run's error.
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    let scopesOpen = true;
    const popScopes = async (): Promise<GPUError | null> => {
      if (!scopesOpen) return null;
      scopesOpen = false;
      const validation = await this.device.popErrorScope();
      const outOfMemory = await this.device.popErrorScope();
      return outOfMemory ?? validation;
    };
    try {
      const H = s.numHeads;
      const d = s.hiddenSize;
      const qWidth = s.numHeads * s.headDim;
      const kvWidth = s.numKvHeads * s.headDim;
      const f = 4;
      const x = this.buffer(RUN_RESIDUAL_LABEL, n * d * f);
      const work = this.layerWork(n);
      const normSquares = vw ? this.buffer('value norms squared [heads, n]', H * n * f) : undefined;
      const ids = this.buffer('token ids [n]', n * 4);
      this.device.queue.writeBuffer(ids, 0, Uint32Array.from(tokenIds));
      const cosSin = s.positional === 'rope' ? this.buffer('rope cos/sin [n, head_dim / 2, 2]', n * s.headDim * f) : undefined;
      if (cosSin) this.device.queue.writeBuffer(cosSin, 0, ropeTable(n, s.headDim, s.ropeTheta));
      const spanBuffer = this.buffer('spans [S, 2]', numSpans * 8);
      if (numSpans > 0) {
        this.device.queue.writeBuffer(spanBuffer, 0, Uint32Array.from(spans.flatMap((span) => [span.start, span.end])));
      }
      const plan = this.planBlocks(n);
      const probs = this.buffer('probabilities block [heads, queries, n]', plan.headsPerBlock * plan.queriesPerBlock * n * f);
      const summaryLayouts = layers.map((_, index) => this.summaryBuffersFor(index, n, k, numSpans));
      const blocksPerLayer = Math.ceil(H / plan.headsPerBlock) * Math.ceil(n / plan.queriesPerBlock);
      const timer = this.passTimer(layers.length * (blocksPerLayer + 1));

      // Embedding (+ learned positions).
      let encoder = this.device.createCommandEncoder({ label: 'embedding' });
      let pass = encoder.beginComputePass({ label: 'embedding' });
      this.embed(pass, p, ids, x, n);
      if (this.weights.positionEmbedding) {
        dispatch(this.device, pass, p.add, [this.kernels.uniform([n * d]), x, this.weights.positionEmbedding], grid1d(n * d));
      }
      pass.end();
      this.device.queue.submit([encoder.finish()]);

      let previousLayerDone: Promise<void> | undefined;
      for (let l = 0; l < s.numLayers; l++) {
        const layerWeights = this.weights.layers[l];
        const q = this.layerBuffer(this.layerQ, `layer ${l} q [n, heads * head_dim]`, l, n * qWidth * f);
        const kBuf = this.layerBuffer(this.layerK, `layer ${l} k [n, kv_heads * head_dim]`, l, n * kvWidth * f);
        const v = this.layerBuffer(this.layerV, `layer ${l} v [n, kv_heads * head_dim]`, l, n * kvWidth * f);
        encoder = this.device.createCommandEncoder({ label: `layer ${l}` });
        pass = encoder.beginComputePass({ label: `layer ${l}` });
        this.encodeProjections(pass, p, l, x, work.h, q, kBuf, v, n, cosSin);
        const layerIndex = layerIndexOf.get(l);
        const summary = layerIndex === undefined ? undefined : summaryLayouts[layerIndex];
        if (summary && vw && normSquares) this.valueNorms(pass, vw, layerWeights.o, v, normSquares, n);
        for (let head0 = 0; head0 < H; head0 += plan.headsPerBlock) {
          const headCount = Math.min(plan.headsPerBlock, H - head0);
          for (let query0 = 0; query0 < n; query0 += plan.queriesPerBlock) {
            const queryCount = Math.min(plan.queriesPerBlock, n - query0);
            const block = [n, head0, headCount, query0, queryCount];
            this.scores(pass, p, q, kBuf, probs, n, head0, headCount, query0, queryCount);
            const blockParams = this.kernels.uniform([...block, s.numHeads, s.numKvHeads, s.headDim]);
            dispatch(this.device, pass, p.output, [blockParams, probs, v, work.attended], grid1d(headCount * queryCount * s.headDim));
            if (summary) {
              // Summaries run in their own pass so that timestamp queries can time them.
              pass.end();
              const summaryPass = encoder.beginComputePass({ label: `layer ${l} summaries`, timestampWrites: timer?.nextPass() });
              if (vw && normSquares) {
                // P·V has consumed the probabilities; from here on the block holds the value-weighted rows.
                dispatch(this.device, summaryPass, vw.weighting, [this.kernels.uniform(block), probs, normSquares], grid1d(headCount * queryCount));
              }
              dispatch(this.device, summaryPass, p.topK, [this.kernels.uniform(block), probs, summary.topIndices, summary.topWeights], grid1d(headCount * queryCount));
              if (numSpans > 0) {
                dispatch(this.device, summaryPass, p.spanMass, [this.kernels.uniform([...block, numSpans]), probs, spanBuffer, summary.spanMass], grid1d(headCount * queryCount * numSpans));
              }
              summaryPass.end();
              pass = encoder.beginComputePass({ label: `layer ${l} (continued)` });
            }
          }
        }
        this.encodeLayerTail(pass, p, l, x, work, n);
        pass.end();
        if (summary && numSpans > 0) {
          const reducePass = encoder.beginComputePass({ label: `layer ${l} head reduction`, timestampWrites: timer?.nextPass() });
          dispatch(this.device, reducePass, p.headReduce, [this.kernels.uniform([n, H, numSpans]), summary.spanMass, summary.spanMean, summary.spanMax], grid1d(n * numSpans));
          reducePass.end();
        }
        if (summary) copySummaryToStaging(encoder, summary, n, H, k, numSpans);
        this.device.queue.submit([encoder.finish()]);
        // Keep one layer queued ahead while waiting, so the device never idles on the abort check.
        if (previousLayerDone) await previousLayerDone;
        // A lost device rejects this; the loss itself is reported through deviceError.
        previousLayerDone = this.device.queue.onSubmittedWorkDone().catch(() => undefined);
        this.throwIfDeviceFailed();
        throwIfAborted(signal);
      }

      // Logits of the last position only: copy its row, normalise it, multiply by the LM head.
      const lastRow = this.buffer('last hidden [1, hidden]', d * f);
      const lastNormed = this.buffer('last normed [1, hidden]', d * f);
      const logits = this.buffer('logits [vocab]', s.vocabSize * f);
      const logitsStaging = this.staging('logits staging', s.vocabSize * f);
      encoder = this.device.createCommandEncoder({ label: 'logits' });
      encoder.copyBufferToBuffer(x, (n - 1) * d * f, lastRow, 0, d * f);
      pass = encoder.beginComputePass({ label: 'logits' });
      this.normalize(pass, p, this.weights.finalNorm, lastRow, lastNormed, 1);
      this.linear(pass, p, { weight: this.weights.lmHead }, lastNormed, logits, 1);
      pass.end();
      encoder.copyBufferToBuffer(logits, 0, logitsStaging, 0, s.vocabSize * f);
      timer?.resolve(encoder);
      this.device.queue.submit([encoder.finish()]);
      await this.device.queue.onSubmittedWorkDone();
      const failure = await popScopes();
      if (failure) throw new Error(`The WebGPU forward pass failed: ${failure.message}`);
      this.throwIfDeviceFailed();
      const wallMs = now() - forwardStart;
      // The summary kernels ran interleaved with the forward pass; their GPU time moves to summaryMs.
      const summaryKernelMs = Math.min(wallMs, timer ? await timer.totalMs() : 0);
      const forwardMs = wallMs - summaryKernelMs;

      const summaryStart = now();
      const lastLogits = new Float32Array(await readStaging(logitsStaging, s.vocabSize * f));
      const summary = await this.readSummary(summaryLayouts, layers, n, H, k, numSpans);
      const readbackBytes = lastLogits.byteLength + summaryLayouts.length * summaryBytes(n, H, k, numSpans);
      this.lastRun = { n, tokenIds, hidden: x };
      return {
        summary,
        lastLogits,
        backend: this.backend,
        stats: { forwardMs, summaryMs: summaryKernelMs + (now() - summaryStart), readbackBytes },
      };
    } finally {
      const failure = await popScopes();
      if (failure) this.deviceError ??= new Error(`The WebGPU forward pass failed: ${failure.message}`);
    }
  }

  private async attentionRowNow(layer: number, head: number, query: number): Promise<Float32Array> {
    this.checkUsable();
    const run = this.lastRun;
    if (!run) throw new Error('attentionRow needs a completed run; call run() first');
    const s = this.spec;
    validateRowRequest(layer, head, query, s, run.n);
    const p = await this.pipelines(1);
    const n = run.n;
    const rowBuffer = this.buffer('attention row [1, 1, n]', n * 4);
    const rowStaging = this.staging('attention row staging', n * 4);
    const encoder = this.device.createCommandEncoder({ label: `attention row ${layer}:${head}:${query}` });
    const pass = encoder.beginComputePass({ label: 'attention row' });
    this.scores(pass, p, this.layerQ[layer]!, this.layerK[layer]!, rowBuffer, n, head, 1, query, 1);
    pass.end();
    encoder.copyBufferToBuffer(rowBuffer, 0, rowStaging, 0, (query + 1) * 4);
    this.device.queue.submit([encoder.finish()]);
    const row = new Float32Array(await readStaging(rowStaging, (query + 1) * 4));
    this.throwIfDeviceFailed();
    return row;
  }

  /**
   * Knockout on the most recent run: row 0 recomputes the query's row with nothing hidden, and each
   * span that hides something from the query gets a row of its own with the span's keys masked in
   * the chosen layers. Positions before the query are unchanged, so their keys and values come from
   * the run's cache; only the query's row goes through every layer again, all variants in one batch.
   */
  private async knockoutNow(request: KnockoutRequest, signal?: AbortSignal): Promise<KnockoutResult> {
    this.checkUsable();
    const run = this.requireRun('knockout');
    const s = this.spec;
    const layers = validateKnockout(request, run.n, s.numLayers);
    const query = request.query;
    const nextToken = query + 1 < run.n ? run.tokenIds[query + 1] : null;
    const masks: { start: number; end: number }[] = [{ start: 0, end: 0 }];
    // An empty knockout shares row 0, so its numbers are exactly those of the full model.
    const rowOfSpan = request.spans.map((span) => {
      const hidden = knockedPositions(span, query);
      return hidden.end > hidden.start ? masks.push(hidden) - 1 : 0;
    });
    throwIfAborted(signal);
    const logits = await this.knockoutLogits(run, query, masks, layers);
    throwIfAborted(signal);
    const V = s.vocabSize;
    const full = logits.subarray(0, V);
    const spans: SpanKnockout[] = request.spans.map((span, i) => {
      const { kl, deltaLogProb, top } = compareNextToken(full, logits.subarray(rowOfSpan[i] * V, (rowOfSpan[i] + 1) * V), nextToken);
      return { start: span.start, end: span.end, kl, deltaLogProb, top };
    });
    return { query, nextToken, top: topTokens(logSoftmax(full)), spans };
  }

  /** The next-token logits [rows, vocab] of the query's row with each row's mask applied in `layers`. */
  private async knockoutLogits(run: LastRun, query: number, masks: readonly { start: number; end: number }[], layers: { start: number; end: number }): Promise<Float32Array> {
    const s = this.spec;
    const rows = masks.length;
    const d = s.hiddenSize;
    const f = 4;
    const p = await this.pipelines(1);
    const [rowAttention, addRow] = await Promise.all([
      this.kernels.pipeline('attention_row_masked', { WORKGROUP_SIZE }),
      this.kernels.pipeline('add_row', { WORKGROUP_SIZE }),
    ]);
    return this.withErrorScopes('knockout', async () => {
      const x = this.buffer('knockout residual [rows, hidden]', rows * d * f);
      const work = this.layerWork(rows);
      const qRows = this.buffer('knockout q [rows, heads * head_dim]', rows * s.numHeads * s.headDim * f);
      const kRows = this.buffer('knockout k [rows, kv_heads * head_dim]', rows * s.numKvHeads * s.headDim * f);
      const vRows = this.buffer('knockout v [rows, kv_heads * head_dim]', rows * s.numKvHeads * s.headDim * f);
      const ids = this.buffer('knockout token ids [rows]', rows * 4);
      this.device.queue.writeBuffer(ids, 0, new Uint32Array(rows).fill(run.tokenIds[query]));
      const maskBuffer = this.buffer('knockout masks [rows, 2]', rows * 8);
      this.device.queue.writeBuffer(maskBuffer, 0, Uint32Array.from(masks.flatMap((mask) => [mask.start, mask.end])));
      const cosSin = s.positional === 'rope' ? this.buffer('knockout rope cos/sin [rows, head_dim / 2, 2]', rows * s.headDim * f) : undefined;
      if (cosSin) this.device.queue.writeBuffer(cosSin, 0, ropeRowsAt(query, rows, s.headDim, s.ropeTheta));
      const logits = this.buffer('knockout logits [rows, vocab]', rows * s.vocabSize * f);
      const staging = this.staging('knockout logits staging', rows * s.vocabSize * f);

      const encoder = this.device.createCommandEncoder({ label: `knockout at ${query}` });
      const pass = encoder.beginComputePass({ label: `knockout at ${query}` });
      this.embed(pass, p, ids, x, rows);
      if (this.weights.positionEmbedding) {
        dispatch(this.device, pass, addRow, [this.kernels.uniform([rows, d, query * d]), x, this.weights.positionEmbedding], grid1d(rows * d));
      }
      for (let l = 0; l < s.numLayers; l++) {
        this.encodeProjections(pass, p, l, x, work.h, qRows, kRows, vRows, rows, cosSin);
        const masked = l >= layers.start && l < layers.end ? 1 : 0;
        const params = this.kernels.uniform([rows, query, s.numHeads, s.numKvHeads, s.headDim, masked], [1 / Math.sqrt(s.headDim)]);
        dispatch(this.device, pass, rowAttention, [params, qRows, this.layerK[l]!, this.layerV[l]!, kRows, vRows, maskBuffer, work.attended], [Math.ceil((rows * s.numHeads) / WORKGROUP_SIZE)]);
        this.encodeLayerTail(pass, p, l, x, work, rows);
      }
      this.normalize(pass, p, this.weights.finalNorm, x, work.h, rows);
      this.linear(pass, p, { weight: this.weights.lmHead }, work.h, logits, rows);
      pass.end();
      encoder.copyBufferToBuffer(logits, 0, staging, 0, rows * s.vocabSize * f);
      this.device.queue.submit([encoder.finish()]);
      return new Float32Array(await readStaging(staging, rows * s.vocabSize * f));
    });
  }

  /**
   * One pass over the run's tokens in which no query after the span may attend to it; for every
   * position from span.end on, KL and the change in log-probability of the actual next token
   * against the run's own logits, computed on the device in blocks of rows.
   */
  private async spanEffectNow(span: TokenSpan, signal?: AbortSignal): Promise<SpanEffectResult> {
    this.checkUsable();
    const run = this.requireRun('spanEffect');
    validateSpanEffect(span, run.n);
    const s = this.spec;
    const n = run.n;
    const H = s.numHeads;
    const d = s.hiddenSize;
    const V = s.vocabSize;
    const f = 4;
    const p = await this.pipelines(1);
    const [maskedScores, divergence] = await Promise.all([
      this.kernels.pipeline('attention_scores_masked', { WORKGROUP_SIZE }),
      this.kernels.pipeline('next_token_divergence', { WORKGROUP_SIZE }),
    ]);
    throwIfAborted(signal);
    const numbers = await this.withErrorScopes('span effect', async () => {
      const x = this.buffer('span effect residual [n, hidden]', n * d * f);
      const work = this.layerWork(n);
      const q = this.buffer('span effect q [n, heads * head_dim]', n * H * s.headDim * f);
      const k = this.buffer('span effect k [n, kv_heads * head_dim]', n * s.numKvHeads * s.headDim * f);
      const v = this.buffer('span effect v [n, kv_heads * head_dim]', n * s.numKvHeads * s.headDim * f);
      const ids = this.buffer('token ids [n]', n * 4);
      this.device.queue.writeBuffer(ids, 0, Uint32Array.from(run.tokenIds));
      const cosSin = s.positional === 'rope' ? this.buffer('rope cos/sin [n, head_dim / 2, 2]', n * s.headDim * f) : undefined;
      if (cosSin) this.device.queue.writeBuffer(cosSin, 0, ropeTable(n, s.headDim, s.ropeTheta));
      const plan = this.planBlocks(n);
      const probs = this.buffer('probabilities block [heads, queries, n]', plan.headsPerBlock * plan.queriesPerBlock * n * f);

      let encoder = this.device.createCommandEncoder({ label: 'span effect embedding' });
      let pass = encoder.beginComputePass({ label: 'span effect embedding' });
      this.embed(pass, p, ids, x, n);
      if (this.weights.positionEmbedding) {
        dispatch(this.device, pass, p.add, [this.kernels.uniform([n * d]), x, this.weights.positionEmbedding], grid1d(n * d));
      }
      pass.end();
      this.device.queue.submit([encoder.finish()]);
      let previousLayerDone: Promise<void> | undefined;
      for (let l = 0; l < s.numLayers; l++) {
        encoder = this.device.createCommandEncoder({ label: `span effect layer ${l}` });
        pass = encoder.beginComputePass({ label: `span effect layer ${l}` });
        this.encodeProjections(pass, p, l, x, work.h, q, k, v, n, cosSin);
        for (let head0 = 0; head0 < H; head0 += plan.headsPerBlock) {
          const headCount = Math.min(plan.headsPerBlock, H - head0);
          for (let query0 = 0; query0 < n; query0 += plan.queriesPerBlock) {
            const queryCount = Math.min(plan.queriesPerBlock, n - query0);
            const block = [n, head0, headCount, query0, queryCount, H, s.numKvHeads, s.headDim];
            const params = this.kernels.uniform([...block, span.end, span.start, span.end], [1 / Math.sqrt(s.headDim)]);
            dispatch(this.device, pass, maskedScores, [params, q, k, probs], grid1d(headCount * queryCount));
            dispatch(this.device, pass, p.output, [this.kernels.uniform(block), probs, v, work.attended], grid1d(headCount * queryCount * s.headDim));
          }
        }
        this.encodeLayerTail(pass, p, l, x, work, n);
        pass.end();
        this.device.queue.submit([encoder.finish()]);
        if (previousLayerDone) await previousLayerDone;
        previousLayerDone = this.device.queue.onSubmittedWorkDone().catch(() => undefined);
        this.throwIfDeviceFailed();
        throwIfAborted(signal);
      }

      // Positions span.end .. n-1, a block of rows at a time: both logits, then the two numbers.
      const count = n - span.end;
      const blockRows = Math.max(1, Math.min(count, Math.floor(Math.min(this.bindingBudget, LOGITS_BLOCK_BYTES) / (V * f))));
      const nextTokens = this.buffer('span effect next tokens [n]', n * 4);
      this.device.queue.writeBuffer(nextTokens, 0, Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? run.tokenIds[i + 1] : -1)));
      const fullRows = this.buffer('span effect full rows [block, hidden]', blockRows * d * f);
      const changedRows = this.buffer('span effect changed rows [block, hidden]', blockRows * d * f);
      const fullLogits = this.buffer('span effect full logits [block, vocab]', blockRows * V * f);
      const changedLogits = this.buffer('span effect changed logits [block, vocab]', blockRows * V * f);
      const divergences = this.buffer('span effect divergences [block, 2]', blockRows * 2 * f);
      const staging = this.staging('span effect staging', count * 2 * f);
      for (let row0 = span.end; row0 < n; row0 += blockRows) {
        const rows = Math.min(blockRows, n - row0);
        encoder = this.device.createCommandEncoder({ label: `span effect logits ${row0}..${row0 + rows}` });
        encoder.copyBufferToBuffer(run.hidden, row0 * d * f, fullRows, 0, rows * d * f);
        encoder.copyBufferToBuffer(x, row0 * d * f, changedRows, 0, rows * d * f);
        pass = encoder.beginComputePass({ label: 'span effect logits' });
        this.normalize(pass, p, this.weights.finalNorm, fullRows, work.h, rows);
        this.linear(pass, p, { weight: this.weights.lmHead }, work.h, fullLogits, rows);
        this.normalize(pass, p, this.weights.finalNorm, changedRows, work.h, rows);
        this.linear(pass, p, { weight: this.weights.lmHead }, work.h, changedLogits, rows);
        dispatch(this.device, pass, divergence, [this.kernels.uniform([rows, V, row0]), fullLogits, changedLogits, nextTokens, divergences], [Math.ceil(rows / WORKGROUP_SIZE)]);
        pass.end();
        encoder.copyBufferToBuffer(divergences, 0, staging, (row0 - span.end) * 2 * f, rows * 2 * f);
        this.device.queue.submit([encoder.finish()]);
        throwIfAborted(signal);
      }
      return new Float32Array(await readStaging(staging, count * 2 * f));
    });
    const tokens: TokenEffect[] = [];
    for (let position = span.end; position < n; position++) {
      const at = (position - span.end) * 2;
      // Rounding can leave a KL of a few ulps below zero; like klDivergence, report it as 0.
      tokens.push({ position, kl: Math.max(0, numbers[at]), deltaLogProb: position + 1 < n ? numbers[at + 1] : null });
    }
    return { span: { start: span.start, end: span.end }, tokens };
  }

  private requireRun(what: string): LastRun {
    if (!this.lastRun) throw new Error(`${what} needs a completed run; call run() first`);
    return this.lastRun;
  }

  /**
   * Runs `body` inside validation and out-of-memory error scopes; a captured error becomes this
   * call's Error (naming `what`), and body's own error (an abort) passes through otherwise.
   */
  private async withErrorScopes<T>(what: string, body: () => Promise<T>): Promise<T> {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    let outcome: { value: T } | { error: unknown };
    try {
      outcome = { value: await body() };
    } catch (error) {
      outcome = { error };
    }
    const validation = await this.device.popErrorScope();
    const outOfMemory = await this.device.popErrorScope();
    const failure = outOfMemory ?? validation;
    if (failure) throw new Error(`The WebGPU ${what} failed: ${failure.message}`);
    this.throwIfDeviceFailed();
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  }

  /** The kernels of value-weighted summaries (built on first use, then cached). */
  private async valuePipelines(): Promise<ValuePipelines> {
    const [norms, normsF16, weighting] = await Promise.all([
      this.kernels.pipeline('value_norms', { WORKGROUP_SIZE, WEIGHT_F16: 0 }),
      this.kernels.pipeline('value_norms', { WORKGROUP_SIZE, WEIGHT_F16: 1 }),
      this.kernels.pipeline('value_weighting', { WORKGROUP_SIZE }),
    ]);
    return { norms, normsF16, weighting };
  }

  /** normSquares[h, j] = ||v_j W_O^h||^2 over every row chunk of W_O (the first chunk writes, the rest add). */
  private valueNorms(pass: GPUComputePassEncoder, vw: ValuePipelines, o: DeviceLinear, v: GPUBuffer, normSquares: GPUBuffer, n: number): void {
    const s = this.spec;
    const w = o.weight;
    w.chunks.forEach((chunk, index) => {
      const params = this.kernels.uniform([n, s.numHeads, s.numKvHeads, s.headDim, chunk.rowCount, index > 0 ? 1 : 0]);
      dispatch(this.device, pass, w.f16 ? vw.normsF16 : vw.norms, [params, v, chunk.buffer, normSquares], grid1d(s.numHeads * n));
    });
  }

  /** One layer's temporaries for `rows` rows, shared by runs and the causal checks. */
  private layerWork(rows: number): LayerWork {
    const s = this.spec;
    const f = 4;
    return {
      h: this.buffer('normed [n, hidden]', rows * s.hiddenSize * f),
      attended: this.buffer('attended [n, heads * head_dim]', rows * s.numHeads * s.headDim * f),
      projected: this.buffer('projected [n, hidden]', rows * s.hiddenSize * f),
      up: this.buffer('mlp up [n, intermediate]', rows * s.intermediateSize * f),
      gate: s.mlp === 'swiglu' ? this.buffer('mlp gate [n, intermediate]', rows * s.intermediateSize * f) : undefined,
    };
  }

  /** Layer l's attention inputs: h = norm(x), then q, k, v of `rows` rows, rotated by cosSin's rows. */
  private encodeProjections(
    pass: GPUComputePassEncoder,
    p: Pipelines,
    l: number,
    x: GPUBuffer,
    h: GPUBuffer,
    q: GPUBuffer,
    k: GPUBuffer,
    v: GPUBuffer,
    rows: number,
    cosSin: GPUBuffer | undefined,
  ): void {
    const s = this.spec;
    const layerWeights = this.weights.layers[l];
    this.normalize(pass, p, layerWeights.attnNorm, x, h, rows);
    this.linear(pass, p, layerWeights.q, h, q, rows);
    this.linear(pass, p, layerWeights.k, h, k, rows);
    this.linear(pass, p, layerWeights.v, h, v, rows);
    if (cosSin) {
      const half = s.headDim / 2;
      dispatch(this.device, pass, p.rope, [this.kernels.uniform([rows, s.numHeads, s.headDim]), q, cosSin], grid1d(rows * s.numHeads * half));
      dispatch(this.device, pass, p.rope, [this.kernels.uniform([rows, s.numKvHeads, s.headDim]), k, cosSin], grid1d(rows * s.numKvHeads * half));
    }
  }

  /** The rest of layer l after attention: x += attended W_O^T, then x += MLP(norm(x)), for `rows` rows. */
  private encodeLayerTail(pass: GPUComputePassEncoder, p: Pipelines, l: number, x: GPUBuffer, work: LayerWork, rows: number): void {
    const s = this.spec;
    const d = s.hiddenSize;
    const inter = s.intermediateSize;
    const layerWeights = this.weights.layers[l];
    this.linear(pass, p, layerWeights.o, work.attended, work.projected, rows);
    dispatch(this.device, pass, p.add, [this.kernels.uniform([rows * d]), x, work.projected], grid1d(rows * d));
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
    dispatch(this.device, pass, p.add, [this.kernels.uniform([rows * d]), x, work.projected], grid1d(rows * d));
  }

  /** Resolves every pipeline one run needs (cached after the first run). */
  private async pipelines(topK: number): Promise<Pipelines> {
    const s = this.spec;
    const wg = { WORKGROUP_SIZE };
    const get = (name: KernelName, constants: KernelConstants = wg) => this.kernels.pipeline(name, constants);
    const linearName: KernelName = this.variant === 'tiled' ? 'linear_tiled' : 'linear_register';
    const linearConstants = (f16: boolean): KernelConstants =>
      this.variant === 'tiled' ? { WEIGHT_F16: f16 ? 1 : 0 } : { WORKGROUP_SIZE, WEIGHT_F16: f16 ? 1 : 0 };
    const [embedding, embeddingF16, add, norm, linear, linearF16, rope, scores, output, activation, topKPipeline, spanMass, headReduce] =
      await Promise.all([
        get('embedding', { WORKGROUP_SIZE, WEIGHT_F16: 0 }),
        get('embedding', { WORKGROUP_SIZE, WEIGHT_F16: 1 }),
        get('add'),
        get(s.norm === 'rms' ? 'rmsnorm' : 'layernorm'),
        get(linearName, linearConstants(false)),
        get(linearName, linearConstants(true)),
        get('rope'),
        this.variant === 'tiled' ? get('attention_scores_tiled', { HEAD_DIM: s.headDim }) : get('attention_scores_register'),
        get('attention_output'),
        get(s.mlp === 'swiglu' ? 'silu_mul' : 'gelu'),
        get('topk', { WORKGROUP_SIZE, TOP_K: topK }),
        get('span_mass'),
        get('head_reduce'),
      ]);
    return { embedding, embeddingF16, add, norm, linear, linearF16, rope, scores, output, activation, topK: topKPipeline, spanMass, headReduce };
  }

  private embed(pass: GPUComputePassEncoder, p: Pipelines, ids: GPUBuffer, out: GPUBuffer, n: number): void {
    const table = this.weights.tokenEmbedding;
    const pipeline = table.f16 ? p.embeddingF16 : p.embedding;
    for (const chunk of table.chunks) {
      const params = this.kernels.uniform([n, table.cols, chunk.rowStart, chunk.rowCount]);
      dispatch(this.device, pass, pipeline, [params, ids, chunk.buffer, out], grid1d(n * table.cols));
    }
  }

  private normalize(pass: GPUComputePassEncoder, p: Pipelines, weights: DeviceNorm, input: GPUBuffer, out: GPUBuffer, rows: number): void {
    const s = this.spec;
    const params = this.kernels.uniform([rows, s.hiddenSize], [s.normEps]);
    const buffers = s.norm === 'rms' ? [params, input, weights.weight, out] : [params, input, weights.weight, weights.bias ?? this.zeros, out];
    dispatch(this.device, pass, p.norm, buffers, [Math.ceil(rows / WORKGROUP_SIZE)]);
  }

  /** y[rows, out] = x W^T + b, one dispatch per row chunk of W. */
  private linear(pass: GPUComputePassEncoder, p: Pipelines, layer: DeviceLinear, input: GPUBuffer, out: GPUBuffer, rows: number): void {
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

  /** Probabilities of heads head0.. and queries query0.. into probs [headCount, queryCount, n]. */
  private scores(
    pass: GPUComputePassEncoder,
    p: Pipelines,
    q: GPUBuffer,
    k: GPUBuffer,
    probs: GPUBuffer,
    n: number,
    head0: number,
    headCount: number,
    query0: number,
    queryCount: number,
  ): void {
    const s = this.spec;
    const params = this.kernels.uniform(
      [n, head0, headCount, query0, queryCount, s.numHeads, s.numKvHeads, s.headDim],
      [1 / Math.sqrt(s.headDim)],
    );
    const groups: [number, number] =
      this.variant === 'tiled' ? [Math.ceil(queryCount / 16), headCount] : grid1d(headCount * queryCount);
    dispatch(this.device, pass, p.scores, [params, q, k, probs], groups);
  }

  /**
   * The timer for a run with `passes` summary passes, or undefined when the device has no
   * timestamp queries or the run has more passes than one query set holds.
   */
  private passTimer(passes: number): PassTimer | undefined {
    if (!this.device.features.has('timestamp-query') || passes > MAX_TIMED_PASSES || passes === 0) return undefined;
    if (!this.timer || this.timer.capacity < passes) {
      this.timer?.destroy();
      this.timer = new PassTimer(this.device, Math.max(passes, 64));
    }
    this.timer.reset();
    return this.timer;
  }

  /** Splits a layer's [H, n, n] probabilities into blocks that each fit one storage binding. */
  private planBlocks(n: number): BlockPlan {
    const H = this.spec.numHeads;
    const rowsPerBlock = Math.floor(Math.min(this.bindingBudget, DEFAULT_PROBABILITY_BLOCK_BYTES) / (n * 4));
    if (rowsPerBlock < 1) {
      throw new Error(`one attention row of ${n} tokens needs ${n * 4} bytes, over this adapter's storage-binding limit; analyse fewer tokens`);
    }
    if (rowsPerBlock >= H * n) return { headsPerBlock: H, queriesPerBlock: n };
    if (rowsPerBlock >= n) return { headsPerBlock: Math.floor(rowsPerBlock / n), queriesPerBlock: n };
    return { headsPerBlock: 1, queriesPerBlock: rowsPerBlock };
  }

  /** A reusable scratch storage buffer of at least `bytes`, grown (never shrunk) across runs. */
  private buffer(label: string, bytes: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (size > this.device.limits.maxStorageBufferBindingSize) {
      throw new Error(
        `${label} needs ${size} bytes, more than this adapter lets one buffer binding hold ` +
          `(${this.device.limits.maxStorageBufferBindingSize}); analyse fewer tokens`,
      );
    }
    const existing = this.scratch.get(label);
    if (existing && existing.size >= size) return existing;
    existing?.destroy();
    const buffer = this.device.createBuffer({
      label,
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    this.scratch.set(label, buffer);
    return buffer;
  }

  /** A reusable mappable buffer for readback. */
  private staging(label: string, bytes: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const existing = this.scratch.get(label);
    if (existing && existing.size >= size) return existing;
    existing?.destroy();
    const buffer = this.device.createBuffer({ label, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.scratch.set(label, buffer);
    return buffer;
  }

  private layerBuffer(list: (GPUBuffer | undefined)[], label: string, layer: number, bytes: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const existing = list[layer];
    if (existing && existing.size >= size) return existing;
    existing?.destroy();
    const buffer = this.device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE });
    list[layer] = buffer;
    return buffer;
  }

  private summaryBuffersFor(index: number, n: number, k: number, numSpans: number): LayerSummaryBuffers {
    const H = this.spec.numHeads;
    const existing = this.summaryBuffers[index];
    const need = [H * n * k * 4, H * n * k * 4, H * n * numSpans * 4, n * numSpans * 4, n * numSpans * 4].map((b) => Math.max(16, b));
    const total = summaryBytes(n, H, k, numSpans);
    if (
      existing &&
      existing.topIndices.size >= need[0] &&
      existing.spanMass.size >= need[2] &&
      existing.spanMean.size >= need[3] &&
      existing.staging.size >= total
    ) {
      return existing;
    }
    if (existing) for (const buffer of Object.values(existing) as GPUBuffer[]) buffer.destroy();
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
    const make = (label: string, size: number) => {
      if (size > this.device.limits.maxStorageBufferBindingSize) {
        throw new Error(`${label} needs ${size} bytes, over this adapter's storage-binding limit; ask for fewer tokens or a smaller topK`);
      }
      return this.device.createBuffer({ label: `summary ${index} ${label}`, size, usage });
    };
    const created: LayerSummaryBuffers = {
      topIndices: make('top indices [heads, n, k]', need[0]),
      topWeights: make('top weights [heads, n, k]', need[1]),
      spanMass: make('span mass [heads, n, spans]', need[2]),
      spanMean: make('span mean [n, spans]', need[3]),
      spanMax: make('span max [n, spans]', need[4]),
      staging: this.device.createBuffer({
        label: `summary ${index} staging`,
        size: Math.max(16, total),
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      }),
    };
    this.summaryBuffers[index] = created;
    return created;
  }

  private async readSummary(
    sets: readonly LayerSummaryBuffers[],
    layers: readonly number[],
    n: number,
    H: number,
    k: number,
    numSpans: number,
  ): Promise<AttentionSummary> {
    const L = layers.length;
    const topIndices = new Int32Array(L * H * n * k);
    const topWeights = new Float32Array(L * H * n * k);
    const spanMass = new Float32Array(L * H * n * numSpans);
    const spanMassMean = new Float32Array(L * n * numSpans);
    const spanMassMax = new Float32Array(L * n * numSpans);
    const bytes = summaryBytes(n, H, k, numSpans);
    const copies = await Promise.all(sets.map((set) => readStaging(set.staging, bytes)));
    copies.forEach((data, l) => {
      let offset = 0;
      const take = <T extends Int32Array | Float32Array>(target: T, count: number, make: (b: ArrayBuffer, o: number, c: number) => T) => {
        target.set(make(data, offset, count), l * count);
        offset += count * 4;
      };
      take(topIndices, H * n * k, (b, o, c) => new Int32Array(b, o, c));
      take(topWeights, H * n * k, (b, o, c) => new Float32Array(b, o, c));
      take(spanMass, H * n * numSpans, (b, o, c) => new Float32Array(b, o, c));
      take(spanMassMean, n * numSpans, (b, o, c) => new Float32Array(b, o, c));
      take(spanMassMax, n * numSpans, (b, o, c) => new Float32Array(b, o, c));
    });
    return { numTokens: n, layers: [...layers], numHeads: H, topK: k, topIndices, topWeights, numSpans, spanMass, spanMassMean, spanMassMax };
  }

  private releaseScratch(): void {
    for (const buffer of this.scratch.values()) buffer.destroy();
    this.scratch.clear();
    for (const buffer of [...this.layerQ, ...this.layerK, ...this.layerV]) buffer?.destroy();
    this.layerQ.length = 0;
    this.layerK.length = 0;
    this.layerV.length = 0;
    for (const set of this.summaryBuffers) for (const buffer of Object.values(set) as GPUBuffer[]) buffer.destroy();
    this.summaryBuffers.length = 0;
    this.timer?.destroy();
    this.timer = undefined;
  }

  private checkUsable(): void {
    if (this.disposed) throw new Error('the WebGPU engine was disposed');
    this.throwIfDeviceFailed();
  }

  private throwIfDeviceFailed(): void {
    if (this.deviceError) throw this.deviceError;
  }
}

/** Bytes of one layer's summary: top indices and weights [H, n, k], span masses [H, n, S], mean and max [n, S]. */
function summaryBytes(n: number, H: number, k: number, numSpans: number): number {
  return (2 * H * n * k + H * n * numSpans + 2 * n * numSpans) * 4;
}

function copySummaryToStaging(encoder: GPUCommandEncoder, set: LayerSummaryBuffers, n: number, H: number, k: number, numSpans: number): void {
  let offset = 0;
  const copy = (source: GPUBuffer, bytes: number) => {
    if (bytes > 0) encoder.copyBufferToBuffer(source, 0, set.staging, offset, bytes);
    offset += bytes;
  };
  copy(set.topIndices, H * n * k * 4);
  copy(set.topWeights, H * n * k * 4);
  copy(set.spanMass, H * n * numSpans * 4);
  copy(set.spanMean, n * numSpans * 4);
  copy(set.spanMax, n * numSpans * 4);
}

/** Maps `staging`, copies its first `bytes` out and unmaps it. */
async function readStaging(staging: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
  if (bytes === 0) return new ArrayBuffer(0);
  await staging.mapAsync(GPUMapMode.READ, 0, Math.ceil(bytes / 4) * 4);
  const copy = staging.getMappedRange(0, Math.ceil(bytes / 4) * 4).slice(0, bytes);
  staging.unmap();
  return copy;
}

/**
 * cos and sin of every (position, frequency) pair, [n, head_dim / 2, 2], computed in f32 the way
 * Hugging Face does (inv_freq = 1 / theta^(2i/d) in f32, angle = position * inv_freq in f32).
 */
function ropeTable(n: number, headDim: number, theta: number): Float32Array<ArrayBuffer> {
  const half = headDim / 2;
  const table = new Float32Array(n * half * 2);
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / headDim))));
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(t * invFreq[i]);
      table[(t * half + i) * 2] = Math.cos(angle);
      table[(t * half + i) * 2 + 1] = Math.sin(angle);
    }
  }
  return table;
}

/** `rows` copies of position `position`'s row of ropeTable: [rows, head_dim / 2, 2]. */
function ropeRowsAt(position: number, rows: number, headDim: number, theta: number): Float32Array<ArrayBuffer> {
  const row = ropeTable(position + 1, headDim, theta).subarray(position * headDim);
  const out = new Float32Array(rows * headDim);
  for (let r = 0; r < rows; r++) out.set(row, r * headDim);
  return out;
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
