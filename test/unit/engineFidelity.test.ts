/**
 * The CPU engines (the TypeScript reference and ONNX Runtime, the latter through its worker thread
 * as the editor and CLI use it) against golden outputs of an independent float64 PyTorch
 * implementation (training/fixtures/make_fixtures.py), for every fixture model: logits, every
 * attention probability, the top-k positions and span masses a user sees.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { AttentionEngine } from '../../engine/engine';
import { NodeOnnxEngine } from '../../engine/hosts/nodeOnnx';
import type { LoadedModel } from '../../engine/model/modelTypes';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import * as path from 'node:path';
import { FIXTURE_MODELS, SHORT_GOLDEN_MODELS, fixtureDir, readGolden, repoRoot, type Golden } from './fixtureModels';

const LOGIT_TOLERANCE = 1e-3;
const PROB_TOLERANCE = 1e-4;
const TOP_K = 4;

/** Golden top-k of one causal row, ties (within 1e-6) reported so the comparison can skip them. */
function goldenTopK(row: number[], k: number): { indices: number[]; tied: boolean } {
  const order = row.map((_, i) => i).sort((a, b) => row[b] - row[a] || a - b);
  const indices = order.slice(0, k);
  while (indices.length < k) indices.push(-1);
  const kept = order.slice(0, Math.min(k + 1, order.length)).map((i) => row[i]);
  const tied = kept.some((value, i) => i > 0 && Math.abs(kept[i - 1] - value) < 1e-6);
  return { indices, tied };
}

/** The engines under test, by the backend kind they report. */
const ENGINES: Record<'reference' | 'onnxruntime', (model: LoadedModel) => Promise<AttentionEngine>> = {
  reference: async (model) => new ReferenceEngine(model, 'test'),
  onnxruntime: (model) => NodeOnnxEngine.create(model, { threads: 2, reason: 'test' }),
};

async function runFixture(kind: keyof typeof ENGINES, name: string): Promise<{ engine: AttentionEngine; golden: Golden; result: Awaited<ReturnType<AttentionEngine['run']>> }> {
  const golden = readGolden(name);
  const engine = await ENGINES[kind](await loadModelFolder(fixtureDir(name)));
  const spans = [{ start: 0, end: 3 }, { start: 10, end: 20 }, { start: 25, end: 26 }];
  const result = await engine.run({ tokenIds: golden.tokenIds, spans, topK: TOP_K });
  return { engine, golden, result };
}

for (const kind of Object.keys(ENGINES) as (keyof typeof ENGINES)[]) for (const name of FIXTURE_MODELS) {
  test(`${name}: the ${kind} engine matches the PyTorch golden logits and attention`, async () => {
    const { engine, golden, result } = await runFixture(kind, name);
    const { spec } = engine;
    const n = golden.tokenIds.length;
    const H = spec.numHeads;
    assert.match(golden.producedBy, /^pytorch .* building blocks/);
    assert.equal(result.lastLogits.length, spec.vocabSize);

    let maxLogitDiff = 0;
    result.lastLogits.forEach((value, i) => (maxLogitDiff = Math.max(maxLogitDiff, Math.abs(value - golden.lastLogits[i]))));
    const argmax = (values: ArrayLike<number>) => Array.prototype.indexOf.call(values, Math.max(...Array.from(values)));
    assert.equal(argmax(result.lastLogits), argmax(golden.lastLogits), 'the most likely next token differs');

    let maxProbDiff = 0;
    let topKRows = 0;
    const { summary } = result;
    assert.deepEqual(summary.layers, Array.from({ length: spec.numLayers }, (_, i) => i));
    for (let layer = 0; layer < spec.numLayers; layer++) {
      for (let head = 0; head < H; head++) {
        for (let query = 0; query < n; query++) {
          const expected = golden.attention[layer][head][query];
          const row = await engine.attentionRow(layer, head, query);
          assert.equal(row.length, query + 1);
          row.forEach((value, i) => (maxProbDiff = Math.max(maxProbDiff, Math.abs(value - expected[i]))));

          const offset = ((layer * H + head) * n + query) * TOP_K;
          const top = goldenTopK(expected, TOP_K);
          if (!top.tied) {
            assert.deepEqual([...summary.topIndices.subarray(offset, offset + TOP_K)], top.indices, `top-${TOP_K} of layer ${layer} head ${head} query ${query}`);
            topKRows++;
          }
          // Span [10, 20) as the user sees it: the mass over the visible part.
          const spanOffset = ((layer * H + head) * n + query) * summary.numSpans + 1;
          const expectedMass = expected.slice(10, Math.min(20, query + 1)).reduce((a, b) => a + b, 0);
          assert.ok(Math.abs(summary.spanMass[spanOffset] - expectedMass) <= 1e-4, `span mass of layer ${layer} head ${head} query ${query}`);
        }
      }
    }
    engine.dispose();
    console.log(`${kind} ${name}: max |logit diff| ${maxLogitDiff.toExponential(2)}, max |prob diff| ${maxProbDiff.toExponential(2)}, top-${TOP_K} identical on ${topKRows} rows`);
    assert.ok(maxLogitDiff <= LOGIT_TOLERANCE, `max logit difference ${maxLogitDiff}`);
    assert.ok(maxProbDiff <= PROB_TOLERANCE, `max probability difference ${maxProbDiff}`);
    assert.ok(topKRows > 0.9 * spec.numLayers * H * n, 'too many tied rows to compare top-k');
    assert.equal(result.backend.kind, kind);
    if (kind === 'reference') assert.equal(result.stats.readbackBytes, 0);
    else {
      // What crosses from ONNX Runtime into JavaScript grows with n, never with n^2: the logits, per
      // layer the top-k (index + weight) and span masses per head, the head mean and max, and the
      // state the exact rows and causal checks start from: keys and values per layer and the final
      // hidden states (queries are recomputed for the one row an exact row needs).
      const L = spec.numLayers;
      const S = summary.numSpans;
      const expected = 4 * (spec.vocabSize + L * H * n * (2 * TOP_K + S) + 2 * L * n * S + L * 2 * spec.numKvHeads * n * spec.headDim + n * spec.hiddenSize);
      assert.equal(result.stats.readbackBytes, expected);
    }
  });
}

