/**
 * Incremental re-analysis on the ONNX Runtime engine: after an edit, only the positions from the
 * first changed token are recomputed against the cached keys and values, and the result must equal
 * a full analysis of the edited tokens (every fixture architecture and dtype).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { AttentionRequest, ForwardResult } from '../../engine/attention';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { OnnxRuntimeEngine } from '../../engine/onnx/onnxEngine';
import { FIXTURE_MODELS, fixtureDir, readGolden } from './fixtureModels';

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Top-k indices equal wherever the weights are not tied. */
function sameTopK(a: ForwardResult, b: ForwardResult): number {
  const k = a.summary.topK;
  let compared = 0;
  for (let row = 0; row < a.summary.topIndices.length / k; row++) {
    const weights = a.summary.topWeights.subarray(row * k, row * k + k);
    const tied = Array.from(weights).some((w, i) => i > 0 && Math.abs(weights[i - 1] - w) < 1e-5);
    if (tied) continue;
    assert.deepEqual([...a.summary.topIndices.subarray(row * k, row * k + k)], [...b.summary.topIndices.subarray(row * k, row * k + k)], `top-k of row ${row}`);
    compared++;
  }
  return compared;
}

for (const name of FIXTURE_MODELS) {
  test(`${name}: re-analysis after an edit near the end equals a full analysis and recomputes only the tail`, async () => {
    const model = await loadModelFolder(fixtureDir(name));
    const ids = readGolden(name).tokenIds;
    const engine = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test' });
    const fresh = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test' });
    try {
      const spans = [{ start: 0, end: 3 }, { start: 10, end: 20 }, { start: 30, end: 34 }];
      const before: AttentionRequest = { tokenIds: ids, spans, topK: 4, cacheKey: 'doc' };
      await engine.run(before);
      // An edit at position 32: a token replaced and one inserted; the span after it moves.
      const edited = [...ids.slice(0, 32), (ids[32] + 1) % model.spec.vocabSize, 7, ...ids.slice(33, ids.length - 1)];
      const editedSpans = [{ start: 0, end: 3 }, { start: 10, end: 20 }, { start: 30, end: 35 }, { start: 36, end: 38 }];
      const incremental = await engine.run({ tokenIds: edited, spans: editedSpans, topK: 4, cacheKey: 'doc' });
      const full = await fresh.run({ tokenIds: edited, spans: editedSpans, topK: 4 });
      assert.equal(incremental.stats.reusedTokens, 32, 'the 32 unchanged tokens come from the cache');
      const logits = maxDiff(incremental.lastLogits, full.lastLogits);
      const mass = maxDiff(incremental.summary.spanMass, full.summary.spanMass);
      const mean = maxDiff(incremental.summary.spanMassMean, full.summary.spanMassMean);
      const top = maxDiff(incremental.summary.topWeights, full.summary.topWeights);
      const rows = sameTopK(incremental, full);
      console.log(`${name}: incremental vs full: logits ${logits.toExponential(2)}, span mass ${mass.toExponential(2)}, top weights ${top.toExponential(2)}, top-k identical on ${rows} rows`);
      assert.ok(logits <= 1e-3 && mass <= 1e-4 && mean <= 1e-4 && top <= 1e-4, `${logits} ${mass} ${mean} ${top}`);
      // Exact rows and causal checks work on the combined state.
      const row = await engine.attentionRow(1, 1, edited.length - 1);
      const fullRow = await fresh.attentionRow(1, 1, edited.length - 1);
      assert.ok(maxDiff(row, fullRow) <= 1e-4);

      // The same tokens and spans again: nothing is recomputed.
      const again = await engine.run({ tokenIds: edited, spans: editedSpans, topK: 4, cacheKey: 'doc' });
      assert.equal(again.stats.reusedTokens, edited.length);
      assert.equal(again.stats.forwardMs, 0);
      assert.ok(maxDiff(again.summary.spanMass, full.summary.spanMass) <= 1e-4);

      // A span that starts inside the unchanged prefix with another shape cannot reuse the cache.
      const moved = await engine.run({ tokenIds: edited, spans: [{ start: 1, end: 3 }], topK: 4, cacheKey: 'doc' });
      assert.equal(moved.stats.reusedTokens, undefined, 'a changed span in the prefix forces a full pass');
      engine.releaseCache('doc');
      const released = await engine.run({ tokenIds: edited, spans: [{ start: 1, end: 3 }], topK: 4, cacheKey: 'doc' });
      assert.equal(released.stats.reusedTokens, undefined);
    } finally {
      engine.dispose();
      fresh.dispose();
    }
  });
}

