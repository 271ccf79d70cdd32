/**
 * The WebGPU engine's run-time state and the pure helpers around it: what a run leaves on the device
 * (RunState: post-rope Q and K, V and the final residual stream, in row segments and KV-head
 * groups), the run cache's entries, the summary and temporary buffers of a layer, and how work is
 * cut into submission units (rows, queries, heads per unit). No model-specific code: that is in
 * layerOps.ts.
 */
import type { AttentionSummary } from '../attention';
import type { ModelSpec } from '../model/modelTypes';
import type { CachedRequest } from '../runReuse';
import { ROW_ALIGNMENT, rowRange } from './kernels';
import type { LayerWorkRows, ValuePipelines } from './layerOps';
import type { RowRange, RunLayout } from './memoryPlan';
import type { PassTimer } from './passTimer';

/** Rows [rowStart, rowStart + rows) of a [n, width] tensor, in one buffer of their own. */
export interface RowSegment extends RowRange {
  readonly buffer: GPUBuffer;
}

/** What a run leaves on the device, for attentionRow(), the causal checks and the run cache. */
export interface RunState {
  readonly n: number;
  readonly tokenIds: Int32Array;
  readonly layout: RunLayout;
  /** [layer][row block]: Q after rope, [rows, heads * head_dim]. */
  readonly q: readonly (readonly RowSegment[])[];
  /** [layer][KV group]: K after rope, [n, group kv_heads * head_dim]. */
  readonly k: readonly (readonly GPUBuffer[])[];
  /** [layer][KV group]: V, [n, group kv_heads * head_dim]. */
  readonly v: readonly (readonly GPUBuffer[])[];
  /** The residual stream after the last layer, [rows, hidden] per row block. */
  readonly hidden: readonly RowSegment[];
  readonly bytes: number;
}

/** A run kept under its cacheKey. */
export interface CacheEntry extends CachedRequest {
  readonly state: RunState;
  readonly summary: AttentionSummary;
  readonly lastLogits: Float32Array;
  readonly bytes: number;
}

/** The summary buffers of one summarised layer and one computed row block. */
export interface SummaryBlock {
  readonly topIndices: GPUBuffer;   // [H, rows, k] i32
  readonly topWeights: GPUBuffer;   // [H, rows, k] f32
  readonly spanMass: GPUBuffer;     // [H, rows, S] f32
  readonly spanMean: GPUBuffer;     // [rows, S] f32
  readonly spanMax: GPUBuffer;      // [rows, S] f32
  readonly staging: GPUBuffer;      // the five above, back to back, mappable
}

/** One layer's temporaries for `rows` rows: they hold nothing between row blocks. */
export interface LayerWork {
  readonly h: GPUBuffer;          // [rows, hidden]
  readonly attended: GPUBuffer;   // [rows, heads * head_dim]
  readonly projected: GPUBuffer;  // [rows, hidden]
  readonly up: GPUBuffer;         // [rows, intermediate]
  readonly gate?: GPUBuffer;      // [rows, intermediate], SwiGLU only
  readonly kRows: GPUBuffer;      // [rows, kv_heads * head_dim]
  readonly vRows: GPUBuffer;      // [rows, kv_heads * head_dim]
}


/** A row block computed in this pass: its residual rows and rotary table. */
export interface ComputedBlock extends RowRange {
  readonly x: GPUBuffer;          // [rows, hidden], updated in place layer by layer
  readonly q: GPUBuffer;          // [rows, heads * head_dim] of the layer being encoded
  readonly cosSin?: GPUBuffer;    // [rows, rotary_dim / 2, 2]
  readonly cosSinLocal?: GPUBuffer; // [rows, rotary_dim / 2, 2]: Gemma 3's sliding-window layers' own base
}

/** The summaries one layer writes, when it is summarised. */
export interface LayerSummaries {
  readonly blocks: readonly SummaryBlock[];   // one per computed row block
  readonly numSpans: number;
  readonly spanBuffer: GPUBuffer;
  readonly timer?: PassTimer;
  readonly valueWeighting?: { readonly pipelines: ValuePipelines; readonly normSquares: GPUBuffer };
}




/** Rows [row0, row0 + rows) of a layer's temporaries, as bindings the kernels see from row 0. */
export function workRows(work: LayerWork, row0: number, rows: number, spec: ModelSpec): LayerWorkRows {
  const d = spec.hiddenSize;
  const inter = spec.intermediateSize;
  return {
    h: rowRange(work.h, row0, rows, d),
    attended: rowRange(work.attended, row0, rows, spec.numHeads * spec.headDim),
    projected: rowRange(work.projected, row0, rows, d),
    up: rowRange(work.up, row0, rows, inter),
    gate: work.gate && rowRange(work.gate, row0, rows, inter),
  };
}

