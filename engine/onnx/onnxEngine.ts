/**
 * The CPU engine at native speed: the model's forward pass as an ONNX graph (onnxGraph.ts) run by
 * ONNX Runtime (`onnxruntime-node`, float32, MLAS GEMMs on the machine's cores). The attention
 * probabilities are reduced inside the graph; this class feeds the graph block by block, reads back
 * the summaries and keeps the keys and values of the last run for exact rows and causal checks.
 *
 * Memory: a window of n tokens runs as a chain of row blocks (rowsPerBlock), each attending to the
 * keys and values of the blocks before it, so the largest intermediates are [heads/group, block, n]
 * rather than [heads, n, n]; the run's state is O(n x layers x kv width). `planMemory` estimates the
 * peak before a run and a run that would not fit in the memory budget is refused with the longest
 * window that would (WindowTooLongError), never an out-of-memory kill.
 *
 * One session holds the weights (the analysis graph; a value-weighted variant is built on first
 * use), plus the LM head alone for the span effect: exact rows, knockouts and the span effect are
 * runs of the same analysis graph (one row at the query; the span hidden), so no second copy of the
 * weights is made for them.
 *
 * `InferenceSession.run` of onnxruntime-node computes on the calling thread, so editors and the CLI
 * use this class inside a process of its own (engine/hosts/nodeOnnx.ts); it is only called directly
 * there and in tests of the graph itself.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { AttentionRequest, AttentionSummary, BackendInfo, ForwardResult, TokenSpan } from '../attention';
import { compareNextToken, knockedPositions, logSoftmax, topTokens, validateKnockout, validateSpanEffect, type KnockoutRequest, type KnockoutResult, type SpanEffectResult } from '../causal';
import type { AttentionEngine } from '../engine';
import type { LoadedModel, ModelSpec } from '../model/modelTypes';
import { throwIfAborted, validateAttentionRequest, validateRowRequest, validateTokenIds } from '../requestChecks';
import { hasLocalRope, localRopeSpec, ropeCosSin, ropeTablesAgree, rotaryDimOf, type RopeSpec } from '../model/rope';
import { buildAnalysisModel, buildHeadModel, GRAPH_IO, totalWeightBytes, totalWeightElements, type OnnxGraph } from './onnxGraph';
import { cloneSummary, evictOverBudget, mergeSummaries, planReuse, summaryArrayBytes, type CachedRequest, type ReusePlan } from '../runReuse';
import { WindowTooLongError } from '../webgpu/memoryPlan';
import { withoutBytes, type WeightsFile } from './weightsFile';
import { cpuMemoryPlan, longestCpuWindow, residentWeightBytes, rowsPerBlock, DEFAULT_BLOCK_BYTES, type CpuMemoryPlan } from './cpuMemoryPlan';

export interface OnnxEngineOptions {
  /** Threads for ONNX Runtime's intra-op pool (GEMMs, softmax): 1..cores. */
  readonly threads: number;
  /** Byte budget of the cache of runs kept for incremental re-analysis (default 256 MiB). */
  readonly cacheBytes?: number;
  /** Why this engine runs (shown to users), e.g. "no hardware WebGPU adapter". */
  readonly reason: string;
  /**
   * Bytes one block's largest intermediate ([heads/group, rows, keys] float32) may take; sets the
   * rows per block (default DEFAULT_BLOCK_BYTES). Tests set it small to run many blocks.
   */
  readonly blockBytes?: number;
  /**
   * Reads the model's weights again. When given, the engine lets go of the weights it was created
   * with once its session holds them (ONNX Runtime keeps its own float32 copy), and reads them again
   * only to build a graph variant (value weighting, the span effect's LM head): the engine process
   * then holds one copy of the weights, not two.
   */
  readonly reloadWeights?: () => Promise<LoadedModel>;
  /**
   * The model's float32 weights file (weightsFile.ts): the graphs refer to it and ONNX Runtime maps
   * it, so the engine holds no weights of its own in memory.
   */
  readonly weightsFile?: WeightsFile;
  /**
   * Memory a run may use in all (weights, state, the blocks' intermediates, summaries); a run whose
   * plan exceeds it is refused with the longest window that fits. Default: the machine's memory
   * (os.totalmem()) less what other processes use now, as the host computes it.
   */
  readonly memoryBudgetBytes?: number;
}

/**
 * The most recent run: its tokens, per layer the post-rotary keys and values [n, Hkv, hd]
 * (sequence-first: the first p positions are the array's first p rows, so reusing a prefix copies
 * nothing; the arrays may hold room for more rows than n), and the final normed hidden states
 * [n, d] (the span effect compares with these).
 */
interface LastRun {
  readonly tokenIds: Int32Array;
  readonly numTokens: number;
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  readonly finalHidden: Float32Array;
}

type SessionKind = 'valueWeighted' | 'head';

/** One run's results and the state later calls start from. */
interface RunOutcome {
  readonly summary: AttentionSummary;
  readonly lastLogits: Float32Array;
  readonly run: LastRun;
  readonly stats: ForwardResult['stats'];
}