test('the run cache stays within its byte budget, least recently used out first', async () => {
  const model = await loadModelFolder(fixtureDir('llama-f32'));
  const ids = readGolden('llama-f32').tokenIds;
  const { spec } = model;
  const n = ids.length;
  // One cached run: keys and values of every layer, the final hidden states, the summary.
  const entryBytes = 4 * (spec.numLayers * 2 * spec.numKvHeads * n * spec.headDim + n * spec.hiddenSize) + 8 * spec.numLayers * spec.numHeads * n * 2;
  const engine = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test', cacheBytes: Math.floor(2.5 * entryBytes) });
  try {
    for (const key of ['a', 'b', 'c']) await engine.run({ tokenIds: ids, spans: [], topK: 2, cacheKey: key });
    // Two runs fit: 'a' went out when 'c' came in.
    assert.equal((await engine.run({ tokenIds: ids, spans: [], topK: 2, cacheKey: 'b' })).stats.reusedTokens, n);
    assert.equal((await engine.run({ tokenIds: ids, spans: [], topK: 2, cacheKey: 'c' })).stats.reusedTokens, n);
    assert.equal((await engine.run({ tokenIds: ids, spans: [], topK: 2, cacheKey: 'a' })).stats.reusedTokens, undefined);
  } finally {
    engine.dispose();
  }
  const none = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test', cacheBytes: 0 });
  try {
    await none.run({ tokenIds: ids, spans: [], topK: 2, cacheKey: 'a' });
    assert.equal((await none.run({ tokenIds: ids, spans: [], topK: 2, cacheKey: 'a' })).stats.reusedTokens, undefined, 'a zero budget caches nothing');
  } finally {
    none.dispose();
  }
});

test('a chain of edits (in place, growing past the stored rows, shrinking) stays equal to full runs; knockouts on the reused state agree', async () => {
  const name = FIXTURE_MODELS[0];
  const model = await loadModelFolder(fixtureDir(name));
  const ids = readGolden(name).tokenIds;
  const engine = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test' });
  const fresh = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test' });
  const V = model.spec.vocabSize;
  try {
    const spans = [{ start: 0, end: 3 }, { start: 10, end: 20 }];
    const base = ids.slice(0, 40);
    const versions: Array<{ tokens: number[]; reused: number }> = [
      { tokens: base, reused: 0 },
      // Same length, a change at 35: rows 35.. are written in place after the kept prefix.
      { tokens: [...base.slice(0, 35), (base[35] + 1) % V, ...base.slice(36)], reused: 35 },
      // Longer than anything stored so far: the state grows (a new array, the prefix copied once).
      { tokens: [...base.slice(0, 35), (base[35] + 1) % V, ...base.slice(36), ...ids.slice(0, 20).map((id) => (id + 3) % V)], reused: 40 },
      // Shorter again, with a change at 25.
      { tokens: [...base.slice(0, 25), (base[25] + 2) % V, ...base.slice(26, 30)], reused: 25 },
    ];
    for (const [i, version] of versions.entries()) {
      const incremental = await engine.run({ tokenIds: version.tokens, spans, topK: 4, cacheKey: 'chain' });
      const full = await fresh.run({ tokenIds: version.tokens, spans, topK: 4 });
      assert.equal(incremental.stats.reusedTokens ?? 0, version.reused, `version ${i}: reused tokens`);
      assert.ok(maxDiff(incremental.lastLogits, full.lastLogits) <= 1e-3, `version ${i}: logits`);
      assert.ok(maxDiff(incremental.summary.spanMass, full.summary.spanMass) <= 1e-4, `version ${i}: span mass`);
      assert.ok(maxDiff(incremental.summary.topWeights, full.summary.topWeights) <= 1e-4, `version ${i}: top weights`);
      const q = version.tokens.length - 2;
      const a = await engine.knockout({ query: q, spans });
      const b = await fresh.knockout({ query: q, spans });
      a.spans.forEach((span, s) => assert.ok(Math.abs(span.kl - b.spans[s].kl) <= 1e-4, `version ${i}: knockout KL of span ${s}`));
      const row = await engine.attentionRow(0, 0, q);
      assert.ok(maxDiff(row, await fresh.attentionRow(0, 0, q)) <= 1e-4, `version ${i}: exact row`);
    }
  } finally {
    engine.dispose();
    fresh.dispose();
  }
});
