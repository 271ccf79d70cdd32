/**
 * The CPU reference engine against golden outputs of an independent float64 PyTorch implementation
 * (training/fixtures/make_fixtures.py), for every fixture model: logits, every attention
 * probability, the top-k positions and span masses a user sees.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { FIXTURE_MODELS, fixtureDir, readGolden, type Golden } from './fixtureModels';

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

async function runFixture(name: string): Promise<{ engine: ReferenceEngine; golden: Golden; result: Awaited<ReturnType<ReferenceEngine['run']>> }> {
  const golden = readGolden(name);
  const engine = new ReferenceEngine(await loadModelFolder(fixtureDir(name)), 'test');
  const spans = [{ start: 0, end: 3 }, { start: 10, end: 20 }, { start: 25, end: 26 }];
  const result = await engine.run({ tokenIds: golden.tokenIds, spans, topK: TOP_K });
  return { engine, golden, result };
}

for (const name of FIXTURE_MODELS) {
  test(`${name}: CPU engine matches the PyTorch golden logits and attention`, async () => {
    const { engine, golden, result } = await runFixture(name);
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
    console.log(`${name}: max |logit diff| ${maxLogitDiff.toExponential(2)}, max |prob diff| ${maxProbDiff.toExponential(2)}, top-${TOP_K} identical on ${topKRows} rows`);
    assert.ok(maxLogitDiff <= LOGIT_TOLERANCE, `max logit difference ${maxLogitDiff}`);
    assert.ok(maxProbDiff <= PROB_TOLERANCE, `max probability difference ${maxProbDiff}`);
    assert.ok(topKRows > 0.9 * spec.numLayers * H * n, 'too many tied rows to compare top-k');
    assert.equal(result.backend.kind, 'cpu');
    assert.equal(result.stats.readbackBytes, 0);
  });
}

test('a run limited to some layers still serves attentionRow for the others', async () => {
  const golden = readGolden('llama-f32');
  const engine = new ReferenceEngine(await loadModelFolder(fixtureDir('llama-f32')), 'test');
  const result = await engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 1, layers: [1] });
  assert.deepEqual(result.summary.layers, [1]);
  assert.equal(result.summary.topIndices.length, 4 * golden.tokenIds.length);
  const row = await engine.attentionRow(0, 2, 5);
  row.forEach((value, i) => assert.ok(Math.abs(value - golden.attention[0][2][5][i]) <= PROB_TOLERANCE));
});

test('a prefix of the sequence gives the golden attention of that prefix (causality)', async () => {
  const golden = readGolden('qwen2-f16');
  const engine = new ReferenceEngine(await loadModelFolder(fixtureDir('qwen2-f16')), 'test');
  await engine.run({ tokenIds: golden.tokenIds.slice(0, 12), spans: [], topK: 2 });
  const row = await engine.attentionRow(1, 3, 11);
  row.forEach((value, i) => assert.ok(Math.abs(value - golden.attention[1][3][11][i]) <= PROB_TOLERANCE));
});

test('bad requests are refused with messages that say what is wrong', async () => {
  const engine = new ReferenceEngine(await loadModelFolder(fixtureDir('gpt2-f32')), 'test');
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

test('an aborted run rejects with an AbortError', async () => {
  const engine = new ReferenceEngine(await loadModelFolder(fixtureDir('llama-f32')), 'test');
  const controller = new AbortController();
  const running = engine.run({ tokenIds: readGolden('llama-f32').tokenIds, spans: [], topK: 1 }, controller.signal);
  controller.abort();
  await assert.rejects(running, (error: Error) => error.name === 'AbortError');
});