/** A cached run and what it was asked (engine/runReuse.ts decides what a new request can reuse). */
interface CacheEntry extends CachedRequest {
  readonly tokenIds: Int32Array;
  readonly spans: readonly TokenSpan[];
  readonly topK: number;
  readonly layers: readonly number[];
  readonly weighting: string;
  readonly outcome: RunOutcome;
  readonly bytes: number;
}

/** Keys hidden from the queries outside them, in some layers (a knockout or the span effect). */
interface HiddenKeys {
  readonly start: number;
  readonly end: number;
  /** [L]: 1 where the layer hides them. */
  readonly layers: BigInt64Array;
}

/** What one block of rows returned. */
interface BlockOutputs {
  readonly first: number;
  readonly rows: number;
  readonly read: ReturnType<typeof reader>;
}

/** Default byte budget of the run cache (attentionLens.cacheMegabytes sets it in the editor). */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  // The arena keeps a block's buffers between blocks and runs (without it every run page-faults
  // them in again: 5-10x slower at n = 2048); memory patterns only pay off for fixed shapes, and
  // blocks and windows change length.
  enableCpuMemArena: true,
  enableMemPattern: false,
};

async function createSession(graph: OnnxGraph, threads: number): Promise<ort.InferenceSession> {
  const externalData = graph.externalData.map(({ path: location, data }) => ({ path: location, data }));
  if (!graph.weightsFile) return ort.InferenceSession.create(graph.model, { ...SESSION_OPTIONS, intraOpNumThreads: threads, externalData });
  // A graph on a weights file is loaded from a file beside it (ONNX Runtime resolves external data
  // from the model's folder) and maps the weights instead of copying them; without prepacking the
  // GEMMs read the mapped float32 weights directly, so no second copy is made.
  const file = path.join(graph.weightsFile.dir, `${graph.name.replace(/[^\w.-]/g, '_')}.onnx`);
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, graph.model);
  fs.renameSync(temp, file);
  return ort.InferenceSession.create(file, { ...SESSION_OPTIONS, intraOpNumThreads: threads, externalData, extra: { session: { disable_prepacking: '1' } } });
}

export class OnnxRuntimeEngine implements AttentionEngine {
  readonly backend: BackendInfo;
  private lastRun?: LastRun;
  /** The post-rotary queries of one row of the last run, per layer [H * hd], for attentionRow. */
  private rowQueries?: { run: LastRun; query: number; queries: Float32Array[] };
  private disposed = false;
  /** Sessions built on first use: value-weighted summaries, the LM head for the span effect. */
  private readonly extraSessions = new Map<SessionKind, Promise<ort.InferenceSession>>();
  /** Runs kept by cacheKey for incremental re-analysis, least recently used first. */
  private readonly cache = new Map<string, CacheEntry>();
  private readonly cacheBytes: number;
  private readonly blockBytes: number;
  private readonly memoryBudgetBytes?: number;
  private lastPlan?: CpuMemoryPlan;
  /** Resident bytes of the weights: ONNX Runtime's float32 copy and the loader's (external data). */
  private readonly weightBytes: number;
  readonly spec: ModelSpec;

  /** The weights, while the engine keeps them (see OnnxEngineOptions.reloadWeights). */
  private model: LoadedModel | undefined;
  private readonly reloadWeights?: () => Promise<LoadedModel>;
  private readonly weightsFile?: WeightsFile;

  private constructor(
    model: LoadedModel,
    private readonly session: ort.InferenceSession,
    private readonly threads: number,
    options: OnnxEngineOptions,
  ) {
    this.spec = model.spec;
    this.reloadWeights = options.reloadWeights;
    this.weightsFile = options.weightsFile;
    this.model = options.weightsFile ? withoutBytes(model) : options.reloadWeights ? undefined : model;
    this.cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.blockBytes = options.blockBytes ?? DEFAULT_BLOCK_BYTES;
    this.memoryBudgetBytes = options.memoryBudgetBytes;
    // On a weights file: its mapped float32 pages only; else ONNX Runtime's copy and the loader's.
    this.weightBytes = options.weightsFile ? totalWeightElements(model) * 4 : residentWeightBytes(totalWeightElements(model), totalWeightBytes(model));
    this.backend = { kind: 'onnxruntime', version: ort.env.versions.node ?? 'unknown', threads, reason: options.reason };
  }

  /** Builds the analysis graph and its session (ONNX Runtime folds the weight casts and prepacks the GEMMs here). */
  static async create(model: LoadedModel, options: OnnxEngineOptions): Promise<OnnxRuntimeEngine> {
    const threads = Math.max(1, Math.floor(options.threads));
    const session = await createSession(buildAnalysisModel(model, { weightsFile: options.weightsFile }), threads);
    return new OnnxRuntimeEngine(model, session, threads, options);
  }

