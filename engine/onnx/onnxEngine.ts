/**
 * The CPU engine at native speed: the model's forward pass as an ONNX graph (onnxGraph.ts) run by
 * ONNX Runtime (`onnxruntime-node`, float32, MLAS GEMMs on the machine's cores). The attention
 * probabilities are reduced inside the graph; this class feeds the graph, reads back the summaries
 * and keeps the post-rotary queries and keys of the last run for exact rows on demand.
 *
 * `InferenceSession.run` of onnxruntime-node computes on the calling thread, so editors and the CLI
 * use this class inside a worker thread (engine/hosts/nodeOnnx.ts); it is only called directly there
 * and in tests of the graph itself.
 */
import * as ort from 'onnxruntime-node';
import type { AttentionRequest, AttentionSummary, BackendInfo, ForwardResult, TokenSpan } from '../attention';
import { compareNextToken, knockedPositions, logSoftmax, topTokens, validateKnockout, validateSpanEffect, type KnockoutRequest, type KnockoutResult, type SpanEffectResult } from '../causal';
import type { AttentionEngine } from '../engine';
import type { LoadedModel, ModelSpec } from '../model/modelTypes';
import { throwIfAborted, validateAttentionRequest, validateRowRequest, validateTokenIds } from '../requestChecks';
import { toFloat32 } from '../model/tensorData';
import { ropeAngle, ropeInverseFrequencies } from '../model/rope';
import { buildEffectModel, buildKnockoutModel, buildOnnxModel, GRAPH_IO } from './onnxGraph';
import { cloneSummary, evictOverBudget, mergeSummaries, planReuse, summaryArrayBytes, type CachedRequest, type ReusePlan } from '../runReuse';

export interface OnnxEngineOptions {
  /** Threads for ONNX Runtime's intra-op pool (GEMMs, softmax): 1..cores. */
  readonly threads: number;
  /** Byte budget of the cache of runs kept for incremental re-analysis (default 256 MiB). */
  readonly cacheBytes?: number;
  /** Why this engine runs (shown to users), e.g. "no hardware WebGPU adapter". */
  readonly reason: string;
}

/**
 * The most recent run: its tokens, per layer the post-rotary queries [n, H, hd], keys and values
 * [n, Hkv, hd] (sequence-first: the first p positions are the array's first p rows, so reusing a
 * prefix copies nothing; the arrays may hold room for more rows than n), and the final normed
 * hidden states [n, d] (the causal checks start from these).
 */
interface LastRun {
  readonly tokenIds: Int32Array;
  readonly numTokens: number;
  readonly queries: Float32Array[];
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  readonly finalHidden: Float32Array;
}

type SessionKind = 'valueWeighted' | 'incremental' | 'incrementalValueWeighted' | 'knockout' | 'effect';

/** One run's results and the state later calls start from. */
interface RunOutcome {
  readonly summary: AttentionSummary;
  readonly lastLogits: Float32Array;
  readonly run: LastRun;
  readonly stats: ForwardResult['stats'];
}

/** A cached run of one cacheKey: what it was asked and what it computed. */
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

/** Default byte budget of the run cache (attentionLens.cacheMegabytes sets it in the editor). */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  // The arena keeps the [H, n, n] buffers between runs (without it every run page-faults them
  // in again: 5-10x slower at n = 2048); memory patterns only pay off for fixed shapes, and
  // windows change length.
  enableCpuMemArena: true,
  enableMemPattern: false,
};

export class OnnxRuntimeEngine implements AttentionEngine {
  readonly backend: BackendInfo;
  private lastRun?: LastRun;
  private disposed = false;
  /** The causal mask of the last length, reused while n stays the same (windows of one file). */
  private maskCache?: { n: number; tensor: ort.Tensor };
  private ropeCache?: { n: number; cos: ort.Tensor; sin: ort.Tensor };
  /** Sessions built on first use: value-weighted summaries, knockout, span effect. */
  private readonly extraSessions = new Map<SessionKind, Promise<ort.InferenceSession>>();
  /** Runs kept by cacheKey for incremental re-analysis, least recently used first. */
  private readonly cache = new Map<string, CacheEntry>();
  private readonly cacheBytes: number;
  readonly spec: ModelSpec;