/** The largest |difference| of the last logits and of every attention row from a golden record. */
async function goldenDiffs(engine: AttentionEngine, result: { lastLogits: Float32Array }, golden: Golden): Promise<{ logits: number; probs: number }> {
  let logits = 0;
  result.lastLogits.forEach((value, i) => (logits = Math.max(logits, Math.abs(value - golden.lastLogits[i]))));
  let probs = 0;
  for (let layer = 0; layer < engine.spec.numLayers; layer++) {
    for (let head = 0; head < engine.spec.numHeads; head++) {
      for (let query = 0; query < golden.tokenIds.length; query++) {
        const row = await engine.attentionRow(layer, head, query);
        row.forEach((value, i) => (probs = Math.max(probs, Math.abs(value - golden.attention[layer][head][query][i]))));
      }
    }
  }
  return { logits, probs };
}

for (const kind of Object.keys(ENGINES) as (keyof typeof ENGINES)[]) for (const name of SHORT_GOLDEN_MODELS) {
  test(`${name}: the ${kind} engine rotates by the run's own length (a short run, then the full one reusing none of its keys)`, async () => {
    const short = readGolden(name, 'golden-short.json');
    const full = readGolden(name);
    const engine = await ENGINES[kind](await loadModelFolder(fixtureDir(name)));
    try {
      const cacheKey = 'the same document, grown';
      const first = await engine.run({ tokenIds: short.tokenIds, spans: [], topK: 2, cacheKey });
      const shortDiffs = await goldenDiffs(engine, first, short);
      const second = await engine.run({ tokenIds: full.tokenIds, spans: [], topK: 2, cacheKey });
      assert.equal(second.stats.reusedTokens ?? 0, 0, 'keys rotated for the short run must not be reused by the long one');
      const fullDiffs = await goldenDiffs(engine, second, full);
      console.log(`${kind} ${name}: ${short.tokenIds.length} tokens: |logit diff| ${shortDiffs.logits.toExponential(2)}, |prob diff| ${shortDiffs.probs.toExponential(2)}; ${full.tokenIds.length} tokens after it: ${fullDiffs.logits.toExponential(2)}, ${fullDiffs.probs.toExponential(2)}`);
      for (const diffs of [shortDiffs, fullDiffs]) {
        assert.ok(diffs.logits <= LOGIT_TOLERANCE, `max logit difference ${diffs.logits}`);
        assert.ok(diffs.probs <= PROB_TOLERANCE, `max probability difference ${diffs.probs}`);
      }
    } finally {
      engine.dispose();
    }
  });
}

