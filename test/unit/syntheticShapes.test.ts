/**
 * The random-weight models the benchmarks and long-context tests build with the real configs
 * (test/gpu/syntheticModel.ts): they load through the same loader as a downloaded model, with the
 * family, biases and dtype of the model they stand for.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { toFloat32 } from '../../engine/model/tensorData';
import { REAL_SHAPES, syntheticParameterCount, writeSyntheticLlama } from '../gpu/syntheticModel';

test('the real shapes have the parameter counts of the models they stand for', () => {
  // Published sizes: SmolLM2-135M 134.5M, Qwen2.5-Coder-0.5B 494M, Qwen2.5-Coder-1.5B 1.54B (tied embeddings).
  assert.equal(Math.round(syntheticParameterCount(REAL_SHAPES['smollm2-135m']) / 1e5) / 10, 134.5);
  assert.equal(Math.round(syntheticParameterCount(REAL_SHAPES['qwen2.5-coder-0.5b']) / 1e6), 494);
  assert.equal(Math.round(syntheticParameterCount(REAL_SHAPES['qwen2.5-coder-1.5b']) / 1e7) / 100, 1.54);
});

test('a Qwen2-shaped BF16 model loads as Qwen2 with q/k/v biases and BF16 weights', async () => {
  const shape = { ...REAL_SHAPES['qwen2.5-coder-0.5b'], vocabSize: 300, hiddenSize: 56, numLayers: 2, intermediateSize: 64, maxPositions: 256 };
  const folder = writeSyntheticLlama(shape, 3);
  try {
    const config = JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['Qwen2ForCausalLM']);
    assert.equal(config.torch_dtype, 'bfloat16');
    // BF16 on disk: 2 bytes a value.
    assert.ok(fs.statSync(path.join(folder, 'model.safetensors')).size < syntheticParameterCount(shape) * 2 + 16384);
    const model = await loadModelFolder(folder);
    assert.equal(model.spec.family, 'qwen2');
    assert.equal(model.spec.numHeads, 14);
    assert.equal(model.spec.numKvHeads, 2);
    assert.equal(model.spec.headDim, 4);
    assert.equal(model.spec.qkvBias, true);
    assert.equal(model.spec.tieWordEmbeddings, true);
    const q = model.weights.layers[0].q.weight;
    assert.equal(q.dtype, 'BF16');
    assert.ok(model.weights.layers[0].q.bias, 'q_proj has its bias');
    // The values are bfloat16 roundings of uniforms within the layer's scale, not zeros or garbage.
    const values = toFloat32(q);
    const max = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(max > 0.1 && max <= 2 * Math.sqrt(3 / 56) * 1.01, `max |q_proj| = ${max}`);
    assert.equal(new Set(values).size > values.length / 4, true);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
});
