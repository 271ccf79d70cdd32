/**
 * The CPU engine at the real models' full contexts, run as the editor runs it: in its own process
 * (engine/hosts/nodeOnnx.ts), with its default block budget. Narrow random models keep the heads,
 * KV heads and context of the real ones (SmolLM2-135M: 9 / 3 heads, 8,192 positions; Qwen2.5-Coder-
 * 0.5B: 14 / 2 heads, Qwen2 biases, 32,768 positions) but few layers and small widths, so the
 * reference engine can check them:
 *  - 8,192 tokens in one window: logits, exact rows and top-k against the reference engine;
 *  - 32,768 tokens in one window: the run completes in the engine process within its memory plan;
 *    causality says its first 8,192 rows are those of an 8,192-token run, which is checked against
 *    the reference; its last rows are proper distributions whose best position is the summary's.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { AttentionRequest } from '../../engine/attention';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { NodeOnnxEngine } from '../../engine/hosts/nodeOnnx';
import { cpuMemoryPlan, residentWeightBytes, rowsPerBlock, DEFAULT_BLOCK_BYTES } from '../../engine/onnx/cpuMemoryPlan';
import { totalWeightBytes, totalWeightElements } from '../../engine/onnx/onnxGraph';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import * as fs from 'node:fs';
import { maxAbsDiff, seededRandom } from '../gpu/gpuTestSupport';
import { type SyntheticLlamaShape, writeSyntheticLlama } from '../gpu/syntheticModel';

const SMOLLM2_NARROW: SyntheticLlamaShape = { vocabSize: 2048, hiddenSize: 72, numLayers: 2, numHeads: 9, numKvHeads: 3, intermediateSize: 96, maxPositions: 8192, ropeTheta: 100000 };
const QWEN_NARROW: SyntheticLlamaShape = { family: 'qwen2', vocabSize: 1024, hiddenSize: 56, numLayers: 1, numHeads: 14, numKvHeads: 2, intermediateSize: 64, maxPositions: 32768, ropeTheta: 1000000, rmsNormEps: 1e-6, dtype: 'BF16' };

function tokens(n: number, vocab: number, seed: number): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => Math.floor(random() * vocab));
}

/** Rows of the summaries' top-k for (layer 0, head, query) from a summary of n rows. */
function topOf(summary: { topIndices: Int32Array; topK: number; numTokens: number }, head: number, query: number): number[] {
  const at = (head * summary.numTokens + query) * summary.topK;
  return Array.from(summary.topIndices.subarray(at, at + summary.topK));
}

