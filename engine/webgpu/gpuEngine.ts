/**
 * The WebGPU engine: the model's forward pass in WGSL kernels, with the exact attention
 * probabilities summarised on the device. The same code runs in the webview (navigator.gpu) and in
 * Node (npm `webgpu`, see engine/hosts/nodeWebGpu.ts): it is built from a GPUDevice, the adapter's
 * description and a LoadedModel.
 *
 * Split by concern: this file runs windows (row blocks, the run cache, submissions, readback, exact
 * rows and the causal checks); layerOps.ts encodes what the model computes (every architecture's
 * norms, projections, rotary embedding, attention scores and MLP as WGSL dispatches); runState.ts
 * holds what a run leaves on the device and how work is cut into units; ropeTables.ts the host-side
 * rotary tables; adapter.ts the adapter's description; memoryPlan.ts the buffers before allocation.
 *
 * Invariant: the attention tensor [layers, heads, n, n] never leaves the device. Each layer's
 * probabilities are computed into a scratch buffer block by block (heads x queries, sized to the
 * storage-binding limit), consumed by P·V and by the summary kernels (top-k, span masses), and
 * overwritten by the next block. The host reads back only the summaries and the last position's
 * logits: n * (2k + spans) numbers per (layer, head), never n * n.
 *
 * Long windows within the smallest limits: memoryPlan.ts decides before anything is allocated how
 * a run is split so that no binding exceeds the adapter's limit. Every [n, width] activation (the
 * residual stream, Q, the MLP's intermediate rows, the summaries) lives in row blocks and a layer
 * runs block by block; keys and values live in groups of KV heads holding all rows. A window that
 * does not fit is refused with the longest one that would.
 *
 * What a run leaves on the device (its RunState): each layer's post-rope Q and K, so attentionRow()
 * recomputes one exact row with the same scores kernel the forward pass used; each layer's V and
 * the final residual stream, for the causal checks (engine/causal.ts): knockout() recomputes only
 * the query's row, one variant per span, against the cached keys and values; spanEffect() runs one
 * masked pass and compares each later position's next-token distribution with the run's on the
 * device, reading back two numbers per position.
 *
 * Incremental re-analysis: a run with a cacheKey keeps its RunState and host summaries under that
 * key (least recently used out first, within cacheBytes). The next run with the key computes only
 * the rows from the first changed token on, attending to the cached keys and values of the prefix,
 * and joins the cached summary rows with the new ones (engine/runReuse.ts).
 *
 * Value-weighted summaries (Kobayashi et al. 2020) rescale each probability block by the norms of
 * what the keys write through W_O after P·V has consumed it, just before the summary kernels.
 *
 * Submissions of bounded duration (submissions.ts): a run, a knockout and a span effect are cut
 * into units (row chunks of the projections and of the MLP, blocks of heads x queries of the
 * attention, the summary readout, the logits) sized from the device's measured speed, and submitted
 * in batches expected to take about maxSubmissionMs, so that no submission on a slow adapter runs
 * long enough for Windows to reset the GPU. Between submissions the AbortSignal is checked. Every
 * kernel computes each output element the same way whatever block it is in, so the results do not
 * depend on how the work was cut.
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
import { type DeviceWeights, destroyWeights, uploadWeights } from './deviceWeights';
import { KernelLibrary, WORKGROUP_SIZE, dispatch, grid1d, rowRange } from './kernels';
import { type MemoryPlan, type RowRange, type RunLayout, WindowTooLongError, bufferSize, kvGroupRanges, longestWindow, memoryPlan, rowBlocks } from './memoryPlan';
import { MAX_TIMED_PASSES, PassTimer } from './passTimer';
import { type SubmissionRecord, type SubmissionStats, SubmissionPacer, Submitter } from './submissions';
import { cloneSummary, evictOverBudget, mergeSummaries, planReuse, summaryArrayBytes } from '../runReuse';
import { throwIfAborted, validateAttentionRequest, validateRowRequest, validateTokenIds } from '../requestChecks';
import { hasLocalRope, localRopeSpec, ropeTablesAgree, rotaryDimOf } from '../model/rope';
import { defaultKernelVariant } from './adapter';
import { ropeRowsAt, ropeTable } from './ropeTables';
import { copyRows, copySummaryToStaging, destroyState, readStaging, summaryBytes, unitHeads, unitQueries, unitRows, workRows, type RowSegment, type RunState, type CacheEntry, type SummaryBlock, type LayerWork, type ComputedBlock, type LayerSummaries } from './runState';
import { LayerOps, type KernelVariant, type Pipelines, type ScoreMask } from './layerOps';

export type { KernelVariant } from './layerOps';
export { defaultKernelVariant, summarizeAdapter } from './adapter';


export interface GpuEngineOptions {
  /** Kernel family; by default 'register' on CPU-backed adapters and 'tiled' on GPUs. */
  readonly kernelVariant?: KernelVariant;
  /** Weight storage: 'auto' (default) stores f16 when the device has `shader-f16`, else f32. */
  readonly weightFormat?: 'auto' | 'f32' | 'f16';
  /**
   * Caps the bytes one storage binding may see, below the device's own limit. Weights, activations,
   * keys and values, summaries and probabilities are split to fit; tests set a tiny cap to exercise
   * the splitting on small inputs.
   */
  readonly maxBindingBytes?: number;
  /** Device bytes the runs kept for incremental re-analysis may hold (default 256 MiB); 0 keeps none. */
  readonly cacheBytes?: number;
  /**
   * Device memory the engine may use (weights, a run and its cache). A run whose plan exceeds it is
   * refused with the longest window that fits. WebGPU cannot tell how much memory a device has, so
   * without this only the binding limits are checked.
   */
  readonly deviceMemoryBytes?: number;
  /**
   * Whether dispose() destroys the device (default true: the engine owns it). Callers that share
   * one device between engines (the fuzzer) pass false and destroy the device themselves.
   */
  readonly ownsDevice?: boolean;
  /**
   * Duration one GPU submission is packed for, ms (default DEFAULT_SUBMISSION_MS). Work is cut into
   * small units and submitted in batches the engine expects to finish within this, so that no
   * submission runs long enough for Windows to reset the GPU (about 2 s). Infinity submits a run at
   * once; tests set a tiny budget to submit every unit on its own. Results do not depend on it.
   */
  readonly maxSubmissionMs?: number;
  /** Called as each submission completes, with its measured duration (tests, logs). */
  readonly onSubmitted?: (record: SubmissionRecord) => void;
}

/** Device memory the engine holds, for benchmarks and logs. */
export interface GpuMemoryStats {
  readonly weightBytes: number;
  /** Scratch, summary, staging and uniform buffers. */
  readonly scratchBytes: number;
  /** The last run's state and the cached runs' (Q, K, V, final residual). */
  readonly stateBytes: number;
  readonly cachedRuns: number;
  readonly totalBytes: number;
  /** The peak the last run's memory plan predicted (weights included); 0 before the first run. */
  readonly plannedPeakBytes: number;
}

/** Default byte budget of the run cache (device state plus host summaries). */
export const DEFAULT_GPU_CACHE_BYTES = 256 * 1024 * 1024;

const MAX_HEAD_DIM = 256;
const TILED_SCORES_KEYS = 16;
/** Largest logits block of the span effect: rows x vocabulary, two of them (full and changed). */
const LOGITS_BLOCK_BYTES = 32 * 1024 * 1024;
const F32 = 4;