  /** The session of a graph variant, built the first time it is needed. */
  private extraSession(kind: SessionKind): Promise<ort.InferenceSession> {
    let session = this.extraSessions.get(kind);
    if (!session) {
      session = (async () => {
        const model = this.model ?? (await this.reloadWeights!());
        const weightsFile = this.weightsFile;
        return createSession(kind === 'head' ? buildHeadModel(model, weightsFile) : buildAnalysisModel(model, { valueWeighted: true, weightsFile }), this.threads);
      })();
      session.catch(() => this.extraSessions.delete(kind));
      this.extraSessions.set(kind, session);
    }
    return session;
  }

  /** The memory plan of a run of n tokens (weights, state, one block's intermediates, summaries). */
  planMemory(n: number, request: { topK: number; numSpans: number; layers?: number }): CpuMemoryPlan {
    return cpuMemoryPlan(this.spec, n, { weightBytes: this.weightBytes, blockBytes: this.blockBytes, topK: request.topK, numSpans: request.numSpans, layers: request.layers ?? this.spec.numLayers });
  }

  /** Memory use the last run planned, for logs and benchmarks. */
  lastMemoryPlan(): CpuMemoryPlan | undefined {
    return this.lastPlan;
  }

  async run(request: AttentionRequest, signal?: AbortSignal): Promise<ForwardResult> {
    this.checkUsable();
    throwIfAborted(signal);
    const tokenIds = validateTokenIds(request.tokenIds, this.spec);
    const n = tokenIds.length;
    const layers = validateAttentionRequest(request, n, this.spec);
    this.checkMemory(n, request, layers.length);
    this.lastRun = undefined;
    this.rowQueries = undefined;
    const key = request.cacheKey;
    const cached = key ? this.cache.get(key) : undefined;
    const reuse = cached ? planReuse(cached, tokenIds, request, layers, ropeTablesAgree(this.spec, cached.tokenIds.length, tokenIds.length)) : undefined;
    let outcome: RunOutcome;
    if (reuse?.past === n) {
      // Same tokens, same spans: the cached run is this run.
      outcome = { ...cached!.outcome, stats: { forwardMs: 0, summaryMs: 0, readbackBytes: 0, reusedTokens: n } };
    } else if (reuse) {
      outcome = await this.runIncremental(cached!, reuse, tokenIds, request, layers, signal);
    } else {
      outcome = await this.runFull(tokenIds, request, layers, signal);
    }
    this.lastRun = outcome.run;
    if (key) this.remember(key, { tokenIds, spans: request.spans.map((sp) => ({ start: sp.start, end: sp.end })), topK: request.topK, layers, weighting: request.weighting ?? 'attention', outcome });
    // The caller may take the arrays (the host process transfers them): the cache keeps its own.
    const summary = key ? cloneSummary(outcome.summary) : outcome.summary;
    return { summary, lastLogits: outcome.lastLogits.slice(), backend: this.backend, stats: outcome.stats };
  }

  releaseCache(cacheKey: string): void {
    this.cache.delete(cacheKey);
  }

  /** Refuses a run whose memory plan exceeds the budget, naming the numbers and the longest window that fits. */
  private checkMemory(n: number, request: AttentionRequest, layers: number): void {
    const plan = this.planMemory(n, { topK: request.topK, numSpans: request.spans.length, layers });
    this.lastPlan = plan;
    const budget = this.memoryBudgetBytes;
    if (budget === undefined || plan.peakBytes <= budget) return;
    const longest = longestCpuWindow(this.spec, budget, { weightBytes: plan.weightBytes, blockBytes: this.blockBytes, topK: request.topK, numSpans: request.spans.length, layers });
    const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
    throw new WindowTooLongError(
      `A window of ${n} tokens needs about ${gib(plan.peakBytes)} of memory on the CPU engine (weights ${gib(plan.weightBytes)}, keys and values ${gib(plan.stateBytes)}, summaries ${gib(plan.summaryBytes)}, blocks of ${plan.rowsPerBlock} rows ${gib(plan.blockBytes)}), more than the ${gib(budget)} available; ` +
        (longest > 0 ? `the longest window that fits is ${longest} tokens (set attentionLens.contextWindow to ${longest} or less, or close other programs).` : 'not even a short window fits: the weights alone take most of it; use a smaller model.'),
      longest,
    );
  }

  /** The whole sequence, in blocks of rows. */
  private async runFull(tokenIds: Int32Array, request: AttentionRequest, layers: readonly number[], signal?: AbortSignal): Promise<RunOutcome> {
    const n = tokenIds.length;
    const state = this.newState(n);
    const started = now();
    const result = await this.runBlocks(tokenIds, 0, state, { request, layers }, signal);
    const summary = result.summary!;
    const run: LastRun = { tokenIds, numTokens: n, keys: state.keys, values: state.values, finalHidden: state.finalHidden };
    return { summary, lastLogits: result.lastLogits, run, stats: { forwardMs: result.forwardMs, summaryMs: now() - started - result.forwardMs, readbackBytes: result.readbackBytes } };
  }

