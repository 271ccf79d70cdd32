/**
 * `npm run bench -- --real-shapes`: random-weight models with the real configs of the code models
 * people run (SmolLM2-135M, Qwen2.5-Coder-0.5B, Qwen2.5-Coder-1.5B: every layer, the real
 * vocabulary, BF16 files as they ship) at real lengths, on the WebGPU adapter this machine has
 * (`--engines webgpu`) and on the CPU engine (`--engines cpu`: ONNX Runtime in its own process, as
 * the editor runs it; its peak resident memory is that process's).
 *
 * CPU rows stand next to llama.cpp's prefill of the same model on the same threads (bench/llamaCpp.ts:
 * the floor, since it computes no attention weights; our time is reported as a multiple of it, and
 * its last-position log-probabilities check ours as an independent implementation) and PyTorch
 * eager with every attention probability materialised (bench/torch_forward.py) where that fits in
 * memory.
 *
 * Each row: forward and summary times, the bytes read back per analysis (next to the size of the
 * full attention tensor that notebook tools copy), the device memory the plan predicted and the
 * engine held, the knockout and span-hidden checks. Beside them, from the same model files on the
 * same machine, Hugging Face transformers (bench/hf_forward.py): eager with every attention
 * probability returned (`output_attentions=True`, the only way transformers gives attention
 * weights), and SDPA without attentions as the floor. The script also checks our results against
 * transformers' (last-position logits, exact attention rows, top-k sources): that is the fidelity
 * of the engine on this adapter against an independent implementation.
 */
import * as childProcess from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AttentionRequest, ForwardResult } from '../engine/attention';
import type { AttentionEngine } from '../engine/engine';
import { createNodeGpuEngine } from '../engine/hosts/nodeWebGpu';
import { NodeOnnxEngine, onnxThreadCount } from '../engine/hosts/nodeOnnx';
import { compareLogProbs, llamaCppPrefill } from './llamaCpp';
import { loadModelFolder } from '../engine/hosts/nodeModelFolder';
import { GpuEngine } from '../engine/webgpu/gpuEngine';
import { seededRandom } from '../test/gpu/gpuTestSupport';
import { REAL_SHAPES, syntheticParameterCount, writeSyntheticLlama } from '../test/gpu/syntheticModel';

export interface RealShapeOptions {
  readonly shapes: readonly string[];
  readonly lengths: readonly number[];
  readonly repeats: number;
  readonly topK: number;
  /** Run Hugging Face transformers on the same files (needs python3 with torch and transformers). */
  readonly transformers: boolean;
  /** Where the per-run JSON (our rows for the fidelity check, transformers' results) is written. */
  readonly outDir: string;
  /** A length whose estimated time of one run exceeds this is skipped with a note. */
  readonly maxSeconds: number;
  readonly python: string;
  /** Which engines to run: 'webgpu' (the Node adapter) and/or 'cpu' (ONNX Runtime in its process). */
  readonly engines: readonly ('webgpu' | 'cpu')[];
  /** CPU rows: threads for ONNX Runtime, llama.cpp and PyTorch (undefined: every core). */
  readonly threads?: number;
  /** CPU rows: run llama.cpp's prefill beside ours (default true). */
  readonly llamaCpp: boolean;
}

/** One CPU-engine row: ours in its process, llama.cpp and PyTorch on the same threads. */
export interface CpuShapeRow {
  readonly shape: string;
  readonly n: number;
  readonly forwardMs?: number;
  readonly firstRunMs?: number;
  readonly readbackBytes?: number;
  readonly fullAttentionBytes: number;
  readonly plannedPeakBytes?: number;
  /** The engine process's peak resident memory after the runs. */
  readonly peakRssBytes?: number;
  readonly weightsF32Bytes: number;
  readonly knockoutMs?: number;
  readonly llamaCppMs?: number;
  /** max |log p ours - log p llama.cpp| at the last position (llama.cpp's F16 cache rounds: about 1e-2 is expected). */
  readonly llamaCppMaxDiff?: number;
  readonly llamaCppSameArgmax?: boolean;
  readonly llamaCppNote?: string;
  readonly torchMs?: number;
  readonly torchNote?: string;
  readonly note?: string;
}

