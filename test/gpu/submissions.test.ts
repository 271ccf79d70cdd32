/**
 * GPU work in submissions of bounded duration (engine/webgpu/submissions.ts): with a tiny budget a
 * run, a knockout and a span effect are split into many submissions (every unit alone) and give
 * bit-identical numbers to a run submitted at once; an abort takes effect at the next submission
 * boundary and leaves the engine usable. The default model at n = 1024 prints how long its longest
 * submission ran with the default budget (a measurement, not an assertion: speed belongs to the
 * benchmarks).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import type { AttentionRequest, ForwardResult } from '../../engine/attention';
import { createNodeGpuEngine } from '../../engine/hosts/nodeWebGpu';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import type { LoadedModel } from '../../engine/model/modelTypes';
import type { GpuEngine, GpuEngineOptions } from '../../engine/webgpu/gpuEngine';
import { DEFAULT_SUBMISSION_MS } from '../../engine/webgpu/submissions';
import { fixtureDir, repoRoot, seededRandom, withAdapter } from './gpuTestSupport';

/** A budget no unit fits: every unit of work is submitted on its own. */
const TINY_BUDGET_MS = 1e-6;

function randomTokens(seed: number, n: number, vocabSize: number): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => Math.floor(random() * vocabSize));
}

async function gpuEngine(model: LoadedModel, options: GpuEngineOptions): Promise<GpuEngine> {
  return (await createNodeGpuEngine(model, { weightFormat: 'f32', ...options })) as GpuEngine;
}

/** Asserts that two runs gave exactly the same numbers (not merely close ones). */
function assertIdentical(actual: ForwardResult, expected: ForwardResult, what: string): void {
  assert.deepEqual(actual.lastLogits, expected.lastLogits, `${what}: last logits`);
  for (const key of ['topIndices', 'topWeights', 'spanMass', 'spanMassMean', 'spanMassMax'] as const) {
    assert.deepEqual(actual.summary[key], expected.summary[key], `${what}: ${key}`);
  }
}

const CASES = [
  // 128 tokens: the projections and the MLP run in two row chunks (binding offsets), attention in 1-head x 16-query blocks.
  { name: 'llama-f32', n: 128, weighting: 'attention', maxBindingBytes: undefined },
  // Learned positions, LayerNorm, GELU and biases; value-weighted summaries; row blocks and KV groups from 4 KiB bindings.
  { name: 'gpt2-f32', n: 64, weighting: 'valueWeighted', maxBindingBytes: 4096 },
] as const;

for (const { name, n, weighting, maxBindingBytes } of CASES) {
  test(`${name}: with a tiny submission budget a run, a knockout and a span effect are split into many submissions and give identical numbers`, async (t) => {
    await withAdapter(t, async () => {
      const model = await loadModelFolder(fixtureDir(name));
      const request: AttentionRequest = {
        tokenIds: randomTokens(7, n, model.spec.vocabSize),
        spans: [{ start: 0, end: 5 }, { start: 20, end: 40 }],
        topK: 4,
        weighting,
      };
      const split = await gpuEngine(model, { maxSubmissionMs: TINY_BUDGET_MS, maxBindingBytes });
      const whole = await gpuEngine(model, { maxSubmissionMs: Infinity, maxBindingBytes });
      try {
        const expected = await whole.run(request);
        assert.equal(whole.submissionStats().submissions, 1, 'an unbounded budget submits the run at once');
        const actual = await split.run(request);
        const stats = split.submissionStats();
        console.log(`${name} n=${n}: split into ${stats.submissions} submissions (${stats.units} units), longest ${stats.longestSubmissionMs.toFixed(1)} ms`);
        assert.ok(stats.submissions > 4 * model.spec.numLayers, `${stats.submissions} submissions for ${model.spec.numLayers} layers`);
        assert.equal(stats.units, stats.submissions, 'with a tiny budget every unit goes alone');
        assertIdentical(actual, expected, name);

        const knockout = { query: n - 2, spans: [{ start: 0, end: 5 }, { start: 20, end: 40 }] };
        assert.deepEqual(await split.knockout(knockout), await whole.knockout(knockout), 'knockout');
        assert.ok(split.submissionStats().submissions > model.spec.numLayers, 'knockout: one submission per layer at least');
        const span = { start: 20, end: 40 };
        assert.deepEqual(await split.spanEffect(span), await whole.spanEffect(span), 'span effect');
        assert.ok(split.submissionStats().submissions > 4 * model.spec.numLayers, 'span effect: many submissions');
      } finally {
        split.dispose();
        whole.dispose();
      }
    });
  });
}

test('aborting after the first submission rejects with AbortError at the next boundary; the engine keeps working', async (t) => {
  await withAdapter(t, async () => {
    const model = await loadModelFolder(fixtureDir('llama-f32'));
    const request: AttentionRequest = { tokenIds: randomTokens(11, 128, model.spec.vocabSize), spans: [{ start: 3, end: 9 }], topK: 4 };
    /** The run whose signal the first completed submission aborts, if any. */
    let abortOnFirst: AbortController | undefined;
    const engine = await gpuEngine(model, {
      maxSubmissionMs: TINY_BUDGET_MS,
      onSubmitted: (submission) => {
        if (submission.index === 0) abortOnFirst?.abort();
      },
    });
    const whole = await gpuEngine(model, { maxSubmissionMs: Infinity });
    try {
      abortOnFirst = new AbortController();
      const started = performance.now();
      await assert.rejects(engine.run(request, abortOnFirst.signal), { name: 'AbortError' });
      const abortedAfter = engine.submissionStats().submissions;
      console.log(`abort after the first submission: rejected after ${abortedAfter} submissions, ${(performance.now() - started).toFixed(0)} ms`);
      // The first submission's completion is seen while the second is queued; nothing more is submitted.
      assert.ok(abortedAfter <= 2, `${abortedAfter} submissions were made after the abort`);

      abortOnFirst = undefined;
      const result = await engine.run(request, new AbortController().signal);
      const full = engine.submissionStats().submissions;
      assert.ok(full > 10 * abortedAfter, `a full run makes many more submissions (${full})`);
      assertIdentical(result, await whole.run(request), 'the run after an abort');
    } finally {
      engine.dispose();
      whole.dispose();
    }
  });
});

test(`default model, 1,024 tokens: the longest submission with the default budget (${DEFAULT_SUBMISSION_MS} ms) is printed`, async (t) => {
  await withAdapter(t, async () => {
    const model = await loadModelFolder(path.join(repoRoot, 'default-model'));
    const engine = await gpuEngine(model, {});
    try {
      const request: AttentionRequest = { tokenIds: randomTokens(3, 1024, model.spec.vocabSize), spans: [{ start: 0, end: 10 }, { start: 100, end: 200 }], topK: 8 };
      const adapter = engine.backend.kind === 'webgpu' ? engine.backend.adapter.description || engine.backend.adapter.device : 'this adapter';
      for (const label of ['first run (pacer learning)', 'second run']) {
        const started = performance.now();
        await engine.run(request);
        const stats = engine.submissionStats();
        console.log(
          `default model n=1024 on ${adapter}, ${label}: ${stats.submissions} submissions ` +
            `(${stats.units} units), longest ${stats.longestSubmissionMs.toFixed(0)} ms, wall ${(performance.now() - started).toFixed(0)} ms`,
        );
        assert.ok(stats.units >= stats.submissions && stats.submissions >= 1);
      }
    } finally {
      engine.dispose();
    }
  });
});
