/**
 * The CPU reference engine: the whole forward pass in plain TypeScript, built from ops.ts. It is the
 * oracle the WebGPU engine is tested against and the fallback when no WebGPU adapter exists. It is
 * exact (float32 storage, float64 accumulation) and slow; it never leaves the calling thread except
 * to yield between layers so that an abort can arrive.
 *
 * Like the GPU engine it holds one layer's [H, n, n] probabilities at a time: each layer is
 * summarised as soon as it is computed, and only the post-rope Q and K of every layer are kept, from
 * which attentionRow() recomputes an exact row.
 */
import type { AttentionRequest, AttentionSummary, BackendInfo, ForwardResult, TokenSpan } from '../attention';
import { compareNextToken, knockedPositions, logSoftmax, topTokens, validateKnockout, validateSpanEffect, type KnockoutRequest, type KnockoutResult, type SpanEffectResult, type SpanKnockout, type TokenEffect } from '../causal';
import type { AttentionEngine } from '../engine';
import type { LinearWeights, LoadedModel, ModelSpec, NormWeights } from '../model/modelTypes';
import { toFloat32 } from '../model/tensorData';
import * as ops from './ops';
import { hasLocalRope, layerRope, localRopeSpec, ropeCosSin, rotaryDimOf } from '../model/rope';
import { throwIfAborted, validateAttentionRequest, validateRowRequest, validateTokenIds } from '../requestChecks';

interface F32Linear {
  readonly weight: Float32Array;
  readonly bias?: Float32Array;
}

interface F32Norm {
  readonly weight: Float32Array;
  readonly bias?: Float32Array;
}

interface F32Layer {
  readonly attnNorm: F32Norm;
  readonly q: F32Linear;
  readonly k: F32Linear;
  readonly v: F32Linear;
  readonly o: F32Linear;
  readonly qNorm?: F32Norm;
  readonly kNorm?: F32Norm;
  readonly postAttnNorm?: F32Norm;
  readonly postMlpNorm?: F32Norm;
  readonly mlpNorm: F32Norm;
  readonly gate?: F32Linear;
  readonly up: F32Linear;
  readonly down: F32Linear;
}

/**
 * The most recent run: its tokens, per layer the post-rope queries [n, H, headDim] and keys
 * [n, Hkv, headDim], and the residual stream after the last layer [n, d] (for every row's logits).
 */
interface LastRun {
  readonly tokenIds: Int32Array;
  readonly numTokens: number;
  readonly queries: Float32Array[];
  readonly keys: Float32Array[];
  readonly hidden: Float32Array;
}

/** An extra mask for a forward pass: true when `query` may not see `key` in `layer` (a query always sees itself). */
type Blocked = (layer: number, query: number, key: number) => boolean;

export class ReferenceEngine implements AttentionEngine {
  readonly spec: ModelSpec;
  readonly backend: BackendInfo;
  private readonly tokenEmbedding: Float32Array;
  private readonly positionEmbedding?: Float32Array;
  private readonly layers: F32Layer[];
  private readonly finalNorm: F32Norm;
  private readonly lmHead: Float32Array;
  private lastRun?: LastRun;
  private disposed = false;

  /** Widens every weight to float32 once. `reason` says why the CPU engine runs (shown to users). */
  constructor(model: LoadedModel, reason: string) {
    this.spec = model.spec;
    this.backend = { kind: 'reference', reason };
    const w = model.weights;
    this.tokenEmbedding = toFloat32(w.tokenEmbedding);
    this.positionEmbedding = w.positionEmbedding ? toFloat32(w.positionEmbedding) : undefined;
    this.layers = w.layers.map((layer) => ({
      attnNorm: norm(layer.attnNorm),
      q: linear(layer.q),
      k: linear(layer.k),
      v: linear(layer.v),
      o: linear(layer.o),
      qNorm: layer.qNorm ? norm(layer.qNorm) : undefined,
      kNorm: layer.kNorm ? norm(layer.kNorm) : undefined,
      postAttnNorm: layer.postAttnNorm ? norm(layer.postAttnNorm) : undefined,
      postMlpNorm: layer.postMlpNorm ? norm(layer.postMlpNorm) : undefined,
      mlpNorm: norm(layer.mlpNorm),
      gate: layer.gate ? linear(layer.gate) : undefined,
      up: linear(layer.up),
      down: linear(layer.down),
    }));
    this.finalNorm = norm(w.finalNorm);
    this.lmHead = w.lmHead === w.tokenEmbedding ? this.tokenEmbedding : toFloat32(w.lmHead);
  }

