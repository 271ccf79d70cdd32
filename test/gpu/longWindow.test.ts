/**
 * Long windows within small storage bindings, on the fixture models: with a 4 KiB cap every
 * [n, width] activation runs in row blocks, keys and values in one group per KV head, and the
 * forward pass, the summaries and the exact rows still match the reference engine. The engine
 * allocates what its memory plan lists, and refuses a window that cannot fit with the longest one
 * that would.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { AttentionRequest } from '../../engine/attention';
import { createNodeGpuEngine } from '../../engine/hosts/nodeWebGpu';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import type { GpuEngine } from '../../engine/webgpu/gpuEngine';
import { WindowTooLongError } from '../../engine/webgpu/memoryPlan';
import { fixtureDir, maxAbsDiff, readGolden, withAdapter } from './gpuTestSupport';

const LOGIT_TOLERANCE = 1e-3;
const PROB_TOLERANCE = 1e-4;
const TOP_K = 4;
const SPANS = [{ start: 0, end: 3 }, { start: 10, end: 20 }, { start: 25, end: 26 }];
const CAP = 4096;

/** Top-k rows whose k-th and (k+1)-th reference weights are within 1e-6 are ties: their order may differ. */
function untiedTopKMismatches(gpu: Int32Array, cpu: Int32Array, cpuWeights: Float32Array, k: number): number {
  let mismatches = 0;
  for (let row = 0; row < gpu.length / k; row++) {
    const weights = cpuWeights.subarray(row * k, row * k + k);
    const tied = weights.some((w, i) => i > 0 && weights[i - 1] - w < 1e-6);
    if (!tied && gpu.subarray(row * k, row * k + k).some((index, i) => index !== cpu[row * k + i])) mismatches++;
  }
  return mismatches;
}

for (const name of ['llama-f32', 'gpt2-f32'] as const) {
  test(`${name}: with ${CAP}-byte storage bindings the run is split into row blocks and KV groups and matches the reference engine`, async (t) => {
    await withAdapter(t, async () => {
      const golden = readGolden(name);
      const model = await loadModelFolder(fixtureDir(name));
      const n = golden.tokenIds.length;
      const request: AttentionRequest = { tokenIds: golden.tokenIds, spans: SPANS, topK: TOP_K, weighting: 'valueWeighted' };
      const engine = (await createNodeGpuEngine(model, { weightFormat: 'f32', maxBindingBytes: CAP })) as GpuEngine;
      try {
        const plan = engine.planMemory(n, { topK: TOP_K, numSpans: SPANS.length, weighting: 'valueWeighted' });
        assert.ok(plan.layout.rowsPerBlock < n / 4, `rows per block ${plan.layout.rowsPerBlock} should split the ${n} rows`);
        assert.ok(plan.layout.kvGroups > 1, 'keys and values should be split by KV head');
        assert.ok(plan.largestBindingBytes <= CAP);

        const result = await engine.run(request);
        const cpu = new ReferenceEngine(model, 'oracle');
        const expected = await cpu.run(request);
        const stats = engine.memoryStats();
        assert.equal(stats.plannedPeakBytes, plan.peakBytes);
        assert.equal(stats.stateBytes, plan.stateBytes, 'the run state holds exactly the planned Q, K, V and residual blocks');

        const logitDiff = maxAbsDiff(result.lastLogits, expected.lastLogits);
        const spanDiff = Math.max(maxAbsDiff(result.summary.spanMass, expected.summary.spanMass), maxAbsDiff(result.summary.spanMassMean, expected.summary.spanMassMean), maxAbsDiff(result.summary.spanMassMax, expected.summary.spanMassMax));
        const topWeightDiff = maxAbsDiff(result.summary.topWeights, expected.summary.topWeights);
        const mismatches = untiedTopKMismatches(result.summary.topIndices, expected.summary.topIndices, expected.summary.topWeights, TOP_K);
        let rowDiff = 0;
        for (const [layer, head, query] of [[0, 0, 0], [1, 3, n - 1], [0, 2, 17], [1, 1, 33]]) {
          rowDiff = Math.max(rowDiff, maxAbsDiff(await engine.attentionRow(layer, head, query), await cpu.attentionRow(layer, head, query)));
        }
        console.log(
          `${name} ${CAP}-byte bindings (${plan.layout.rowsPerBlock} rows per block, ${plan.layout.kvGroups} KV groups): vs reference max |logit diff| ${logitDiff.toExponential(2)}, ` +
            `value-weighted span mass ${spanDiff.toExponential(2)}, top weights ${topWeightDiff.toExponential(2)}, rows ${rowDiff.toExponential(2)}; planned peak ${plan.peakBytes} bytes`,
        );
        assert.ok(logitDiff <= LOGIT_TOLERANCE, `logits ${logitDiff}`);
        assert.ok(spanDiff <= PROB_TOLERANCE && topWeightDiff <= PROB_TOLERANCE && rowDiff <= PROB_TOLERANCE);
        assert.equal(mismatches, 0, 'top-k indices of untied rows');
      } finally {
        engine.dispose();
      }
    });
  });
}

test('a window longer than the bindings allow is refused with the longest that fits, which then runs', async (t) => {
  await withAdapter(t, async () => {
    const golden = readGolden('llama-f32');
    const model = await loadModelFolder(fixtureDir('llama-f32'));
    // 1 KiB holds one KV head of 16 keys (16 keys x 16 dims x 4 bytes).
    const engine = await createNodeGpuEngine(model, { maxBindingBytes: 1024 });
    try {
      await assert.rejects(engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 2 }), (error: unknown) => error instanceof WindowTooLongError && error.longestWindow === 16);
      const result = await engine.run({ tokenIds: golden.tokenIds.slice(0, 16), spans: [], topK: 2 });
      assert.equal(result.summary.numTokens, 16);
    } finally {
      engine.dispose();
    }
  });
});

test('a run over deviceMemoryBytes is refused before allocating, naming the longest window that fits', async (t) => {
  await withAdapter(t, async () => {
    const golden = readGolden('llama-f32');
    const model = await loadModelFolder(fixtureDir('llama-f32'));
    const probe = (await createNodeGpuEngine(model, { weightFormat: 'f32' })) as GpuEngine;
    const budget = probe.planMemory(30, { topK: 2, numSpans: 0 }).peakBytes;
    probe.dispose();
    const engine = (await createNodeGpuEngine(model, { weightFormat: 'f32', deviceMemoryBytes: budget })) as GpuEngine;
    try {
      await assert.rejects(engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 2 }), (error: unknown) => error instanceof WindowTooLongError && error.longestWindow === 30 && /longest window that fits is 30 tokens/.test(error.message));
      assert.equal(engine.memoryStats().stateBytes, 0, 'nothing was allocated for the refused run');
      const result = await engine.run({ tokenIds: golden.tokenIds.slice(0, 30), spans: [], topK: 2 });
      assert.equal(result.summary.numTokens, 30);
    } finally {
      engine.dispose();
    }
  });
});
