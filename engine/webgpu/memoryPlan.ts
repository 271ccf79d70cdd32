/**
 * How a run of n tokens is laid out in device memory, decided before anything is allocated: which
 * tensors are split into row blocks or groups of heads so that no storage binding exceeds the
 * adapter's limit (128 MiB on the smallest adapters), every buffer's size, and the peak bytes the
 * run holds at once. The engine allocates exactly what this plan lists, so a window that cannot fit
 * is refused up front with the longest window that would, instead of failing half-way on the device.
 *
 * Layout of a run (f32 activations):
 *  - Row blocks of at most `rowsPerBlock` rows for everything that is [n, width]: the residual
 *    stream, Q, the normed input, the attention output, the MLP's intermediate activations and the
 *    summaries. Rows are processed a block at a time; only blocks, never [n, ffn], exist.
 *  - Keys and values of a layer in groups of KV heads, each group one buffer [n, heads * head_dim]
 *    holding all rows: a query attends to every earlier key, so a group needs all of them in one
 *    binding. A single KV head of n rows is therefore the longest thing one binding must hold.
 *  - Attention probabilities in blocks of heads x queries [heads, queries, n], as before.
 *
 * Pure: no WebGPU types, so it is unit-testable and the UI can ask it how long a window may be.
 */
import { hasSeparateLmHead, normsPerLayer, type ModelSpec } from '../model/modelTypes';

const MiB = 1024 * 1024;
/**
 * Largest probability or activation block by default: the smallest storage-binding limit seen
 * (lavapipe). Larger blocks save no time worth the memory: [9, 4096, 4096] probabilities would
 * take 604 MB in one block.
 */
export const DEFAULT_BLOCK_BYTES = 128 * MiB;
/** Bytes per activation value: activations are f32. */
const F32 = 4;

export interface LayoutOptions {
  /** The largest storage binding: the device's maxStorageBufferBindingSize, or a smaller cap. */
  readonly maxBindingBytes: number;
  /** Top positions kept per row (sizes the summary blocks). */
  readonly topK: number;
  /** Source spans of the request (sizes the summary blocks). */
  readonly numSpans: number;
  /** Value-weighted summaries keep the norms of every (head, key): [heads, n]. */
  readonly valueWeighted?: boolean;
}

export interface MemoryPlanOptions extends LayoutOptions {
  /** Layers whose attention is summarised (default: all). */
  readonly summarisedLayers?: number;
  /** Bytes of the resident weights; estimated from the spec when absent. */
  readonly weightBytes?: number;
  /** Bytes per stored weight value for the estimate: 4 (f32, default) or 2 (f16). */
  readonly weightBytesPerValue?: 2 | 4;
  /** Leading rows taken from a cached run instead of being recomputed (incremental runs). */
  readonly reusedTokens?: number;
}

/** How a run of n tokens is split to fit the storage-binding limit. */
export interface RunLayout {
  readonly n: number;
  /** Rows of each block of [n, width] activations and summaries. */
  readonly rowsPerBlock: number;
  /** KV heads per key (and value) buffer; every group holds all n rows. */
  readonly kvHeadsPerGroup: number;
  readonly kvGroups: number;
  /** Probability blocks [headsPerBlock, queriesPerBlock, n]; queries never cross a row block. */
  readonly headsPerBlock: number;
  readonly queriesPerBlock: number;
}

/** One kind of buffer in a plan: `count` buffers of `bytes` each. */
export interface PlannedBuffer {
  readonly label: string;
  readonly bytes: number;
  readonly count: number;
}

export interface MemoryPlan {
  readonly n: number;
  readonly layout: RunLayout;
  /** Every buffer of the run except the weights, with its size as allocated (16-byte rounded). */
  readonly buffers: readonly PlannedBuffer[];
  readonly weightBytes: number;
  /** Bytes that stay with the run for attentionRow and the causal checks (and the cache): Q, K, V, final residual. */
  readonly stateBytes: number;
  /** The largest single buffer the run binds. */
  readonly largestBindingBytes: number;
  /** Device bytes held at once during the run: weights, state, scratch, summaries and staging. */
  readonly peakBytes: number;
}