for (const kind of Object.keys(ENGINES) as (keyof typeof ENGINES)[]) {
  test(`${kind}: a run limited to some layers still serves attentionRow for the others`, async () => {
    const golden = readGolden('llama-f32');
    const engine = await ENGINES[kind](await loadModelFolder(fixtureDir('llama-f32')));
    const result = await engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 1, layers: [1] });
    assert.deepEqual(result.summary.layers, [1]);
    assert.equal(result.summary.topIndices.length, 4 * golden.tokenIds.length);
    const row = await engine.attentionRow(0, 2, 5);
    row.forEach((value, i) => assert.ok(Math.abs(value - golden.attention[0][2][5][i]) <= PROB_TOLERANCE));
  });

  test(`${kind}: a prefix of the sequence gives the golden attention of that prefix (causality)`, async () => {
    const golden = readGolden('qwen2-f16');
    const engine = await ENGINES[kind](await loadModelFolder(fixtureDir('qwen2-f16')));
    await engine.run({ tokenIds: golden.tokenIds.slice(0, 12), spans: [], topK: 2 });
    const row = await engine.attentionRow(1, 3, 11);
    row.forEach((value, i) => assert.ok(Math.abs(value - golden.attention[1][3][11][i]) <= PROB_TOLERANCE));
  });

  test(`${kind}: bad requests are refused with messages that say what is wrong`, async () => {
    const engine = await ENGINES[kind](await loadModelFolder(fixtureDir('gpt2-f32')));
    const base = { spans: [], topK: 4 };
    await assert.rejects(engine.run({ ...base, tokenIds: [1, 300] }), /token id 300 at position 1 is outside the model's vocabulary \(0\.\.299\)/);
    await assert.rejects(engine.run({ ...base, tokenIds: new Array(65).fill(1) }), /the sequence has 65 tokens but the model accepts at most 64/);
    await assert.rejects(engine.run({ ...base, tokenIds: [] }), /the token sequence is empty/);
    await assert.rejects(engine.run({ ...base, tokenIds: [1, 2], topK: 0 }), /topK must be an integer in 1\.\.64/);
    await assert.rejects(engine.run({ ...base, tokenIds: [1, 2], spans: [{ start: 1, end: 3 }] }), /span \[1, 3\) is not a non-empty range of the 2 token positions/);
    await assert.rejects(engine.run({ ...base, tokenIds: [1, 2], layers: [2] }), /layer 2 is out of range \(0\.\.1\)/);
    await assert.rejects(engine.attentionRow(0, 0, 0), /needs a completed run/);
    await engine.run({ ...base, tokenIds: [1, 2] });
    await assert.rejects(engine.attentionRow(0, 0, 2), /query 2 is out of range \(0\.\.1\)/);
  });

  test(`${kind}: an aborted run rejects with an AbortError`, async () => {
    const engine = await ENGINES[kind](await loadModelFolder(fixtureDir('llama-f32')));
    const controller = new AbortController();
    const running = engine.run({ tokenIds: readGolden('llama-f32').tokenIds, spans: [], topK: 1 }, controller.signal);
    controller.abort();
    await assert.rejects(running, (error: Error) => error.name === 'AbortError');
  });
}

test('the ONNX Runtime engine leaves the event loop free while it computes', async () => {
  const model = await loadModelFolder(path.join(repoRoot, 'default-model'));
  const engine = await NodeOnnxEngine.create(model, { threads: 1, reason: 'test' });
  try {
    const tokenIds = Array.from({ length: 1024 }, (_, i) => (i * 7919) % model.spec.vocabSize);
    let timerFiredFirst: boolean | undefined;
    const timer = new Promise<void>((resolve) => setTimeout(() => { timerFiredFirst ??= true; resolve(); }, 1));
    const run = engine.run({ tokenIds, spans: [{ start: 0, end: 10 }], topK: 8 }).then((result) => { timerFiredFirst ??= false; return result; });
    const [result] = await Promise.all([run, timer]);
    assert.equal(timerFiredFirst, true, 'a 1 ms timer waited for the whole forward pass: the run blocked the event loop');
    assert.equal(result.summary.numTokens, 1024);
  } finally {
    engine.dispose();
  }
});

test('the ONNX Runtime engine handles fewer tokens than topK and no spans', async () => {
  const golden = readGolden('gpt2-f16');
  const engine = await ENGINES.onnxruntime(await loadModelFolder(fixtureDir('gpt2-f16')));
  try {
    const { summary } = await engine.run({ tokenIds: golden.tokenIds.slice(0, 3), spans: [], topK: 8 });
    assert.equal(summary.numSpans, 0);
    assert.equal(summary.spanMass.length, 0);
    // Query 1 sees positions 0 and 1 only: the rest of its top-8 is empty (-1, weight 0).
    const row = [...summary.topIndices.subarray(8, 16)];
    assert.deepEqual(row.slice(2), [-1, -1, -1, -1, -1, -1]);
    assert.deepEqual([...row.slice(0, 2)].sort(), [0, 1]);
    assert.ok(Math.abs(summary.topWeights[8] + summary.topWeights[9] - 1) < 1e-5);
  } finally {
    engine.dispose();
  }
});

test('a disposed ONNX Runtime engine says so', async () => {
  const engine = await ENGINES.onnxruntime(await loadModelFolder(fixtureDir('llama-f32')));
  engine.dispose();
  await assert.rejects(engine.run({ tokenIds: [1, 2], spans: [], topK: 1 }), /disposed/);
});
