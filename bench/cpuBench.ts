/**
 * The CPU columns of `npm run bench`, all measured in the same run on the same cores: the TypeScript
 * reference engine, the ONNX Runtime engine (through its worker thread, as the editor and CLI run
 * it) and PyTorch eager with every attention probability materialised (bench/torch_forward.py),
 * plus the GEMM throughput ONNX Runtime reaches here on one plain MatMul, against which the
 * engine's effective FLOP rate is put.
 */
import { onnx } from 'onnx-proto';
import type { AttentionRequest } from '../engine/attention';
import type { AttentionEngine } from '../engine/engine';
import { NodeOnnxEngine, onnxThreadCount } from '../engine/hosts/nodeOnnx';
import { loadModelFolder } from '../engine/hosts/nodeModelFolder';
import type { ModelSpec } from '../engine/model/modelTypes';
import { ReferenceEngine } from '../engine/reference/referenceEngine';
import { seededRandom } from '../test/gpu/gpuTestSupport';

export interface CpuRow {
  model: string;
  n: number;
  referenceMs?: number;
  referenceNote?: string;
  onnxMs: number;
  /** ONNX Runtime's first run at this length (arena growth, page faults), for the record. */
  onnxFirstMs: number;
  readbackBytes: number;
  fullAttentionBytes: number;
  torchMs?: number;
  /** ONNX Runtime: knockout of 8 spans for the last query, and one span-hidden pass (median ms). */
  knockoutMs: number;
  effectMs: number;
  /** Useful floating-point work of one pass (projections, MLP, causal QK^T and PV, last-row logits). */
  flops: number;
}

export interface CpuBenchOptions {
  readonly threads: number;
  readonly repeats: number;
  readonly topK: number;
  /** The reference is skipped at lengths whose estimated run time exceeds this. */
  readonly maxSeconds: number;
  readonly torchTimes: (folder: string, lengths: number[], threads: number) => Record<string, number> | string;
}

/** FLOPs of one forward pass with causal attention (half the n x n products) and logits for the last row only. */
export function forwardFlops(spec: ModelSpec, n: number): number {
  const d = spec.hiddenSize;
  const q = spec.numHeads * spec.headDim;
  const kv = spec.numKvHeads * spec.headDim;
  const mlpMatrices = spec.mlp === 'swiglu' ? 3 : 2;
  const perLayer = 2 * n * d * (q + 2 * kv) + 2 * n * q * d + 2 * n * d * spec.intermediateSize * mlpMatrices + 2 * 2 * spec.numHeads * spec.headDim * (n * (n + 1)) / 2;
  return spec.numLayers * perLayer + 2 * d * spec.vocabSize;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function requestFor(spec: ModelSpec, n: number, topK: number): AttentionRequest {
  const random = seededRandom(n);
  const tokenIds = Array.from({ length: n }, () => Math.floor(random() * spec.vocabSize));
  // Eight spans of up to 16 tokens spread over the sequence, as definitions and imports would be.
  const spans = Array.from({ length: 8 }, (_, i) => {
    const start = Math.floor((i * n) / 8);
    return { start, end: Math.min(n, start + 16) };
  });
  return { tokenIds, spans, topK };
}

async function timeRuns(engine: AttentionEngine, request: AttentionRequest, repeats: number): Promise<{ first: number; median: number; readbackBytes: number }> {
  let started = performance.now();
  const warm = await engine.run(request);
  const first = performance.now() - started;
  // A second warm-up: ONNX Runtime's thread pool and arena settle over the first runs.
  await engine.run(request);
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) {
    started = performance.now();
    await engine.run(request);
    times.push(performance.now() - started);
  }
  return { first, median: median(times), readbackBytes: warm.stats.readbackBytes };
}

