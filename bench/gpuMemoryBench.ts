/**
 * Long windows on the WebGPU engine: a random-weight Llama with an 8192-token context, small enough
 * in width to run on a software adapter, analysed at n = 4096 and 8192. Each row reports the
 * forward and summary times, the bytes read back, the peak the memory plan predicted and the device
 * bytes the engine holds after the run. bench/bench.ts prints the rows as a table.
 */
import * as fs from 'node:fs';
import type { AttentionRequest } from '../engine/attention';
import { createNodeGpuEngine } from '../engine/hosts/nodeWebGpu';
import { loadModelFolder } from '../engine/hosts/nodeModelFolder';
import type { GpuEngine } from '../engine/webgpu/gpuEngine';
import { seededRandom } from '../test/gpu/gpuTestSupport';
import { type SyntheticLlamaShape, writeSyntheticLlama } from '../test/gpu/syntheticModel';

/** Two layers, 64 wide, grouped-query attention, 8192 positions. */
export const LONG_WINDOW_LLAMA: SyntheticLlamaShape = {
  vocabSize: 512,
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 128,
  maxPositions: 8192,
  ropeTheta: 10000,
};

export interface GpuMemoryRow {
  readonly n: number;
  readonly forwardMs: number;
  readonly summaryMs: number;
  readonly readbackBytes: number;
  readonly plannedPeakBytes: number;
  /** Device bytes the engine holds after the run (weights, the run's state, scratch and summaries). */
  readonly gpuBufferBytes: number;
}

export interface GpuMemoryBenchOptions {
  readonly lengths?: readonly number[];
  /** Caps each storage binding (e.g. 128 MiB, the smallest adapters' limit) so that the run is split as it would be there. */
  readonly maxBindingBytes?: number;
  readonly topK?: number;
}

/** Runs the long-window Llama at each length on the Node WebGPU adapter (one engine per length, so each row's memory is its own). */
export async function benchGpuMemory(options: GpuMemoryBenchOptions = {}): Promise<GpuMemoryRow[]> {
  const lengths = options.lengths ?? [4096, 8192];
  const topK = options.topK ?? 8;
  const folder = writeSyntheticLlama(LONG_WINDOW_LLAMA, 1);
  try {
    const model = await loadModelFolder(folder);
    const rows: GpuMemoryRow[] = [];
    for (const n of lengths) {
      const random = seededRandom(n);
      const tokenIds = Array.from({ length: n }, () => Math.floor(random() * LONG_WINDOW_LLAMA.vocabSize));
      const spans = [{ start: 0, end: 64 }, { start: Math.floor(n / 2), end: Math.floor(n / 2) + 32 }];
      const request: AttentionRequest = { tokenIds, spans, topK };
      const engine = (await createNodeGpuEngine(model, { weightFormat: 'f32', maxBindingBytes: options.maxBindingBytes })) as GpuEngine;
      try {
        const result = await engine.run(request);
        const stats = engine.memoryStats();
        rows.push({
          n,
          forwardMs: result.stats.forwardMs,
          summaryMs: result.stats.summaryMs,
          readbackBytes: result.stats.readbackBytes,
          plannedPeakBytes: stats.plannedPeakBytes,
          gpuBufferBytes: stats.totalBytes,
        });
      } finally {
        engine.dispose();
      }
    }
    return rows;
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

/** The rows as a Markdown table. */
export function formatGpuMemoryTable(rows: readonly GpuMemoryRow[]): string {
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  const lines = [
    '| n | forward ms | summary ms | readback MiB | planned peak MiB | GPU buffers MiB |',
    '|---:|---:|---:|---:|---:|---:|',
    ...rows.map((row) => `| ${row.n} | ${row.forwardMs.toFixed(0)} | ${row.summaryMs.toFixed(0)} | ${mib(row.readbackBytes)} | ${mib(row.plannedPeakBytes)} | ${mib(row.gpuBufferBytes)} |`),
  ];
  return lines.join('\n');
}