  /**
   * Positions [past, n) only, attending to the cached keys and values of [0, past): rows before
   * `past` keep their cached summaries (a causal model computes them from earlier tokens only), the
   * new rows get theirs from the analysis graph.
   */
  private async runIncremental(cached: CacheEntry, reuse: ReusePlan, tokenIds: Int32Array, request: AttentionRequest, layers: readonly number[], signal?: AbortSignal): Promise<RunOutcome> {
    const s = this.spec;
    const n = tokenIds.length;
    const p = reuse.past;
    const old = cached.outcome.run;
    const kvWidth = s.numKvHeads * s.headDim;
    // The cached arrays take the new rows after the prefix, in place when they have room: this run
    // replaces the cached one of its key, which nothing else holds (the cache entry is renewed).
    const state = {
      keys: old.keys.map((k) => withRoom(k, p, n, kvWidth)),
      values: old.values.map((v) => withRoom(v, p, n, kvWidth)),
      finalHidden: withRoom(old.finalHidden, p, n, s.hiddenSize),
    };
    const started = now();
    const result = await this.runBlocks(tokenIds, p, state, { request, layers }, signal);
    const summary = mergeSummaries(cached.outcome.summary, p, result.summary!, reuse.columns, n);
    const run: LastRun = { tokenIds, numTokens: n, ...state };
    return { summary, lastLogits: result.lastLogits, run, stats: { forwardMs: result.forwardMs, summaryMs: now() - started - result.forwardMs, readbackBytes: result.readbackBytes, reusedTokens: p } };
  }

  /** Fresh state arrays for n rows. */
  private newState(n: number): { keys: Float32Array[]; values: Float32Array[]; finalHidden: Float32Array } {
    const s = this.spec;
    const kvWidth = s.numKvHeads * s.headDim;
    return {
      keys: Array.from({ length: s.numLayers }, () => new Float32Array(n * kvWidth)),
      values: Array.from({ length: s.numLayers }, () => new Float32Array(n * kvWidth)),
      finalHidden: new Float32Array(n * s.hiddenSize),
    };
  }

