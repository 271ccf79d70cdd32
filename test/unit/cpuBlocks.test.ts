/**
 * The CPU engine runs a window as a chain of row blocks (engine/onnx/onnxEngine.ts): memory grows
 * with n x block, not heads x n^2. Cutting the window must change nothing a user sees: for every
 * fixture, blocks of one row and of a few rows give the same logits, summaries, exact rows,
 * knockouts and span effects as one block, and the same as the reference engine. The memory plan
 * refuses what does not fit, with the numbers and the longest window that does.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { AttentionRequest, ForwardResult } from '../../engine/attention';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { cpuMemoryPlan, longestCpuWindow, rowsPerBlock } from '../../engine/onnx/cpuMemoryPlan';
import { OnnxRuntimeEngine } from '../../engine/onnx/onnxEngine';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import { WindowTooLongError } from '../../engine/webgpu/memoryPlan';
import { maxAbsDiff } from '../gpu/gpuTestSupport';
import { FIXTURE_MODELS, fixtureDir, readGolden } from './fixtureModels';

/** blockBytes that make rowsPerBlock(spec, n) exactly `rows`. */
function blockBytesFor(spec: { numHeads: number; numKvHeads: number }, n: number, rows: number): number {
  return rows * Math.max(spec.numHeads / spec.numKvHeads, 4) * n * 4;
}

function summaryDiff(a: ForwardResult, b: ForwardResult): number {
  assert.deepEqual(Array.from(a.summary.topIndices), Array.from(b.summary.topIndices), 'top-k positions differ');
  return Math.max(maxAbsDiff(a.lastLogits, b.lastLogits), maxAbsDiff(a.summary.topWeights, b.summary.topWeights), maxAbsDiff(a.summary.spanMass, b.summary.spanMass), maxAbsDiff(a.summary.spanMassMean, b.summary.spanMassMean), maxAbsDiff(a.summary.spanMassMax, b.summary.spanMassMax));
}

for (const name of FIXTURE_MODELS) {
  test(`${name}: one-row and few-row blocks give what one block and the reference give (run, rows, knockout, span effect)`, async () => {
    const model = await loadModelFolder(fixtureDir(name));
    const ids = readGolden(name).tokenIds;
    const n = ids.length;
    const spans = [{ start: 0, end: 3 }, { start: 10, end: 20 }, { start: 25, end: 26 }];
    const request: AttentionRequest = { tokenIds: ids, spans, topK: 4 };
    const reference = new ReferenceEngine(model, 'test');
    const whole = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test' });
    const engines = [whole];
    try {
      assert.equal(rowsPerBlock(model.spec, n, 128 * 2 ** 20), n, 'a short window is one block by default');
      const expected = await reference.run(request);
      const one = await whole.run(request);
      let worst = 0;
      for (const rows of [1, 7]) {
        const blocked = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test', blockBytes: blockBytesFor(model.spec, n, rows) });
        engines.push(blocked);
        assert.equal(rowsPerBlock(model.spec, n, blockBytesFor(model.spec, n, rows)), rows);
        const result = await blocked.run(request);
        worst = Math.max(worst, summaryDiff(result, one));
        for (const [layer, head, query] of [[0, 0, n - 1], [model.spec.numLayers - 1, model.spec.numHeads - 1, Math.floor(n / 2)]]) {
          worst = Math.max(worst, maxAbsDiff(await blocked.attentionRow(layer, head, query), await reference.attentionRow(layer, head, query)));
        }
        const knockout = { query: n - 1, spans: [...spans, { start: 5, end: 5 }] };
        const [mine, theirs] = [await blocked.knockout(knockout), await reference.knockout!(knockout)];
        // KL in nats can be several units: compared relative to its size (f32 rounding scales with it).
        const klDiff = (a: number, b: number) => Math.abs(a - b) / Math.max(1, Math.abs(b));
        mine.spans.forEach((span, i) => (worst = Math.max(worst, klDiff(span.kl, theirs.spans[i].kl))));
        assert.equal(mine.spans[3].kl, 0, 'an empty span changes nothing, exactly');
        const [effect, theirEffect] = [await blocked.spanEffect(spans[1]), await reference.spanEffect!(spans[1])];
        assert.equal(effect.tokens.length, n - spans[1].end);
        effect.tokens.forEach((t, i) => (worst = Math.max(worst, klDiff(t.kl, theirEffect.tokens[i].kl))));
      }
      console.log(`${name}: blocks of 1 and 7 rows vs one block and the reference: max |diff| (KL relative to its size) ${worst.toExponential(2)}`);
      assert.ok(worst < 1e-4, `max difference ${worst}`);
      assert.ok(maxAbsDiff(one.lastLogits, expected.lastLogits) < 1e-3);
    } finally {
      for (const engine of engines) engine.dispose();
    }
  });
}

