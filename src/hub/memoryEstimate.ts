/**
 * Will a model fit on the GPU at a given context? An estimate of what the WebGPU engine allocates
 * (weights, activations, the per-layer q/k kept for attention rows, the attention-probability block
 * and the summaries read back), compared with the adapter's limits and a memory budget, so that a
 * model that cannot run is refused with numbers and a suggestion instead of failing inside the GPU.
 * Pure: no vscode, no Node APIs.
 */
import { hasSeparateLmHead, normsPerLayer, type ModelSpec } from '../../engine/model/modelTypes';

export interface GpuLimits {
  readonly maxBufferSize: number;
  readonly maxStorageBufferBindingSize: number;
}

export interface MemoryEstimate {
  /** Parameters of the model. */
  readonly parameters: number;
  /** Bytes of the weights on the device (f16 when the adapter has shader-f16, else f32). */
  readonly weightBytes: number;
  /** Activations of one forward pass at `context` tokens, q/k of every layer included. */
  readonly activationBytes: number;
  /** The attention-probability block [heads, queries, n] (sized to one binding at most). */
  readonly probabilityBytes: number;
  /** Summary buffers read back. */
  readonly summaryBytes: number;
  readonly totalBytes: number;
  /** The largest single buffer that cannot be split (one activation matrix). */
  readonly largestBufferBytes: number;
}

/** The engine computes attention probabilities in blocks of at most this many bytes (gpuEngine.ts). */
const PROBABILITY_BLOCK_BYTES = 128 * 1024 * 1024;

/** A budget for device memory when the adapter does not say (WebGPU exposes no total). */
export const DEFAULT_GPU_BUDGET_BYTES = 4 * 1024 ** 3;

/** Number of parameters implied by the spec (embeddings counted once when tied). */
export function parameterCount(spec: ModelSpec): number {
  const d = spec.hiddenSize;
  const q = spec.numHeads * spec.headDim;
  const kv = spec.numKvHeads * spec.headDim;
  const inter = spec.intermediateSize;
  const norms = spec.norm === 'layer' ? 2 * d : d;
  const perLayer =
    d * q + 2 * d * kv + q * d + (spec.mlp === 'swiglu' ? 3 : 2) * d * inter + normsPerLayer(spec) * norms + (spec.qkvBias ? q + 2 * kv : 0) + (spec.outBias ? d : 0) + (spec.mlpBias ? inter + d : 0);
  const embeddings = spec.vocabSize * d * (hasSeparateLmHead(spec) ? 2 : 1) + (spec.positional === 'learned' ? spec.maxPositions * d : 0);
  return embeddings + spec.numLayers * perLayer + norms;
}

export function estimateGpuMemory(spec: ModelSpec, context: number, options: { f16: boolean; limits: GpuLimits; spans?: number; topK?: number }): MemoryEstimate {
  const n = context;
  const f = 4;
  const d = spec.hiddenSize;
  const q = spec.numHeads * spec.headDim;
  const kv = spec.numKvHeads * spec.headDim;
  const inter = spec.intermediateSize;
  const parameters = parameterCount(spec);
  const weightBytes = parameters * (options.f16 ? 2 : 4);
  // residual, normed, projected [n, d]; v [n, kv]; attended [n, q]; up (+ gate) [n, inter]; rope table.
  const perPass = n * (3 * d + kv + q + inter * (spec.mlp === 'swiglu' ? 2 : 1)) * f + (spec.positional === 'rope' ? n * spec.headDim * f : 0);
  const keptQk = spec.numLayers * n * (q + kv) * f;
  const probabilityBytes = Math.max(n * f, Math.min(spec.numHeads * n * n * f, PROBABILITY_BLOCK_BYTES, options.limits.maxStorageBufferBindingSize));
  const summaryBytes = spec.numLayers * spec.numHeads * n * (2 * (options.topK ?? 4) + (options.spans ?? 0)) * f;
  const activationBytes = perPass + keptQk;
  const largestBufferBytes = n * Math.max(d, q, inter) * f;
  return { parameters, weightBytes, activationBytes, probabilityBytes, summaryBytes, totalBytes: weightBytes + activationBytes + probabilityBytes + summaryBytes, largestBufferBytes };
}

export type FitVerdict = { readonly fits: true; readonly estimate: MemoryEstimate } | { readonly fits: false; readonly estimate: MemoryEstimate; readonly message: string; readonly maxContext: number };

/** Checks `spec` at `context` tokens against the limits and budget; the message has numbers and a way out. */
export function checkModelFits(spec: ModelSpec, context: number, options: { f16: boolean; limits: GpuLimits; budgetBytes?: number; modelLabel: string; spans?: number }): FitVerdict {
  const budget = options.budgetBytes ?? DEFAULT_GPU_BUDGET_BYTES;
  const fitsAt = (n: number) => {
    const e = estimateGpuMemory(spec, n, options);
    return e.totalBytes <= budget && e.largestBufferBytes <= options.limits.maxStorageBufferBindingSize && e.largestBufferBytes <= options.limits.maxBufferSize;
  };
  const estimate = estimateGpuMemory(spec, context, options);
  if (fitsAt(context)) return { fits: true, estimate };
  let low = 0;
  let high = context;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (fitsAt(mid)) low = mid;
    else high = mid - 1;
  }
  const maxContext = low;
  const mib = (bytes: number) => `${Math.ceil(bytes / 1024 ** 2).toLocaleString('en-US')} MiB`;
  const reason =
    estimate.largestBufferBytes > Math.min(options.limits.maxStorageBufferBindingSize, options.limits.maxBufferSize)
      ? `one activation buffer would be ${mib(estimate.largestBufferBytes)}, more than the adapter's largest storage binding (${mib(Math.min(options.limits.maxStorageBufferBindingSize, options.limits.maxBufferSize))})`
      : `it needs about ${mib(estimate.totalBytes)} of GPU memory (weights ${mib(estimate.weightBytes)} in ${options.f16 ? 'f16' : 'f32'}, activations ${mib(estimate.activationBytes + estimate.probabilityBytes + estimate.summaryBytes)}), more than the budget of ${mib(budget)}`;
  const suggestion =
    maxContext >= 16
      ? `Analyse at most ${maxContext.toLocaleString('en-US')} tokens at a time (select a part of the file and run "Attention Lens: Analyze Selection"), or choose a smaller model.`
      : 'Even a short window does not fit: choose a smaller model with "Attention Lens: Choose Model".';
  return { fits: false, estimate, maxContext, message: `${options.modelLabel} does not fit on this GPU at ${context.toLocaleString('en-US')} tokens: ${reason}. ${suggestion}` };
}