  private constructor(
    private readonly model: LoadedModel,
    private readonly session: ort.InferenceSession,
    private readonly threads: number,
    options: OnnxEngineOptions,
  ) {
    this.spec = model.spec;
    this.cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.backend = { kind: 'onnxruntime', version: ort.env.versions.node ?? 'unknown', threads, reason: options.reason };
  }

  /** Builds the analysis graph and its session (ONNX Runtime folds the weight casts and prepacks the GEMMs here). */
  static async create(model: LoadedModel, options: OnnxEngineOptions): Promise<OnnxRuntimeEngine> {
    const threads = Math.max(1, Math.floor(options.threads));
    const session = await ort.InferenceSession.create(buildOnnxModel(model), { ...SESSION_OPTIONS, intraOpNumThreads: threads });
    return new OnnxRuntimeEngine(model, session, threads, options);
  }

  /** The session of a graph variant, built the first time it is needed. */
  private extraSession(kind: SessionKind): Promise<ort.InferenceSession> {
    let session = this.extraSessions.get(kind);
    if (!session) {
      const bytes =
        kind === 'knockout' ? buildKnockoutModel(this.model)
        : kind === 'effect' ? buildEffectModel(this.model)
        : buildOnnxModel(this.model, { valueWeighted: kind === 'valueWeighted' || kind === 'incrementalValueWeighted', incremental: kind === 'incremental' || kind === 'incrementalValueWeighted' });
      session = ort.InferenceSession.create(bytes, { ...SESSION_OPTIONS, intraOpNumThreads: this.threads });
      session.catch(() => this.extraSessions.delete(kind));
      this.extraSessions.set(kind, session);
    }
    return session;
  }

  async run(request: AttentionRequest, signal?: AbortSignal): Promise<ForwardResult> {
    this.checkUsable();
    throwIfAborted(signal);
    const tokenIds = validateTokenIds(request.tokenIds, this.spec);
    const n = tokenIds.length;
    const layers = validateAttentionRequest(request, n, this.spec);
    this.lastRun = undefined;
    const key = request.cacheKey;
    const cached = key ? this.cache.get(key) : undefined;
    const reuse = cached ? planReuse(cached, tokenIds, request, layers) : undefined;
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
    // The caller may take the arrays (the worker transfers them): the cache keeps its own.
    const summary = key ? cloneSummary(outcome.summary) : outcome.summary;
    return { summary, lastLogits: outcome.lastLogits.slice(), backend: this.backend, stats: outcome.stats };
  }

  releaseCache(cacheKey: string): void {
    this.cache.delete(cacheKey);
  }

  /** The whole sequence in one pass of the analysis graph. */
  private async runFull(tokenIds: Int32Array, request: AttentionRequest, layers: readonly number[], signal?: AbortSignal): Promise<RunOutcome> {
    const s = this.spec;
    const n = tokenIds.length;
    const S = request.spans.length;
    // Building a graph variant's session (once per model) is loading, not forward time.
    const session = request.weighting === 'valueWeighted' ? await this.extraSession('valueWeighted') : this.session;
    const started = now();
    const feeds: Record<string, ort.Tensor> = {
      ...this.sequenceFeeds(tokenIds, this.causalMask(n)),
      [GRAPH_IO.spanIndicator]: new ort.Tensor('float32', spanIndicator(request.spans, n), [n, Math.max(1, S)]),
      [GRAPH_IO.topK]: new ort.Tensor('int64', BigInt64Array.of(BigInt(Math.min(request.topK, n))), [1]),
    };
    const outputs = await session.run(feeds, this.fetches(layers));
    const forwardMs = now() - started;
    throwIfAborted(signal);
    const summaryStart = now();
    const read = reader(outputs);
    // A copy in a buffer of its own, so the worker can transfer it.
    const lastLogits = read.float(GRAPH_IO.lastLogits).slice();
    const summary = assembleSummary(layers, n, s.numHeads, request, (layer) => read.layer(layer));
    const run: LastRun = { tokenIds, numTokens: n, ...read.state(s.numLayers), finalHidden: read.float(GRAPH_IO.finalHidden) };
    return { summary, lastLogits, run, stats: { forwardMs, summaryMs: now() - summaryStart, readbackBytes: read.bytes() } };
  }