  /**
   * Rows [first, n) of `tokenIds` in blocks: each block attends to the state's keys and values of
   * the rows before it (rows [0, first) are there already) and writes its own into the state. With
   * `summaries` the blocks' summaries are joined into one for rows [first, n); `onBlock` sees each
   * block's outputs (the span effect). Returns the last row's logits.
   */
  private async runBlocks(
    tokenIds: Int32Array,
    first: number,
    state: { keys: Float32Array[]; values: Float32Array[]; finalHidden?: Float32Array },
    summaries: { request: AttentionRequest; layers: readonly number[] } | undefined,
    signal: AbortSignal | undefined,
    options: {
      hidden?: HiddenKeys;
      rowsPerBlock?: number;
      onBlock?: (block: BlockOutputs) => Promise<void> | void;
      wantQueries?: boolean;
      writeState?: boolean;
      /** The length of the run the rows belong to (the rotary tables of some scalings depend on it); by default tokenIds.length. */
      sequenceLength?: number;
    } = {},
  ): Promise<{ lastLogits: Float32Array; summary?: AttentionSummary; forwardMs: number; readbackBytes: number; queries?: Float32Array[] }> {
    const s = this.spec;
    const n = tokenIds.length;
    const kvWidth = s.numKvHeads * s.headDim;
    const request = summaries?.request;
    const session = request?.weighting === 'valueWeighted' ? await this.extraSession('valueWeighted') : this.session;
    const B = options.rowsPerBlock ?? rowsPerBlock(s, n, this.blockBytes);
    const layers = summaries?.layers ?? [];
    const S = request ? request.spans.length : 0;
    const k = request ? request.topK : 1;
    const H = s.numHeads;
    const total = n - first;
    // The joined summary of rows [first, n): [layer][head][row][k] and [layer][head][row][span].
    const topIndices = request ? new Int32Array(layers.length * H * total * k).fill(-1) : undefined;
    const topWeights = request ? new Float32Array(layers.length * H * total * k) : undefined;
    const spanMass = request ? new Float32Array(layers.length * H * total * S) : undefined;
    const spanMassMean = request ? new Float32Array(layers.length * total * S) : undefined;
    const spanMassMax = request ? new Float32Array(layers.length * total * S) : undefined;
    const hidden = options.hidden ?? { start: 0, end: 0, layers: new BigInt64Array(s.numLayers) };
    const fetches = this.fetches(layers, options.wantQueries === true);
    let lastLogits = new Float32Array(0);
    let forwardMs = 0;
    let readbackBytes = 0;
    let queries: Float32Array[] | undefined;
    for (let b = first; b < n; b += B) {
      // Between blocks the event loop turns, so a cancel message reaches the signal.
      if (b > first) await new Promise((resolve) => setImmediate(resolve));
      throwIfAborted(signal);
      const m = Math.min(B, n - b);
      const keys = b + m;
      const feeds: Record<string, ort.Tensor> = {
        [GRAPH_IO.inputIds]: new ort.Tensor('int64', BigInt64Array.from(tokenIds.subarray(b, b + m), (id) => BigInt(id)), [m]),
        [GRAPH_IO.firstPosition]: new ort.Tensor('int64', BigInt64Array.of(BigInt(b)), [1]),
        [GRAPH_IO.hiddenRange]: new ort.Tensor('int64', BigInt64Array.of(BigInt(hidden.start), BigInt(hidden.end)), [2]),
        [GRAPH_IO.hiddenLayers]: new ort.Tensor('int64', hidden.layers, [s.numLayers]),
        [GRAPH_IO.spanIndicator]: new ort.Tensor('float32', spanIndicator(request?.spans ?? [], keys), [keys, Math.max(1, S)]),
        [GRAPH_IO.topK]: new ort.Tensor('int64', BigInt64Array.of(BigInt(Math.min(k, keys))), [1]),
      };
      if (s.positional === 'rope') {
        const { cos, sin } = ropeRows(s, b, m, options.sequenceLength ?? n);
        feeds[GRAPH_IO.ropeCos] = new ort.Tensor('float32', cos, [m, rotaryDimOf(s)]);
        feeds[GRAPH_IO.ropeSin] = new ort.Tensor('float32', sin, [m, rotaryDimOf(s)]);
        if (hasLocalRope(s)) {
          const local = ropeRows(localRopeSpec(s), b, m, options.sequenceLength ?? n);
          feeds[GRAPH_IO.ropeCosLocal] = new ort.Tensor('float32', local.cos, [m, rotaryDimOf(s)]);
          feeds[GRAPH_IO.ropeSinLocal] = new ort.Tensor('float32', local.sin, [m, rotaryDimOf(s)]);
        }
      } else {
        feeds[GRAPH_IO.positionIds] = new ort.Tensor('int64', BigInt64Array.from({ length: m }, (_, i) => BigInt(b + i)), [m]);
      }
      for (let l = 0; l < s.numLayers; l++) {
        feeds[GRAPH_IO.pastKeys(l)] = new ort.Tensor('float32', state.keys[l].subarray(0, b * kvWidth), [b, s.numKvHeads, s.headDim]);
        feeds[GRAPH_IO.pastValues(l)] = new ort.Tensor('float32', state.values[l].subarray(0, b * kvWidth), [b, s.numKvHeads, s.headDim]);
      }
      const started = now();
      const outputs = await session.run(feeds, fetches);
      forwardMs += now() - started;
      const read = reader(outputs);
      if (options.writeState !== false) {
        for (let l = 0; l < s.numLayers; l++) {
          state.keys[l].set(read.float(GRAPH_IO.keys(l)), b * kvWidth);
          state.values[l].set(read.float(GRAPH_IO.values(l)), b * kvWidth);
        }
      }
      if (state.finalHidden) state.finalHidden.set(read.float(GRAPH_IO.finalHidden), b * s.hiddenSize);
      if (options.wantQueries) queries = Array.from({ length: s.numLayers }, (_, l) => read.float(GRAPH_IO.queries(l)).slice());
      if (request) {
        const block = assembleSummary(layers, m, H, request, (layer) => read.layer(layer), b, layers.map((layer) => s.slidingWindow?.[layer] ?? 0));
        copyBlockSummary(block, { topIndices: topIndices!, topWeights: topWeights!, spanMass: spanMass!, spanMassMean: spanMassMean!, spanMassMax: spanMassMax! }, b - first, total, layers.length, H, k, S);
      }
      await options.onBlock?.({ first: b, rows: m, read });
      if (b + m === n) lastLogits = read.float(GRAPH_IO.lastLogits).slice();
      readbackBytes += read.bytes();
    }
    const summary: AttentionSummary | undefined = request
      ? { numTokens: total, layers: [...layers], numHeads: H, topK: k, topIndices: topIndices!, topWeights: topWeights!, numSpans: S, spanMass: spanMass!, spanMassMean: spanMassMean!, spanMassMax: spanMassMax! }
      : undefined;
    return { lastLogits, summary, forwardMs, readbackBytes, queries };
  }

  private fetches(layers: readonly number[], withQueries: boolean): string[] {
    const fetches: string[] = [GRAPH_IO.lastLogits, GRAPH_IO.finalHidden];
    for (const layer of layers) {
      fetches.push(GRAPH_IO.topWeights(layer), GRAPH_IO.topIndices(layer), GRAPH_IO.spanMass(layer), GRAPH_IO.spanMassMean(layer), GRAPH_IO.spanMassMax(layer));
    }
    for (let layer = 0; layer < this.spec.numLayers; layer++) {
      fetches.push(GRAPH_IO.keys(layer), GRAPH_IO.values(layer));
      if (withQueries) fetches.push(GRAPH_IO.queries(layer));
    }
    return fetches;
  }

