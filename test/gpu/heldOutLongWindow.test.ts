/**
 * A held-out file of 6,000 tokens in one window (issue "whole files in one pass"): the first 6,000
 * tokens (default tokenizer) of the longest Python file of the default model's validation split,
 * through a random-weight Llama with an 8,192-token context, on the WebGPU engine (bindings capped
 * at 128 MiB, the smallest adapters' limit) and the CPU engine (ONNX Runtime), each compared with
 * the TypeScript reference: the same top-k and span masses within the fidelity tolerances.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AttentionRequest, ForwardResult } from '../../engine/attention';
import { createNodeGpuEngine } from '../../engine/hosts/nodeWebGpu';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { OnnxRuntimeEngine } from '../../engine/onnx/onnxEngine';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import { loadTokenizerFile } from '../../src/node/tokenizer';
import { validationFiles } from '../../bench/faithfulness';
import { maxAbsDiff, repoRoot, withAdapter } from './gpuTestSupport';
import { writeSyntheticLlama } from './syntheticModel';

const N = 6000;

test('a held-out 6,000-token file runs in one window on WebGPU and on the CPU engine and matches the reference', async (t) => {
  await withAdapter(t, async () => {
    const files = validationFiles().map((f) => ({ ...f, size: fs.statSync(f.file).size })).sort((a, b) => b.size - a.size);
    assert.ok(files.length > 0, 'the validation split is drawn from /usr/lib/python3.11 (python3 is part of the machine image)');
    const tokenizer = await loadTokenizerFile(path.join(repoRoot, 'default-model', 'tokenizer.json'));
    const ids = tokenizer.encodeWithTokens(fs.readFileSync(files[0].file, 'utf8')).ids;
    assert.ok(ids.length >= N, `${files[0].corpusPath} has ${ids.length} tokens`);
    const folder = writeSyntheticLlama({ vocabSize: 4096, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 128, maxPositions: 8192, ropeTheta: 10000 }, 7);
    const model = await loadModelFolder(folder);
    const request: AttentionRequest = { tokenIds: ids.slice(0, N), spans: [{ start: 0, end: 40 }, { start: 1200, end: 1260 }, { start: 4000, end: 4016 }], topK: 8 };
    const reference = await new ReferenceEngine(model, 'oracle').run(request);
    const onnx = await OnnxRuntimeEngine.create(model, { threads: 2, reason: 'test' });
    // Weights as stored (f32), so the comparison is of the kernels, not of an f16 copy of the weights.
    const gpu = await createNodeGpuEngine(model, { maxBindingBytes: 128 * 2 ** 20, weightFormat: 'f32' });
    try {
      const compare = (name: string, result: ForwardResult, tolerance: number) => {
        const s = result.summary;
        assert.equal(s.numTokens, N, `${name}: one window of ${N} tokens`);
        const mass = maxAbsDiff(s.spanMass, reference.summary.spanMass);
        const top = maxAbsDiff(s.topWeights, reference.summary.topWeights);
        const logits = maxAbsDiff(result.lastLogits, reference.lastLogits);
        console.log(`${name}, ${N} tokens of ${files[0].corpusPath} in one window: span mass ${mass.toExponential(2)}, top weights ${top.toExponential(2)}, last logits ${logits.toExponential(2)} from the reference; readback ${(result.stats.readbackBytes / 2 ** 20).toFixed(1)} MiB, forward ${Math.round(result.stats.forwardMs)} ms`);
        assert.ok(mass <= tolerance && top <= tolerance && logits <= 10 * tolerance, `${name}: ${mass} ${top} ${logits}`);
      };
      compare('CPU engine (ONNX Runtime)', await onnx.run(request), 1e-4);
      compare('WebGPU', await gpu.run(request), 1e-4);
    } finally {
      onnx.dispose();
      gpu.dispose();
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