export class GpuEngine implements AttentionEngine {
  readonly spec: ModelSpec;
  readonly backend: BackendInfo;
  private readonly kernels: KernelLibrary;
  /** The model's layers as dispatches (layerOps.ts): every architecture-specific branch of the forward pass. */
  private readonly ops: LayerOps;
  private readonly scratch = new Map<string, GPUBuffer>();
  /** Summary buffers by summarised layer and computed row block, grown (never shrunk) across runs. */
  private readonly summaryBlocks: SummaryBlock[][] = [];
  private readonly bindingBudget: number;
  private readonly cacheBytes: number;
  private readonly deviceMemoryBytes?: number;
  private readonly ownsDevice: boolean;
  private readonly zeros: GPUBuffer;
  /** The device's speed as measured by earlier submissions: how much work one submission may hold. */
  private readonly pacer: SubmissionPacer;
  private readonly onSubmitted?: (record: SubmissionRecord) => void;
  /** The submissions of the latest run, knockout or span effect (their measurements may still arrive after an abort). */
  private lastSubmitter?: Submitter;
  private timer?: PassTimer;
  private lastRun?: RunState;
  /** Runs kept by cacheKey for incremental re-analysis, least recently used first. */
  private readonly cache = new Map<string, CacheEntry>();
  private lastPlan?: MemoryPlan;
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
    variant: KernelVariant,
    bindingBudget: number,
    options: GpuEngineOptions,
  ) {
    this.spec = model.spec;
    this.bindingBudget = bindingBudget;
    this.cacheBytes = options.cacheBytes ?? DEFAULT_GPU_CACHE_BYTES;
    this.deviceMemoryBytes = options.deviceMemoryBytes;
    this.ownsDevice = options.ownsDevice ?? true;
    this.pacer = new SubmissionPacer(options.maxSubmissionMs);
    this.onSubmitted = options.onSubmitted;
    this.backend = { kind: 'webgpu', adapter, f16Storage: weights.anyF16, kernelVariant: variant };
    this.kernels = new KernelLibrary(device);
    this.zeros = device.createBuffer({ label: 'zeros (absent bias)', size: 16, usage: GPUBufferUsage.STORAGE });
    this.ops = new LayerOps(device, this.kernels, this.spec, weights, variant, this.zeros);
    device.lost.then((info) => {
      if (this.intentionalDestroy) return;
      this.deviceError = new Error(
        `The GPU device was lost (${info.reason}): ${info.message || 'no detail'}. Reopen the analysis to start a new device.`,
      );
    });
    device.addEventListener('uncapturederror', this.onUncapturedError);
  }

  /** Kept to be removed on dispose: a device shared by several engines (ownsDevice false) outlives each. */
  private readonly onUncapturedError = (event: Event): void => {
    const message = (event as GPUUncapturedErrorEvent).error.message;
    this.deviceError ??= new Error(`WebGPU reported an error: ${message}`);
  };

  /** Uploads the weights and builds the kernels. The engine owns `device` and destroys it on dispose (unless options.ownsDevice is false). */
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
    const bindingBudget = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize, options.maxBindingBytes ?? Infinity);
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
      if (options.ownsDevice ?? true) device.destroy();
      throw new Error(`Uploading the weights of ${model.origin} to the GPU failed: ${failure.message}`);
    }
    const engine = new GpuEngine(device, adapter, model, weights, variant, bindingBudget, options);
    try {
      await engine.ops.pipelines(1);
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

  /** Forgets the run kept under `cacheKey` and frees its device buffers (after any run in flight). */
  releaseCache(cacheKey: string): void {
    void this.serialised(async () => {
      const entry = this.cache.get(cacheKey);
      if (!entry) return;
      this.cache.delete(cacheKey);
      this.releaseState(entry.state);
    });
  }

  /**
   * The memory plan of a run of n tokens on this engine (its binding limit and resident weights):
   * every buffer, the peak device bytes, and how the run is split. Throws WindowTooLongError when
   * n exceeds what the bindings allow.
   */
  planMemory(n: number, request: { topK: number; numSpans: number; layers?: number; weighting?: AttentionRequest['weighting'] }): MemoryPlan {
    return memoryPlan(this.spec, n, this.planOptions(request));
  }

  /** The longest window whose run fits `budgetBytes` of device memory (weights included), for the same request shape. */
  longestWindow(budgetBytes: number, request: { topK: number; numSpans: number; layers?: number; weighting?: AttentionRequest['weighting'] }): number {
    return longestWindow(this.spec, budgetBytes, this.planOptions(request));
  }

  /** Device memory held now: resident weights, run states (the last and the cached ones) and scratch. */
  memoryStats(): GpuMemoryStats {
    let scratchBytes = this.kernels.uniformBufferBytes + this.zeros.size + (this.timer?.bytes ?? 0);
    for (const buffer of this.scratch.values()) scratchBytes += buffer.size;
    for (const blocks of this.summaryBlocks) {
      for (const set of blocks) for (const buffer of Object.values(set) as GPUBuffer[]) scratchBytes += buffer.size;
    }
    const states = new Set<RunState>([...this.cache.values()].map((entry) => entry.state));
    if (this.lastRun) states.add(this.lastRun);
    let stateBytes = 0;
    for (const state of states) stateBytes += state.bytes;
    return {
      weightBytes: this.weights.bytes,
      scratchBytes,
      stateBytes,
      cachedRuns: this.cache.size,
      totalBytes: this.weights.bytes + scratchBytes + stateBytes,
      plannedPeakBytes: this.lastPlan?.peakBytes ?? 0,
    };
  }

  /**
   * How the last run, knockout or span effect was submitted: the number of submissions and units
   * and the longest submission's measured duration (also after an abort or a failure).
   */
  submissionStats(): SubmissionStats {
    return this.lastSubmitter?.stats() ?? { submissions: 0, units: 0, longestSubmissionMs: 0, totalSubmissionMs: 0 };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.intentionalDestroy = true;
    this.releaseScratch();
    destroyWeights(this.weights);
    this.zeros.destroy();
    this.kernels.dispose();
    this.device.removeEventListener('uncapturederror', this.onUncapturedError);
    if (this.ownsDevice) this.device.destroy();
  }

  /** The submissions of one call, checking for a lost device and for `signal` between them. */
  private submitter(label: string, signal: AbortSignal | undefined): Submitter {
    const submitter = new Submitter(this.device, this.pacer, label, () => {
      this.throwIfDeviceFailed();
      throwIfAborted(signal);
    }, this.onSubmitted);
    this.lastSubmitter = submitter;
    return submitter;
  }

  private serialised<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task, task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private planOptions(request: { topK: number; numSpans: number; layers?: number; weighting?: AttentionRequest['weighting'] }) {
    return {
      maxBindingBytes: this.bindingBudget,
      topK: request.topK,
      numSpans: request.numSpans,
      summarisedLayers: request.layers,
      valueWeighted: request.weighting === 'valueWeighted',
      weightBytes: this.weights.bytes,
    };
  }

  private async runNow(request: AttentionRequest, signal?: AbortSignal): Promise<ForwardResult> {
    this.checkUsable();
    const s = this.spec;
    const tokenIds = validateTokenIds(request.tokenIds, s);
    const n = tokenIds.length;
    const layers = validateAttentionRequest(request, n, s);
    throwIfAborted(signal);
    const key = request.cacheKey;
    const cached = key ? this.cache.get(key) : undefined;
    const reuse = cached ? planReuse(cached, tokenIds, request, layers, ropeTablesAgree(s, cached.tokenIds.length, tokenIds.length)) : undefined;
    this.setLastRun(undefined);
    if (cached && reuse?.past === n) {
      // Same tokens, same spans: the cached run is this run.
      this.touch(key!, cached);
      this.setLastRun(cached.state);
      return { summary: cloneSummary(cached.summary), lastLogits: cached.lastLogits.slice(), backend: this.backend, stats: { forwardMs: 0, summaryMs: 0, readbackBytes: 0, reusedTokens: n } };
    }
    const first = reuse?.past ?? 0;
    const plan = this.checkPlan(n, first, request, layers, key);
    const outcome = await this.forward(tokenIds, first, first > 0 ? cached!.state : undefined, plan.layout, request, layers, signal);
    this.lastPlan = plan;
    const summary = first > 0 ? mergeSummaries(cached!.summary, first, outcome.fresh, reuse!.columns, n) : outcome.fresh;
    this.setLastRun(outcome.state);
    if (key) {
      const spans = request.spans.map((span) => ({ start: span.start, end: span.end }));
      this.remember(key, { tokenIds, spans, topK: request.topK, layers, weighting: request.weighting ?? 'attention', state: outcome.state, summary, lastLogits: outcome.lastLogits });
    }
    return {
      summary: key ? cloneSummary(summary) : summary,
      lastLogits: key ? outcome.lastLogits.slice() : outcome.lastLogits,
      backend: this.backend,
      stats: { ...outcome.stats, reusedTokens: first },
    };
  }

  /**
   * The run's memory plan, checked before anything is allocated: the bindings (WindowTooLongError
   * from runLayout) and, with deviceMemoryBytes, the total. Cached runs other than the one being
   * reused give way first.
   */
  private checkPlan(n: number, first: number, request: AttentionRequest, layers: readonly number[], key: string | undefined): MemoryPlan {
    const shape = { topK: request.topK, numSpans: request.spans.length, layers: layers.length, weighting: request.weighting };
    const plan = memoryPlan(this.spec, n, { ...this.planOptions(shape), reusedTokens: first });
    const budget = this.deviceMemoryBytes;
    if (budget === undefined) return plan;
    const reused = key && first > 0 ? this.cache.get(key) : undefined;
    const heldBack = () => [...this.cache.values()].reduce((sum, entry) => sum + entry.state.bytes, 0);
    for (const [otherKey, entry] of this.cache) {
      if (plan.peakBytes + heldBack() <= budget) break;
      if (entry === reused) continue;
      this.cache.delete(otherKey);
      this.releaseState(entry.state);
    }
    if (plan.peakBytes + heldBack() > budget) {
      const longest = longestWindow(this.spec, budget, this.planOptions(shape));
      throw new WindowTooLongError(
        `${n} tokens need ${plan.peakBytes} bytes of GPU memory, more than the ${budget} bytes allowed; the longest window that fits is ${longest} tokens: analyse fewer tokens`,
        longest,
      );
    }
    return plan;
  }

  /**
   * The forward pass over rows first..n-1, the rows before `first` taken from `source` (a cached
   * run of the same prefix): a new RunState for all n rows, the summaries of the computed rows and
   * the last position's logits.
   */
  private async forward(
    tokenIds: Int32Array,
    first: number,
    source: RunState | undefined,
    layout: RunLayout,
    request: AttentionRequest,
    layers: readonly number[],
    signal?: AbortSignal,
  ): Promise<{ state: RunState; fresh: AttentionSummary; lastLogits: Float32Array; stats: { forwardMs: number; summaryMs: number; readbackBytes: number } }> {
    const s = this.spec;
    const n = tokenIds.length;
    const H = s.numHeads;
    const d = s.hiddenSize;
    const spans = request.spans;
    const numSpans = spans.length;
    const k = request.topK;
    const layerIndexOf = new Map(layers.map((layer, index) => [layer, index]));
    const p = await this.ops.pipelines(k);
    const vw = request.weighting === 'valueWeighted' ? await this.ops.valuePipelines() : undefined;
    const forwardStart = now();
    this.kernels.trimUniforms();

    let state: RunState | undefined;
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
      state = this.createState(tokenIds, first, layout);
      const blocks = rowBlocks(n, first, layout.rowsPerBlock);
      const computedIndex = blocks.findIndex((range) => range.rowStart >= first);
      const computedRanges = blocks.slice(computedIndex);
      const m = n - first;
      const work = this.layerWork(Math.max(...computedRanges.map((range) => range.rows)));
      const normSquares = vw ? this.buffer('value norms squared [heads, n]', H * n * F32) : undefined;
      const spanBuffer = this.buffer('spans [S, 2]', numSpans * 8);
      if (numSpans > 0) {
        this.device.queue.writeBuffer(spanBuffer, 0, Uint32Array.from(spans.flatMap((span) => [span.start, span.end])));
      }
      const probs = this.buffer('probabilities block [heads, queries, n]', layout.headsPerBlock * layout.queriesPerBlock * n * F32);
      const summaryLayouts = layers.map((_, index) => computedRanges.map((range, block) => this.summaryBlockFor(index, block, range.rows, k, numSpans)));
      const timer = this.passTimer();
      const inputs = this.blockInputs(tokenIds, computedRanges, blocks.slice(computedIndex).map((_, i) => state!.hidden[computedIndex + i].buffer), 'run');

      const submitter = this.submitter('run', signal);
      const kvWidth = s.numKvHeads * s.headDim;
      const prefixCost = source ? first * (2 * s.numLayers * kvWidth + d) : 0;
      await submitter.unit('embedding', first > 0 ? `reuse ${first} rows, embedding` : 'embedding', prefixCost + m * d, (encoder) => {
        if (source) this.copyPrefix(encoder, p, source, state!, first);
        this.encodeEmbedding(encoder, p, inputs);
      });

      for (let l = 0; l < s.numLayers; l++) {
        const layerIndex = layerIndexOf.get(l);
        const summaryBlocks = layerIndex === undefined ? undefined : summaryLayouts[layerIndex];
        const computed = inputs.map((input, i): ComputedBlock => ({ ...input, q: state!.q[l][computedIndex + i].buffer }));
        await this.encodeLayer(submitter, p, l, n, layout, computed, state.k[l], state.v[l], probs, work, undefined,
          summaryBlocks && { blocks: summaryBlocks, numSpans, spanBuffer, timer, valueWeighting: vw && normSquares ? { pipelines: vw, normSquares } : undefined });
        if (summaryBlocks) {
          await submitter.unit('summary readout', `layer ${l} summary readout`, m * H * (numSpans + k), (encoder) => {
            computedRanges.forEach((range, block) => {
              const set = summaryBlocks[block];
              if (numSpans > 0) {
                const reducePass = encoder.beginComputePass({ label: `layer ${l} head reduction`, timestampWrites: timer?.nextPass() });
                dispatch(this.device, reducePass, p.headReduce, [this.kernels.uniform([range.rows, H, numSpans]), set.spanMass, set.spanMean, set.spanMax], grid1d(range.rows * numSpans));
                reducePass.end();
              }
              copySummaryToStaging(encoder, set, range.rows, H, k, numSpans);
            });
          });
        }
      }

      // Logits of the last position only: copy its row, normalise it, multiply by the LM head.
      const lastRow = this.buffer('last hidden [1, hidden]', d * F32);
      const lastNormed = this.buffer('last normed [1, hidden]', d * F32);
      const logits = this.buffer('logits [vocab]', s.vocabSize * F32);
      const logitsStaging = this.staging('logits staging', s.vocabSize * F32);
      await submitter.unit('logits', 'logits', d * s.vocabSize, (encoder) => {
        copyRows(encoder, state!.hidden, n - 1, 1, lastRow, d * F32);
        const pass = encoder.beginComputePass({ label: 'logits' });
        this.ops.normalize(pass, p, this.weights.finalNorm, lastRow, lastNormed, 1);
        this.ops.logits(pass, p, this.weights.lmHead, lastNormed, logits, 1);
        pass.end();
        encoder.copyBufferToBuffer(logits, 0, logitsStaging, 0, s.vocabSize * F32);
        timer?.resolve(encoder);
      });
      await submitter.finish();
      const failure = await popScopes();
      if (failure) throw new Error(`The WebGPU forward pass failed: ${failure.message}`);
      this.throwIfDeviceFailed();
      const wallMs = now() - forwardStart;
      // The summary kernels ran interleaved with the forward pass; their GPU time moves to summaryMs.
      const summaryKernelMs = Math.min(wallMs, timer?.complete ? await timer.totalMs() : 0);
      const forwardMs = wallMs - summaryKernelMs;

      const summaryStart = now();
      const lastLogits = new Float32Array(await readStaging(logitsStaging, s.vocabSize * F32));
      const fresh = await this.readSummary(summaryLayouts, computedRanges, first, layers, m, H, k, numSpans);
      const readbackBytes = lastLogits.byteLength + layers.length * summaryBytes(m, H, k, numSpans);
      const result = { state, fresh, lastLogits, stats: { forwardMs, summaryMs: summaryKernelMs + (now() - summaryStart), readbackBytes } };
      state = undefined;
      return result;
    } finally {
      const failure = await popScopes();
      if (failure) this.deviceError ??= new Error(`The WebGPU forward pass failed: ${failure.message}`);
      if (state) destroyState(state);
    }
  }

  /** New device buffers for a run of n tokens: Q per row block, K and V per KV group, the residual per row block. */
  private createState(tokenIds: Int32Array, first: number, layout: RunLayout): RunState {
    const s = this.spec;
    const n = tokenIds.length;
    const qWidth = s.numHeads * s.headDim;
    const blocks = rowBlocks(n, first, layout.rowsPerBlock);
    const groups = kvGroupRanges(s, layout);
    let bytes = 0;
    const create = (label: string, size: number) => {
      const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
      const buffer = this.device.createBuffer({ label, size: bufferSize(size), usage });
      bytes += buffer.size;
      return buffer;
    };
    const segments = (label: string, width: number) =>
      blocks.map((range) => ({ ...range, buffer: create(`${label} rows ${range.rowStart}..${range.rowStart + range.rows}`, range.rows * width * F32) }));
    const q: RowSegment[][] = [];
    const k: GPUBuffer[][] = [];
    const v: GPUBuffer[][] = [];
    for (let l = 0; l < s.numLayers; l++) {
      q.push(segments(`layer ${l} q [rows, heads * head_dim]`, qWidth));
      k.push(groups.map((group) => create(`layer ${l} k [n, kv_heads ${group.start}..${group.start + group.count} * head_dim]`, n * group.count * s.headDim * F32)));
      v.push(groups.map((group) => create(`layer ${l} v [n, kv_heads ${group.start}..${group.start + group.count} * head_dim]`, n * group.count * s.headDim * F32)));
    }
    const hidden = segments('residual [rows, hidden]', s.hiddenSize);
    return { n, tokenIds, layout, q, k, v, hidden, bytes };
  }

  /** Copies rows 0..first-1 of every per-row tensor of `source` into `target` (their blocks may differ). */
  private copyPrefix(encoder: GPUCommandEncoder, p: Pipelines, source: RunState, target: RunState, first: number): void {
    const s = this.spec;
    const qRowBytes = s.numHeads * s.headDim * F32;
    for (const segment of target.hidden) {
      if (segment.rowStart < first) copyRows(encoder, source.hidden, segment.rowStart, segment.rows, segment.buffer, s.hiddenSize * F32);
    }
    for (let l = 0; l < s.numLayers; l++) {
      for (const segment of target.q[l]) {
        if (segment.rowStart < first) copyRows(encoder, source.q[l], segment.rowStart, segment.rows, segment.buffer, qRowBytes);
      }
    }
    // Keys and values: the groups of KV heads may differ (a longer window holds fewer heads per
    // binding), so each target group gathers its heads' columns from the source groups.
    const pass = encoder.beginComputePass({ label: `reuse ${first} rows of keys and values` });
    const sourceGroups = kvGroupRanges(s, source.layout);
    const targetGroups = kvGroupRanges(s, target.layout);
    const hd = s.headDim;
    for (let l = 0; l < s.numLayers; l++) {
      targetGroups.forEach((to, t) => {
        sourceGroups.forEach((from, f) => {
          const start = Math.max(to.start, from.start);
          const end = Math.min(to.start + to.count, from.start + from.count);
          if (end <= start) return;
          const params = this.kernels.uniform([first, (end - start) * hd, (start - from.start) * hd, from.count * hd, (start - to.start) * hd, to.count * hd]);
          for (const [src, dst] of [[source.k[l][f], target.k[l][t]], [source.v[l][f], target.v[l][t]]]) {
            dispatch(this.device, pass, p.copyBlock, [params, src, dst], grid1d(first * (end - start) * hd));
          }
        });
      });
    }
    pass.end();
  }

  /** Token ids (and rope tables) of each computed row block, written now, with the block's residual buffer. */
  private blockInputs(
    tokenIds: Int32Array,
    ranges: readonly RowRange[],
    residuals: readonly GPUBuffer[],
    use: string,
  ): (RowRange & { x: GPUBuffer; ids: GPUBuffer; cosSin?: GPUBuffer; cosSinLocal?: GPUBuffer })[] {
    const s = this.spec;
    return ranges.map((range, i) => {
      const ids = this.buffer(`${use} token ids [rows] block ${i}`, range.rows * 4);
      this.device.queue.writeBuffer(ids, 0, Uint32Array.from(tokenIds.subarray(range.rowStart, range.rowStart + range.rows)));
      let cosSin: GPUBuffer | undefined;
      if (s.positional === 'rope') {
        cosSin = this.buffer(`${use} rope cos/sin [rows, rotary_dim / 2, 2] block ${i}`, range.rows * rotaryDimOf(s) * F32);
        this.device.queue.writeBuffer(cosSin, 0, ropeTable(s, range.rowStart, range.rows, tokenIds.length));
      }
      let cosSinLocal: GPUBuffer | undefined;
      if (s.positional === 'rope' && hasLocalRope(s)) {
        cosSinLocal = this.buffer(`${use} local rope cos/sin [rows, rotary_dim / 2, 2] block ${i}`, range.rows * rotaryDimOf(s) * F32);
        this.device.queue.writeBuffer(cosSinLocal, 0, ropeTable(localRopeSpec(s), range.rowStart, range.rows, tokenIds.length));
      }
      return { ...range, x: residuals[i], ids, cosSin, cosSinLocal };
    });
  }

  /** Embeds the tokens of each block into its residual rows (+ learned positions). */
  private encodeEmbedding(encoder: GPUCommandEncoder, p: Pipelines, blocks: readonly (RowRange & { x: GPUBuffer; ids: GPUBuffer })[]): void {
    const d = this.spec.hiddenSize;
    const pass = encoder.beginComputePass({ label: 'embedding' });
    for (const block of blocks) {
      this.ops.embed(pass, p, block.ids, block.x, block.rows);
      if (this.weights.positionEmbedding) {
        const positions = this.buffer('positions [rows, hidden]', block.rows * d * F32);
        const params = this.kernels.uniform([block.rows, d, block.rowStart * d, d, 0, d]);
        dispatch(this.device, pass, p.copyBlock, [params, this.weights.positionEmbedding, positions], grid1d(block.rows * d));
        dispatch(this.device, pass, p.add, [this.kernels.uniform([block.rows * d]), block.x, positions], grid1d(block.rows * d));
      }
    }
    pass.end();
  }

  /**
   * Layer l over the computed row blocks: first every block's projections (K and V of all rows are
   * needed before any query attends), then block by block the attention in probability blocks (with
   * the summaries when the layer is summarised) and the rest of the layer. Each piece goes to the
   * submitter as units no larger than it asks for: row chunks of the projections and of the MLP,
   * blocks of heads x queries of the attention (never larger than the memory plan's).
   */
  private async encodeLayer(
    submitter: Submitter,
    p: Pipelines,
    l: number,
    n: number,
    layout: RunLayout,
    blocks: readonly ComputedBlock[],
    k: readonly GPUBuffer[],
    v: readonly GPUBuffer[],
    probs: GPUBuffer,
    work: LayerWork,
    mask: ScoreMask | undefined,
    summaries: LayerSummaries | undefined,
  ): Promise<void> {
    const s = this.spec;
    const hd = s.headDim;
    const d = s.hiddenSize;
    const qWidth = s.numHeads * hd;
    const kvWidth = s.numKvHeads * hd;
    const ratio = s.numHeads / s.numKvHeads;
    const groups = kvGroupRanges(s, layout);
    const costs = this.unitCosts(summaries?.numSpans);
    // The span effect's masked scores kernel and summarised blocks run at their own speeds.
    const attentionKind = mask ? 'masked attention' : summaries ? 'attention with summaries' : 'attention';
    // Gemma 3's sliding-window layers rotate by their own table.
    const tableOf = (block: ComputedBlock) => (block.cosSin ? this.ops.rotaryTable(l, block.cosSin, block.cosSinLocal) : undefined);
    for (const block of blocks) {
      for (let r0 = 0; r0 < block.rows; ) {
        const rows = unitRows(submitter.unitCost('projections'), block.rows - r0, costs.projectionPerRow);
        const label = `layer ${l} projections, rows ${block.rowStart + r0}..${block.rowStart + r0 + rows}`;
        await submitter.unit('projections', label, rows * costs.projectionPerRow, (encoder) => {
          const pass = encoder.beginComputePass({ label });
          this.ops.encodeProjections(pass, p, l, rowRange(block.x, r0, rows, d), rowRange(work.h, r0, rows, d), rowRange(block.q, r0, rows, qWidth),
            rowRange(work.kRows, r0, rows, kvWidth), rowRange(work.vRows, r0, rows, kvWidth), rows, tableOf(block) && rowRange(tableOf(block)!, r0, rows, rotaryDimOf(s)));
          groups.forEach((group, g) => {
            const params = this.kernels.uniform([rows, group.count * hd, r0 * kvWidth + group.start * hd, kvWidth, (block.rowStart + r0) * group.count * hd, group.count * hd]);
            dispatch(this.device, pass, p.copyBlock, [params, work.kRows, k[g]], grid1d(rows * group.count * hd));
            dispatch(this.device, pass, p.copyBlock, [params, work.vRows, v[g]], grid1d(rows * group.count * hd));
          });
          pass.end();
        });
        r0 += rows;
      }
    }
    const vw = summaries?.valueWeighting;
    if (vw) {
      for (const [g, group] of groups.entries()) {
        const label = `layer ${l} value norms, KV group ${g}`;
        await submitter.unit('value norms', label, group.count * ratio * n * hd * d, (encoder) => {
          const pass = encoder.beginComputePass({ label });
          this.ops.valueNorms(pass, vw.pipelines, this.weights.layers[l].o, v[g], vw.normSquares, n, group);
          pass.end();
        });
      }
    }
    for (const [b, block] of blocks.entries()) {
      for (const [g, group] of groups.entries()) {
        const groupEnd = (group.start + group.count) * ratio;
        const headsPerUnit = unitHeads(submitter.unitCost(attentionKind), layout.headsPerBlock, n, costs.attentionPerKey);
        for (let head0 = group.start * ratio; head0 < groupEnd; head0 += headsPerUnit) {
          const headCount = Math.min(headsPerUnit, groupEnd - head0);
          const blockEnd = block.rowStart + block.rows;
          for (let query0 = block.rowStart; query0 < blockEnd; ) {
            const queryCount = Math.min(layout.queriesPerBlock, unitQueries(submitter.unitCost(attentionKind), query0, blockEnd - query0, headCount, costs.attentionPerKey));
            const cost = headCount * costs.attentionPerKey * (queryCount * (query0 + 1) + (queryCount * (queryCount - 1)) / 2);
            const label = `layer ${l} attention, heads ${head0}..${head0 + headCount}, queries ${query0}..${query0 + queryCount}`;
            await submitter.unit(attentionKind, label, cost, (encoder) => {
              this.encodeAttentionBlock(label, encoder, p, l, n, block, b, k[g], v[g], group, probs, work, head0, headCount, query0, queryCount, mask, summaries);
            });
            query0 += queryCount;
          }
        }
      }
      for (let r0 = 0; r0 < block.rows; ) {
        const rows = unitRows(submitter.unitCost('output and MLP'), block.rows - r0, costs.tailPerRow);
        const label = `layer ${l} output and MLP, rows ${block.rowStart + r0}..${block.rowStart + r0 + rows}`;
        await submitter.unit('output and MLP', label, rows * costs.tailPerRow, (encoder) => {
          const pass = encoder.beginComputePass({ label });
          this.ops.encodeLayerTail(pass, p, l, rowRange(block.x, r0, rows, d), workRows(work, r0, rows, s), rows);
          pass.end();
        });
        r0 += rows;
      }
    }
  }

  /**
   * One block of attention: probabilities of heads head0.. and queries query0.. into probs, P·V
   * into the attended rows, and the summaries of the block when the layer is summarised.
   */
  private encodeAttentionBlock(
    label: string,
    encoder: GPUCommandEncoder,
    p: Pipelines,
    l: number,
    n: number,
    block: ComputedBlock,
    blockIndex: number,
    k: GPUBuffer,
    v: GPUBuffer,
    group: { start: number; count: number },
    probs: GPUBuffer,
    work: LayerWork,
    head0: number,
    headCount: number,
    query0: number,
    queryCount: number,
    mask: ScoreMask | undefined,
    summaries: LayerSummaries | undefined,
  ): void {
    const s = this.spec;
    const blockShape = [n, head0, headCount, query0, queryCount];
    const pass = encoder.beginComputePass({ label });
    const window = s.slidingWindow?.[l] ?? 0;
    this.ops.scores(pass, p, block.q, block.rowStart, k, group, probs, n, head0, headCount, query0, queryCount, window, mask);
    const outputParams = this.kernels.uniform([...blockShape, s.numHeads, s.numKvHeads, s.headDim, block.rowStart, group.start, group.count]);
    dispatch(this.device, pass, p.output, [outputParams, probs, v, work.attended], grid1d(headCount * queryCount * s.headDim));
    pass.end();
    if (!summaries) return;
    // Summaries run in their own pass so that timestamp queries can time them.
    const set = summaries.blocks[blockIndex];
    const summaryPass = encoder.beginComputePass({ label: `layer ${l} summaries`, timestampWrites: summaries.timer?.nextPass() });
    if (summaries.valueWeighting) {
      // P·V has consumed the probabilities; from here on the block holds the value-weighted rows.
      dispatch(this.device, summaryPass, summaries.valueWeighting.pipelines.weighting, [this.kernels.uniform(blockShape), probs, summaries.valueWeighting.normSquares], grid1d(headCount * queryCount));
    }
    const outRows = [block.rowStart, block.rows];
    dispatch(this.device, summaryPass, p.topK, [this.kernels.uniform([...blockShape, ...outRows, window]), probs, set.topIndices, set.topWeights], grid1d(headCount * queryCount));
    if (summaries.numSpans > 0) {
      dispatch(this.device, summaryPass, p.spanMass, [this.kernels.uniform([...blockShape, summaries.numSpans, ...outRows]), probs, summaries.spanBuffer, set.spanMass], grid1d(headCount * queryCount * summaries.numSpans));
    }
    summaryPass.end();
  }

  /**
   * Estimated costs (multiply-adds and the like) of the units a layer is cut into, so that the
   * submitter can pack them by time: per row of projections and of the output projection + MLP, and
   * per (head, query, key) of attention (scores, softmax, P·V and, when summarised, the summaries).
   */
  private unitCosts(numSpans: number | undefined): { projectionPerRow: number; tailPerRow: number; attentionPerKey: number } {
    const s = this.spec;
    const d = s.hiddenSize;
    const qWidth = s.numHeads * s.headDim;
    const kvWidth = s.numKvHeads * s.headDim;
    const mlpMatrices = s.mlp === 'swiglu' ? 3 : 2;
    return {
      projectionPerRow: d * (qWidth + 2 * kvWidth) + 8 * d,
      tailPerRow: qWidth * d + mlpMatrices * d * s.intermediateSize + 16 * d,
      attentionPerKey: 2 * s.headDim + 8 + (numSpans === undefined ? 0 : 8 + numSpans),
    };
  }

  private async attentionRowNow(layer: number, head: number, query: number): Promise<Float32Array> {
    this.checkUsable();
    const run = this.lastRun;
    if (!run) throw new Error('attentionRow needs a completed run; call run() first');
    const s = this.spec;
    validateRowRequest(layer, head, query, s, run.n);
    const p = await this.ops.pipelines(1);
    const n = run.n;
    const rowBuffer = this.buffer('attention row [1, 1, n]', n * 4);
    const rowStaging = this.staging('attention row staging', n * 4);
    const segment = run.q[layer].find((range) => query >= range.rowStart && query < range.rowStart + range.rows)!;
    const kvHead = Math.floor(head / (s.numHeads / s.numKvHeads));
    const groups = kvGroupRanges(s, run.layout);
    const g = groups.findIndex((group) => kvHead >= group.start && kvHead < group.start + group.count);
    const encoder = this.device.createCommandEncoder({ label: `attention row ${layer}:${head}:${query}` });
    const pass = encoder.beginComputePass({ label: 'attention row' });
    this.ops.scores(pass, p, segment.buffer, segment.rowStart, run.k[layer][g], groups[g], rowBuffer, n, head, 1, query, 1, s.slidingWindow?.[layer] ?? 0);
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
   * the run's state; only the query's row goes through every layer again, all variants in one batch.
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
    const logits = await this.knockoutLogits(run, query, masks, layers, signal);
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
  private async knockoutLogits(run: RunState, query: number, masks: readonly { start: number; end: number }[], layers: { start: number; end: number }, signal?: AbortSignal): Promise<Float32Array> {
    const s = this.spec;
    const rows = masks.length;
    const d = s.hiddenSize;
    const ratio = s.numHeads / s.numKvHeads;
    const p = await this.ops.pipelines(1);
    const [rowAttention, addRow] = await Promise.all([
      this.kernels.pipeline('attention_row_masked', { WORKGROUP_SIZE }),
      this.kernels.pipeline('add_row', { WORKGROUP_SIZE }),
    ]);
    return this.withErrorScopes('knockout', async () => {
      const x = this.buffer('knockout residual [rows, hidden]', rows * d * F32);
      const work = this.layerWork(rows);
      const qRows = this.buffer('knockout q [rows, heads * head_dim]', rows * s.numHeads * s.headDim * F32);
      const ids = this.buffer('knockout token ids [rows]', rows * 4);
      this.device.queue.writeBuffer(ids, 0, new Uint32Array(rows).fill(run.tokenIds[query]));
      const maskBuffer = this.buffer('knockout masks [rows, 2]', rows * 8);
      this.device.queue.writeBuffer(maskBuffer, 0, Uint32Array.from(masks.flatMap((mask) => [mask.start, mask.end])));
      const cosSin = s.positional === 'rope' ? this.buffer('knockout rope cos/sin [rows, rotary_dim / 2, 2]', rows * rotaryDimOf(s) * F32) : undefined;
      if (cosSin) this.device.queue.writeBuffer(cosSin, 0, ropeRowsAt(s, query, rows, run.tokenIds.length));
      const cosSinLocal = s.positional === 'rope' && hasLocalRope(s) ? this.buffer('knockout local rope cos/sin [rows, rotary_dim / 2, 2]', rows * rotaryDimOf(s) * F32) : undefined;
      if (cosSinLocal) this.device.queue.writeBuffer(cosSinLocal, 0, ropeRowsAt(localRopeSpec(s), query, rows, run.tokenIds.length));
      const logits = this.buffer('knockout logits [rows, vocab]', rows * s.vocabSize * F32);
      const staging = this.staging('knockout logits staging', rows * s.vocabSize * F32);
      const groups = kvGroupRanges(s, run.layout);

      // One unit per layer: the query's rows through the layer, attending to every earlier key.
      const submitter = this.submitter('knockout', signal);
      const costs = this.unitCosts(undefined);
      const attentionCost = rows * s.numHeads * (query + 1) * costs.attentionPerKey;
      await submitter.unit('embedding', `knockout at ${query}: embedding`, rows * d, (encoder) => {
        const pass = encoder.beginComputePass({ label: `knockout at ${query}: embedding` });
        this.ops.embed(pass, p, ids, x, rows);
        if (this.weights.positionEmbedding) {
          dispatch(this.device, pass, addRow, [this.kernels.uniform([rows, d, query * d]), x, this.weights.positionEmbedding], grid1d(rows * d));
        }
        pass.end();
      });
      for (let l = 0; l < s.numLayers; l++) {
        await submitter.unit('knockout layer', `knockout at ${query}: layer ${l}`, rows * (costs.projectionPerRow + costs.tailPerRow) + attentionCost, (encoder) => {
          const pass = encoder.beginComputePass({ label: `knockout at ${query}: layer ${l}` });
          this.ops.encodeProjections(pass, p, l, x, work.h, qRows, work.kRows, work.vRows, rows, cosSin && this.ops.rotaryTable(l, cosSin, cosSinLocal));
          const masked = l >= layers.start && l < layers.end ? 1 : 0;
          groups.forEach((group, g) => {
            const headCount = group.count * ratio;
            const params = this.kernels.uniform([rows, query, s.numHeads, s.numKvHeads, s.headDim, masked, group.start * ratio, headCount, group.start, group.count, s.slidingWindow?.[l] ?? 0], [1 / Math.sqrt(s.headDim), s.attentionSoftcap ?? 0]);
            dispatch(this.device, pass, rowAttention, [params, qRows, run.k[l][g], run.v[l][g], work.kRows, work.vRows, maskBuffer, work.attended], [Math.ceil((rows * headCount) / WORKGROUP_SIZE)]);
          });
          this.ops.encodeLayerTail(pass, p, l, x, work, rows);
          pass.end();
        });
      }
      await submitter.unit('logits', `knockout at ${query}: logits`, rows * d * s.vocabSize, (encoder) => {
        const pass = encoder.beginComputePass({ label: `knockout at ${query}: logits` });
        this.ops.normalize(pass, p, this.weights.finalNorm, x, work.h, rows);
        this.ops.logits(pass, p, this.weights.lmHead, work.h, logits, rows);
        pass.end();
        encoder.copyBufferToBuffer(logits, 0, staging, 0, rows * s.vocabSize * F32);
      });
      await submitter.finish();
      return new Float32Array(await readStaging(staging, rows * s.vocabSize * F32));
    });
  }

  /**
   * One pass over the run's tokens in which no query after the span may attend to it; for every
   * position from span.end on, KL and the change in log-probability of the actual next token
   * against the run's own logits, computed on the device in blocks of rows. The pass is split like
   * the run (row blocks, groups of KV heads); its per-layer Q, K and V are scratch.
   */
  private async spanEffectNow(span: TokenSpan, signal?: AbortSignal): Promise<SpanEffectResult> {
    this.checkUsable();
    const run = this.requireRun('spanEffect');
    validateSpanEffect(span, run.n);
    const s = this.spec;
    const n = run.n;
    const d = s.hiddenSize;
    const V = s.vocabSize;
    const p = await this.ops.pipelines(1);
    const [maskedScores, divergence] = await Promise.all([
      this.kernels.pipeline('attention_scores_masked', { WORKGROUP_SIZE }),
      this.kernels.pipeline('next_token_divergence', { WORKGROUP_SIZE }),
    ]);
    throwIfAborted(signal);
    const numbers = await this.withErrorScopes('span effect', async () => {
      const layout = run.layout;
      const ranges = rowBlocks(n, 0, layout.rowsPerBlock);
      const residuals = ranges.map((range, i) => this.buffer(`span effect residual [rows, hidden] block ${i}`, range.rows * d * F32));
      const qBlocks = ranges.map((range, i) => this.buffer(`span effect q [rows, heads * head_dim] block ${i}`, range.rows * s.numHeads * s.headDim * F32));
      const groups = kvGroupRanges(s, layout);
      const k = groups.map((group, g) => this.buffer(`span effect k [n, group kv_heads * head_dim] group ${g}`, n * group.count * s.headDim * F32));
      const v = groups.map((group, g) => this.buffer(`span effect v [n, group kv_heads * head_dim] group ${g}`, n * group.count * s.headDim * F32));
      const work = this.layerWork(Math.max(...ranges.map((range) => range.rows)));
      const probs = this.buffer('probabilities block [heads, queries, n]', layout.headsPerBlock * layout.queriesPerBlock * n * F32);
      const inputs = this.blockInputs(run.tokenIds, ranges, residuals, 'span effect');
      const mask: ScoreMask = { pipeline: maskedScores, queryStart: span.end, keyStart: span.start, keyEnd: span.end };

      const submitter = this.submitter('span effect', signal);
      await submitter.unit('embedding', 'span effect embedding', n * d, (encoder) => this.encodeEmbedding(encoder, p, inputs));
      for (let l = 0; l < s.numLayers; l++) {
        const computed = inputs.map((input, i): ComputedBlock => ({ ...input, q: qBlocks[i] }));
        await this.encodeLayer(submitter, p, l, n, layout, computed, k, v, probs, work, mask, undefined);
      }

      // Positions span.end .. n-1, a block of rows at a time: both logits, then the two numbers.
      const changed: RowSegment[] = ranges.map((range, i) => ({ ...range, buffer: residuals[i] }));
      const count = n - span.end;
      const blockRows = Math.max(1, Math.min(count, Math.floor(Math.min(this.bindingBudget, LOGITS_BLOCK_BYTES) / (Math.max(V, d) * F32))));
      const nextTokens = this.buffer('span effect next tokens [n]', n * 4);
      this.device.queue.writeBuffer(nextTokens, 0, Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? run.tokenIds[i + 1] : -1)));
      const fullRows = this.buffer('span effect full rows [block, hidden]', blockRows * d * F32);
      const changedRows = this.buffer('span effect changed rows [block, hidden]', blockRows * d * F32);
      const normed = this.buffer('span effect normed rows [block, hidden]', blockRows * d * F32);
      const fullLogits = this.buffer('span effect full logits [block, vocab]', blockRows * V * F32);
      const changedLogits = this.buffer('span effect changed logits [block, vocab]', blockRows * V * F32);
      const divergences = this.buffer('span effect divergences [block, 2]', blockRows * 2 * F32);
      const staging = this.staging('span effect staging', count * 2 * F32);
      // Per row: both rows' logits (two [hidden] x [hidden, vocab] products) and the divergence.
      const logitsCostPerRow = 2 * d * V + 8 * V;
      for (let row0 = span.end; row0 < n; ) {
        const rows = unitRows(submitter.unitCost('span effect logits'), Math.min(blockRows, n - row0), logitsCostPerRow);
        const start = row0;
        await submitter.unit('span effect logits', `span effect logits ${start}..${start + rows}`, rows * logitsCostPerRow, (encoder) => {
          copyRows(encoder, run.hidden, start, rows, fullRows, d * F32);
          copyRows(encoder, changed, start, rows, changedRows, d * F32);
          const pass = encoder.beginComputePass({ label: `span effect logits ${start}..${start + rows}` });
          this.ops.normalize(pass, p, this.weights.finalNorm, fullRows, normed, rows);
          this.ops.logits(pass, p, this.weights.lmHead, normed, fullLogits, rows);
          this.ops.normalize(pass, p, this.weights.finalNorm, changedRows, normed, rows);
          this.ops.logits(pass, p, this.weights.lmHead, normed, changedLogits, rows);
          dispatch(this.device, pass, divergence, [this.kernels.uniform([rows, V, start]), fullLogits, changedLogits, nextTokens, divergences], [Math.ceil(rows / WORKGROUP_SIZE)]);
          pass.end();
          encoder.copyBufferToBuffer(divergences, 0, staging, (start - span.end) * 2 * F32, rows * 2 * F32);
        });
        row0 += rows;
      }
      await submitter.finish();
      return new Float32Array(await readStaging(staging, count * 2 * F32));
    });
    const tokens: TokenEffect[] = [];
    for (let position = span.end; position < n; position++) {
      const at = (position - span.end) * 2;
      // Rounding can leave a KL of a few ulps below zero; like klDivergence, report it as 0.
      tokens.push({ position, kl: Math.max(0, numbers[at]), deltaLogProb: position + 1 < n ? numbers[at + 1] : null });
    }
    return { span: { start: span.start, end: span.end }, tokens };
  }

  /** Makes `state` the run that attentionRow and the causal checks use, freeing the previous one unless the cache keeps it. */
  private setLastRun(state: RunState | undefined): void {
    const previous = this.lastRun;
    this.lastRun = state;
    if (previous && previous !== state) this.releaseState(previous);
  }

  /** Destroys a state's buffers unless the last run or a cache entry still holds it. */
  private releaseState(state: RunState): void {
    if (state === this.lastRun) return;
    for (const entry of this.cache.values()) if (entry.state === state) return;
    destroyState(state);
  }

  /** Keeps a run for its key, least recently used first out when over the byte budget. */
  private remember(key: string, entry: Omit<CacheEntry, 'bytes'>): void {
    const bytes = entry.state.bytes + summaryArrayBytes(entry.summary) + entry.lastLogits.byteLength;
    const previous = this.cache.get(key);
    this.cache.delete(key);
    if (previous) this.releaseState(previous.state);
    if (bytes > this.cacheBytes) return;
    this.cache.set(key, { ...entry, bytes });
    evictOverBudget(this.cache, this.cacheBytes, (evicted) => this.releaseState(evicted.state));
  }

  /** Marks a cache entry as the most recently used. */
  private touch(key: string, entry: CacheEntry): void {
    this.cache.delete(key);
    this.cache.set(key, entry);
  }

  private requireRun(what: string): RunState {
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

  /** One layer's temporaries for `rows` rows, shared by runs and the causal checks. */
  private layerWork(rows: number): LayerWork {
    const s = this.spec;
    const kvWidth = s.numKvHeads * s.headDim;
    return {
      h: this.buffer('normed [rows, hidden]', rows * s.hiddenSize * F32),
      attended: this.buffer('attended [rows, heads * head_dim]', rows * s.numHeads * s.headDim * F32),
      projected: this.buffer('projected [rows, hidden]', rows * s.hiddenSize * F32),
      up: this.buffer('mlp up [rows, intermediate]', rows * s.intermediateSize * F32),
      gate: s.mlp === 'swiglu' ? this.buffer('mlp gate [rows, intermediate]', rows * s.intermediateSize * F32) : undefined,
      kRows: this.buffer('k rows [rows, kv_heads * head_dim]', rows * kvWidth * F32),
      vRows: this.buffer('v rows [rows, kv_heads * head_dim]', rows * kvWidth * F32),
    };
  }

  /**
   * The timer of a run's summary passes, or undefined when the device has no timestamp queries. It
   * holds as many passes as one query set can; a run cut into more is reported untimed.
   */
  private passTimer(): PassTimer | undefined {
    if (!this.device.features.has('timestamp-query')) return undefined;
    this.timer ??= new PassTimer(this.device, MAX_TIMED_PASSES);
    this.timer.reset();
    return this.timer;
  }

  /** A reusable scratch storage buffer of at least `bytes`, grown (never shrunk) across runs. */
  private buffer(label: string, bytes: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (size > this.device.limits.maxStorageBufferBindingSize) {
      // The memory plan keeps every buffer within the binding limit; this is a planning bug.
      throw new Error(`${label} needs ${size} bytes, more than this adapter lets one buffer binding hold (${this.device.limits.maxStorageBufferBindingSize})`);
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

  /** The summary buffers of summarised layer `index`, computed row block `block`, for `rows` rows. */
  private summaryBlockFor(index: number, block: number, rows: number, k: number, numSpans: number): SummaryBlock {
    const H = this.spec.numHeads;
    const blocks = (this.summaryBlocks[index] ??= []);
    const existing = blocks[block];
    const need = [H * rows * k * 4, H * rows * k * 4, H * rows * numSpans * 4, rows * numSpans * 4, rows * numSpans * 4].map(bufferSize);
    const total = summaryBytes(rows, H, k, numSpans);
    if (
      existing &&
      existing.topIndices.size >= need[0] &&
      existing.spanMass.size >= need[2] &&
      existing.spanMean.size >= need[3] &&
      existing.staging.size >= bufferSize(total)
    ) {
      return existing;
    }
    if (existing) for (const buffer of Object.values(existing) as GPUBuffer[]) buffer.destroy();
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
    const label = `summary ${index} block ${block}`;
    const make = (name: string, size: number) => this.device.createBuffer({ label: `${label} ${name}`, size, usage });
    const created: SummaryBlock = {
      topIndices: make('top indices [heads, rows, k]', need[0]),
      topWeights: make('top weights [heads, rows, k]', need[1]),
      spanMass: make('span mass [heads, rows, spans]', need[2]),
      spanMean: make('span mean [rows, spans]', need[3]),
      spanMax: make('span max [rows, spans]', need[4]),
      staging: this.device.createBuffer({ label: `${label} staging`, size: bufferSize(total), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
    };
    blocks[block] = created;
    return created;
  }

  /** Reads the summaries of the m computed rows (from `first`) back and assembles them row-major. */
  private async readSummary(
    sets: readonly (readonly SummaryBlock[])[],
    ranges: readonly RowRange[],
    first: number,
    layers: readonly number[],
    m: number,
    H: number,
    k: number,
    numSpans: number,
  ): Promise<AttentionSummary> {
    const L = layers.length;
    const S = numSpans;
    const topIndices = new Int32Array(L * H * m * k);
    const topWeights = new Float32Array(L * H * m * k);
    const spanMass = new Float32Array(L * H * m * S);
    const spanMassMean = new Float32Array(L * m * S);
    const spanMassMax = new Float32Array(L * m * S);
    const copies = await Promise.all(sets.map((blocks) => Promise.all(blocks.map((set, b) => readStaging(set.staging, summaryBytes(ranges[b].rows, H, k, S))))));
    copies.forEach((blocks, l) => {
      blocks.forEach((data, b) => {
        const rows = ranges[b].rows;
        const row0 = ranges[b].rowStart - first;
        const indices = new Int32Array(data, 0, H * rows * k);
        const weights = new Float32Array(data, H * rows * k * 4, H * rows * k);
        const mass = new Float32Array(data, 2 * H * rows * k * 4, H * rows * S);
        const mean = new Float32Array(data, (2 * H * rows * k + H * rows * S) * 4, rows * S);
        const max = new Float32Array(data, (2 * H * rows * k + H * rows * S + rows * S) * 4, rows * S);
        for (let h = 0; h < H; h++) {
          topIndices.set(indices.subarray(h * rows * k, (h + 1) * rows * k), ((l * H + h) * m + row0) * k);
          topWeights.set(weights.subarray(h * rows * k, (h + 1) * rows * k), ((l * H + h) * m + row0) * k);
          spanMass.set(mass.subarray(h * rows * S, (h + 1) * rows * S), ((l * H + h) * m + row0) * S);
        }
        spanMassMean.set(mean, (l * m + row0) * S);
        spanMassMax.set(max, (l * m + row0) * S);
      });
    });
    return { numTokens: m, layers: [...layers], numHeads: H, topK: k, topIndices, topWeights, numSpans: S, spanMass, spanMassMean, spanMassMax };
  }

  private releaseScratch(): void {
    for (const buffer of this.scratch.values()) buffer.destroy();
    this.scratch.clear();
    const states = new Set<RunState>([...this.cache.values()].map((entry) => entry.state));
    if (this.lastRun) states.add(this.lastRun);
    for (const state of states) destroyState(state);
    this.cache.clear();
    this.lastRun = undefined;
    for (const blocks of this.summaryBlocks) for (const set of blocks) for (const buffer of Object.values(set) as GPUBuffer[]) buffer.destroy();
    this.summaryBlocks.length = 0;
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

/**
 * cos and sin of positions start..start+rows-1 of a sequence of `sequenceLength` tokens and every
 * frequency, [rows, head_dim / 2, 2], from engine/model/rope.ts (computed in f32 the way Hugging
 * Face does, with the model's rotary scaling).
 */
function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
