/**
 * The WebGPU engine's causal checks (knockout, span effect) and value-weighted summaries against
 * golden values from an independent float64 PyTorch implementation
 * (training/fixtures/make_causal_golden.py) for the three architectures, and against the CPU
 * reference engine; then the properties a user relies on: an empty span changes nothing, value
 * weighting survives weights split into chunks, and a check before any run says what to do.
 * Small fixture models and 40-token sequences keep this tier quick on a software adapter.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AttentionRequest } from '../../engine/attention';
import type { AttentionEngine } from '../../engine/engine';
import { createNodeGpuEngine } from '../../engine/hosts/nodeWebGpu';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import { KERNEL_VARIANTS, fixtureDir, maxAbsDiff, withAdapter } from './gpuTestSupport';

/** The issue's tolerance for the WebGPU engine: KL and deltaLogProb within 1e-3 of the golden values. */
const CAUSAL_TOLERANCE = 1e-3;
/** The forward tests' tolerance for probabilities and span masses against the CPU engine. */
const PROB_TOLERANCE = 1e-4;
// One of each architecture (and a sliding window), and the rotary scalings whose tables depend on the run's length (a knockout rotates its row by the run's length).
const ARCHITECTURES = ['llama-f32', 'qwen2-f16', 'gpt2-f32', 'qwen3-bf16', 'rope-dynamic', 'rope-longrope', 'qwen2-sliding', 'gemma2-f32'] as const;

interface CausalGolden {
  readonly tokenIds: number[];
  readonly knockout: { query: number; layers: [number, number] | null; nextToken: number | null; spans: { start: number; end: number; kl: number; deltaLogProb: number | null }[] }[];
  readonly effect: { span: [number, number]; tokens: { position: number; kl: number; deltaLogProb: number | null }[] }[];
  /** valueWeighted[layer][head][query]: the query + 1 value-weighted weights. */
  readonly valueWeighted: number[][][][];
}

function readCausalGolden(name: string): CausalGolden {
  return JSON.parse(fs.readFileSync(path.join(fixtureDir(name), 'causal-golden.json'), 'utf8')) as CausalGolden;
}

/** |actual - expected|, asserting it is within CAUSAL_TOLERANCE (nulls must match). */
function close(actual: number | null, expected: number | null, what: string): number {
  if (expected === null || actual === null) {
    assert.equal(actual, expected, what);
    return 0;
  }
  const diff = Math.abs(actual - expected);
  assert.ok(diff <= CAUSAL_TOLERANCE, `${what}: ${actual} vs golden ${expected} (diff ${diff.toExponential(2)})`);
  return diff;
}

interface EngineOptions {
  readonly kernelVariant?: (typeof KERNEL_VARIANTS)[number];
  readonly maxBindingBytes?: number;
}

async function withEngine(t: import('node:test').TestContext, name: string, body: (engine: AttentionEngine, golden: CausalGolden) => Promise<void>, options: EngineOptions = {}): Promise<void> {
  await withAdapter(t, async () => {
    const golden = readCausalGolden(name);
    const engine = await createNodeGpuEngine(await loadModelFolder(fixtureDir(name)), { weightFormat: 'f32', ...options });
    try {
      await body(engine, golden);
    } finally {
      engine.dispose();
    }
  });
}

/** Every golden knockout and span effect of `name` on `engine`, within CAUSAL_TOLERANCE. */
async function checkCausalGolden(engine: AttentionEngine, name: string, golden: CausalGolden, label: string): Promise<void> {
  await engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 1 });
  let maxDiff = 0;
  let knockouts = 0;
  let nonZero = 0;
  for (const expected of golden.knockout) {
    const layers = expected.layers ? { start: expected.layers[0], end: expected.layers[1] } : undefined;
    const result = await engine.knockout!({ query: expected.query, spans: expected.spans, layers });
    assert.equal(result.query, expected.query);
    assert.equal(result.nextToken, expected.nextToken);
    assert.equal(result.spans.length, expected.spans.length);
    result.spans.forEach((span, i) => {
      const want = expected.spans[i];
      assert.deepEqual([span.start, span.end], [want.start, want.end]);
      const where = `query ${expected.query} span ${want.start}:${want.end}${expected.layers ? ` layers ${expected.layers.join(':')}` : ''}`;
      maxDiff = Math.max(maxDiff, close(span.kl, want.kl, `${where} KL`), close(span.deltaLogProb, want.deltaLogProb, `${where} deltaLogProb`));
      if (want.kl > 1e-3) nonZero++;
      knockouts++;
    });
  }
  // Knockouts that moved nothing could not tell a broken mask from a working one.
  assert.ok(nonZero >= knockouts / 2, `only ${nonZero} of ${knockouts} golden knockouts have a KL above 1e-3`);
  let positions = 0;
  for (const expected of golden.effect) {
    const result = await engine.spanEffect!({ start: expected.span[0], end: expected.span[1] });
    assert.deepEqual(result.span, { start: expected.span[0], end: expected.span[1] });
    assert.deepEqual(result.tokens.map((token) => token.position), expected.tokens.map((token) => token.position));
    result.tokens.forEach((token, i) => {
      const where = `span ${expected.span.join(':')} position ${token.position}`;
      maxDiff = Math.max(maxDiff, close(token.kl, expected.tokens[i].kl, `${where} KL`), close(token.deltaLogProb, expected.tokens[i].deltaLogProb, `${where} deltaLogProb`));
      positions++;
    });
  }
  console.log(`webgpu ${name} ${label}: ${knockouts} knockouts and ${positions} span-effect positions, max |diff| vs PyTorch ${maxDiff.toExponential(2)}`);
}

