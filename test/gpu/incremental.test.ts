/**
 * Incremental re-analysis on WebGPU: a run with a cacheKey keeps its keys and values on the device,
 * and the next run with that key recomputes only from the first changed token. Each edit below (a
 * change near the end, an insertion that shifts the rest, a change at token 0) must give what a
 * fresh engine's full run of the edited tokens gives: summaries, logits, exact rows and knockout.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { AttentionRequest, ForwardResult } from '../../engine/attention';
import type { AttentionEngine } from '../../engine/engine';
import { createNodeGpuEngine } from '../../engine/hosts/nodeWebGpu';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import type { GpuEngine } from '../../engine/webgpu/gpuEngine';
import { fixtureDir, maxAbsDiff, readGolden, withAdapter } from './gpuTestSupport';

const TOLERANCE = 1e-5;
const TOP_K = 4;

/** Spans before, across and after the edits (the ends are clamped to the sequence). */
function spansFor(n: number): { start: number; end: number }[] {
  return [{ start: 0, end: 3 }, { start: 10, end: 37 }, { start: 30, end: n }];
}

function requestFor(tokenIds: number[], cacheKey?: string): AttentionRequest {
  return { tokenIds, spans: spansFor(tokenIds.length), topK: TOP_K, cacheKey };
}

/** Asserts two results of the same tokens agree; returns the largest difference. */
async function assertSameRun(label: string, cached: AttentionEngine, fresh: AttentionEngine, a: ForwardResult, b: ForwardResult): Promise<number> {
  const n = b.summary.numTokens;
  assert.equal(a.summary.numTokens, n, `${label}: tokens`);
  assert.deepEqual([...a.summary.topIndices], [...b.summary.topIndices], `${label}: top-k indices`);
  let diff = Math.max(
    maxAbsDiff(a.lastLogits, b.lastLogits),
    maxAbsDiff(a.summary.topWeights, b.summary.topWeights),
    maxAbsDiff(a.summary.spanMass, b.summary.spanMass),
    maxAbsDiff(a.summary.spanMassMean, b.summary.spanMassMean),
    maxAbsDiff(a.summary.spanMassMax, b.summary.spanMassMax),
  );
  // The engine's own state is the whole new run: rows before and after the edit, and the knockout.
  for (const [layer, head, query] of [[0, 1, 2], [1, 3, n - 1], [1, 0, Math.floor(n / 2)]]) {
    diff = Math.max(diff, maxAbsDiff(await cached.attentionRow(layer, head, query), await fresh.attentionRow(layer, head, query)));
  }
  const knockout = { query: n - 2, spans: [{ start: 0, end: 5 }, { start: 20, end: 30 }] };
  const [ka, kb] = [await cached.knockout!(knockout), await fresh.knockout!(knockout)];
  ka.spans.forEach((span, i) => (diff = Math.max(diff, Math.abs(span.kl - kb.spans[i].kl))));
  assert.ok(diff <= TOLERANCE, `${label}: max |diff| ${diff} vs a fresh full run`);
  return diff;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let p = 0;
  while (p < a.length && p < b.length && a[p] === b[p]) p++;
  return p;
}

