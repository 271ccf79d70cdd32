/**
 * Shared set-up of the GPU tests: the Node WebGPU adapter (SwiftShader on machines without a GPU),
 * the fixture models, and difference helpers. Without an adapter a test skips with one line, except
 * on CI (CI=true), where a missing adapter is a failure.
 */
import type { TestContext } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NoWebGpuAdapterError, requestNodeDevice } from '../../engine/hosts/nodeWebGpu';

/** The repository root: the bundled tests run from out/test/gpu. */
export const repoRoot = path.resolve(__dirname, '..', '..', '..');

// One list of fixtures for both tiers (test/unit/fixtureModels.ts).
export { FIXTURE_MODELS, SHORT_GOLDEN_MODELS } from '../unit/fixtureModels';
export const KERNEL_VARIANTS = ['register', 'tiled'] as const;

export function fixtureDir(name: string): string {
  return path.join(repoRoot, 'test', 'fixtures', 'models', name);
}

export interface Golden {
  readonly tokenIds: number[];
  readonly lastLogits: number[];
  /** attention[layer][head][query]: the query + 1 causal probabilities. */
  readonly attention: number[][][][];
}

export function readGolden(name: string, file: 'golden.json' | 'golden-short.json' = 'golden.json'): Golden {
  return JSON.parse(fs.readFileSync(path.join(fixtureDir(name), file), 'utf8')) as Golden;
}

/**
 * Runs `body` when a WebGPU adapter exists. Without one: fails on CI, otherwise skips the test
 * with one line saying why.
 */
export async function withAdapter(t: TestContext, body: () => Promise<void>): Promise<void> {
  const reason = await missingAdapterReason();
  if (reason) {
    if (process.env.CI === 'true') throw new Error(`CI=true but the GPU tests found no WebGPU adapter: ${reason}`);
    t.skip(`no WebGPU adapter: ${reason}`);
    return;
  }
  await body();
}

let probed: Promise<string | undefined> | undefined;

function missingAdapterReason(): Promise<string | undefined> {
  probed ??= requestNodeDevice().then(
    ({ device }) => {
      device.destroy();
      return undefined;
    },
    (error: unknown) => {
      if (error instanceof NoWebGpuAdapterError) return error.message.replace(/^No WebGPU adapter: /, '');
      throw error;
    },
  );
  return probed;
}

/** Largest |a[i] - b[i]|; throws when the lengths differ. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} differs from ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const diff = Math.abs(a[i] - b[i]);
    if (!(diff <= max)) max = Number.isNaN(diff) ? Infinity : diff;
  }
  return max;
}

/** A deterministic pseudo-random generator (mulberry32) so failures reproduce. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` values uniform in [-scale, scale). */
export function randomArray(random: () => number, count: number, scale = 1): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (random() * 2 - 1) * scale;
  return out;
}