for (const name of ARCHITECTURES) {
  for (const kernelVariant of KERNEL_VARIANTS) {
    test(`${name} (${kernelVariant}): WebGPU knockout and span effect match the independent PyTorch values`, async (t) => {
      await withEngine(t, name, (engine, golden) => checkCausalGolden(engine, name, golden, kernelVariant), { kernelVariant });
    });
  }
}

// 2560-byte bindings hold one KV head of the 40 keys: keys and values in one group per head, rows in
// blocks of 5, weights in chunks of 10 rows, two logits rows per span-effect block.
test('gpt2-f32: with 2.5 KiB storage bindings (keys split by head, rows in blocks, weights in row chunks) the causal checks still match', async (t) => {
  await withEngine(t, 'gpt2-f32', (engine, golden) => checkCausalGolden(engine, 'gpt2-f32', golden, 'split'), { maxBindingBytes: 2560 });
});

test('llama-f32: an empty span, or one after the query, changes nothing; hiding all but the query equals the token alone', async (t) => {
  await withEngine(t, 'llama-f32', async (engine, golden) => {
    const q = 30;
    const n = golden.tokenIds.length;
    await engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 1 });
    const result = await engine.knockout!({ query: q, spans: [{ start: 7, end: 7 }, { start: q + 1, end: n }, { start: 0, end: q }, { start: 10, end: 20 }] });
    for (const span of result.spans.slice(0, 2)) {
      assert.equal(span.kl, 0, `span ${span.start}:${span.end} KL`);
      assert.equal(span.deltaLogProb, 0, `span ${span.start}:${span.end} deltaLogProb`);
      assert.deepEqual(span.top, result.top);
    }
    assert.ok(result.spans[3].kl > 1e-4, `hiding 10:20 from query ${q} should move its prediction (KL ${result.spans[3].kl})`);
    // With rotary positions a query that sees only itself computes what the token computes alone.
    const alone = await engine.run({ tokenIds: [golden.tokenIds[q]], spans: [], topK: 1 });
    const logits = Array.from(alone.lastLogits);
    const max = Math.max(...logits);
    const total = logits.reduce((sum, v) => sum + Math.exp(v - max), 0);
    for (const choice of result.spans[2].top) {
      const prob = Math.exp(logits[choice.token] - max) / total;
      assert.ok(Math.abs(prob - choice.prob) <= 1e-5, `p(${choice.token}) ${choice.prob} knocked vs ${prob} alone`);
    }
  });
});

test('the causal checks before any run say to run first; bad requests are refused with the shared messages', async (t) => {
  await withEngine(t, 'gpt2-f32', async (engine, golden) => {
    await assert.rejects(engine.knockout!({ query: 1, spans: [] }), /knockout needs a completed run; call run\(\) first/);
    await assert.rejects(engine.spanEffect!({ start: 0, end: 1 }), /spanEffect needs a completed run; call run\(\) first/);
    await engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 1 });
    const n = golden.tokenIds.length;
    await assert.rejects(engine.knockout!({ query: n, spans: [] }), new RegExp(`query ${n} is out of range`));
    await assert.rejects(engine.knockout!({ query: 3, spans: [{ start: 2, end: 1 }] }), /span 2:1 is not a range/);
    await assert.rejects(engine.knockout!({ query: 3, spans: [], layers: { start: 1, end: 1 } }), /layers 1:1 is not a non-empty range/);
    await assert.rejects(engine.spanEffect!({ start: 4, end: 4 }), /span 4:4 is not a non-empty range/);
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(engine.knockout!({ query: 3, spans: [{ start: 0, end: 2 }] }, aborted.signal), { name: 'AbortError' });
    await assert.rejects(engine.spanEffect!({ start: 0, end: 2 }, aborted.signal), { name: 'AbortError' });
    // Refused and cancelled requests leave the run usable.
    const result = await engine.knockout!({ query: 3, spans: [{ start: 0, end: 2 }] });
    assert.equal(result.spans.length, 1);
    assert.equal((await engine.spanEffect!({ start: 0, end: 2 })).tokens.length, n - 2);
  });
});