for (const [name, maxBindingBytes] of [['llama-f32', undefined], ['gpt2-f32', undefined], ['llama-f32', 4096]] as const) {
  const split = maxBindingBytes ? ` with ${maxBindingBytes}-byte bindings` : '';
  test(`${name}${split}: edits re-analysed from the first changed token equal a fresh full run`, async (t) => {
    await withAdapter(t, async () => {
      const golden = readGolden(name);
      const model = await loadModelFolder(fixtureDir(name));
      const V = model.spec.vocabSize;
      const a = golden.tokenIds;
      const edits: [string, number[]][] = [
        ['change near the end', a.map((id, i) => (i === a.length - 4 ? (id + 7) % V : id))],
        ['insertion that shifts the rest', [...a.slice(0, 20), (a[20] + 3) % V, ...a.slice(20)]],
        ['change at token 0', a.map((id, i) => (i === 0 ? (id + 1) % V : id))],
      ];
      const cached = (await createNodeGpuEngine(model, { weightFormat: 'f32', maxBindingBytes })) as GpuEngine;
      const fresh = await createNodeGpuEngine(model, { weightFormat: 'f32', maxBindingBytes });
      try {
        const report: string[] = [];
        for (const [label, b] of edits) {
          await cached.run(requestFor(a, 'doc'));
          const reused = await cached.run(requestFor(b, 'doc'));
          const full = await fresh.run(requestFor(b));
          const p = commonPrefix(a, b);
          assert.equal(reused.stats.reusedTokens, p, `${label}: reused tokens`);
          assert.ok(p === 0 || reused.stats.readbackBytes < full.stats.readbackBytes, `${label}: only the new rows' summaries are read back`);
          const diff = await assertSameRun(label, cached, fresh, reused, full);
          report.push(`${label}: reused ${p} of ${b.length}, max |diff| ${diff.toExponential(2)}`);
        }
        console.log(`${name}${split}: ${report.join('; ')}`);
        assert.ok(cached.memoryStats().cachedRuns === 1);
      } finally {
        cached.dispose();
        fresh.dispose();
      }
    });
  });
}

test('same tokens reuse everything; releaseCache makes the next run full; different keys do not mix', async (t) => {
  await withAdapter(t, async () => {
    const golden = readGolden('qwen2-f16');
    const model = await loadModelFolder(fixtureDir('qwen2-f16'));
    const engine = (await createNodeGpuEngine(model, { weightFormat: 'f32' })) as GpuEngine;
    try {
      const a = golden.tokenIds;
      const b = a.map((id, i) => (i === 30 ? (id + 5) % model.spec.vocabSize : id));
      const first = await engine.run(requestFor(a, 'x'));
      const again = await engine.run(requestFor(a, 'x'));
      assert.equal(again.stats.reusedTokens, a.length);
      assert.deepEqual([...again.summary.topIndices], [...first.summary.topIndices]);
      assert.ok(maxAbsDiff(again.lastLogits, first.lastLogits) === 0);

      // Key y has never run: a full run, even though x holds the same prefix.
      assert.equal((await engine.run(requestFor(b, 'y'))).stats.reusedTokens, 0);
      // x still holds a, not b: editing from a reuses the prefix before token 30.
      assert.equal((await engine.run(requestFor(b, 'x'))).stats.reusedTokens, 30);
      assert.equal(engine.memoryStats().cachedRuns, 2);

      engine.releaseCache('x');
      const afterRelease = await engine.run(requestFor(b, 'x'));
      assert.equal(afterRelease.stats.reusedTokens, 0);
      // Other spans or top-k cannot reuse the cached rows.
      assert.equal((await engine.run({ ...requestFor(b, 'x'), topK: TOP_K + 1 })).stats.reusedTokens, 0);
      engine.releaseCache('x');
      engine.releaseCache('y');
      await engine.run(requestFor(a));
      assert.equal(engine.memoryStats().cachedRuns, 0);
    } finally {
      engine.dispose();
    }
  });
});

test('the cache stays within cacheBytes: the least recently used run goes first', async (t) => {
  await withAdapter(t, async () => {
    const golden = readGolden('llama-f32');
    const model = await loadModelFolder(fixtureDir('llama-f32'));
    const probe = (await createNodeGpuEngine(model, { weightFormat: 'f32' })) as GpuEngine;
    const stateBytes = probe.planMemory(golden.tokenIds.length, { topK: TOP_K, numSpans: 3 }).stateBytes;
    probe.dispose();
    // Room for one cached run (its device state plus a few KiB of host summaries), not two.
    const engine = (await createNodeGpuEngine(model, { weightFormat: 'f32', cacheBytes: Math.floor(stateBytes * 1.5) })) as GpuEngine;
    try {
      const a = golden.tokenIds;
      await engine.run(requestFor(a, 'one'));
      await engine.run(requestFor(a, 'two'));
      assert.equal(engine.memoryStats().cachedRuns, 1);
      assert.equal((await engine.run(requestFor(a, 'one'))).stats.reusedTokens, 0, 'one was evicted');
      assert.equal((await engine.run(requestFor(a, 'one'))).stats.reusedTokens, a.length);
    } finally {
      engine.dispose();
    }
  });
});
