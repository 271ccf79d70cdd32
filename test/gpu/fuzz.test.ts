/**
 * The model-file fuzzer (test/support/fuzzModels.ts) with the WebGPU engine in the loop: every
 * mutated model that loads is also uploaded to a GPU device and run there. Bounded (fixed seed, a
 * few hundred cases: engine creation compiles pipelines on a software adapter); a longer run is
 * `npm run fuzz -- --webgpu --cases N`.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { requestNodeDevice } from '../../engine/hosts/nodeWebGpu';
import { GpuEngine, summarizeAdapter } from '../../engine/webgpu/gpuEngine';
import { formatFuzzSummary, fuzzModels } from '../support/fuzzModels';
import { FIXTURE_MODELS, fixtureDir, withAdapter } from './gpuTestSupport';

test('fuzzed model files that load also run on the WebGPU engine, or end in a clear error', async (t) => {
  await withAdapter(t, async () => {
    const { adapter, device } = await requestNodeDevice();
    try {
      const summary = await fuzzModels({
        cases: 300,
        seed: 20261203,
        fixtures: FIXTURE_MODELS.map(fixtureDir),
        messageCases: 0,
        // Engines share the device (one per case would be a new Dawn device each time); each
        // engine frees its buffers when disposed.
        gpuEngine: (model) => GpuEngine.create(device, summarizeAdapter(adapter), model, { ownsDevice: false }),
      });
      console.log(formatFuzzSummary(summary));
      assert.equal(summary.byOutcome.crash, 0, summary.failures.join('\n'));
      assert.equal(summary.byOutcome.hang, 0, summary.failures.join('\n'));
      assert.equal(summary.byOutcome.memory, 0, summary.failures.join('\n'));
      assert.ok(summary.byOutcome.ran > 30 && summary.byOutcome.clearError > 100, JSON.stringify(summary.byOutcome));
    } finally {
      device.destroy();
    }
  });
});