/**
 * Rows of the next unit of `remaining` rows costing `perRow` each: as many as `unitCost` allows, in
 * multiples of ROW_ALIGNMENT (so that row ranges can be bound), at least ROW_ALIGNMENT.
 */
export function unitRows(unitCost: number, remaining: number, perRow: number): number {
  const fit = Math.floor(unitCost / perRow / ROW_ALIGNMENT) * ROW_ALIGNMENT;
  return Math.min(remaining, Math.max(ROW_ALIGNMENT, fit));
}

/** Queries per attention unit are multiples of this (the tiled scores kernel's tile), except the last. */
export const QUERY_ALIGNMENT = 16;

/**
 * Queries of the next attention unit from query0 (query q attends to q + 1 keys): the most whose
 * cost heads * perKey * sum(q + 1) stays within `unitCost`, in multiples of QUERY_ALIGNMENT.
 */
export function unitQueries(unitCost: number, query0: number, remaining: number, heads: number, perKey: number): number {
  // heads * perKey * (q * (query0 + 1) + q (q - 1) / 2) <= unitCost, solved for q.
  const budget = unitCost / (heads * perKey);
  const a = query0 + 0.5;
  const fit = Math.floor((-a + Math.sqrt(a * a + 2 * budget)) / QUERY_ALIGNMENT) * QUERY_ALIGNMENT;
  return Math.min(remaining, Math.max(QUERY_ALIGNMENT, fit));
}

/** Heads per attention unit: as many (up to the plan's) as fit `unitCost` for the window's last QUERY_ALIGNMENT queries. */
export function unitHeads(unitCost: number, headsPerBlock: number, n: number, perKey: number): number {
  return Math.min(headsPerBlock, Math.max(1, Math.floor(unitCost / (QUERY_ALIGNMENT * n * perKey))));
}

/** Bytes of one row block's summary: top indices and weights [H, rows, k], span masses [H, rows, S], mean and max [rows, S]. */
export function summaryBytes(rows: number, H: number, k: number, numSpans: number): number {
  return (2 * H * rows * k + H * rows * numSpans + 2 * rows * numSpans) * 4;
}

export function copySummaryToStaging(encoder: GPUCommandEncoder, set: SummaryBlock, rows: number, H: number, k: number, numSpans: number): void {
  let offset = 0;
  const copy = (source: GPUBuffer, bytes: number) => {
    if (bytes > 0) encoder.copyBufferToBuffer(source, 0, set.staging, offset, bytes);
    offset += bytes;
  };
  copy(set.topIndices, H * rows * k * 4);
  copy(set.topWeights, H * rows * k * 4);
  copy(set.spanMass, H * rows * numSpans * 4);
  copy(set.spanMean, rows * numSpans * 4);
  copy(set.spanMax, rows * numSpans * 4);
}

/** Copies rows [row0, row0 + rows) of a tensor held in row segments into `target` from its row 0. */
export function copyRows(encoder: GPUCommandEncoder, segments: readonly RowSegment[], row0: number, rows: number, target: GPUBuffer, rowBytes: number): void {
  for (const segment of segments) {
    const start = Math.max(row0, segment.rowStart);
    const end = Math.min(row0 + rows, segment.rowStart + segment.rows);
    if (end <= start) continue;
    encoder.copyBufferToBuffer(segment.buffer, (start - segment.rowStart) * rowBytes, target, (start - row0) * rowBytes, (end - start) * rowBytes);
  }
}

export function destroyState(state: RunState): void {
  for (const layer of state.q) for (const segment of layer) segment.buffer.destroy();
  for (const groups of [...state.k, ...state.v]) for (const buffer of groups) buffer.destroy();
  for (const segment of state.hidden) segment.buffer.destroy();
}

/** Maps `staging`, copies its first `bytes` out and unmaps it. */
export async function readStaging(staging: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
  if (bytes === 0) return new ArrayBuffer(0);
  await staging.mapAsync(GPUMapMode.READ, 0, Math.ceil(bytes / 4) * 4);
  const copy = staging.getMappedRange(0, Math.ceil(bytes / 4) * 4).slice(0, bytes);
  staging.unmap();
  return copy;
}
