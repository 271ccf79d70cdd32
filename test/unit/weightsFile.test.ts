/**
 * The CPU engine's float32 weights files (engine/onnx/weightsFile.ts): one per model, found again
 * while the model's files are unchanged, made again when they change, the least recently used
 * removed; an engine on the file gives what an engine with the weights in memory gives.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { OnnxRuntimeEngine } from '../../engine/onnx/onnxEngine';
import { distinctWeights } from '../../engine/onnx/onnxGraph';
import { findWeightsFile, weightsIdentity, writeWeightsFile } from '../../engine/onnx/weightsFile';
import { toFloat32 } from '../../engine/model/tensorData';
import { maxAbsDiff } from '../gpu/gpuTestSupport';
import { FIXTURE_MODELS, fixtureDir, readGolden } from './fixtureModels';

function copyFolder(from: string): string {
  const to = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-weights-model-'));
  for (const name of fs.readdirSync(from)) fs.copyFileSync(path.join(from, name), path.join(to, name));
  return to;
}

test('a weights file holds every tensor as float32 and is found again until the model changes', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-weights-'));
  const folder = copyFolder(fixtureDir('llama-bf16'));
  try {
    const model = await loadModelFolder(folder);
    assert.equal(findWeightsFile(root, folder), undefined);
    const file = writeWeightsFile(root, folder, model, distinctWeights(model));
    const bytes = fs.readFileSync(path.join(file.dir, file.fileName));
    for (const tensor of distinctWeights(model)) {
      const at = file.locate(tensor)!;
      assert.equal(at.offset % 4096, 0);
      const stored = new Float32Array(bytes.buffer.slice(bytes.byteOffset + at.offset, bytes.byteOffset + at.offset + at.length));
      assert.deepEqual(Array.from(stored), Array.from(toFloat32(tensor)), tensor.name);
    }
    assert.equal(findWeightsFile(root, folder)?.dir, file.dir);
    // A changed config.json is another model: the old file is not used for it.
    const identity = weightsIdentity(folder);
    const config = JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify({ ...config, rms_norm_eps: 1e-6 }));
    assert.notEqual(weightsIdentity(folder), identity);
    assert.equal(findWeightsFile(root, folder), undefined);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

test('only the two most recently used weights files are kept', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-weights-'));
  try {
    const dirs: string[] = [];
    for (const name of FIXTURE_MODELS.slice(0, 3)) {
      const model = await loadModelFolder(fixtureDir(name));
      dirs.push(writeWeightsFile(root, fixtureDir(name), model, distinctWeights(model)).dir);
    }
    assert.deepEqual(fs.readdirSync(root).sort(), dirs.slice(1).map((d) => path.basename(d)).sort());
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('an engine on the weights file gives what an engine with the weights in memory gives', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-weights-'));
  const name = 'qwen2-f16';
  const model = await loadModelFolder(fixtureDir(name));
  const weightsFile = writeWeightsFile(root, fixtureDir(name), model, distinctWeights(model));
  const inMemory = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test' });
  const onFile = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'test', weightsFile });
  try {
    const request = { tokenIds: readGolden(name).tokenIds, spans: [{ start: 1, end: 4 }], topK: 3 };
    const [a, b] = [await inMemory.run(request), await onFile.run(request)];
    assert.ok(maxAbsDiff(a.lastLogits, b.lastLogits) < 1e-5);
    assert.deepEqual(Array.from(a.summary.topIndices), Array.from(b.summary.topIndices));
    const [ka, kb] = [await inMemory.knockout({ query: 20, spans: [{ start: 1, end: 4 }] }), await onFile.knockout({ query: 20, spans: [{ start: 1, end: 4 }] })];
    assert.ok(Math.abs(ka.spans[0].kl - kb.spans[0].kl) < 1e-5);
    const [ea, eb] = [await inMemory.spanEffect({ start: 1, end: 4 }), await onFile.spanEffect({ start: 1, end: 4 })];
    assert.ok(Math.abs(ea.tokens[5].kl - eb.tokens[5].kl) < 1e-5);
    const weighted = { ...request, weighting: 'valueWeighted' as const };
    assert.ok(maxAbsDiff((await inMemory.run(weighted)).summary.spanMass, (await onFile.run(weighted)).summary.spanMass) < 1e-5);
  } finally {
    inMemory.dispose();
    onFile.dispose();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
