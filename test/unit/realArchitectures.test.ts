/**
 * The 2026 architectures at their real size: random-weight models with the real configs of
 * Qwen3-0.6B (per-head q/k norms, head_dim 128 apart from hidden / heads, 40,960 positions),
 * Llama-3.2-1B (llama3 rotary scaling, 131,072 positions) and Gemma-3-1B (local and global layers
 * with their own rotary bases, four norms a layer, GeGLU), all layers and the real vocabularies in
 * BF16 as they ship, load through the loader a download goes through and run on the CPU engine in
 * its own process as the editor runs it, giving the reference engine's logits and attention. One
 * engine at a time, so that the machine holds one copy of the weights at a time.
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

test('the 2026 shapes have the parameter counts their model cards give', () => {
  // Qwen3-0.6B: 0.44B non-embedding parameters (tied 151,936 x 1024 embedding on top); Llama-3.2-1B: 1,235,814,400.
  const qwen3 = REAL_SHAPES['qwen3-0.6b'];
  assert.equal(Math.round((syntheticParameterCount(qwen3) - qwen3.vocabSize * qwen3.hiddenSize) / 1e7) / 100, 0.44);
  assert.equal(syntheticParameterCount(REAL_SHAPES['llama-3.2-1b']), 1_235_814_400);
  // Gemma-3-1B: "1B" (its 262,144 x 1152 embedding a third of it).
  assert.equal(Math.round(syntheticParameterCount(REAL_SHAPES['gemma-3-1b']) / 1e8) / 10, 1);
});

for (const [name, rows, expectSpec] of [
  ['qwen3-0.6b', [[0, 0], [27, 15]], { family: 'qwen3', headDim: 128, qkNorm: true, maxPositions: 40960 }],
  ['llama-3.2-1b', [[0, 0], [15, 31]], { family: 'llama', headDim: 64, maxPositions: 131072, ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } }],
  // A local layer (0, base 1e4) and a global one (5, base 1e6); head_dim 256, the 262,144-token vocabulary.
  ['gemma-3-1b', [[0, 0], [5, 3]], { family: 'gemma3', headDim: 256, localRopeTheta: 10000, maxPositions: 32768, postNorms: true }],
] as const) {
  test(`a ${name}-shaped model (all layers, the real vocabulary, BF16) runs on the CPU engine process and equals the reference`, async () => {
    const shape = REAL_SHAPES[name];
    const folder = writeSyntheticLlama(shape, 21);
    try {
      const spec = parseModelConfig(JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8')), 'config.json');
      for (const [key, value] of Object.entries(expectSpec)) assert.deepEqual(spec[key as keyof typeof spec], value, key);
      const bytes = fs.statSync(path.join(folder, 'model.safetensors')).size;
      const tokenIds = [17, 151, 99_000, 4096, 65_535, 8, 123_456, 42, 7, 100_001];
      const last = tokenIds.length - 1;
      const request = { tokenIds, spans: [{ start: 1, end: 3 }], topK: 3 };

      const engine = await NodeOnnxEngine.create({ spec, folder }, { threads: 2, reason: 'test' });
      let ours;
      let ourRows: Float32Array[];
      try {
        ours = await engine.run(request);
        ourRows = [];
        for (const [layer, head] of rows) ourRows.push(await engine.attentionRow(layer, head, last));
      } finally {
        engine.dispose();
      }

      const reference = new ReferenceEngine(await loadModelFolder(folder), 'test');
      const expected = await reference.run(request);
      const logitDiff = maxAbsDiff(ours.lastLogits, expected.lastLogits);
      let rowDiff = 0;
      for (const [i, [layer, head]] of rows.entries()) rowDiff = Math.max(rowDiff, maxAbsDiff(ourRows[i], await reference.attentionRow(layer, head, last)));
      const massDiff = maxAbsDiff(ours.summary.spanMass, expected.summary.spanMass);
      console.log(`${name}: ${(bytes / 1e9).toFixed(2)} GB BF16, ${spec.numLayers} layers x ${spec.numHeads} heads (head_dim ${spec.headDim}); CPU engine vs reference: |logit diff| ${logitDiff.toExponential(2)}, |row diff| ${rowDiff.toExponential(2)}, span mass ${massDiff.toExponential(2)}`);
      assert.ok(logitDiff < 1e-2, `logits differ by ${logitDiff}`);
      assert.ok(rowDiff < 1e-4 && massDiff < 1e-4, `rows ${rowDiff}, span mass ${massDiff}`);
      assert.deepEqual(Array.from(ours.summary.topIndices), Array.from(expected.summary.topIndices));
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
}
