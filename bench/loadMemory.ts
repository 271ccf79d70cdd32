/**
 * Peak memory of loading a model with the Node loader, in a fresh process so that nothing else in
 * the process counts: the loader reads each tensor with its own positional read, so the peak should
 * be the weights file's size plus Node's own ~50 MB, never a second copy.
 *
 *   node out/bench/loadMemory.js [--shape qwen2.5-coder-1.5b] [--folder DIR] [--keep]
 *
 * Without --folder it writes a random model of the named real shape (test/gpu/syntheticModel.ts;
 * 3.1 GB of BF16 for Qwen2.5-Coder-1.5B, about a minute) into a temporary folder and deletes it
 * after, unless --keep is given (then its path is printed, for --folder in later runs).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelFolder } from '../engine/hosts/nodeModelFolder';
import type { HostTensor, LoadedModel } from '../engine/model/modelTypes';
import { elementCount } from '../engine/model/tensorData';
import { REAL_SHAPES, writeSyntheticLlama } from '../test/gpu/syntheticModel';

interface LoadReport {
  readonly loadMs: number;
  /** RSS of the fresh process before it loads anything, bytes. */
  readonly startRssBytes: number;
  /** Peak RSS of the process over the whole load, bytes (resourceUsage().maxRSS). */
  readonly maxRssBytes: number;
  /** Bytes of the loaded tensors (each tensor object once). */
  readonly tensorBytes: number;
  readonly parameters: number;
}

function distinctTensors(model: LoadedModel): HostTensor[] {
  const w = model.weights;
  const found = new Set<HostTensor | undefined>([w.tokenEmbedding, w.positionEmbedding, w.lmHead, w.finalNorm.weight, w.finalNorm.bias]);
  for (const layer of w.layers) {
    for (const part of [layer.attnNorm, layer.qNorm, layer.kNorm, layer.mlpNorm, layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]) {
      found.add(part?.weight);
      found.add(part?.bias);
    }
  }
  found.delete(undefined);
  return [...found] as HostTensor[];
}

/** The child: loads `folder` and prints its report as one JSON line. */
async function loadAndReport(folder: string): Promise<void> {
  const startRssBytes = process.memoryUsage().rss;
  const t0 = performance.now();
  const model = await loadModelFolder(folder);
  const loadMs = performance.now() - t0;
  const tensors = distinctTensors(model);
  const report: LoadReport = {
    loadMs,
    startRssBytes,
    // maxRSS is in kilobytes.
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    tensorBytes: tensors.reduce((sum, t) => sum + t.bytes.byteLength, 0),
    parameters: tensors.reduce((sum, t) => sum + elementCount(t.shape), 0),
  };
  console.log(JSON.stringify(report));
}

function weightFileBytes(folder: string): number {
  return fs
    .readdirSync(folder)
    .filter((name) => name.endsWith('.safetensors'))
    .reduce((sum, name) => sum + fs.statSync(path.join(folder, name)).size, 0);
}

function main(): void {
  const args = process.argv.slice(2);
  const option = (name: string): string | undefined => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : undefined;
  };
  const child = option('--load');
  if (child) {
    loadAndReport(child).catch((error: unknown) => {
      console.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    });
    return;
  }
  const shapeName = option('--shape') ?? 'qwen2.5-coder-1.5b';
  const given = option('--folder');
  const shape = REAL_SHAPES[shapeName];
  if (!given && !shape) throw new Error(`--shape: unknown shape ${shapeName}; known: ${Object.keys(REAL_SHAPES).join(', ')}`);
  const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;
  let folder = given;
  if (!folder) {
    const t0 = performance.now();
    folder = writeSyntheticLlama(shape, 1);
    console.log(`wrote a random ${shapeName} model to ${folder} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  try {
    const fileBytes = weightFileBytes(folder);
    const run = spawnSync(process.execPath, [__filename, '--load', folder], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (run.status !== 0) throw new Error(`loading ${folder} failed: ${run.stderr.trim() || `exit ${run.status}`}`);
    const report = JSON.parse(run.stdout.trim().split('\n').pop()!) as LoadReport;
    const float32Bytes = report.parameters * 4;
    console.log(`weights files          ${gb(fileBytes)}`);
    console.log(`tensors loaded         ${gb(report.tensorBytes)} (${(report.parameters / 1e9).toFixed(3)} B parameters; ${gb(float32Bytes)} as float32)`);
    console.log(`load time              ${(report.loadMs / 1000).toFixed(1)} s`);
    console.log(`RSS before the load    ${gb(report.startRssBytes)}`);
    console.log(`peak RSS               ${gb(report.maxRssBytes)} = ${(report.maxRssBytes / fileBytes).toFixed(3)} x the files, ${(report.maxRssBytes / float32Bytes).toFixed(3)} x float32`);
  } finally {
    if (!given && !args.includes('--keep')) fs.rmSync(folder, { recursive: true, force: true });
  }
}

main();