export async function benchCpuModel(label: string, folder: string, lengths: number[], options: CpuBenchOptions): Promise<CpuRow[]> {
  const model = await loadModelFolder(folder);
  const { spec } = model;
  const fitting = [...new Set(lengths.map((n) => Math.min(n, spec.maxPositions)))];
  const rows: CpuRow[] = [];
  const onnxEngine = await NodeOnnxEngine.create(model, { threads: options.threads, reason: 'benchmark' });
  try {
    for (const n of fitting) {
      const request = requestFor(spec, n, options.topK);
      const timed = await timeRuns(onnxEngine, request, Math.max(5, options.repeats));
      // The causal checks on this run: 8 spans knocked out of the last token's attention, and the
      // first span hidden from every later token (first call builds the session; timed after it).
      const knockout = { query: n - 1, spans: request.spans };
      await onnxEngine.knockout(knockout);
      await onnxEngine.spanEffect(request.spans[0]);
      const knockoutMs: number[] = [];
      const effectMs: number[] = [];
      for (let r = 0; r < 3; r++) {
        let started = performance.now();
        await onnxEngine.knockout(knockout);
        knockoutMs.push(performance.now() - started);
        started = performance.now();
        await onnxEngine.spanEffect(request.spans[0]);
        effectMs.push(performance.now() - started);
      }
      rows.push({ model: label, n, onnxMs: timed.median, onnxFirstMs: timed.first, readbackBytes: timed.readbackBytes, fullAttentionBytes: spec.numLayers * spec.numHeads * n * n * 4, flops: forwardFlops(spec, n), knockoutMs: median(knockoutMs), effectMs: median(effectMs) });
      process.stderr.write(`  ${label} n=${n}: ONNX Runtime ${timed.median.toFixed(1)} ms\n`);
    }
  } finally {
    onnxEngine.dispose();
  }
  // The reference computes single-threaded in float64; estimate from its rate on the first length.
  const reference = new ReferenceEngine(model, 'benchmark');
  let flopsPerMs: number | undefined;
  for (const row of rows) {
    const estimateMs = flopsPerMs ? row.flops / flopsPerMs : 0;
    if (estimateMs > options.maxSeconds * 1000) {
      row.referenceNote = `~${(estimateMs / 1000).toFixed(0)} s (skipped)`;
      continue;
    }
    const started = performance.now();
    await reference.run(requestFor(spec, row.n, options.topK));
    row.referenceMs = performance.now() - started;
    flopsPerMs = row.flops / row.referenceMs;
    process.stderr.write(`  ${label} n=${row.n}: reference ${row.referenceMs.toFixed(0)} ms\n`);
  }
  reference.dispose();
  const times = options.torchTimes(folder, rows.map((row) => row.n), options.threads);
  if (typeof times === 'string') process.stderr.write(`  ${label}: ${times}\n`);
  else for (const row of rows) row.torchMs = times[String(row.n)];
  return rows;
}

/**
 * GFLOP/s of ONNX Runtime's GEMM here: a chain of `depth` MatMuls [m, d] x [d, d] with constant
 * weights (as in the model graph) in one session, so per-run overhead does not count; median of
 * several runs after warm-up.
 */
export async function measureGemmPeak(threads: number, m = 2048, d = 576, depth = 12): Promise<number> {
  const { DataType } = onnx.TensorProto;
  const random = seededRandom(7);
  const weight = (i: number) => ({ name: `w${i}`, dims: [d, d], dataType: DataType.FLOAT, rawData: new Uint8Array(Float32Array.from({ length: d * d }, () => (random() - 0.5) / Math.sqrt(d)).buffer) });
  const model = onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'gemm',
        node: Array.from({ length: depth }, (_, i) => ({ opType: 'MatMul', input: [i === 0 ? 'x' : `h${i - 1}`, `w${i}`], output: [i === depth - 1 ? 'y' : `h${i}`] })),
        initializer: Array.from({ length: depth }, (_, i) => weight(i)),
        input: [{ name: 'x', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: m }, { dimValue: d }] } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: m }, { dimValue: d }] } } } }],
      },
    }),
  ).finish();
  // Loaded here, not at the top: the WebGPU tables run on machines without ONNX Runtime.
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const x = new ort.Tensor('float32', Float32Array.from({ length: m * d }, () => random() - 0.5), [m, d]);
  const times: number[] = [];
  for (let r = 0; r < 10; r++) {
    const started = performance.now();
    await session.run({ x });
    times.push(performance.now() - started);
  }
  await session.release();
  return (2 * m * d * d * depth) / (median(times.slice(3)) * 1e6);
}

