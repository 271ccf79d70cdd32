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
  /** Re-analysis after a one-line edit (12 tokens) 40 tokens before the end, with the run cached. */
  readonly incrementalMs: number;
  readonly fullMs: number;
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
      const request: AttentionRequest = { tokenIds, spans, topK, cacheKey: 'bench' };
      const engine = (await createNodeGpuEngine(model, { weightFormat: 'f32', maxBindingBytes: options.maxBindingBytes })) as GpuEngine;
      try {
        let started = performance.now();
        const result = await engine.run(request);
        const fullMs = performance.now() - started;
        const stats = engine.memoryStats();
        const edited = { ...request, tokenIds: tokenIds.map((id, i) => (i >= n - 40 && i < n - 28 ? (id + 1) % LONG_WINDOW_LLAMA.vocabSize : id)) };
        started = performance.now();
        const again = await engine.run(edited);
        const incrementalMs = performance.now() - started;
        if (again.stats.reusedTokens !== n - 40) throw new Error(`expected ${n - 40} reused tokens, got ${again.stats.reusedTokens}`);
        rows.push({
          n,
          forwardMs: result.stats.forwardMs,
          summaryMs: result.stats.summaryMs,
          readbackBytes: result.stats.readbackBytes,
          plannedPeakBytes: stats.plannedPeakBytes,
          gpuBufferBytes: stats.totalBytes,
          fullMs,
          incrementalMs,
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
    '| n | forward ms | summary ms | readback MiB | planned peak MiB | GPU buffers MiB | re-analysis after an edit | (of a full pass) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((row) => `| ${row.n} | ${row.forwardMs.toFixed(0)} | ${row.summaryMs.toFixed(0)} | ${mib(row.readbackBytes)} | ${mib(row.plannedPeakBytes)} | ${mib(row.gpuBufferBytes)} | ${row.incrementalMs.toFixed(0)} ms | ${((row.incrementalMs / row.fullMs) * 100).toFixed(1)}% |`),
  ];
  return lines.join('\n');
}

export interface CpuLongWindowRow {
  readonly n: number;
  readonly fullMs: number;
  readonly readbackBytes: number;
  readonly incrementalMs: number;
}

/** The same long-window Llama on the CPU engine (ONNX Runtime), with the same edit. */
export async function benchCpuLongWindow(threads: number, lengths: readonly number[] = [4096, 8192]): Promise<CpuLongWindowRow[]> {
  const folder = writeSyntheticLlama(LONG_WINDOW_LLAMA, 1);
  const { OnnxRuntimeEngine } = await import('../engine/onnx/onnxEngine');
  try {
    const model = await loadModelFolder(folder);
    const engine = await OnnxRuntimeEngine.create(model, { threads, reason: 'benchmark', cacheBytes: 4 * 2 ** 30 });
    const rows: CpuLongWindowRow[] = [];
    try {
      for (const n of lengths) {
        const random = seededRandom(n);
        const tokenIds = Array.from({ length: n }, () => Math.floor(random() * LONG_WINDOW_LLAMA.vocabSize));
        const request: AttentionRequest = { tokenIds, spans: [{ start: 0, end: 64 }, { start: Math.floor(n / 2), end: Math.floor(n / 2) + 32 }], topK: 8, cacheKey: `bench${n}` };
        await engine.run({ ...request, cacheKey: undefined }); // warm-up
        let started = performance.now();
        const full = await engine.run(request);
        const fullMs = performance.now() - started;
        const edited = { ...request, tokenIds: tokenIds.map((id, i) => (i >= n - 40 && i < n - 28 ? (id + 1) % LONG_WINDOW_LLAMA.vocabSize : id)) };
        await engine.run(edited); // builds the prefill session once
        await engine.run(request);
        started = performance.now();
        await engine.run(edited);
        rows.push({ n, fullMs, readbackBytes: full.stats.readbackBytes, incrementalMs: performance.now() - started });
      }
    } finally {
      engine.dispose();
    }
    return rows;
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

export function formatCpuLongWindowTable(rows: readonly CpuLongWindowRow[]): string {
  return [
    '| n | full pass ms | readback MiB | re-analysis after an edit | (of a full pass) |',
    '|---:|---:|---:|---:|---:|',
    ...rows.map((row) => `| ${row.n} | ${row.fullMs.toFixed(0)} | ${(row.readbackBytes / 2 ** 20).toFixed(1)} | ${row.incrementalMs.toFixed(0)} ms | ${((row.incrementalMs / row.fullMs) * 100).toFixed(1)}% |`),
  ].join('\n');
}