  /**
   * Positions [past, n) only, attending to the cached keys and values of [0, past): rows before
   * `past` keep their cached summaries (a causal model computes them from earlier tokens only), the
   * new rows get theirs from the prefill graph.
   */
  private async runIncremental(cached: CacheEntry, reuse: ReusePlan, tokenIds: Int32Array, request: AttentionRequest, layers: readonly number[], signal?: AbortSignal): Promise<RunOutcome> {
    const s = this.spec;
    const n = tokenIds.length;
    const p = reuse.past;
    const m = n - p;
    const S = request.spans.length;
    const old = cached.outcome.run;
    const session = await this.extraSession(request.weighting === 'valueWeighted' ? 'incrementalValueWeighted' : 'incremental');
    const started = now();
    // Row i (position p + i) sees keys 0..p + i.
    const mask = new Float32Array(m * n);
    for (let i = 0; i < m; i++) mask.fill(-Infinity, i * n + p + i + 1, (i + 1) * n);
    const newIds = tokenIds.subarray(p);
    const feeds: Record<string, ort.Tensor> = {
      [GRAPH_IO.inputIds]: new ort.Tensor('int64', BigInt64Array.from(newIds, (id) => BigInt(id)), [m]),
      [GRAPH_IO.mask]: new ort.Tensor('float32', mask, [m, n]),
      [GRAPH_IO.spanIndicator]: new ort.Tensor('float32', spanIndicator(request.spans, n), [n, Math.max(1, S)]),
      [GRAPH_IO.topK]: new ort.Tensor('int64', BigInt64Array.of(BigInt(Math.min(request.topK, n))), [1]),
    };
    if (s.positional === 'rope') {
      const { cos, sin } = ropeRows(s, p, m);
      feeds[GRAPH_IO.ropeCos] = new ort.Tensor('float32', cos, [m, s.headDim]);
      feeds[GRAPH_IO.ropeSin] = new ort.Tensor('float32', sin, [m, s.headDim]);
    } else {
      feeds[GRAPH_IO.positionIds] = new ort.Tensor('int64', BigInt64Array.from({ length: m }, (_, i) => BigInt(p + i)), [m]);
    }
    const kvWidth = s.numKvHeads * s.headDim;
    for (let l = 0; l < s.numLayers; l++) {
      feeds[GRAPH_IO.pastKeys(l)] = new ort.Tensor('float32', old.keys[l].subarray(0, p * kvWidth), [p, s.numKvHeads, s.headDim]);
      feeds[GRAPH_IO.pastValues(l)] = new ort.Tensor('float32', old.values[l].subarray(0, p * kvWidth), [p, s.numKvHeads, s.headDim]);
    }
    const outputs = await session.run(feeds, this.fetches(layers));
    const forwardMs = now() - started;
    throwIfAborted(signal);
    const summaryStart = now();
    const read = reader(outputs);
    const lastLogits = read.float(GRAPH_IO.lastLogits).slice();
    const fresh = assembleSummary(layers, m, s.numHeads, request, (layer) => read.layer(layer), p);
    const summary = mergeSummaries(cached.outcome.summary, p, fresh, reuse.columns, n);
    const added = read.state(s.numLayers);
    // The cached arrays take the new rows after the prefix, in place when they have room: this run
    // replaces the cached one of its key, which nothing else holds (the cache entry is renewed below).
    const rows = (before: Float32Array, after: Float32Array, width: number) => appendRows(before, p, after, m, width);
    const run: LastRun = {
      tokenIds,
      numTokens: n,
      queries: added.queries.map((q, l) => rows(old.queries[l], q, s.numHeads * s.headDim)),
      keys: added.keys.map((k, l) => rows(old.keys[l], k, kvWidth)),
      values: added.values.map((v, l) => rows(old.values[l], v, kvWidth)),
      finalHidden: rows(old.finalHidden, read.float(GRAPH_IO.finalHidden), s.hiddenSize),
    };
    return { summary, lastLogits, run, stats: { forwardMs, summaryMs: now() - summaryStart, readbackBytes: read.bytes(), reusedTokens: p } };
  }

