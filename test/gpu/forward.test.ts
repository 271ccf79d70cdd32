/**
 * The whole WebGPU forward pass against the CPU reference engine and against the golden outputs of
 * an independent float64 PyTorch implementation, for every fixture model and both kernel families;
 * then the properties a user relies on: f16 weight storage, splitting the probabilities and weights
 * to fit small storage bindings, readback that grows with n * (k + spans) and not n * n, exact
 * on-demand rows, layer subsets and cancellation.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { AttentionRequest, ForwardResult } from '../../engine/attention';
import { createNodeGpuEngine } from '../../engine/hosts/nodeWebGpu';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import type { AttentionEngine } from '../../engine/engine';
import type { LoadedModel } from '../../engine/model/modelTypes';
import { FIXTURE_MODELS, KERNEL_VARIANTS, SHORT_GOLDEN_MODELS, fixtureDir, maxAbsDiff, readGolden, seededRandom, withAdapter, type Golden } from './gpuTestSupport';
import { TINY_LONG, writeSyntheticLlama } from './syntheticModel';

const LOGIT_TOLERANCE = 1e-3;
const PROB_TOLERANCE = 1e-4;
const TOP_K = 4;
const SPANS = [{ start: 0, end: 3 }, { start: 10, end: 20 }, { start: 25, end: 26 }];

interface Comparison {
  logitVsGolden: number;
  logitVsCpu: number;
  probVsGolden: number;
  spanVsCpu: number;
  topKRows: number;
  tiedRows: number;
}

/** True when the row's k-th and (k+1)-th best weights (or any two of the top k + 1) are within 1e-6. */
function hasNearTie(row: ArrayLike<number>, length: number, k: number): boolean {
  const sorted = Array.from(row).slice(0, length).sort((a, b) => b - a).slice(0, k + 1);
  return sorted.some((value, i) => i > 0 && sorted[i - 1] - value < 1e-6);
}

/** Compares a GPU result with the CPU engine's and with the golden outputs; asserts top-k equality. */
async function compare(gpu: AttentionEngine, gpuResult: ForwardResult, cpuResult: ForwardResult, golden: Golden | undefined, model: LoadedModel, probsOf: (l: number, h: number, q: number) => Promise<ArrayLike<number>>): Promise<Comparison> {
  const { spec } = model;
  const n = gpuResult.summary.numTokens;
  const H = spec.numHeads;
  const g = gpuResult.summary;
  const c = cpuResult.summary;
  const out: Comparison = {
    logitVsGolden: golden ? maxAbsDiff(gpuResult.lastLogits, golden.lastLogits) : 0,
    logitVsCpu: maxAbsDiff(gpuResult.lastLogits, cpuResult.lastLogits),
    probVsGolden: 0,
    spanVsCpu: Math.max(maxAbsDiff(g.spanMass, c.spanMass), maxAbsDiff(g.spanMassMean, c.spanMassMean), maxAbsDiff(g.spanMassMax, c.spanMassMax)),
    topKRows: 0,
    tiedRows: 0,
  };
  assert.deepEqual(g.layers, c.layers);
  for (let li = 0; li < g.layers.length; li++) {
    const layer = g.layers[li];
    for (let head = 0; head < H; head++) {
      for (let query = 0; query < n; query++) {
        const row = await gpu.attentionRow(layer, head, query);
        const expected = await probsOf(layer, head, query);
        out.probVsGolden = Math.max(out.probVsGolden, maxAbsDiff(row, expected));
        const offset = ((li * H + head) * n + query) * TOP_K;
        if (hasNearTie(expected, query + 1, TOP_K)) {
          out.tiedRows++;
          continue;
        }
        assert.deepEqual([...g.topIndices.subarray(offset, offset + TOP_K)], [...c.topIndices.subarray(offset, offset + TOP_K)], `top-${TOP_K} of layer ${layer} head ${head} query ${query}`);
        out.topKRows++;
      }
    }
  }
  return out;
}