  /** Keeps a run for its key, least recently used first out when over the byte budget. */
  private remember(key: string, entry: Omit<CacheEntry, 'bytes'>): void {
    const run = entry.outcome.run;
    const bytes = [...run.keys, ...run.values, run.finalHidden].reduce((total, a) => total + a.byteLength, 0) + summaryArrayBytes(entry.outcome.summary);
    this.cache.delete(key);
    if (bytes > this.cacheBytes) return;
    this.cache.set(key, { ...entry, bytes });
    evictOverBudget(this.cache, this.cacheBytes);
  }

  /**
   * One row of one query against the run's keys and values [0, query): the analysis graph on that
   * single row (optionally with keys hidden), without writing anything into the run's state.
   */
  private async runRow(run: LastRun, query: number, hidden: HiddenKeys | undefined, wantQueries: boolean, signal?: AbortSignal): Promise<{ logits: Float32Array; queries?: Float32Array[] }> {
    // The run's keys and values are only read (views of their first `query` rows): the row's own
    // keys and values are computed again inside the graph and not written back.
    const state = { keys: run.keys, values: run.values };
    const result = await this.runBlocks(run.tokenIds.subarray(0, query + 1), query, state, undefined, signal, { hidden, rowsPerBlock: 1, wantQueries, writeState: false, sequenceLength: run.numTokens });
    return { logits: result.lastLogits, queries: result.queries };
  }

  async attentionRow(layer: number, head: number, query: number): Promise<Float32Array> {
    this.checkUsable();
    const run = this.lastRun;
    if (!run) throw new Error('attentionRow needs a completed run; call run() first');
    const s = this.spec;
    validateRowRequest(layer, head, query, s, run.numTokens);
    if (this.rowQueries?.run !== run || this.rowQueries.query !== query) {
      // The run keeps no queries (they would be as large as its keys and values several times
      // over): one row through the graph gives the query's post-rotary queries in every layer.
      const { queries } = await this.runRow(run, query, undefined, true);
      this.rowQueries = { run, query, queries: queries! };
    }
    // The row's queries as row `query` of a sequence-first array, against the run's keys.
    const q = new Float32Array((query + 1) * s.numHeads * s.headDim);
    q.set(this.rowQueries.queries[layer], query * s.numHeads * s.headDim);
    return sequenceFirstAttentionRow(q, run.keys[layer], s.numHeads, s.numKvHeads, s.headDim, head, query, s.slidingWindow?.[layer] ?? 0, s.attentionSoftcap ?? 0);
  }

  /**
   * Knockout: the query's row again with each span's keys hidden from it (in the requested layers),
   * against the run's cached keys and values of the earlier positions, and once with nothing hidden
   * (the same arithmetic, so an empty span gives exactly 0).
   */
  async knockout(request: KnockoutRequest, signal?: AbortSignal): Promise<KnockoutResult> {
    this.checkUsable();
    const run = this.requireRun('knockout');
    const s = this.spec;
    const layers = validateKnockout(request, run.numTokens, s.numLayers);
    const q = request.query;
    const nextToken = q + 1 < run.numTokens ? run.tokenIds[q + 1] : null;
    const flags = new BigInt64Array(s.numLayers);
    for (let l = layers.start; l < layers.end; l++) flags[l] = 1n;
    const full = (await this.runRow(run, q, undefined, false, signal)).logits;
    const spans = [];
    for (const span of request.spans) {
      const hidden = knockedPositions(span, q);
      const knocked = hidden.end > hidden.start ? (await this.runRow(run, q, { start: hidden.start, end: hidden.end, layers: flags }, false, signal)).logits : full;
      const { kl, deltaLogProb, top } = compareNextToken(full, knocked, nextToken);
      spans.push({ start: span.start, end: span.end, kl, deltaLogProb, top });
    }
    return { query: q, nextToken, top: topTokens(logSoftmax(full)), spans };
  }