  async run(request: AttentionRequest, signal?: AbortSignal): Promise<ForwardResult> {
    this.checkUsable();
    const tokenIds = validateTokenIds(request.tokenIds, this.spec);
    const n = tokenIds.length;
    const layers = validateAttentionRequest(request, n, this.spec);
    const wanted = new Set(layers);
    const layerSummaries = new Map<number, AttentionSummary>();
    const queries: Float32Array[] = [];
    const keys: Float32Array[] = [];
    let summaryMs = 0;
    this.lastRun = undefined;

    const forwardStart = now();
    const s = this.spec;
    const hidden = await this.forward(tokenIds, signal, (layer, q, k, v, probs) => {
      queries.push(q);
      keys.push(k);
      if (!wanted.has(layer)) return;
      const summaryStart = now();
      const weighed = request.weighting === 'valueWeighted'
        ? ops.valueWeightedProbs(probs, ops.valueNorms(v, this.layers[layer].o.weight, n, s.numHeads, s.numKvHeads, s.headDim, s.hiddenSize), n, s.numHeads)
        : probs;
      layerSummaries.set(layer, ops.summarizeAttention([weighed], [layer], n, s.numHeads, request, [s.slidingWindow?.[layer] ?? 0]));
      summaryMs += now() - summaryStart;
    });
    const lastLogits = this.logitsOfRow(hidden, n - 1);
    this.lastRun = { tokenIds, numTokens: n, queries, keys, hidden };
    const forwardMs = now() - forwardStart - summaryMs;

    const summaryStart = now();
    const summary = concatSummaries(layers.map((layer) => layerSummaries.get(layer)!), layers, n, this.spec.numHeads, request);
    summaryMs += now() - summaryStart;
    return { summary, lastLogits, backend: this.backend, stats: { forwardMs, summaryMs, readbackBytes: 0 } };
  }

  async attentionRow(layer: number, head: number, query: number): Promise<Float32Array> {
    this.checkUsable();
    const run = this.lastRun;
    if (!run) throw new Error('attentionRow needs a completed run; call run() first');
    const s = this.spec;
    validateRowRequest(layer, head, query, s, run.numTokens);
    return ops.causalAttentionRow(run.queries[layer], run.keys[layer], run.numTokens, s.numHeads, s.numKvHeads, s.headDim, head, query, undefined, s.slidingWindow?.[layer] ?? 0, s.attentionSoftcap ?? 0);
  }

  /**
   * Knockout, the simple way the oracle should do it: for each span a whole forward pass of the
   * tokens up to the query with the span's positions masked from the query's row in the chosen
   * layers; the query's logits against the run's.
   */
  async knockout(request: KnockoutRequest, signal?: AbortSignal): Promise<KnockoutResult> {
    this.checkUsable();
    const run = this.requireRun('knockout');
    const layers = validateKnockout(request, run.numTokens, this.spec.numLayers);
    const q = request.query;
    const nextToken = q + 1 < run.numTokens ? run.tokenIds[q + 1] : null;
    const fullLogits = this.logitsOfRow(run.hidden, q);
    const prefix = run.tokenIds.subarray(0, q + 1);
    const spans: SpanKnockout[] = [];
    for (const span of request.spans) {
      const hidden = knockedPositions(span, q);
      const knocked = hidden.end > hidden.start
        ? this.logitsOfRow(await this.forward(prefix, signal, () => undefined, (layer, query, key) => query === q && layer >= layers.start && layer < layers.end && key >= hidden.start && key < hidden.end, run.numTokens), q)
        : fullLogits;
      const { kl, deltaLogProb, top } = compareNextToken(fullLogits, knocked, nextToken);
      spans.push({ start: span.start, end: span.end, kl, deltaLogProb, top });
    }
    return { query: q, nextToken, top: topTokens(logSoftmax(fullLogits)), spans };
  }