/** A window too long for the adapter's bindings or the memory budget; says the longest that fits. */
export class WindowTooLongError extends Error {
  constructor(
    message: string,
    /** The longest window that would fit, 0 when none does. */
    readonly longestWindow: number,
  ) {
    super(message);
    this.name = 'WindowTooLongError';
  }
}

/** A contiguous range of rows [rowStart, rowStart + rows) held by one buffer. */
export interface RowRange {
  readonly rowStart: number;
  readonly rows: number;
}

/** Storage size of a buffer of `bytes`: the engine rounds every buffer up to 16 bytes, at least 16. */
export function bufferSize(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

/**
 * The row blocks of a run of n rows whose first `first` rows come from a cached run: the reused
 * rows in blocks of rowsPerBlock from 0 (the last one may be short), then the computed rows in
 * blocks of rowsPerBlock from `first`.
 */
export function rowBlocks(n: number, first: number, rowsPerBlock: number): RowRange[] {
  const ranges: RowRange[] = [];
  for (let start = 0; start < first; start += rowsPerBlock) ranges.push({ rowStart: start, rows: Math.min(rowsPerBlock, first - start) });
  for (let start = first; start < n; start += rowsPerBlock) ranges.push({ rowStart: start, rows: Math.min(rowsPerBlock, n - start) });
  return ranges;
}

/** The widest row of any [n, width] activation or summary block, in values. */
function widestRow(spec: ModelSpec, options: LayoutOptions): number {
  const H = spec.numHeads;
  return Math.max(
    spec.hiddenSize,
    H * spec.headDim,
    spec.numKvHeads * spec.headDim,
    spec.intermediateSize,
    H * options.topK,
    H * options.numSpans,
  );
}

/**
 * The longest n the bindings allow, whatever the memory: one probability row, one KV head of all
 * keys and (value-weighted) the key norms of all heads must each fit one binding. 0 when even one
 * row of the widest activation does not fit. (The last position's logits, one row of the
 * vocabulary, are not split: every adapter's 128 MiB binding holds 33 million of them.)
 */
export function bindingLimitTokens(spec: ModelSpec, options: LayoutOptions): number {
  const binding = options.maxBindingBytes;
  if (widestRow(spec, options) * F32 > binding) return 0;
  let limit = Math.min(Math.floor(Math.min(binding, DEFAULT_BLOCK_BYTES) / F32), Math.floor(binding / (spec.headDim * F32)));
  if (options.valueWeighted) limit = Math.min(limit, Math.floor(binding / (spec.numHeads * F32)));
  return limit;
}

/** How a run of n tokens is split; throws WindowTooLongError when n exceeds what the bindings allow. */
export function runLayout(spec: ModelSpec, n: number, options: LayoutOptions): RunLayout {
  const limit = bindingLimitTokens(spec, options);
  if (n > limit) {
    throw new WindowTooLongError(
      limit === 0
        ? `this adapter's storage bindings (${options.maxBindingBytes} bytes) cannot hold one row of ${spec.architecture}'s activations`
        : `${n} tokens need more than this adapter's storage-binding limit (${options.maxBindingBytes} bytes) allows for ${spec.architecture}; the longest window that fits is ${limit} tokens: analyse fewer tokens`,
      limit,
    );
  }
  const blockBytes = Math.min(options.maxBindingBytes, DEFAULT_BLOCK_BYTES);
  const rowsPerBlock = Math.max(1, Math.min(n, Math.floor(blockBytes / (widestRow(spec, options) * F32))));
  const kvHeadsPerGroup = Math.min(spec.numKvHeads, Math.floor(options.maxBindingBytes / (n * spec.headDim * F32)));
  const kvGroups = Math.ceil(spec.numKvHeads / kvHeadsPerGroup);
  const headsPerGroup = kvHeadsPerGroup * (spec.numHeads / spec.numKvHeads);
  // Probability rows per block; a block never spans two row blocks or two KV groups.
  const probabilityRows = Math.floor(blockBytes / (n * F32));
  let headsPerBlock: number;
  let queriesPerBlock: number;
  if (probabilityRows >= rowsPerBlock) {
    headsPerBlock = Math.min(headsPerGroup, Math.floor(probabilityRows / rowsPerBlock));
    queriesPerBlock = rowsPerBlock;
  } else {
    headsPerBlock = 1;
    queriesPerBlock = probabilityRows;
  }
  return { n, rowsPerBlock, kvHeadsPerGroup, kvGroups, headsPerBlock, queriesPerBlock };
}

/** The KV heads [start, start + count) of each key/value group. */
export function kvGroupRanges(spec: ModelSpec, layout: RunLayout): { start: number; count: number }[] {
  const groups: { start: number; count: number }[] = [];
  for (let start = 0; start < spec.numKvHeads; start += layout.kvHeadsPerGroup) {
    groups.push({ start, count: Math.min(layout.kvHeadsPerGroup, spec.numKvHeads - start) });
  }
  return groups;
}

/** Resident weight bytes estimated from the spec (the engine passes the real number). */
export function estimateWeightBytes(spec: ModelSpec, bytesPerValue: 2 | 4 = 4): number {
  const d = spec.hiddenSize;
  const qW = spec.numHeads * spec.headDim;
  const kvW = spec.numKvHeads * spec.headDim;
  const ffn = spec.intermediateSize;
  const matrix = (rows: number, cols: number) => Math.ceil((rows * cols * bytesPerValue) / 4) * 4;
  const vector = (length: number) => length * F32;
  const normBytes = vector(d) * (spec.norm === 'layer' ? 2 : 1);
  let layer = normBytes * normsPerLayer(spec) + matrix(qW, d) + 2 * matrix(kvW, d) + matrix(d, qW) + matrix(ffn, d) * (spec.mlp === 'swiglu' ? 2 : 1) + matrix(d, ffn);
  if (spec.qkvBias) layer += vector(qW) + 2 * vector(kvW);
  if (spec.outBias) layer += vector(d);
  if (spec.mlpBias) layer += vector(ffn) + vector(d);
  let total = spec.numLayers * layer + matrix(spec.vocabSize, d) + normBytes;
  if (hasSeparateLmHead(spec)) total += matrix(spec.vocabSize, d);
  if (spec.positional === 'learned') total += vector(spec.maxPositions * d);
  return total;
}

/** Every buffer of a run of n tokens and the peak device bytes; throws WindowTooLongError like runLayout. */
export function memoryPlan(spec: ModelSpec, n: number, options: MemoryPlanOptions): MemoryPlan {
  const layout = runLayout(spec, n, options);
  const first = Math.min(options.reusedTokens ?? 0, n - 1);
  const L = spec.numLayers;
  const H = spec.numHeads;
  const d = spec.hiddenSize;
  const qW = H * spec.headDim;
  const ffn = spec.intermediateSize;
  const k = options.topK;
  const S = options.numSpans;
  const R = layout.rowsPerBlock;
  const summarised = options.summarisedLayers ?? L;
  const all = rowBlocks(n, first, R);
  const computed = all.filter((range) => range.rowStart >= first);
  const buffers: PlannedBuffer[] = [];
  const add = (label: string, bytes: number, count = 1) => {
    if (count > 0) buffers.push({ label, bytes: bufferSize(bytes), count });
  };
  const addPerBlock = (label: string, ranges: readonly RowRange[], bytesPerRow: number, times = 1) => {
    const sizes = new Map<number, number>();
    for (const range of ranges) sizes.set(bufferSize(range.rows * bytesPerRow), (sizes.get(bufferSize(range.rows * bytesPerRow)) ?? 0) + times);
    for (const [bytes, count] of sizes) add(label, bytes, count);
  };

  // The run's state: kept for attentionRow, the causal checks and the cache.
  addPerBlock('q [rows, heads * head_dim] per layer and row block', all, qW * F32, L);
  for (const group of kvGroupRanges(spec, layout)) add('k and v [n, group kv_heads * head_dim] per layer and KV group', n * group.count * spec.headDim * F32, 2 * L);
  addPerBlock('residual [rows, hidden] per row block', all, d * F32);
  const stateBytes = total(buffers);

  // Scratch of one row block, reused by every block and layer.
  const rows = Math.max(...computed.map((range) => range.rows));
  add('normed [rows, hidden]', rows * d * F32);
  add('attended [rows, heads * head_dim]', rows * qW * F32);
  add('projected [rows, hidden]', rows * d * F32);
  add('mlp up [rows, intermediate]', rows * ffn * F32);
  if (spec.mlp === 'swiglu') add('mlp gate [rows, intermediate]', rows * ffn * F32);
  add('k rows and v rows [rows, kv_heads * head_dim]', rows * spec.numKvHeads * spec.headDim * F32, 2);
  if (spec.positional === 'learned') add('positions [rows, hidden]', rows * d * F32);
  addPerBlock('token ids [rows] per computed row block', computed, 4);
  if (spec.positional === 'rope') addPerBlock('rope cos/sin [rows, head_dim / 2, 2] per computed row block', computed, spec.headDim * F32);
  // Gemma 3's sliding-window layers turn with a table of their own.
  if (spec.positional === 'rope' && spec.localRopeTheta !== undefined) addPerBlock('local rope cos/sin [rows, head_dim / 2, 2] per computed row block', computed, spec.headDim * F32);
  add('probabilities block [heads, queries, n]', layout.headsPerBlock * layout.queriesPerBlock * n * F32);
  if (options.valueWeighted) add('value norms squared [heads, n]', H * n * F32);
  add('spans [S, 2]', S * 8);

  // Summaries of the computed rows, on the device and in mappable staging buffers.
  for (const range of computed) {
    const m = range.rows;
    const parts = [H * m * k * 4, H * m * k * 4, H * m * S * 4, m * S * 4, m * S * 4];
    for (const bytes of parts) add('summary block (top indices, top weights, span mass, mean, max) per summarised layer', bytes, summarised);
    add('summary staging per summarised layer and row block', parts.reduce((a, b) => a + b, 0), summarised);
  }
  add('last hidden and last normed [1, hidden]', d * F32, 2);
  add('logits [vocab] and its staging', spec.vocabSize * F32, 2);

  const weightBytes = options.weightBytes ?? estimateWeightBytes(spec, options.weightBytesPerValue ?? 4);
  const largestBindingBytes = Math.max(...buffers.map((buffer) => buffer.bytes));
  return { n, layout, buffers, weightBytes, stateBytes, largestBindingBytes, peakBytes: weightBytes + total(buffers) };
}

/**
 * The longest window (1..spec.maxPositions) whose plan fits `budgetBytes` of device memory and the
 * bindings; 0 when not even one token fits.
 */
export function longestWindow(spec: ModelSpec, budgetBytes: number, options: MemoryPlanOptions): number {
  const fits = (n: number) => n <= bindingLimitTokens(spec, options) && memoryPlan(spec, n, options).peakBytes <= budgetBytes;
  let low = 0;
  let high = spec.maxPositions;
  if (fits(high)) return high;
  // Invariant: fits(low) or low = 0; !fits(high). Peak bytes grow with n.
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (fits(middle)) low = middle;
    else high = middle;
  }
  return low;
}

function total(buffers: readonly PlannedBuffer[]): number {
  return buffers.reduce((sum, buffer) => sum + buffer.bytes * buffer.count, 0);
}