  private fetches(layers: readonly number[]): string[] {
    const fetches: string[] = [GRAPH_IO.lastLogits, GRAPH_IO.finalHidden];
    for (const layer of layers) {
      fetches.push(GRAPH_IO.topWeights(layer), GRAPH_IO.topIndices(layer), GRAPH_IO.spanMass(layer), GRAPH_IO.spanMassMean(layer), GRAPH_IO.spanMassMax(layer));
    }
    for (let layer = 0; layer < this.spec.numLayers; layer++) fetches.push(GRAPH_IO.queries(layer), GRAPH_IO.keys(layer), GRAPH_IO.values(layer));
    return fetches;
  }

  /** Keeps a run for its key, least recently used first out when over the byte budget. */
  private remember(key: string, entry: Omit<CacheEntry, 'bytes'>): void {
    const run = entry.outcome.run;
    const bytes = [...run.queries, ...run.keys, ...run.values, run.finalHidden].reduce((total, a) => total + a.byteLength, 0) + summaryArrayBytes(entry.outcome.summary);
    this.cache.delete(key);
    if (bytes > this.cacheBytes) return;
    this.cache.set(key, { ...entry, bytes });
    evictOverBudget(this.cache, this.cacheBytes);
  }

  async attentionRow(layer: number, head: number, query: number): Promise<Float32Array> {
    this.checkUsable();
    const run = this.lastRun;
    if (!run) throw new Error('attentionRow needs a completed run; call run() first');
    const s = this.spec;
    validateRowRequest(layer, head, query, s, run.numTokens);
    return sequenceFirstAttentionRow(run.queries[layer], run.keys[layer], s.numHeads, s.numKvHeads, s.headDim, head, query);
  }

  /**
   * Knockout as one decode step: the query's token against the run's cached keys and values of the
   * earlier positions, batched over [no knockout, span 1, ..., span m] so the full distribution comes
   * from the same arithmetic (an empty span gives exactly 0).
   */
  async knockout(request: KnockoutRequest, signal?: AbortSignal): Promise<KnockoutResult> {
    this.checkUsable();
    const run = this.requireRun('knockout');
    const s = this.spec;
    const layers = validateKnockout(request, run.numTokens, s.numLayers);
    const q = request.query;
    const nextToken = q + 1 < run.numTokens ? run.tokenIds[q + 1] : null;
    const V = s.vocabSize;
    let logits: Float32Array;
    const rows = request.spans.length + 1;
    if (q === 0) {
      // Nothing before the first token: every knockout is empty; the full row is the run's.
      logits = new Float32Array(rows * V);
      const first = this.logitsFromHidden(run.finalHidden, 0);
      for (let r = 0; r < rows; r++) logits.set(first, r * V);
    } else {
      const session = await this.extraSession('knockout');
      throwIfAborted(signal);
      const keys = q + 1;
      const mask = new Float32Array(s.numLayers * rows * keys);
      request.spans.forEach((span, i) => {
        const hidden = knockedPositions(span, q);
        for (let l = layers.start; l < layers.end; l++) mask.fill(-Infinity, (l * rows + i + 1) * keys + hidden.start, (l * rows + i + 1) * keys + hidden.end);
      });
      const feeds: Record<string, ort.Tensor> = {
        [GRAPH_IO.inputIds]: new ort.Tensor('int64', BigInt64Array.of(BigInt(run.tokenIds[q])), [1]),
        [GRAPH_IO.knockoutMask]: new ort.Tensor('float32', mask, [s.numLayers, rows, keys]),
      };
      if (s.positional === 'rope') {
        const { cos, sin } = ropeRows(s, q, 1);
        feeds[GRAPH_IO.ropeCos] = new ort.Tensor('float32', cos, [1, s.headDim]);
        feeds[GRAPH_IO.ropeSin] = new ort.Tensor('float32', sin, [1, s.headDim]);
      } else {
        feeds[GRAPH_IO.positionIds] = new ort.Tensor('int64', BigInt64Array.of(BigInt(q)), [1]);
      }
      for (let l = 0; l < s.numLayers; l++) {
        feeds[GRAPH_IO.pastKeys(l)] = new ort.Tensor('float32', run.keys[l].subarray(0, q * s.numKvHeads * s.headDim), [q, s.numKvHeads, s.headDim]);
        feeds[GRAPH_IO.pastValues(l)] = new ort.Tensor('float32', run.values[l].subarray(0, q * s.numKvHeads * s.headDim), [q, s.numKvHeads, s.headDim]);
      }
      logits = (await session.run(feeds, [GRAPH_IO.knockoutLogits]))[GRAPH_IO.knockoutLogits].data as Float32Array;
    }
    const full = logits.subarray(0, V);
    const spans = request.spans.map((span, i) => {
      const { kl, deltaLogProb, top } = compareNextToken(full, logits.subarray((i + 1) * V, (i + 2) * V), nextToken);
      return { start: span.start, end: span.end, kl, deltaLogProb, top };
    });
    return { query: q, nextToken, top: topTokens(logSoftmax(full)), spans };
  }