for (const name of FIXTURE_MODELS) {
  for (const kernelVariant of KERNEL_VARIANTS) {
    test(`${name} (${kernelVariant}): WebGPU matches the CPU engine and the PyTorch golden outputs`, async (t) => {
      await withAdapter(t, async () => {
        const golden = readGolden(name);
        const model = await loadModelFolder(fixtureDir(name));
        const request: AttentionRequest = { tokenIds: golden.tokenIds, spans: SPANS, topK: TOP_K };
        const engine = await createNodeGpuEngine(model, { kernelVariant, weightFormat: 'f32' });
        try {
          const result = await engine.run(request);
          const cpuResult = await new ReferenceEngine(model, 'oracle').run(request);
          assert.equal(result.backend.kind, 'webgpu');
          assert.equal(result.backend.kind === 'webgpu' && result.backend.kernelVariant, kernelVariant);
          const diffs = await compare(engine, result, cpuResult, golden, model, async (l, h, q) => golden.attention[l][h][q]);
          console.log(
            `${name} ${kernelVariant}: max |logit diff| vs golden ${diffs.logitVsGolden.toExponential(2)}, vs CPU ${diffs.logitVsCpu.toExponential(2)}; ` +
              `max |prob diff| vs golden ${diffs.probVsGolden.toExponential(2)}; max |span mass diff| vs CPU ${diffs.spanVsCpu.toExponential(2)}; ` +
              `top-${TOP_K} identical on ${diffs.topKRows} rows (${diffs.tiedRows} tied rows skipped)`,
          );
          assert.ok(diffs.logitVsGolden <= LOGIT_TOLERANCE, `logits vs golden ${diffs.logitVsGolden}`);
          assert.ok(diffs.logitVsCpu <= LOGIT_TOLERANCE, `logits vs CPU ${diffs.logitVsCpu}`);
          assert.ok(diffs.probVsGolden <= PROB_TOLERANCE, `probabilities vs golden ${diffs.probVsGolden}`);
          assert.ok(diffs.spanVsCpu <= PROB_TOLERANCE, `span masses vs CPU ${diffs.spanVsCpu}`);
          assert.ok(diffs.topKRows > 0.9 * model.spec.numLayers * model.spec.numHeads * golden.tokenIds.length, 'too many tied rows to compare top-k');
        } finally {
          engine.dispose();
        }
      });
    });
  }
}

for (const name of SHORT_GOLDEN_MODELS) {
  test(`${name}: WebGPU rotates by the run's own length (a short run, then the full one reusing none of its keys)`, async (t) => {
    await withAdapter(t, async () => {
      const model = await loadModelFolder(fixtureDir(name));
      const engine = await createNodeGpuEngine(model, { weightFormat: 'f32' });
      try {
        const cacheKey = 'the same document, grown';
        const diffs: string[] = [];
        for (const golden of [readGolden(name, 'golden-short.json'), readGolden(name)]) {
          const result = await engine.run({ tokenIds: golden.tokenIds, spans: SPANS.filter((sp) => sp.end <= golden.tokenIds.length), topK: TOP_K, cacheKey });
          assert.equal(result.stats.reusedTokens ?? 0, 0, 'keys rotated for another length must not be reused');
          let probDiff = 0;
          for (let l = 0; l < model.spec.numLayers; l++) {
            for (let h = 0; h < model.spec.numHeads; h++) {
              for (let q = 0; q < golden.tokenIds.length; q++) probDiff = Math.max(probDiff, maxAbsDiff(await engine.attentionRow(l, h, q), golden.attention[l][h][q]));
            }
          }
          const logitDiff = maxAbsDiff(result.lastLogits, golden.lastLogits);
          diffs.push(`${golden.tokenIds.length} tokens: |logit diff| ${logitDiff.toExponential(2)}, |prob diff| ${probDiff.toExponential(2)}`);
          assert.ok(logitDiff <= LOGIT_TOLERANCE, `logits vs golden ${logitDiff}`);
          assert.ok(probDiff <= PROB_TOLERANCE, `probabilities vs golden ${probDiff}`);
        }
        console.log(`${name} WebGPU: ${diffs.join('; ')}`);
      } finally {
        engine.dispose();
      }
    });
  });
}

for (const name of ['qwen2-f16', 'gpt2-f16'] as const) {
  test(`${name}: f16 weight storage (packed halves) reproduces the golden outputs`, async (t) => {
    await withAdapter(t, async () => {
      const golden = readGolden(name);
      const model = await loadModelFolder(fixtureDir(name));
      const engine = await createNodeGpuEngine(model, { weightFormat: 'f16' });
      try {
        const result = await engine.run({ tokenIds: golden.tokenIds, spans: SPANS, topK: TOP_K });
        assert.ok(result.backend.kind === 'webgpu' && result.backend.f16Storage, 'weights should be stored as f16');
        let probDiff = 0;
        for (let l = 0; l < model.spec.numLayers; l++) {
          for (let h = 0; h < model.spec.numHeads; h++) {
            for (let q = 0; q < golden.tokenIds.length; q += 7) probDiff = Math.max(probDiff, maxAbsDiff(await engine.attentionRow(l, h, q), golden.attention[l][h][q]));
          }
        }
        const logitDiff = maxAbsDiff(result.lastLogits, golden.lastLogits);
        console.log(`${name} f16 storage: max |logit diff| ${logitDiff.toExponential(2)}, max |prob diff| ${probDiff.toExponential(2)}`);
        assert.ok(logitDiff <= LOGIT_TOLERANCE && probDiff <= PROB_TOLERANCE);
      } finally {
        engine.dispose();
      }
    });
  });
}

