/**
 * Weights past 2 GiB: a Qwen2.5-Coder-1.5B-shaped random model (all 28 layers, the real vocabulary,
 * one 3.1 GB BF16 model.safetensors as the real one ships) loads and runs on the CPU engine, in its
 * own process as the editor runs it, and gives the reference engine's logits and attention. The
 * engines run one after the other, so that the machine holds one copy of the weights at a time.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { NodeOnnxEngine } from '../../engine/hosts/nodeOnnx';
import { parseModelConfig } from '../../engine/model/modelConfig';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import { maxAbsDiff } from '../gpu/gpuTestSupport';
import { REAL_SHAPES, syntheticParameterCount, writeSyntheticLlama } from '../gpu/syntheticModel';

test('a 3.1 GB Qwen2.5-Coder-1.5B-shaped model runs on the CPU engine and equals the reference', async () => {
  const shape = REAL_SHAPES['qwen2.5-coder-1.5b'];
  const folder = writeSyntheticLlama(shape, 5);
  try {
    const bytes = fs.statSync(path.join(folder, 'model.safetensors')).size;
    assert.ok(bytes > 3e9, `the weights file is ${bytes} bytes`);
    const spec = parseModelConfig(JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8')), 'config.json');
    const tokenIds = [17, 151, 99_000, 4096, 65_535, 8, 123_456, 42];
    const request = { tokenIds, spans: [{ start: 1, end: 3 }], topK: 3 };

    // The CPU engine first: its process reads the weights itself; this process holds none of them.
    const engine = await NodeOnnxEngine.create({ spec, folder }, { threads: 2, reason: 'test' });
    let ours;
    let rows: Float32Array[];
    let memory;
    try {
      ours = await engine.run(request);
      rows = [await engine.attentionRow(0, 0, 7), await engine.attentionRow(27, 11, 7)];
      memory = await engine.memoryUsage();
    } finally {
      engine.dispose();
    }
    const f32 = syntheticParameterCount(shape) * 4;
    console.log(`CPU engine on a ${(bytes / 1e9).toFixed(2)} GB BF16 model: loaded in ${(engine.loadMs / 1000).toFixed(1)} s, engine process peak RSS ${(memory.peakRssBytes / 1e9).toFixed(2)} GB = ${(memory.peakRssBytes / f32).toFixed(2)}x the float32 weights (${(f32 / 1e9).toFixed(2)} GB)`);

    // Then the reference engine, the oracle, on the same tokens.
    const reference = new ReferenceEngine(await loadModelFolder(folder), 'test');
    const expected = await reference.run(request);
    const logitDiff = maxAbsDiff(ours.lastLogits, expected.lastLogits);
    const rowDiff = Math.max(maxAbsDiff(rows[0], await reference.attentionRow(0, 0, 7)), maxAbsDiff(rows[1], await reference.attentionRow(27, 11, 7)));
    const massDiff = maxAbsDiff(ours.summary.spanMass, expected.summary.spanMass);
    console.log(`against the reference: |logit diff| ${logitDiff.toExponential(2)}, |row diff| ${rowDiff.toExponential(2)}, span mass ${massDiff.toExponential(2)}`);
    assert.ok(logitDiff < 1e-2, `logits differ by ${logitDiff}`);
    assert.ok(rowDiff < 1e-4 && massDiff < 1e-4, `rows ${rowDiff}, span mass ${massDiff}`);
    assert.deepEqual(Array.from(ours.summary.topIndices), Array.from(expected.summary.topIndices));
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
});