  /** One forward pass with the span hidden from every query outside it; each later row's logits against the run's. */
  async spanEffect(span: TokenSpan, signal?: AbortSignal): Promise<SpanEffectResult> {
    this.checkUsable();
    const run = this.requireRun('spanEffect');
    validateSpanEffect(span, run.numTokens);
    const hidden = await this.forward(run.tokenIds, signal, () => undefined, (_layer, query, key) => (query < span.start || query >= span.end) && key >= span.start && key < span.end);
    const tokens: TokenEffect[] = [];
    for (let i = span.end; i < run.numTokens; i++) {
      const next = i + 1 < run.numTokens ? run.tokenIds[i + 1] : null;
      const { kl, deltaLogProb } = compareNextToken(this.logitsOfRow(run.hidden, i), this.logitsOfRow(hidden, i), next);
      tokens.push({ position: i, kl, deltaLogProb });
    }
    return { span: { start: span.start, end: span.end }, tokens };
  }

  dispose(): void {
    this.disposed = true;
    this.lastRun = undefined;
  }

  private requireRun(what: string): LastRun {
    if (!this.lastRun) throw new Error(`${what} needs a completed run; call run() first`);
    return this.lastRun;
  }

  /**
   * Runs every layer; `onLayer` receives each layer's post-rope q [n, H, headDim], k and v
   * [n, Hkv, headDim] and probabilities [H, n, n]. `blocked` masks more than the causal mask (the
   * causal checks). `sequenceLength` is the length of the run these tokens are a prefix of (the
   * rotary tables of some scalings depend on it). Returns the residual stream [n, d] after the last layer.
   */
  private async forward(
    tokenIds: Int32Array,
    signal: AbortSignal | undefined,
    onLayer: (layer: number, q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array) => void,
    blocked?: Blocked,
    sequenceLength = tokenIds.length,
  ): Promise<Float32Array> {
    const s = this.spec;
    const n = tokenIds.length;
    const d = s.hiddenSize;
    let x = ops.embed(tokenIds, this.tokenEmbedding, d);
    if (this.positionEmbedding) x = ops.add(x, this.positionEmbedding.subarray(0, n * d));
    const rope = s.positional === 'rope' ? ropeCosSin(s, 0, n, sequenceLength) : undefined;
    // Gemma 3's sliding-window layers turn with a base of their own.
    const localRope = s.positional === 'rope' && hasLocalRope(s) ? ropeCosSin(localRopeSpec(s), 0, n, sequenceLength) : undefined;
    for (let l = 0; l < s.numLayers; l++) {
      await yieldAndCheckAbort(signal);
      const layer = this.layers[l];
      const h = this.normalize(x, layer.attnNorm, n);
      let q = ops.linear(h, layer.q.weight, layer.q.bias, n, d, s.numHeads * s.headDim);
      let k = ops.linear(h, layer.k.weight, layer.k.bias, n, d, s.numKvHeads * s.headDim);
      const v = ops.linear(h, layer.v.weight, layer.v.bias, n, d, s.numKvHeads * s.headDim);
      // Qwen3: every head's query and key vector normalised over head_dim before the rotation.
      if (layer.qNorm) q = ops.rmsNorm(q, layer.qNorm.weight, n * s.numHeads, s.headDim, s.normEps);
      if (layer.kNorm) k = ops.rmsNorm(k, layer.kNorm.weight, n * s.numKvHeads, s.headDim, s.normEps);
      // SmolLM3's NoPE layers attend without any rotation.
      if (rope && s.ropeLayers?.[l] !== false) {
        const table = localRope && layerRope(s, l) !== s ? localRope : rope;
        ops.applyRope(q, n, s.numHeads, s.headDim, table, rotaryDimOf(s));
        ops.applyRope(k, n, s.numKvHeads, s.headDim, table, rotaryDimOf(s));
      }
      const probs = ops.causalAttentionProbs(q, k, n, s.numHeads, s.numKvHeads, s.headDim, blocked && ((query, key) => blocked(l, query, key)), s.slidingWindow?.[l] ?? 0, s.attentionSoftcap ?? 0);
      onLayer(l, q, k, v, probs);
      const attended = ops.attentionOutput(probs, v, n, s.numHeads, s.numKvHeads, s.headDim);
      const projected = ops.linear(attended, layer.o.weight, layer.o.bias, n, s.numHeads * s.headDim, d);
      // Gemma: the attention output and the MLP output are normalised before their residual adds.
      x = ops.add(x, layer.postAttnNorm ? this.normalize(projected, layer.postAttnNorm, n) : projected);

      const m = this.normalize(x, layer.mlpNorm, n);
      const inter = s.intermediateSize;
      const up = ops.linear(m, layer.up.weight, layer.up.bias, n, d, inter);
      const gate = layer.gate && ops.linear(m, layer.gate.weight, layer.gate.bias, n, d, inter);
      const activated = gate ? (s.gateActivation === 'gelu_tanh' ? ops.geglu(gate, up) : ops.swiglu(gate, up)) : ops.geluTanh(up);
      const down = ops.linear(activated, layer.down.weight, layer.down.bias, n, inter, d);
      x = ops.add(x, layer.postMlpNorm ? this.normalize(down, layer.postMlpNorm, n) : down);
    }
    await yieldAndCheckAbort(signal);
    return x;
  }