test('an edit re-runs from the first changed token in blocks, equal to a full run', async () => {
  const model = await loadModelFolder(fixtureDir('qwen2-f16'));
  const ids = readGolden('qwen2-f16').tokenIds;
  const n = ids.length;
  const engine = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test', blockBytes: blockBytesFor(model.spec, n, 5) });
  const fresh = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test' });
  try {
    const spans = [{ start: 2, end: 6 }];
    await engine.run({ tokenIds: ids, spans, topK: 3, cacheKey: 'doc' });
    const edited = [...ids];
    edited[n - 12] = (edited[n - 12] + 1) % model.spec.vocabSize;
    const again = await engine.run({ tokenIds: edited, spans, topK: 3, cacheKey: 'doc' });
    assert.equal(again.stats.reusedTokens, n - 12);
    const full = await fresh.run({ tokenIds: edited, spans, topK: 3 });
    assert.ok(summaryDiff(again, full) < 1e-5);
  } finally {
    engine.dispose();
    fresh.dispose();
  }
});

test('the memory plan refuses a window that does not fit, naming the longest that does', async () => {
  const model = await loadModelFolder(fixtureDir('llama-f32'));
  const ids = readGolden('llama-f32').tokenIds;
  const n = ids.length;
  const options = { weightBytes: 1_000_000, blockBytes: 128 * 2 ** 20, topK: 4, numSpans: 3, layers: model.spec.numLayers };
  // The plan grows with n (state, summaries, one block's n x block intermediates), never with heads x n^2 once blocks are cut.
  const short = cpuMemoryPlan(model.spec, 16, options);
  const long = cpuMemoryPlan(model.spec, 64, options);
  assert.ok(long.peakBytes > short.peakBytes);
  assert.equal(longestCpuWindow(model.spec, long.peakBytes, options), 64 + (cpuMemoryPlan(model.spec, 65, options).peakBytes <= long.peakBytes ? 1 : 0));
  const planner = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test' });
  const plan = planner.planMemory(n, { topK: 4, numSpans: 3 });
  planner.dispose();
  const budget = plan.peakBytes - 1;
  const engine = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test', memoryBudgetBytes: budget });
  try {
    await assert.rejects(engine.run({ tokenIds: ids, spans: [{ start: 0, end: 3 }, { start: 4, end: 5 }, { start: 6, end: 7 }], topK: 4 }), (error: unknown) => {
      assert.ok(error instanceof WindowTooLongError);
      assert.ok(error.longestWindow > 0 && error.longestWindow < n, `longest window ${error.longestWindow}`);
      assert.match(error.message, new RegExp(`A window of ${n} tokens needs about [0-9.]+ GiB of memory on the CPU engine .* the longest window that fits is ${error.longestWindow} tokens`));
      return true;
    });
    // The longest window it names does run.
    const fits = await engine.run({ tokenIds: ids.slice(0, 20), spans: [{ start: 0, end: 3 }, { start: 4, end: 5 }, { start: 6, end: 7 }], topK: 4 });
    assert.equal(fits.summary.numTokens, 20);
  } finally {
    engine.dispose();
  }
});

test('a 32k-token window of a 14-head model is cut into blocks of about a hundred rows', () => {
  const spec = { numHeads: 14, numKvHeads: 2 } as Parameters<typeof rowsPerBlock>[0];
  const rows = rowsPerBlock(spec, 32768, 128 * 2 ** 20);
  assert.ok(rows > 100 && rows < 200, `${rows} rows`);
});