for (const kernelVariant of KERNEL_VARIANTS) {
  test(`${kernelVariant}: a tiny storage-binding budget splits rows, keys, probabilities and weights into blocks, with the same results`, async (t) => {
    await withAdapter(t, async () => {
      const name = 'llama-f32';
      const golden = readGolden(name);
      const model = await loadModelFolder(fixtureDir(name));
      const n = golden.tokenIds.length;
      const request: AttentionRequest = { tokenIds: golden.tokenIds, spans: SPANS, topK: TOP_K };
      const whole = await createNodeGpuEngine(model, { kernelVariant });
      // One KV head of the 40 keys per binding (2560 bytes): keys and values in two groups, rows in
      // blocks of 5, probabilities in blocks of 2 heads x 5 queries, weights in chunks of 10 rows.
      const budget = n * model.spec.headDim * 4;
      const split = await createNodeGpuEngine(model, { kernelVariant, maxBindingBytes: budget });
      try {
        const a = await whole.run(request);
        const b = await split.run(request);
        const logitDiff = maxAbsDiff(a.lastLogits, b.lastLogits);
        const topWeightDiff = maxAbsDiff(a.summary.topWeights, b.summary.topWeights);
        const spanDiff = maxAbsDiff(a.summary.spanMass, b.summary.spanMass);
        const goldenDiff = maxAbsDiff(b.lastLogits, golden.lastLogits);
        console.log(`${kernelVariant} split (${budget}-byte bindings): vs unsplit max |logit diff| ${logitDiff.toExponential(2)}, top weights ${topWeightDiff.toExponential(2)}, span mass ${spanDiff.toExponential(2)}; vs golden logits ${goldenDiff.toExponential(2)}`);
        assert.deepEqual([...b.summary.topIndices], [...a.summary.topIndices]);
        assert.ok(logitDiff <= 1e-5 && topWeightDiff <= 1e-6 && spanDiff <= 1e-6 && goldenDiff <= LOGIT_TOLERANCE);
        const row = await split.attentionRow(1, 3, n - 1);
        assert.ok(maxAbsDiff(row, golden.attention[1][3][n - 1]) <= PROB_TOLERANCE);
      } finally {
        whole.dispose();
        split.dispose();
      }
    });
  });
}

// The register run keeps each layer's probabilities in one block; the tiled run caps bindings at
// two heads' worth, which exercises the split by head blocks (the query-block split is tested above).
for (const kernelVariant of KERNEL_VARIANTS) {
  test(`n = 512 (${kernelVariant}): readback grows with n * (k + spans), far below layers * heads * n * n, and rows are exact`, async (t) => {
    await withAdapter(t, async () => {
      const folder = writeSyntheticLlama(TINY_LONG, 5);
      try {
        const model = await loadModelFolder(folder);
        const { spec } = model;
        const n = 512;
        const random = seededRandom(3);
        const tokenIds = Array.from({ length: n }, () => Math.floor(random() * spec.vocabSize));
        const spans = [{ start: 0, end: 40 }, { start: 100, end: 180 }, { start: 400, end: 401 }];
        const request: AttentionRequest = { tokenIds, spans, topK: 8 };
        const engine = await createNodeGpuEngine(model, { kernelVariant, maxBindingBytes: kernelVariant === 'tiled' ? 2 * n * n * 4 : undefined });
        const cpu = new ReferenceEngine(model, 'oracle');
        try {
          const result = await engine.run(request);
          const cpuResult = await cpu.run(request);
          const L = spec.numLayers;
          const H = spec.numHeads;
          const S = spans.length;
          const expectedBytes = spec.vocabSize * 4 + L * (2 * H * n * 8 + H * n * S + 2 * n * S) * 4;
          const fullTensorBytes = L * H * n * n * 4;
          console.log(`n=${n} ${kernelVariant}: readback ${result.stats.readbackBytes} bytes vs full attention ${fullTensorBytes} bytes (${(fullTensorBytes / result.stats.readbackBytes).toFixed(1)}x less)`);
          assert.equal(result.stats.readbackBytes, expectedBytes);
          assert.ok(result.stats.readbackBytes * 10 < fullTensorBytes);

          let rowDiff = 0;
          for (const [layer, head, query] of [[0, 0, 0], [1, 3, 511], [0, 2, 300], [1, 1, 77]]) {
            const row = await engine.attentionRow(layer, head, query);
            const cpuRow = await cpu.attentionRow(layer, head, query);
            assert.equal(row.length, query + 1);
            const sum = row.reduce((a, b) => a + b, 0);
            assert.ok(Math.abs(sum - 1) <= 1e-5, `row ${layer}:${head}:${query} sums to ${sum}`);
            rowDiff = Math.max(rowDiff, maxAbsDiff(row, cpuRow));
          }
          const logitDiff = maxAbsDiff(result.lastLogits, cpuResult.lastLogits);
          const spanDiff = maxAbsDiff(result.summary.spanMass, cpuResult.summary.spanMass);
          const topWeightDiff = maxAbsDiff(result.summary.topWeights, cpuResult.summary.topWeights);
          console.log(`n=${n} ${kernelVariant}: max |row diff| vs CPU ${rowDiff.toExponential(2)}, logits ${logitDiff.toExponential(2)}, span mass ${spanDiff.toExponential(2)}, top weights ${topWeightDiff.toExponential(2)}`);
          assert.ok(rowDiff <= PROB_TOLERANCE && logitDiff <= LOGIT_TOLERANCE && spanDiff <= PROB_TOLERANCE && topWeightDiff <= PROB_TOLERANCE);
        } finally {
          engine.dispose();
        }
      } finally {
        fs.rmSync(folder, { recursive: true, force: true });
      }
    });
  });
}