export function formatCpuTable(rows: CpuRow[], gemmPeak: number, formatBytes: (bytes: number) => string): string[] {
  const header = ['model', 'n', 'reference ms', 'ONNX Runtime ms', '(first run)', 'torch+P ms', 'ORT/torch', 'reference/ORT', 'ORT GFLOP/s', 'of GEMM peak', 'readback', '(full P)', 'knockout 8 spans', 'span hidden'];
  const lines = rows.map((row) => {
    const gflops = row.flops / (row.onnxMs * 1e6);
    return [
      row.model,
      String(row.n),
      row.referenceMs !== undefined ? row.referenceMs.toFixed(0) : row.referenceNote ?? '-',
      row.onnxMs.toFixed(1),
      row.onnxFirstMs.toFixed(0),
      row.torchMs === undefined ? '-' : row.torchMs.toFixed(1),
      row.torchMs === undefined ? '-' : `${(row.onnxMs / row.torchMs).toFixed(2)}x`,
      row.referenceMs === undefined ? '-' : `${(row.referenceMs / row.onnxMs).toFixed(0)}x`,
      gflops.toFixed(1),
      `${((gflops / gemmPeak) * 100).toFixed(0)}%`,
      formatBytes(row.readbackBytes),
      formatBytes(row.fullAttentionBytes),
      `${row.knockoutMs.toFixed(1)} ms (${((row.knockoutMs / row.onnxMs) * 100).toFixed(1)}%)`,
      `${row.effectMs.toFixed(0)} ms (${(row.effectMs / row.onnxMs).toFixed(2)}x)`,
    ];
  });
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i].length)));
  const format = (cells: string[]) => cells.map((cell, i) => (i < 1 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [format(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(format)];
}

export { onnxThreadCount };

export interface IncrementalRow {
  model: string;
  n: number;
  fullMs: number;
  editAt: number;
  incrementalMs: number;
}

/**
 * Re-analysis after a one-line edit near the end: a full pass of n tokens, then the same tokens with
 * a few replaced `fromEnd` tokens before the end, run with the cache (only the tail is recomputed).
 */
export async function benchIncremental(label: string, folder: string, n: number, options: { threads: number; repeats: number }): Promise<IncrementalRow> {
  const model = await loadModelFolder(folder);
  const length = Math.min(n, model.spec.maxPositions);
  const engine = await NodeOnnxEngine.create(model, { threads: options.threads, reason: 'benchmark', cacheBytes: 4 * 1024 * 1024 * 1024 });
  try {
    const base = requestFor(model.spec, length, 8);
    const editAt = length - 40;
    const edited = { ...base, tokenIds: Array.from(base.tokenIds, (id, i) => (i >= editAt && i < editAt + 12 ? (id + 1) % model.spec.vocabSize : id)) };
    const full: number[] = [];
    const incremental: number[] = [];
    // Warm-up: both graphs (the prefill graph is built on the first incremental run), both lengths.
    await engine.run({ ...base, cacheKey: 'bench' });
    await engine.run({ ...edited, cacheKey: 'bench' });
    engine.releaseCache('bench');
    for (let r = 0; r < options.repeats; r++) {
      let started = performance.now();
      await engine.run({ ...base, cacheKey: 'bench' });
      full.push(performance.now() - started);
      started = performance.now();
      const result = await engine.run({ ...edited, cacheKey: 'bench' });
      incremental.push(performance.now() - started);
      if (result.stats.reusedTokens !== editAt) throw new Error(`expected ${editAt} reused tokens, got ${result.stats.reusedTokens}`);
      engine.releaseCache('bench');
    }
    return { model: label, n: length, fullMs: median(full), editAt, incrementalMs: median(incremental) };
  } finally {
    engine.dispose();
  }
}

export function formatIncrementalTable(rows: IncrementalRow[]): string[] {
  return [
    '| model | n | full pass ms | edit at token | re-analysis ms | ratio |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.model} | ${r.n} | ${r.fullMs.toFixed(0)} | ${r.editAt} | ${r.incrementalMs.toFixed(1)} | ${((r.incrementalMs / r.fullMs) * 100).toFixed(1)}% |`),
  ];
}
