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
import type { AttentionRequest, AttentionSummary, BackendInfo, ForwardResult } from '../attention';
import type { AttentionEngine } from '../engine';
import type { LoadedModel, ModelSpec } from '../model/modelTypes';
import { checkLayerIndex, validateAttentionRequest, validateTokenIds } from '../requestChecks';
import { buildOnnxModel, GRAPH_IO } from './onnxGraph';

export interface OnnxEngineOptions {
  /** Threads for ONNX Runtime's intra-op pool (GEMMs, softmax): 1..cores. */
  readonly threads: number;
  /** Why this engine runs (shown to users), e.g. "no hardware WebGPU adapter". */
  readonly reason: string;
}

/** Per layer of the most recent run: post-rotary queries [H, n, hd] and keys, values [Hkv, n, hd]. */
interface LastRun {
  readonly numTokens: number;
  readonly queries: Float32Array[];
  readonly keys: Float32Array[];
}

export class OnnxRuntimeEngine implements AttentionEngine {
  readonly backend: BackendInfo;
  private lastRun?: LastRun;
  private disposed = false;
  /** The causal mask of the last length, reused while n stays the same (windows of one file). */
  private maskCache?: { n: number; tensor: ort.Tensor };
  private ropeCache?: { n: number; cos: ort.Tensor; sin: ort.Tensor };

  private constructor(
    readonly spec: ModelSpec,
    private readonly session: ort.InferenceSession,
    options: OnnxEngineOptions,
  ) {
    this.backend = { kind: 'onnxruntime', version: ort.env.versions.node ?? 'unknown', threads: options.threads, reason: options.reason };
  }