  /** One forward pass with the span hidden from every query outside it, compared inside the graph with the run. */
  async spanEffect(span: TokenSpan, signal?: AbortSignal): Promise<SpanEffectResult> {
    this.checkUsable();
    const run = this.requireRun('spanEffect');
    validateSpanEffect(span, run.numTokens);
    const session = await this.extraSession('effect');
    throwIfAborted(signal);
    const n = run.numTokens;
    const mask = Float32Array.from(this.causalMask(n).data as Float32Array);
    for (let i = 0; i < n; i++) {
      if (i >= span.start && i < span.end) continue;
      mask.fill(-Infinity, i * n + span.start, i * n + Math.min(span.end, i));
    }
    const next = new BigInt64Array(n);
    for (let i = 0; i + 1 < n; i++) next[i] = BigInt(run.tokenIds[i + 1]);
    const outputs = await session.run({
      ...this.sequenceFeeds(run.tokenIds, new ort.Tensor('float32', mask, [n, n])),
      [GRAPH_IO.finalHidden]: new ort.Tensor('float32', run.finalHidden.subarray(0, n * this.spec.hiddenSize), [n, this.spec.hiddenSize]),
      [GRAPH_IO.nextIds]: new ort.Tensor('int64', next, [n]),
    });
    const kl = outputs[GRAPH_IO.effectKl].data as Float32Array;
    const delta = outputs[GRAPH_IO.effectDelta].data as Float32Array;
    const tokens = [];
    for (let i = span.end; i < n; i++) tokens.push({ position: i, kl: Math.max(0, kl[i]), deltaLogProb: i + 1 < n ? delta[i] : null });
    return { span: { start: span.start, end: span.end }, tokens };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.lastRun = undefined;
    this.cache.clear();
    void this.session.release();
    for (const session of this.extraSessions.values()) void session.then((s) => s.release(), () => undefined);
    this.extraSessions.clear();
  }

  private requireRun(what: string): LastRun {
    if (!this.lastRun) throw new Error(`${what} needs a completed run; call run() first`);
    return this.lastRun;
  }

  /** Logits of one row from the final normed hidden states (the LM head in float64). */
  private logitsFromHidden(hidden: Float32Array, row: number): Float32Array {
    const d = this.spec.hiddenSize;
    const head = this.model.weights.lmHead;
    const table = toFloat32(head);
    const out = new Float32Array(this.spec.vocabSize);
    for (let v = 0; v < out.length; v++) {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += hidden[row * d + c] * table[v * d + c];
      out[v] = dot;
    }
    return out;
  }