  /**
   * The span hidden from every query outside it: rows before the span's end are unchanged (they
   * cannot see past themselves, and the span's own rows still see it), so the chain of blocks starts
   * at span.end from the run's keys and values, and each block's predictions are compared with the
   * run's by the head graph.
   */
  async spanEffect(span: TokenSpan, signal?: AbortSignal): Promise<SpanEffectResult> {
    this.checkUsable();
    const run = this.requireRun('spanEffect');
    validateSpanEffect(span, run.numTokens);
    const n = run.numTokens;
    const s = this.spec;
    const tokens: { position: number; kl: number; deltaLogProb: number | null }[] = [];
    if (span.end >= n) return { span: { start: span.start, end: span.end }, tokens };
    const head = await this.extraSession('head');
    throwIfAborted(signal);
    const kvWidth = s.numKvHeads * s.headDim;
    // The hidden run's own keys and values after the span; the prefix is the run's.
    const state = {
      keys: run.keys.map((k) => withRoom(k.slice(0, span.end * kvWidth), span.end, n, kvWidth)),
      values: run.values.map((v) => withRoom(v.slice(0, span.end * kvWidth), span.end, n, kvWidth)),
    };
    const hidden: HiddenKeys = { start: span.start, end: span.end, layers: new BigInt64Array(s.numLayers).fill(1n) };
    const d = s.hiddenSize;
    await this.runBlocks(run.tokenIds.subarray(0, n), span.end, state, undefined, signal, {
      hidden,
      onBlock: async ({ first, rows, read }) => {
        const next = new BigInt64Array(rows);
        for (let i = 0; i < rows; i++) next[i] = first + i + 1 < n ? BigInt(run.tokenIds[first + i + 1]) : 0n;
        const outputs = await head.run({
          [GRAPH_IO.hidden]: new ort.Tensor('float32', read.float(GRAPH_IO.finalHidden), [rows, d]),
          [GRAPH_IO.referenceHidden]: new ort.Tensor('float32', run.finalHidden.subarray(first * d, (first + rows) * d), [rows, d]),
          [GRAPH_IO.nextIds]: new ort.Tensor('int64', next, [rows]),
        });
        const kl = outputs[GRAPH_IO.effectKl].data as Float32Array;
        const delta = outputs[GRAPH_IO.effectDelta].data as Float32Array;
        for (let i = 0; i < rows; i++) tokens.push({ position: first + i, kl: Math.max(0, kl[i]), deltaLogProb: first + i + 1 < n ? delta[i] : null });
      },
    });
    return { span: { start: span.start, end: span.end }, tokens };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.lastRun = undefined;
    this.rowQueries = undefined;
    this.cache.clear();
    void this.session.release();
    for (const session of this.extraSessions.values()) void session.then((s) => s.release(), () => undefined);
    this.extraSessions.clear();
  }

  private requireRun(what: string): LastRun {
    if (!this.lastRun) throw new Error(`${what} needs a completed run; call run() first`);
    return this.lastRun;
  }

  private checkUsable(): void {
    if (this.disposed) throw new Error('the ONNX Runtime engine was disposed');
  }
}

/**
 * `array`'s first `past` rows (width `width`) in an array with room for `rows` rows: `array` itself
 * when it has the room, else a new array with a quarter more, so edits that grow a file do not copy
 * the whole state each time.
 */
function withRoom(array: Float32Array, past: number, rows: number, width: number): Float32Array {
  if (array.length >= rows * width) return array;
  const out = new Float32Array(Math.ceil(rows * 1.25) * width);
  out.set(array.subarray(0, past * width));
  return out;
}

/** Copies one block's summary (rows [at, at + block rows) of a summary of `total` rows) into place. */
function copyBlockSummary(
  block: AttentionSummary,
  into: { topIndices: Int32Array; topWeights: Float32Array; spanMass: Float32Array; spanMassMean: Float32Array; spanMassMax: Float32Array },
  at: number,
  total: number,
  L: number,
  H: number,
  k: number,
  S: number,
): void {
  const m = block.numTokens;
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const from = (l * H + h) * m;
      const to = (l * H + h) * total + at;
      into.topIndices.set(block.topIndices.subarray(from * k, (from + m) * k), to * k);
      into.topWeights.set(block.topWeights.subarray(from * k, (from + m) * k), to * k);
      if (S > 0) into.spanMass.set(block.spanMass.subarray(from * S, (from + m) * S), to * S);
    }
    if (S > 0) {
      into.spanMassMean.set(block.spanMassMean.subarray(l * m * S, (l + 1) * m * S), (l * total + at) * S);
      into.spanMassMax.set(block.spanMassMax.subarray(l * m * S, (l + 1) * m * S), (l * total + at) * S);
    }
  }
}

/**
 * cos and sin of positions first..first+count-1 of a sequence of `sequenceLength` tokens (any
 * rotary scaling applied), laid out [count, rotaryDim] with HF's rotate-half pairing (i and
 * i + rotaryDim/2 share an angle).
 */
function ropeRows(spec: RopeSpec, first: number, count: number, sequenceLength: number): { cos: Float32Array; sin: Float32Array } {
  const width = rotaryDimOf(spec);
  const half = width / 2;
  const table = ropeCosSin(spec, first, count, sequenceLength);
  const cos = new Float32Array(count * width);
  const sin = new Float32Array(count * width);
  for (let t = 0; t < count; t++) {
    for (let i = 0; i < half; i++) {
      cos[t * width + i] = cos[t * width + i + half] = table.cos[t * half + i];
      sin[t * width + i] = sin[t * width + i + half] = table.sin[t * half + i];
    }
  }
  return { cos, sin };
}