test('a layer subset summarises only those layers, in the order asked', async (t) => {
  await withAdapter(t, async () => {
    const golden = readGolden('qwen2-f16');
    const model = await loadModelFolder(fixtureDir('qwen2-f16'));
    const engine = await createNodeGpuEngine(model);
    try {
      const all = await engine.run({ tokenIds: golden.tokenIds, spans: SPANS, topK: TOP_K });
      const subset = await engine.run({ tokenIds: golden.tokenIds, spans: SPANS, topK: TOP_K, layers: [1, 0] });
      const n = golden.tokenIds.length;
      const perLayer = model.spec.numHeads * n * TOP_K;
      assert.deepEqual(subset.summary.layers, [1, 0]);
      assert.deepEqual([...subset.summary.topIndices.subarray(0, perLayer)], [...all.summary.topIndices.subarray(perLayer, 2 * perLayer)]);
      const one = await engine.run({ tokenIds: golden.tokenIds, spans: SPANS, topK: TOP_K, layers: [1] });
      assert.ok(one.stats.readbackBytes < all.stats.readbackBytes);
      assert.ok(maxAbsDiff(one.lastLogits, all.lastLogits) === 0);
    } finally {
      engine.dispose();
    }
  });
});

test('an aborted signal rejects with AbortError, and the engine keeps working afterwards', async (t) => {
  await withAdapter(t, async () => {
    const golden = readGolden('gpt2-f32');
    const model = await loadModelFolder(fixtureDir('gpt2-f32'));
    const engine = await createNodeGpuEngine(model);
    try {
      const controller = new AbortController();
      controller.abort();
      await assert.rejects(engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 2 }, controller.signal), { name: 'AbortError' });
      const result = await engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 2 });
      assert.ok(maxAbsDiff(result.lastLogits, golden.lastLogits) <= LOGIT_TOLERANCE);
      await assert.rejects(engine.run({ tokenIds: [model.spec.vocabSize], spans: [], topK: 2 }), /outside the model's vocabulary/);
    } finally {
      engine.dispose();
    }
  });
});

test('a lost device surfaces as an error from run(), not a hang', async (t) => {
  await withAdapter(t, async () => {
    const golden = readGolden('llama-f32');
    const model = await loadModelFolder(fixtureDir('llama-f32'));
    const engine = await createNodeGpuEngine(model);
    try {
      await engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 2 });
      // Simulates a driver reset or a GPU process crash: something other than dispose() destroys the device.
      (engine as unknown as { device: GPUDevice }).device.destroy();
      await (engine as unknown as { device: GPUDevice }).device.lost;
      await assert.rejects(engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 2 }), /GPU device was lost/);
      await assert.rejects(engine.attentionRow(0, 0, 0), /GPU device was lost/);
    } finally {
      engine.dispose();
    }
  });
});

test('a device lost in the middle of an analysis ends that run with a message; a new engine on a new device works', async (t) => {
  await withAdapter(t, async () => {
    const golden = readGolden('qwen2-f16');
    const model = await loadModelFolder(fixtureDir('qwen2-f16'));
    const engine = await createNodeGpuEngine(model);
    try {
      const running = engine.run({ tokenIds: golden.tokenIds, spans: [{ start: 0, end: 4 }], topK: 2 });
      // Lost while the run's layers are queued: the run must settle, with the loss as its error.
      (engine as unknown as { device: GPUDevice }).device.destroy();
      await assert.rejects(running, /GPU device was lost|forward pass failed/);
    } finally {
      engine.dispose();
    }
    // What the editor does next: a fresh device and engine.
    const again = await createNodeGpuEngine(model);
    try {
      const result = await again.run({ tokenIds: golden.tokenIds, spans: [], topK: 2 });
      assert.ok(maxAbsDiff(result.lastLogits, golden.lastLogits) <= LOGIT_TOLERANCE);
    } finally {
      again.dispose();
    }
  });
});