/** Value-weighted summaries of the WebGPU engine against the CPU reference and the golden rows. */
async function compareValueWeighted(engine: AttentionEngine, name: string, golden: CausalGolden, layers?: number[]): Promise<void> {
  const model = await loadModelFolder(fixtureDir(name));
  const n = golden.tokenIds.length;
  const H = model.spec.numHeads;
  const topK = 3;
  const spans = [{ start: 10, end: 20 }, { start: 0, end: 3 }];
  const request: AttentionRequest = { tokenIds: golden.tokenIds, spans, topK, weighting: 'valueWeighted', layers };
  const gpu = (await engine.run(request)).summary;
  const cpu = (await new ReferenceEngine(model, 'oracle').run(request)).summary;
  const plain = (await engine.run({ ...request, weighting: 'attention' })).summary;
  const spanDiff = Math.max(maxAbsDiff(gpu.spanMass, cpu.spanMass), maxAbsDiff(gpu.spanMassMean, cpu.spanMassMean), maxAbsDiff(gpu.spanMassMax, cpu.spanMassMax));
  const topWeightDiff = maxAbsDiff(gpu.topWeights, cpu.topWeights);
  let goldenDiff = 0;
  let topRows = 0;
  gpu.layers.forEach((layer, li) => {
    for (let head = 0; head < H; head++) {
      for (let query = 0; query < n; query++) {
        const row = golden.valueWeighted[layer][head][query];
        const at = (li * H + head) * n + query;
        goldenDiff = Math.max(goldenDiff, Math.abs(gpu.spanMass[at * spans.length] - row.slice(10, Math.min(20, query + 1)).reduce((a, b) => a + b, 0)));
        const sorted = [...row].sort((a, b) => b - a);
        if (sorted.slice(0, topK + 1).some((value, i) => i > 0 && sorted[i - 1] - value < 1e-6)) continue;
        assert.deepEqual([...gpu.topIndices.subarray(at * topK, (at + 1) * topK)], [...cpu.topIndices.subarray(at * topK, (at + 1) * topK)], `top-${topK} of layer ${layer} head ${head} query ${query}`);
        topRows++;
      }
    }
  });
  // The weighting must be visible: value-weighted span masses differ from the plain ones.
  const moved = maxAbsDiff(gpu.spanMass, plain.spanMass);
  console.log(`webgpu ${name} value-weighted (layers ${gpu.layers.join(',')}): vs CPU max |span mass diff| ${spanDiff.toExponential(2)}, top weights ${topWeightDiff.toExponential(2)}; vs PyTorch ${goldenDiff.toExponential(2)}; top-${topK} identical on ${topRows} rows; differs from plain attention by up to ${moved.toFixed(3)}`);
  assert.ok(spanDiff <= PROB_TOLERANCE, `span masses vs CPU ${spanDiff}`);
  assert.ok(topWeightDiff <= PROB_TOLERANCE, `top weights vs CPU ${topWeightDiff}`);
  assert.ok(goldenDiff <= PROB_TOLERANCE, `span masses vs PyTorch ${goldenDiff}`);
  assert.ok(topRows > 0.9 * gpu.layers.length * H * n, `too many tied rows (${topRows} compared)`);
  assert.ok(moved > 1e-3, 'value-weighted span masses should differ from the attention ones');
}

for (const name of ARCHITECTURES) {
  test(`${name}: WebGPU value-weighted summaries match the CPU engine and the PyTorch rows`, async (t) => {
    await withEngine(t, name, (engine, golden) => compareValueWeighted(engine, name, golden));
  });
}

test('qwen2-f16: value weighting with W_O split into row chunks and a layer subset gives the same summaries', async (t) => {
  // 2560-byte bindings split every 64-wide f16 matrix into chunks of 20 rows, keys and values into one
  // group per KV head (so the value norms run per group), and rows and probabilities into blocks.
  await withEngine(t, 'qwen2-f16', (engine, golden) => compareValueWeighted(engine, 'qwen2-f16', golden, [1]), { maxBindingBytes: 2560 });
});