  /** Token ids and positions (or rotary tables) for a whole-sequence graph, with its mask. */
  private sequenceFeeds(tokenIds: Int32Array, mask: ort.Tensor): Record<string, ort.Tensor> {
    const n = tokenIds.length;
    const feeds: Record<string, ort.Tensor> = {
      [GRAPH_IO.inputIds]: new ort.Tensor('int64', BigInt64Array.from(tokenIds, (id) => BigInt(id)), [n]),
      [GRAPH_IO.mask]: mask,
    };
    if (this.spec.positional === 'rope') {
      const { cos, sin } = this.ropeTables(n);
      feeds[GRAPH_IO.ropeCos] = cos;
      feeds[GRAPH_IO.ropeSin] = sin;
    } else {
      feeds[GRAPH_IO.positionIds] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [n]);
    }
    return feeds;
  }

  private causalMask(n: number): ort.Tensor {
    if (this.maskCache?.n !== n) {
      const mask = new Float32Array(n * n);
      for (let i = 0; i < n; i++) mask.fill(-Infinity, i * n + i + 1, (i + 1) * n);
      this.maskCache = { n, tensor: new ort.Tensor('float32', mask, [n, n]) };
    }
    return this.maskCache.tensor;
  }

  private ropeTables(n: number): { cos: ort.Tensor; sin: ort.Tensor } {
    if (this.ropeCache?.n !== n) {
      const { cos, sin } = ropeRows(this.spec, 0, n);
      const hd = this.spec.headDim;
      this.ropeCache = { n, cos: new ort.Tensor('float32', cos, [n, hd]), sin: new ort.Tensor('float32', sin, [n, hd]) };
    }
    return this.ropeCache;
  }

  private checkUsable(): void {
    if (this.disposed) throw new Error('the ONNX Runtime engine was disposed');
  }
}

/**
 * cos and sin of position * theta^(-2i/hd) for positions first..first+count-1, laid out [count, hd]
 * with HF's rotate-half pairing (i and i + hd/2 share an angle).
 */
function ropeRows(spec: ModelSpec, first: number, count: number): { cos: Float32Array; sin: Float32Array } {
  const hd = spec.headDim;
  const half = hd / 2;
  const cos = new Float32Array(count * hd);
  const sin = new Float32Array(count * hd);
  const invFreq = ropeInverseFrequencies(hd, spec.ropeTheta);
  for (let i = 0; i < half; i++) {
    for (let t = 0; t < count; t++) {
      const angle = ropeAngle(first + t, invFreq[i]);
      cos[t * hd + i] = cos[t * hd + i + half] = Math.cos(angle);
      sin[t * hd + i] = sin[t * hd + i + half] = Math.sin(angle);
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
    state: (numLayers: number) => {
      const queries: Float32Array[] = [];
      const keys: Float32Array[] = [];
      const values: Float32Array[] = [];
      for (let layer = 0; layer < numLayers; layer++) {
        queries.push(take<Float32Array>(GRAPH_IO.queries(layer)));
        keys.push(take<Float32Array>(GRAPH_IO.keys(layer)));
        values.push(take<Float32Array>(GRAPH_IO.values(layer)));
      }
      return { queries, keys, values };
    },
  };
}

/**
 * Sequence-first rows 0..past-1 of `before` followed by the `added` rows of `after` (row width
 * `width`): written into `before` when it has room (its prefix stays where it is), else into a new
 * array with a quarter more room, so edits that grow a file do not copy the whole state each time.
 */
function appendRows(before: Float32Array, past: number, after: Float32Array, added: number, width: number): Float32Array {
  const needed = (past + added) * width;
  let out = before;
  if (before.length < needed) {
    out = new Float32Array(Math.ceil((past + added) * 1.25) * width);
    out.set(before.subarray(0, past * width));
  }
  out.set(after.subarray(0, added * width), past * width);
  return out;
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
 * masked positions (weight 0, after every visible one since ties keep the lower index); those become
 * index -1 as the summary promises. A request without spans dropped the stand-in column.
 */
function assembleSummary(layers: readonly number[], n: number, H: number, request: AttentionRequest, outputsOf: (layer: number) => LayerOutputs, firstPosition = 0): AttentionSummary {
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
        for (let slot = 0; slot < kept; slot++) {
          const index = out.topIndices[from + slot];
          if (index > firstPosition + q) break;
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
export function sequenceFirstAttentionRow(q: Float32Array, k: Float32Array, H: number, Hkv: number, hd: number, head: number, query: number): Float32Array {
  const kvHead = Math.floor(head / (H / Hkv));
  const scale = 1 / Math.sqrt(hd);
  const qOffset = (query * H + head) * hd;
  const scores = new Float64Array(query + 1);
  let max = -Infinity;
  for (let j = 0; j <= query; j++) {
    const kOffset = (j * Hkv + kvHead) * hd;
    let dot = 0;
    for (let c = 0; c < hd; c++) dot += q[qOffset + c] * k[kOffset + c];
    scores[j] = dot * scale;
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