/** Reads a session's outputs, counting the bytes that cross into JavaScript. */
function reader(outputs: ort.InferenceSession.ReturnType) {
  let bytes = 0;
  const take = <T extends Float32Array | Int32Array>(name: string): T => {
    const data = outputs[name].data as T;
    bytes += data.byteLength;
    return data;
  };
  return {
    bytes: () => bytes,
    float: (name: string) => take<Float32Array>(name),
    layer: (layer: number): LayerOutputs => ({
      topWeights: take<Float32Array>(GRAPH_IO.topWeights(layer)),
      topIndices: take<Int32Array>(GRAPH_IO.topIndices(layer)),
      spanMass: take<Float32Array>(GRAPH_IO.spanMass(layer)),
      spanMassMean: take<Float32Array>(GRAPH_IO.spanMassMean(layer)),
      spanMassMax: take<Float32Array>(GRAPH_IO.spanMassMax(layer)),
    }),
  };
}

/** [n, max(1, S)]: 1 where token j lies in span s. A zero column stands in when there are no spans. */
function spanIndicator(spans: readonly TokenSpan[], n: number): Float32Array {
  const S = Math.max(1, spans.length);
  const indicator = new Float32Array(n * S);
  spans.forEach((span, s) => {
    for (let j = span.start; j < span.end; j++) indicator[j * S + s] = 1;
  });
  return indicator;
}

interface LayerOutputs {
  readonly topWeights: Float32Array;
  readonly topIndices: Int32Array;
  readonly spanMass: Float32Array;
  readonly spanMassMean: Float32Array;
  readonly spanMassMax: Float32Array;
}

/**
 * Joins the per-layer graph outputs into one AttentionSummary. TopK over a causal row also returns
 * masked positions (weight 0, after every visible one since ties keep the lower index), in the
 * future and before a sliding window (`windows[l]` of layers[l]); those become index -1 as the summary promises. A request without spans dropped the stand-in column.
 */
function assembleSummary(
  layers: readonly number[],
  n: number,
  H: number,
  request: AttentionRequest,
  outputsOf: (layer: number) => LayerOutputs,
  firstPosition = 0,
  windows?: readonly number[],
): AttentionSummary {
  const k = request.topK;
  // TopK's width: k, or fewer when the rows see fewer keys in all (past + these rows).
  const kept = Math.min(k, firstPosition + n);
  const S = request.spans.length;
  const L = layers.length;
  const topIndices = new Int32Array(L * H * n * k).fill(-1);
  const topWeights = new Float32Array(L * H * n * k);
  const spanMass = new Float32Array(L * H * n * S);
  const spanMassMean = new Float32Array(L * n * S);
  const spanMassMax = new Float32Array(L * n * S);
  layers.forEach((layer, l) => {
    const out = outputsOf(layer);
    for (let h = 0; h < H; h++) {
      for (let q = 0; q < n; q++) {
        const from = (h * n + q) * kept;
        const to = ((l * H + h) * n + q) * k;
        // Outside a sliding window the probabilities are 0 too, and TopK puts them after every visible key.
        const window = windows?.[l] ?? 0;
        const firstVisible = window > 0 ? firstPosition + q - window + 1 : 0;
        for (let slot = 0; slot < kept; slot++) {
          const index = out.topIndices[from + slot];
          if (index > firstPosition + q || index < firstVisible) break;
          topIndices[to + slot] = index;
          topWeights[to + slot] = out.topWeights[from + slot];
        }
      }
    }
    if (S > 0) {
      spanMass.set(out.spanMass, l * H * n * S);
      spanMassMean.set(out.spanMassMean, l * n * S);
      spanMassMax.set(out.spanMassMax, l * n * S);
    }
  });
  return { numTokens: n, layers: [...layers], numHeads: H, topK: k, topIndices, topWeights, numSpans: S, spanMass, spanMassMean, spanMassMax };
}

/**
 * One causal attention row from sequence-first tensors, in float64 like the reference:
 * q: [n, H, hd], k: [n, Hkv, hd]. Returns query + 1 probabilities.
 */
export function sequenceFirstAttentionRow(q: Float32Array, k: Float32Array, H: number, Hkv: number, hd: number, head: number, query: number, window = 0, softcap = 0): Float32Array {
  const first = window > 0 ? Math.max(0, query - window + 1) : 0;
  const kvHead = Math.floor(head / (H / Hkv));
  const scale = 1 / Math.sqrt(hd);
  const qOffset = (query * H + head) * hd;
  const scores = new Float64Array(query + 1);
  let max = -Infinity;
  for (let j = 0; j <= query; j++) {
    const kOffset = (j * Hkv + kvHead) * hd;
    let dot = 0;
    for (let c = 0; c < hd; c++) dot += q[qOffset + c] * k[kOffset + c];
    const score = softcap > 0 ? softcap * Math.tanh((dot * scale) / softcap) : dot * scale;
    scores[j] = j < first ? -Infinity : score;
    if (scores[j] > max) max = scores[j];
  }
  let total = 0;
  for (let j = 0; j <= query; j++) total += scores[j] = Math.exp(scores[j] - max);
  const row = new Float32Array(query + 1);
  for (let j = 0; j <= query; j++) row[j] = scores[j] / total;
  return row;
}

function now(): number {
  return performance.now();
}