  /** Builds the graph and the session (ONNX Runtime folds the weight casts and prepacks the GEMMs here). */
  static async create(model: LoadedModel, options: OnnxEngineOptions): Promise<OnnxRuntimeEngine> {
    const bytes = buildOnnxModel(model);
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: Math.max(1, Math.floor(options.threads)),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // The arena keeps the [H, n, n] buffers between runs (without it every run page-faults them
      // in again: 5-10x slower at n = 2048); memory patterns only pay off for fixed shapes, and
      // windows change length.
      enableCpuMemArena: true,
      enableMemPattern: false,
    });
    return new OnnxRuntimeEngine(model.spec, session, options);
  }

  async run(request: AttentionRequest, signal?: AbortSignal): Promise<ForwardResult> {
    this.checkUsable();
    throwIfAborted(signal);
    const tokenIds = validateTokenIds(request.tokenIds, this.spec);
    const n = tokenIds.length;
    const layers = validateAttentionRequest(request, n, this.spec);
    const s = this.spec;
    const S = request.spans.length;
    this.lastRun = undefined;

    const started = now();
    const feeds: Record<string, ort.Tensor> = {
      [GRAPH_IO.inputIds]: new ort.Tensor('int64', BigInt64Array.from(tokenIds, (id) => BigInt(id)), [n]),
      [GRAPH_IO.mask]: this.causalMask(n),
      [GRAPH_IO.spanIndicator]: new ort.Tensor('float32', spanIndicator(request, n), [n, Math.max(1, S)]),
      [GRAPH_IO.topK]: new ort.Tensor('int64', BigInt64Array.of(BigInt(Math.min(request.topK, n))), [1]),
    };
    if (s.positional === 'rope') {
      const { cos, sin } = this.ropeTables(n);
      feeds[GRAPH_IO.ropeCos] = cos;
      feeds[GRAPH_IO.ropeSin] = sin;
    } else {
      feeds[GRAPH_IO.positionIds] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [n]);
    }
    const fetches: string[] = [GRAPH_IO.lastLogits];
    for (const layer of layers) {
      fetches.push(GRAPH_IO.topWeights(layer), GRAPH_IO.topIndices(layer), GRAPH_IO.spanMass(layer), GRAPH_IO.spanMassMean(layer), GRAPH_IO.spanMassMax(layer));
    }
    for (let layer = 0; layer < s.numLayers; layer++) fetches.push(GRAPH_IO.queries(layer), GRAPH_IO.keys(layer));
    const outputs = await this.session.run(feeds, fetches);
    const forwardMs = now() - started;
    throwIfAborted(signal);

    const summaryStart = now();
    let readbackBytes = 0;
    const read = <T extends Float32Array | Int32Array>(name: string): T => {
      const data = outputs[name].data as T;
      readbackBytes += data.byteLength;
      return data;
    };
    // A copy in a buffer of its own, so the worker can transfer it.
    const lastLogits = read<Float32Array>(GRAPH_IO.lastLogits).slice();
    const summary = assembleSummary(layers, n, s.numHeads, request, (layer) => ({
      topWeights: read<Float32Array>(GRAPH_IO.topWeights(layer)),
      topIndices: read<Int32Array>(GRAPH_IO.topIndices(layer)),
      spanMass: read<Float32Array>(GRAPH_IO.spanMass(layer)),
      spanMassMean: read<Float32Array>(GRAPH_IO.spanMassMean(layer)),
      spanMassMax: read<Float32Array>(GRAPH_IO.spanMassMax(layer)),
    }));
    const queries: Float32Array[] = [];
    const keys: Float32Array[] = [];
    for (let layer = 0; layer < s.numLayers; layer++) {
      queries.push(read<Float32Array>(GRAPH_IO.queries(layer)));
      keys.push(read<Float32Array>(GRAPH_IO.keys(layer)));
    }
    this.lastRun = { numTokens: n, queries, keys };
    return { summary, lastLogits, backend: this.backend, stats: { forwardMs, summaryMs: now() - summaryStart, readbackBytes } };
  }

  async attentionRow(layer: number, head: number, query: number): Promise<Float32Array> {
    this.checkUsable();
    const run = this.lastRun;
    if (!run) throw new Error('attentionRow needs a completed run; call run() first');
    const s = this.spec;
    checkLayerIndex('layer', layer, s.numLayers);
    checkLayerIndex('head', head, s.numHeads);
    checkLayerIndex('query', query, run.numTokens);
    return headsFirstAttentionRow(run.queries[layer], run.keys[layer], run.numTokens, s.numHeads, s.numKvHeads, s.headDim, head, query);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.lastRun = undefined;
    void this.session.release();
  }

  private causalMask(n: number): ort.Tensor {
    if (this.maskCache?.n !== n) {
      const mask = new Float32Array(n * n);
      for (let i = 0; i < n; i++) mask.fill(-Infinity, i * n + i + 1, (i + 1) * n);
      this.maskCache = { n, tensor: new ort.Tensor('float32', mask, [n, n]) };
    }
    return this.maskCache.tensor;
  }

  /** cos and sin of position * theta^(-2i/hd), laid out [n, hd] with HF's rotate-half pairing (i and i + hd/2 share an angle). */
  private ropeTables(n: number): { cos: ort.Tensor; sin: ort.Tensor } {
    if (this.ropeCache?.n !== n) {
      const hd = this.spec.headDim;
      const half = hd / 2;
      const cos = new Float32Array(n * hd);
      const sin = new Float32Array(n * hd);
      for (let i = 0; i < half; i++) {
        const invFreq = 1 / Math.pow(this.spec.ropeTheta, (2 * i) / hd);
        for (let t = 0; t < n; t++) {
          const angle = t * invFreq;
          cos[t * hd + i] = cos[t * hd + i + half] = Math.cos(angle);
          sin[t * hd + i] = sin[t * hd + i + half] = Math.sin(angle);
        }
      }
      this.ropeCache = { n, cos: new ort.Tensor('float32', cos, [n, hd]), sin: new ort.Tensor('float32', sin, [n, hd]) };
    }
    return this.ropeCache;
  }

  private checkUsable(): void {
    if (this.disposed) throw new Error('the ONNX Runtime engine was disposed');
  }
}

/** [n, max(1, S)]: 1 where token j lies in span s. A zero column stands in when there are no spans. */
function spanIndicator(request: AttentionRequest, n: number): Float32Array {
  const S = Math.max(1, request.spans.length);
  const indicator = new Float32Array(n * S);
  request.spans.forEach((span, s) => {
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
function assembleSummary(layers: readonly number[], n: number, H: number, request: AttentionRequest, outputsOf: (layer: number) => LayerOutputs): AttentionSummary {
  const k = request.topK;
  const kept = Math.min(k, n);
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
          if (index > q) break;
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
 * One causal attention row from heads-first tensors, in float64 like the reference:
 * q: [H, n, hd], k: [Hkv, n, hd]. Returns query + 1 probabilities.
 */
export function headsFirstAttentionRow(q: Float32Array, k: Float32Array, n: number, H: number, Hkv: number, hd: number, head: number, query: number): Float32Array {
  const kvHead = Math.floor(head / (H / Hkv));
  const scale = 1 / Math.sqrt(hd);
  const qOffset = (head * n + query) * hd;
  const scores = new Float64Array(query + 1);
  let max = -Infinity;
  for (let j = 0; j <= query; j++) {
    const kOffset = (kvHead * n + j) * hd;
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

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) {
    const error = new Error('the forward pass was cancelled');
    error.name = 'AbortError';
    throw error;
  }
}

function now(): number {
  return performance.now();
}