export interface RealShapeRow {
  readonly shape: string;
  readonly n: number;
  readonly forwardMs?: number;
  readonly summaryMs?: number;
  readonly readbackBytes?: number;
  readonly fullAttentionBytes: number;
  readonly plannedPeakBytes?: number;
  readonly gpuBytes?: number;
  readonly knockoutMs?: number;
  readonly spanEffectMs?: number;
  /** Why this length did not run. */
  readonly note?: string;
}

/** What bench/hf_forward.py reports for one model (see its docstring). */
export interface TransformersReport {
  readonly device: string;
  readonly torch: string;
  readonly transformers: string;
  readonly rows: readonly {
    readonly n: number;
    readonly eagerMs?: number;
    readonly eagerPeakBytes?: number;
    readonly eagerNote?: string;
    readonly sdpaMs?: number;
    readonly sdpaPeakBytes?: number;
    readonly sdpaBf16Ms?: number;
    readonly fidelity?: {
      readonly maxLogitDiff: number;
      readonly argmaxSame: boolean;
      readonly rows: number;
      readonly maxProbDiff: number;
      readonly topKSame: number;
      readonly topKCompared: number;
    };
  }[];
  readonly error?: string;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function base64(values: Float32Array | Int32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

/**
 * Writes what the fidelity check compares: the token ids, the last position's logits, and for a
 * spread of (layer, head, query) the exact attention row and the top-k sources the summary holds.
 */
async function writeOurs(file: string, engine: AttentionEngine, result: ForwardResult, tokenIds: number[]): Promise<void> {
  const { spec } = engine;
  const { summary } = result;
  const n = tokenIds.length;
  const layers = [...new Set([0, Math.floor(spec.numLayers / 2), spec.numLayers - 1])];
  const heads = [...new Set([0, spec.numHeads - 1])];
  const queries = [...new Set([n - 1, Math.floor(n / 2), Math.min(n - 1, 100)])];
  const rows = [];
  for (const layer of layers) {
    const layerIndex = summary.layers.indexOf(layer);
    for (const head of heads) {
      for (const query of queries) {
        const values = await engine.attentionRow(layer, head, query);
        const at = ((layerIndex * summary.numHeads + head) * n + query) * summary.topK;
        const top = layerIndex < 0 ? new Int32Array(0) : summary.topIndices.slice(at, at + summary.topK);
        rows.push({ layer, head, query, values: base64(values), top: Array.from(top) });
      }
    }
  }
  fs.writeFileSync(file, JSON.stringify({ n, tokenIds, lastLogits: base64(result.lastLogits), topK: summary.topK, rows }));
}

/** Runs every shape at every length on the Node WebGPU adapter, then transformers on the same files. */
export async function benchRealShapes(options: RealShapeOptions, log: (line: string) => void): Promise<{ rows: RealShapeRow[]; transformers: Record<string, TransformersReport | string> }> {
  fs.mkdirSync(options.outDir, { recursive: true });
  const rows: RealShapeRow[] = [];
  const transformers: Record<string, TransformersReport | string> = {};
  for (const name of options.shapes) {
    const shape = REAL_SHAPES[name];
    if (!shape) throw new Error(`--shapes: unknown shape ${name}; known: ${Object.keys(REAL_SHAPES).join(', ')}`);
    const t0 = performance.now();
    const folder = writeSyntheticLlama(shape, 1);
    log(`  ${name}: ${(syntheticParameterCount(shape) / 1e6).toFixed(0)}M parameters written in ${((performance.now() - t0) / 1000).toFixed(1)} s (${(fs.statSync(path.join(folder, 'model.safetensors')).size / 1e9).toFixed(2)} GB ${shape.dtype ?? 'F32'})`);
    const oursFiles: string[] = [];
    try {
      let engine: AttentionEngine | undefined;
      try {
        const model = await loadModelFolder(folder);
        engine = await createNodeGpuEngine(model);
        let previous: RealShapeRow | undefined;
        for (const n of options.lengths) {
          const fullAttentionBytes = shape.numLayers * shape.numHeads * n * n * 4;
          if (n > shape.maxPositions) {
            rows.push({ shape: name, n, fullAttentionBytes, note: `beyond the model's ${shape.maxPositions} positions` });
            continue;
          }
          const estimateMs = previous?.forwardMs ? previous.forwardMs * (n / previous.n) ** 2 : 0;
          if (estimateMs > options.maxSeconds * 1000) {
            rows.push({ shape: name, n, fullAttentionBytes, note: `skipped: about ${(estimateMs / 1000).toFixed(0)} s a run (--max-seconds ${options.maxSeconds})` });
            continue;
          }
          const random = seededRandom(n);
          const tokenIds = Array.from({ length: n }, () => Math.floor(random() * shape.vocabSize));
          const spans = Array.from({ length: 8 }, (_, i) => {
            const start = Math.floor((i * n) / 8);
            return { start, end: Math.min(n, start + 16) };
          });
          const request: AttentionRequest = { tokenIds, spans, topK: options.topK };
          try {
            await engine.run(request); // warm-up: pipelines and buffers for this n
            const forward: number[] = [];
            const summaryTimes: number[] = [];
            let last: ForwardResult | undefined;
            for (let r = 0; r < options.repeats; r++) {
              last = await engine.run(request);
              forward.push(last.stats.forwardMs);
              summaryTimes.push(last.stats.summaryMs);
            }
            // The fidelity rows are read from the last timed run (attentionRow reads the most recent run).
            const file = path.join(options.outDir, `ours-${name}-${n}.json`);
            await writeOurs(file, engine, last!, tokenIds);
            oursFiles.push(file);
            let knockoutMs: number | undefined;
            let spanEffectMs: number | undefined;
            if (engine.knockout && engine.spanEffect) {
              let t = performance.now();
              await engine.knockout({ query: n - 1, spans });
              knockoutMs = performance.now() - t;
              t = performance.now();
              await engine.spanEffect(spans[0]);
              spanEffectMs = performance.now() - t;
            }
            const stats = engine instanceof GpuEngine ? engine.memoryStats() : undefined;
            previous = {
              shape: name,
              n,
              forwardMs: median(forward),
              summaryMs: median(summaryTimes),
              readbackBytes: last!.stats.readbackBytes,
              fullAttentionBytes,
              plannedPeakBytes: stats?.plannedPeakBytes,
              gpuBytes: stats?.totalBytes,
              knockoutMs,
              spanEffectMs,
            };
            rows.push(previous);
            log(`  ${name} n=${n}: forward ${previous.forwardMs!.toFixed(1)} ms, summaries ${previous.summaryMs!.toFixed(1)} ms, read back ${previous.readbackBytes} bytes`);
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            rows.push({ shape: name, n, fullAttentionBytes, note: `failed: ${message.split('\n')[0]}` });
            log(`  ${name} n=${n}: ${message}`);
          }
        }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        log(`  ${name}: WebGPU engine: ${message}`);
        for (const n of options.lengths) rows.push({ shape: name, n, fullAttentionBytes: shape.numLayers * shape.numHeads * n * n * 4, note: `engine: ${message.split('\n')[0]}` });
      } finally {
        engine?.dispose();
      }
      if (options.transformers) {
        transformers[name] = runTransformers(options, folder, oursFiles);
        const report = transformers[name];
        log(`  ${name}: transformers ${typeof report === 'string' ? report : report.error ?? `on ${report.device}, ${report.rows.length} lengths`}`);
      }
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  }
  return { rows, transformers };
}

function runTransformers(options: RealShapeOptions, folder: string, oursFiles: string[]): TransformersReport | string {
  const script = path.join(__dirname, '..', '..', 'bench', 'hf_forward.py');
  const out = path.join(options.outDir, `hf-${path.basename(folder)}.json`);
  const args = [script, folder, '--lengths', options.lengths.join(','), '--repeats', String(options.repeats), '--out', out, ...oursFiles.flatMap((file) => ['--ours', file])];
  const result = childProcess.spawnSync(options.python, args, { encoding: 'utf8', stdio: ['ignore', 'inherit', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
  if (result.error) return `did not start (${options.python}): ${result.error.message}`;
  if (!fs.existsSync(out)) return `failed (exit ${result.status}): ${(result.stderr || '').trim().split('\n').slice(-3).join(' | ')}`;
  return JSON.parse(fs.readFileSync(out, 'utf8')) as TransformersReport;
}

/** Estimates PyTorch eager's memory for n tokens with every probability kept: layers x heads x n^2 floats plus float32 weights. */
function torchBytes(shape: { numLayers: number; numHeads: number }, n: number, weightsF32Bytes: number): number {
  return shape.numLayers * shape.numHeads * n * n * 4 * 1.2 + weightsF32Bytes * 1.5;
}

/**
 * The CPU engine (ONNX Runtime in its own process) at each length, beside llama.cpp and PyTorch.
 * One warm-up run, then `repeats` timed runs (one at 8,192 tokens and above: a run takes minutes on
 * few cores).
 */
export async function benchRealShapesCpu(options: RealShapeOptions, log: (line: string) => void): Promise<CpuShapeRow[]> {
  const rows: CpuShapeRow[] = [];
  const threads = onnxThreadCount(options.threads);
  for (const name of options.shapes) {
    const shape = REAL_SHAPES[name];
    if (!shape) throw new Error(`--shapes: unknown shape ${name}; known: ${Object.keys(REAL_SHAPES).join(', ')}`);
    const folder = writeSyntheticLlama(shape, 1);
    const weightsF32Bytes = syntheticParameterCount(shape) * 4;
    try {
      const model = await loadModelFolder(folder);
      let engine: NodeOnnxEngine | undefined;
      try {
        engine = await NodeOnnxEngine.create(model, { threads, reason: 'benchmark' });
        log(`  ${name}: CPU engine process loaded in ${(engine.loadMs / 1000).toFixed(1)} s`);
        for (const n of options.lengths) {
          const fullAttentionBytes = shape.numLayers * shape.numHeads * n * n * 4;
          if (n > shape.maxPositions) {
            rows.push({ shape: name, n, fullAttentionBytes, weightsF32Bytes, note: `beyond the model's ${shape.maxPositions} positions` });
            continue;
          }
          const random = seededRandom(n);
          const tokenIds = Array.from({ length: n }, () => Math.floor(random() * shape.vocabSize));
          const spans = Array.from({ length: 8 }, (_, i) => {
            const start = Math.floor((i * n) / 8);
            return { start, end: Math.min(n, start + 16) };
          });
          const request: AttentionRequest = { tokenIds, spans, topK: options.topK };
          let row: CpuShapeRow = { shape: name, n, fullAttentionBytes, weightsF32Bytes };
          try {
            const t0 = performance.now();
            let last = await engine.run(request);
            const firstRunMs = performance.now() - t0;
            const repeats = n >= 8192 ? 1 : options.repeats;
            const times: number[] = [];
            for (let r = 0; r < repeats; r++) {
              last = await engine.run(request);
              times.push(last.stats.forwardMs + last.stats.summaryMs);
            }
            const t1 = performance.now();
            await engine.knockout({ query: n - 1, spans });
            const knockoutMs = performance.now() - t1;
            const memory = await engine.memoryUsage();
            row = { ...row, forwardMs: median(times), firstRunMs, readbackBytes: last.stats.readbackBytes, peakRssBytes: memory.peakRssBytes, knockoutMs };
            log(`  ${name} n=${n}: CPU engine ${(row.forwardMs! / 1000).toFixed(2)} s (first run ${(firstRunMs / 1000).toFixed(2)} s), peak RSS ${formatBytes(memory.peakRssBytes)}`);
            if (options.llamaCpp) {
              try {
                // llama.cpp as its users run it (weights as stored, F16 KV cache, flash attention): its
                // fastest prefill, the floor. Its exact setting (F32 weights and cache, no flash
                // attention) is slower (its F32 paths are not its fast ones) and is what the unit test
                // checks logits with (test/unit/llamaCpp.test.ts).
                const peer = await llamaCppPrefill(folder, tokenIds, { threads, repeats: n >= 8192 ? 1 : 2, weights: 'source', kvCache: 'F16', flashAttention: 'auto', batchSize: 2048 });
                const agreement = compareLogProbs(last.lastLogits, peer.lastLogProbs);
                row = { ...row, llamaCppMs: peer.prefillMs, llamaCppMaxDiff: agreement.maxAbsDiff, llamaCppSameArgmax: agreement.sameArgmax };
                log(`  ${name} n=${n}: llama.cpp ${(peer.prefillMs / 1000).toFixed(2)} s, max |log p diff| ${row.llamaCppMaxDiff!.toExponential(2)}`);
              } catch (error) {
                row = { ...row, llamaCppNote: `llama.cpp: ${(error as Error).message.split('\n')[0]}` };
              }
            }
            const torchNeed = torchBytes(shape, n, weightsF32Bytes);
            if (torchNeed > os.freemem()) row = { ...row, torchNote: `needs ~${formatBytes(torchNeed)}` };
            else {
              const times = torchCpuTimes(folder, n, threads, options.python);
              row = typeof times === 'string' ? { ...row, torchNote: times } : { ...row, torchMs: times };
              log(`  ${name} n=${n}: PyTorch eager with attentions ${typeof times === 'string' ? times : `${(times / 1000).toFixed(2)} s`}`);
            }
          } catch (error) {
            row = { ...row, note: `failed: ${(error as Error).message.split('\n')[0]}` };
            log(`  ${name} n=${n}: ${(error as Error).message}`);
            if (engine.stopped) {
              engine = await NodeOnnxEngine.create(model, { threads, reason: 'benchmark' });
            }
          }
          rows.push(row);
        }
      } finally {
        engine?.dispose();
      }
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  }
  return rows;
}

function torchCpuTimes(folder: string, n: number, threads: number, python: string): number | string {
  const script = path.join(__dirname, '..', '..', 'bench', 'torch_forward.py');
  const result = childProcess.spawnSync(python, [script, folder, String(n), '--repeats', '1', '--threads', String(threads)], { encoding: 'utf8' });
  if (result.status !== 0) return `torch failed: ${(result.stderr || result.error?.message || '').trim().split('\n').pop()}`;
  return (JSON.parse(result.stdout.trim().split('\n').pop()!) as { ms: Record<string, number> }).ms[String(n)];
}

/** The CPU table: ours, as a multiple of llama.cpp's prefill, PyTorch eager with probabilities. */
export function formatCpuRealShapes(rows: readonly CpuShapeRow[]): string[] {
  const s = (ms: number | undefined) => (ms === undefined ? '-' : (ms / 1000).toFixed(2));
  return table(
    ['model', 'n', 'ours s', '(first run)', 'peak RSS', '(weights f32)', 'read back', '(full P)', 'knockout 8', 'llama.cpp s', 'ours / llama.cpp', 'same next token', 'torch+P s'],
    rows.map((row) => [
      row.shape,
      String(row.n),
      row.forwardMs === undefined ? row.note ?? '-' : s(row.forwardMs),
      s(row.firstRunMs),
      formatBytes(row.peakRssBytes),
      formatBytes(row.weightsF32Bytes),
      formatBytes(row.readbackBytes),
      formatBytes(row.fullAttentionBytes),
      row.knockoutMs === undefined ? '-' : `${row.knockoutMs.toFixed(0)} ms`,
      row.llamaCppMs === undefined ? row.llamaCppNote ?? '-' : s(row.llamaCppMs),
      row.llamaCppMs === undefined || row.forwardMs === undefined ? '-' : `${(row.forwardMs / row.llamaCppMs).toFixed(2)}x`,
      row.llamaCppSameArgmax === undefined ? '-' : row.llamaCppSameArgmax ? 'yes' : 'NO',
      row.torchMs === undefined ? row.torchNote ?? '-' : s(row.torchMs),
    ]),
  );
}

export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '-';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

function table(header: string[], lines: string[][]): string[] {
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i].length)));
  const format = (cells: string[]) => cells.map((cell, i) => (i < 1 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [format(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(format)];
}

/** The speed table (ours next to transformers) and the fidelity table. */
export function formatRealShapes(rows: readonly RealShapeRow[], transformers: Record<string, TransformersReport | string>): string[] {
  const hfRow = (shape: string, n: number) => {
    const report = transformers[shape];
    return typeof report === 'object' ? report.rows.find((row) => row.n === n) : undefined;
  };
  const ms = (value: number | undefined) => (value === undefined ? '-' : value.toFixed(1));
  const ratio = (theirs: number | undefined, ours: number | undefined) => (theirs === undefined || ours === undefined ? '-' : `${(theirs / ours).toFixed(2)}x`);
  const speed = table(
    ['model', 'n', 'ours ms', '(summaries)', 'read back', '(full P)', 'planned peak', 'knockout 8', 'span hidden', 'hf eager+P ms', 'hf eager peak', 'eager/ours', 'hf sdpa ms', 'sdpa/ours', 'hf sdpa bf16 ms'],
    rows.map((row) => {
      const hf = hfRow(row.shape, row.n);
      const ours = row.forwardMs === undefined ? undefined : row.forwardMs + (row.summaryMs ?? 0);
      return [
        row.shape,
        String(row.n),
        row.note && row.forwardMs === undefined ? row.note : ms(row.forwardMs),
        ms(row.summaryMs),
        formatBytes(row.readbackBytes),
        formatBytes(row.fullAttentionBytes),
        formatBytes(row.plannedPeakBytes),
        row.knockoutMs === undefined ? '-' : `${row.knockoutMs.toFixed(1)} ms`,
        row.spanEffectMs === undefined ? '-' : `${row.spanEffectMs.toFixed(1)} ms`,
        hf?.eagerMs === undefined ? hf?.eagerNote ?? '-' : ms(hf.eagerMs),
        formatBytes(hf?.eagerPeakBytes),
        ratio(hf?.eagerMs, ours),
        ms(hf?.sdpaMs),
        ratio(hf?.sdpaMs, ours),
        ms(hf?.sdpaBf16Ms),
      ];
    }),
  );
  const fidelityLines: string[][] = [];
  for (const row of rows) {
    const fidelity = hfRow(row.shape, row.n)?.fidelity;
    if (!fidelity) continue;
    fidelityLines.push([row.shape, String(row.n), fidelity.maxLogitDiff.toExponential(2), fidelity.argmaxSame ? 'yes' : 'NO', String(fidelity.rows), fidelity.maxProbDiff.toExponential(2), `${fidelity.topKSame} / ${fidelity.topKCompared}`]);
  }
  const problems = Object.entries(transformers).filter(([, report]) => typeof report === 'string' || report.error).map(([shape, report]) => `  ${shape}: transformers ${typeof report === 'string' ? report : report.error}`);
  const device = Object.values(transformers).find((report): report is TransformersReport => typeof report === 'object' && !report.error);
  return [
    ...speed,
    '',
    ...(device ? [`transformers ${device.transformers}, torch ${device.torch} on ${device.device}; float32 (TF32 off) unless marked bf16; logits of the last position only (logits_to_keep=1), as our engine computes; median of timed runs after a warm-up.`] : []),
    ...problems,
    ...(fidelityLines.length > 0
      ? ['', 'Fidelity against transformers eager (float32) on the same tokens:', ...table(['model', 'n', 'max |logit diff|', 'argmax same', 'rows', 'max |prob diff|', 'top-k sets equal'], fidelityLines)]
      : []),
  ];
}

/** Default lengths: 2,048 and 8,192 tokens. */
export const REAL_SHAPE_LENGTHS = [2048, 8192];

export function defaultPython(): string {
  return process.env.ATTENTION_LENS_PYTHON ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

export function defaultRealShapeOutDir(): string {
  return path.join(os.tmpdir(), 'attention-lens-real-shapes');
}
