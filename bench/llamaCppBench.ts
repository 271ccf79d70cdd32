/**
 * llama.cpp's prefill alone, on a random-weight model with a real config (test/gpu/syntheticModel.ts
 * REAL_SHAPES), printed as a table: the floor bench/llamaCpp.ts gives the benchmark, measured on
 * its own.
 *
 *   node esbuild.js && node out/bench/llamaCppBench.js --shape smollm2-135m --n 2048 --threads 2
 *
 * Options: --shape NAME (smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b), --layers L (the
 * first L layers only), --n TOKENS, --threads T, --repeats R, --weights F32|source, --configs
 * exact,llama (exact: F32 KV cache and no flash attention, as our engines compute; llama: llama.cpp's
 * own defaults, an F16 KV cache and flash attention on).
 */
import * as fs from 'node:fs';
import { seededRandom } from '../test/gpu/gpuTestSupport';
import { REAL_SHAPES, writeSyntheticLlama } from '../test/gpu/syntheticModel';
import type { GgufWeights } from './gguf';
import { llamaCppPrefill } from './llamaCpp';

const CONFIGS = {
  exact: { kvCache: 'F32', flashAttention: false },
  llama: { kvCache: 'F16', flashAttention: 'auto' },
} as const;

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

async function main(): Promise<void> {
  const shapeName = option('shape', 'smollm2-135m');
  const base = REAL_SHAPES[shapeName];
  if (!base) throw new Error(`--shape ${shapeName} is not one of ${Object.keys(REAL_SHAPES).join(', ')}`);
  const shape = { ...base, numLayers: Number(option('layers', String(base.numLayers))) };
  const n = Number(option('n', '2048'));
  const threads = Number(option('threads', '2'));
  const repeats = Number(option('repeats', '3'));
  const weights = option('weights', 'F32') as GgufWeights;
  const configs = option('configs', 'exact,llama').split(',') as (keyof typeof CONFIGS)[];
  for (const config of configs) if (!(config in CONFIGS)) throw new Error(`--configs: ${config} is not one of ${Object.keys(CONFIGS).join(', ')}`);

  const random = seededRandom(1);
  const tokenIds = Array.from({ length: n }, () => Math.floor(random() * shape.vocabSize));
  const folder = writeSyntheticLlama(shape, 1);
  const rows: string[][] = [];
  let version = '';
  let systemInfo = '';
  try {
    for (const config of configs) {
      const result = await llamaCppPrefill(folder, tokenIds, { threads, repeats, weights, ...CONFIGS[config] });
      version = result.version;
      systemInfo = result.systemInfo;
      rows.push([
        `${shapeName}${shape.numLayers === base.numLayers ? '' : ` (${shape.numLayers} layers)`}`,
        String(n),
        String(threads),
        `${config} (KV ${result.kvCache}, flash ${result.flashAttention}, ${result.gguf.matrixType} weights)`,
        result.warmUpMs.toFixed(0),
        result.prefillMs.toFixed(0),
        result.runsMs.map((ms) => ms.toFixed(0)).join(' '),
        ((n / result.prefillMs) * 1000).toFixed(0),
        (result.ggufBytes / 1e6).toFixed(0),
      ]);
    }
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
  printTable(['model', 'n', 'threads', 'llama.cpp config', 'warm-up ms', 'prefill ms (median)', 'runs ms', 'tokens/s', 'GGUF MB'], rows);
  console.log(`${version}; ${repeats} timed runs after one warm-up, each from an empty KV cache.`);
  console.log(`llama.cpp system info: ${systemInfo}`);
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows) console.log(line(row));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