  /** The next-token logits at position `row` from the residual stream after the last layer. */
  private logitsOfRow(hidden: Float32Array, row: number): Float32Array {
    const d = this.spec.hiddenSize;
    const normed = this.normalize(hidden.subarray(row * d, (row + 1) * d), this.finalNorm, 1);
    return ops.softcap(ops.linear(normed, this.lmHead, undefined, 1, d, this.spec.vocabSize), this.spec.logitSoftcap ?? 0);
  }

  private normalize(x: Float32Array, weights: F32Norm, n: number): Float32Array {
    const s = this.spec;
    return s.norm === 'rms'
      ? ops.rmsNorm(x, weights.weight, n, s.hiddenSize, s.normEps)
      : ops.layerNorm(x, weights.weight, weights.bias!, n, s.hiddenSize, s.normEps);
  }

  private checkUsable(): void {
    if (this.disposed) throw new Error('the CPU engine was disposed');
  }
}

/** Joins one-layer summaries (in `layers` order) into the summary of all requested layers. */
function concatSummaries(
  parts: readonly AttentionSummary[],
  layers: readonly number[],
  n: number,
  H: number,
  request: AttentionRequest,
): AttentionSummary {
  const join = <T extends Int32Array | Float32Array>(pick: (part: AttentionSummary) => T, make: (length: number) => T): T => {
    const out = make(parts.reduce((total, part) => total + pick(part).length, 0));
    let offset = 0;
    for (const part of parts) {
      out.set(pick(part), offset);
      offset += pick(part).length;
    }
    return out;
  };
  const floats = (length: number) => new Float32Array(length);
  return {
    numTokens: n,
    layers: [...layers],
    numHeads: H,
    topK: request.topK,
    topIndices: join((p) => p.topIndices, (length) => new Int32Array(length)),
    topWeights: join((p) => p.topWeights, floats),
    numSpans: request.spans.length,
    spanMass: join((p) => p.spanMass, floats),
    spanMassMean: join((p) => p.spanMassMean, floats),
    spanMassMax: join((p) => p.spanMassMax, floats),
  };
}

function linear(weights: LinearWeights): F32Linear {
  return { weight: toFloat32(weights.weight), bias: weights.bias ? toFloat32(weights.bias) : undefined };
}

function norm(weights: NormWeights): F32Norm {
  return { weight: toFloat32(weights.weight), bias: weights.bias ? toFloat32(weights.bias) : undefined };
}

/** Lets pending events (an abort) run, then throws an AbortError if the signal fired. */
async function yieldAndCheckAbort(signal?: AbortSignal): Promise<void> {
  if (!signal) return;
  await new Promise<void>((resolve) => setTimeout(resolve, 0));
  throwIfAborted(signal);
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