test('8,192 tokens of a SmolLM2-shaped model in one window, in the engine process: logits, exact rows and top-k equal the reference', async () => {
  const folder = writeSyntheticLlama(SMOLLM2_NARROW, 11);
  const model = await loadModelFolder(folder);
  const n = 8192;
  const request: AttentionRequest = { tokenIds: tokens(n, SMOLLM2_NARROW.vocabSize, 3), spans: [{ start: 0, end: 32 }, { start: 4000, end: 4040 }], topK: 4 };
  const engine = await NodeOnnxEngine.create(model, { threads: 2, reason: 'test' });
  try {
    assert.ok(rowsPerBlock(model.spec, n, DEFAULT_BLOCK_BYTES) < n, 'the window runs in several blocks');
    const ours = await engine.run(request);
    const reference = new ReferenceEngine(model, 'test');
    const expected = await reference.run(request);
    const logitDiff = maxAbsDiff(ours.lastLogits, expected.lastLogits);
    let rowDiff = 0;
    for (const [layer, head, query] of [[0, 0, n - 1], [1, 8, n - 1], [1, 4, 5000], [0, 2, 100]]) {
      rowDiff = Math.max(rowDiff, maxAbsDiff(await engine.attentionRow(layer, head, query), await reference.attentionRow(layer, head, query)));
    }
    let topSame = 0;
    let compared = 0;
    for (let query = 0; query < n; query += 97) {
      for (let head = 0; head < SMOLLM2_NARROW.numHeads; head++) {
        compared++;
        if (topOf(ours.summary, head, query)[0] === topOf(expected.summary, head, query)[0]) topSame++;
      }
    }
    const massDiff = maxAbsDiff(ours.summary.spanMass, expected.summary.spanMass);
    const memory = await engine.memoryUsage();
    console.log(`8,192 tokens, SmolLM2 heads: |logit diff| ${logitDiff.toExponential(2)}, |row diff| ${rowDiff.toExponential(2)}, span mass ${massDiff.toExponential(2)}, top-1 same ${topSame}/${compared}, engine process peak RSS ${(memory.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
    assert.ok(logitDiff < 1e-3, `logits differ by ${logitDiff}`);
    assert.ok(rowDiff < 1e-5, `rows differ by ${rowDiff}`);
    assert.ok(massDiff < 1e-4, `span masses differ by ${massDiff}`);
    assert.ok(topSame >= 0.99 * compared, `top-1 differs on ${compared - topSame} of ${compared}`);
  } finally {
    engine.dispose();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

test('32,768 tokens of a Qwen2.5-Coder-0.5B-shaped model in one window, in the engine process, within its memory plan; its first 8,192 rows are the reference\'s', async () => {
  const folder = writeSyntheticLlama(QWEN_NARROW, 12);
  const model = await loadModelFolder(folder);
  const n = 32768;
  const ids = tokens(n, QWEN_NARROW.vocabSize, 4);
  const spans = [{ start: 0, end: 32 }, { start: 6000, end: 6050 }, { start: 30000, end: 30010 }];
  const engine = await NodeOnnxEngine.create(model, { threads: 2, reason: 'test' });
  try {
    const long = await engine.run({ tokenIds: ids, spans, topK: 4 });
    const memory = await engine.memoryUsage();
    // The rows of the last query: proper distributions whose best position is what the summary kept.
    for (const head of [0, 13]) {
      const row = await engine.attentionRow(0, head, n - 1);
      assert.equal(row.length, n);
      const total = row.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(total - 1) < 1e-4, `row sums to ${total}`);
      const best = row.indexOf(Math.max(...row));
      assert.equal(topOf(long.summary, head, n - 1)[0], best);
    }
    // Causality: the first 8,192 rows of the 32,768-token run are those of an 8,192-token run ...
    const prefix = 8192;
    const short = await engine.run({ tokenIds: ids.slice(0, prefix), spans: spans.slice(0, 2), topK: 4 });
    let topDiffers = 0;
    let massDiff = 0;
    for (let head = 0; head < QWEN_NARROW.numHeads; head++) {
      for (let query = 0; query < prefix; query += 13) {
        if (topOf(long.summary, head, query).join() !== topOf(short.summary, head, query).join()) topDiffers++;
        for (let s = 0; s < 2; s++) massDiff = Math.max(massDiff, Math.abs(long.summary.spanMass[(head * n + query) * 3 + s] - short.summary.spanMass[(head * prefix + query) * 2 + s]));
      }
    }
    // ... and those equal the reference engine's.
    const reference = new ReferenceEngine(model, 'test');
    const expected = await reference.run({ tokenIds: ids.slice(0, prefix), spans: spans.slice(0, 2), topK: 4 });
    const logitDiff = maxAbsDiff(short.lastLogits, expected.lastLogits);
    const shortMassDiff = maxAbsDiff(short.summary.spanMass, expected.summary.spanMass);
    const rowDiff = maxAbsDiff(await engine.attentionRow(0, 7, prefix - 1), await reference.attentionRow(0, 7, prefix - 1));
    console.log(`32,768 tokens, Qwen2.5 heads: ${long.stats.forwardMs.toFixed(0)} ms, engine process peak RSS ${(memory.peakRssBytes / 2 ** 20).toFixed(0)} MiB; first 8,192 rows vs an 8,192-token run: top-k differs on ${topDiffers}, span mass ${massDiff.toExponential(2)}; that run vs the reference: logits ${logitDiff.toExponential(2)}, span mass ${shortMassDiff.toExponential(2)}, row ${rowDiff.toExponential(2)}`);
    assert.equal(topDiffers, 0);
    assert.ok(massDiff < 1e-5, `prefix span mass differs by ${massDiff}`);
    assert.ok(logitDiff < 1e-3 && shortMassDiff < 1e-4 && rowDiff < 1e-5);
    // The process stayed within what its plan said a 32k window needs (plus Node and ONNX Runtime themselves, ~200 MiB).
    const plan = cpuMemoryPlan(model.spec, n, { weightBytes: residentWeightBytes(totalWeightElements(model), totalWeightBytes(model)), blockBytes: DEFAULT_BLOCK_BYTES, topK: 4, numSpans: 3, layers: 1 });
    console.log(`plan for 32,768 tokens: ${(plan.peakBytes / 2 ** 20).toFixed(0)} MiB in ${plan.blocks} blocks of ${plan.rowsPerBlock} rows`);
    assert.ok(memory.peakRssBytes < plan.peakBytes + 256 * 2 ** 20, `peak RSS ${memory.peakRssBytes} against a plan of ${plan.peakBytes}`);
  } finally {
    engine.dispose();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});
