/**
 * The CPU engine's memory plan: how a window of n tokens is cut into row blocks, and the peak host
 * memory of a run, estimated from the shapes before anything is allocated (the WebGPU engine has
 * its own in engine/webgpu/memoryPlan.ts). The engine refuses a run whose peak exceeds the budget
 * with the longest window that fits, so a long window never ends in an out-of-memory kill.
 *
 * What a run holds at its peak (float32 unless said):
 *   weights      the model as ONNX Runtime keeps it (float32, casts folded) plus the loader's copy
 *                in the file's dtype (the session's external data)
 *   state        per layer the keys and values [n, Hkv, hd], the final hidden states [n, d]
 *   summaries    per layer and head top-k indices and weights [n, k] and span masses [n, S], per
 *                layer their mean and max over heads; twice (the joined arrays and the copy the
 *                host process receives)
 *   blocks       one block's intermediates: per KV group [heads/group, rows, keys] scores,
 *                masked scores, probabilities, TopK's and the span MatMul's inputs (ONNX Runtime's
 *                arena keeps about five of them), the masks [rows, keys] (plain, hidden, both and
 *                the layer's), and the rows' activations [rows, max(d, MLP width, vocab)]
 */
import type { ModelSpec } from '../model/modelTypes';

/** Bytes one [heads/group, rows, keys] float32 intermediate may take (sets the rows per block). */
export const DEFAULT_BLOCK_BYTES = 128 * 1024 * 1024;

/** Intermediates of a block's n x block size that ONNX Runtime keeps alive at once, in units of one group's scores. */
const LIVE_SCORE_TENSORS = 5;
/** The block's [rows, keys] masks alive at once (plain, with the hidden range, both stacked, the layer's). */
const LIVE_MASKS = 5;

export interface CpuPlanOptions {
  /** Resident bytes of the weights (ONNX Runtime's float32 copy and the loader's). */
  readonly weightBytes: number;
  readonly blockBytes: number;
  readonly topK: number;
  readonly numSpans: number;
  /** Layers whose summaries are asked for. */
  readonly layers: number;
}

export interface CpuMemoryPlan {
  readonly n: number;
  readonly rowsPerBlock: number;
  readonly blocks: number;
  readonly weightBytes: number;
  readonly stateBytes: number;
  readonly summaryBytes: number;
  /** One block's intermediates at their peak. */
  readonly blockBytes: number;
  readonly peakBytes: number;
}

/**
 * Rows per block for a window of n tokens: as many as keep one KV group's [heads/group, rows, n]
 * scores within `blockBytes` (counting the masks as a group of at least 4 heads), at least 1, at
 * most n. The default model's 2,048-token windows run in one block; a 32k window of a 14-head model
 * in blocks of about a hundred rows.
 */
export function rowsPerBlock(spec: ModelSpec, n: number, blockBytes: number): number {
  const groups = spec.numHeads / spec.numKvHeads;
  const perRow = Math.max(groups, 4) * n * 4;
  return Math.max(1, Math.min(n, Math.floor(blockBytes / perRow)));
}

/** Resident weight bytes of a model whose tensors take `fileBytes` in their file dtype and hold `parameters` values. */
export function residentWeightBytes(parameters: number, fileBytes: number): number {
  return parameters * 4 + fileBytes;
}

export function cpuMemoryPlan(spec: ModelSpec, n: number, options: CpuPlanOptions): CpuMemoryPlan {
  const B = rowsPerBlock(spec, n, options.blockBytes);
  const kvWidth = spec.numKvHeads * spec.headDim;
  const groups = spec.numHeads / spec.numKvHeads;
  const stateBytes = n * (2 * kvWidth * spec.numLayers + spec.hiddenSize) * 4;
  const S = Math.max(1, options.numSpans);
  const perLayerSummary = spec.numHeads * n * (2 * options.topK + S) + 2 * n * S;
  const summaryBytes = 2 * options.layers * perLayerSummary * 4;
  const widest = Math.max(spec.hiddenSize, spec.intermediateSize * 2, spec.numHeads * spec.headDim * 2);
  const blockBytes = (LIVE_SCORE_TENSORS * groups * B * n + LIVE_MASKS * B * n + 4 * B * widest + spec.vocabSize) * 4;
  return {
    n,
    rowsPerBlock: B,
    blocks: Math.ceil(n / B),
    weightBytes: options.weightBytes,
    stateBytes,
    summaryBytes,
    blockBytes,
    peakBytes: options.weightBytes + stateBytes + summaryBytes + blockBytes,
  };
}

/** The longest window (1..spec.maxPositions) whose plan fits `budgetBytes`; 0 when none does. */
export function longestCpuWindow(spec: ModelSpec, budgetBytes: number, options: CpuPlanOptions): number {
  if (cpuMemoryPlan(spec, 1, options).peakBytes > budgetBytes) return 0;
  let lo = 1;
  let hi = spec.maxPositions;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (cpuMemoryPlan(spec, mid, options).peakBytes <= budgetBytes) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
