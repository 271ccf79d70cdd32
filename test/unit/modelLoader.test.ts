import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModelFormatError } from '../../engine/model/modelFormatError';
import { loadModel } from '../../engine/model/modelLoader';
import { hasSeparateLmHead, type HostTensor, type LoadedModel } from '../../engine/model/modelTypes';
import { bytesAsFile } from '../../engine/model/randomAccessFile';
import { readSafetensors } from '../../engine/model/safetensors';
import { toFloat32 } from '../../engine/model/tensorData';
import { loadModelFolder, ModelFolder } from '../../engine/hosts/nodeModelFolder';
import { FIXTURE_MODELS, fixtureDir, MemorySource, writeSafetensors, type RawTensor } from './fixtureModels';

async function rejects(promise: Promise<unknown>, file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ModelFormatError, `expected ModelFormatError, got ${String(error)}`);
    assert.equal(error.file, file);
    assert.match(error.message, pattern);
    return true;
  });
}

/** Rewrites one safetensors file of a MemorySource through `edit` on its tensors. */
async function editWeights(source: MemorySource, file: string, edit: (tensors: Record<string, RawTensor>) => void): Promise<void> {
  const parsed = await readSafetensors(bytesAsFile(source.files.get(file)!), file);
  const tensors: Record<string, RawTensor> = {};
  for (const name of parsed.entries.keys()) {
    const t = (await parsed.readTensor(name))!;
    tensors[name] = { dtype: t.dtype, shape: [...t.shape], bytes: t.bytes.slice() };
  }
  edit(tensors);
  source.files.set(file, writeSafetensors(tensors));
}

test('every fixture loads with the shapes its config implies', async () => {
  for (const name of FIXTURE_MODELS) {
    const model = await loadModelFolder(fixtureDir(name));
    const { spec, weights } = model;
    assert.equal(model.origin, fixtureDir(name));
    assert.equal(weights.layers.length, spec.numLayers, name);
    assert.deepEqual(weights.tokenEmbedding.shape, [spec.vocabSize, spec.hiddenSize], name);
    assert.deepEqual(weights.lmHead.shape, [spec.vocabSize, spec.hiddenSize], name);
    for (const layer of weights.layers) {
      assert.deepEqual(layer.q.weight.shape, [spec.numHeads * spec.headDim, spec.hiddenSize], name);
      assert.deepEqual(layer.k.weight.shape, [spec.numKvHeads * spec.headDim, spec.hiddenSize], name);
      assert.deepEqual(layer.o.weight.shape, [spec.hiddenSize, spec.numHeads * spec.headDim], name);
      assert.deepEqual(layer.up.weight.shape, [spec.intermediateSize, spec.hiddenSize], name);
      assert.deepEqual(layer.down.weight.shape, [spec.hiddenSize, spec.intermediateSize], name);
      assert.equal(layer.q.bias !== undefined, spec.qkvBias, name);
      assert.equal(layer.gate !== undefined, spec.mlp === 'swiglu', name);
    }
    // A tied head is the embedding itself, unless the load folded a multiplier into one of them (Granite, Gemma).
    assert.equal(weights.lmHead === weights.tokenEmbedding, !hasSeparateLmHead(spec), name);
    assert.equal(weights.positionEmbedding !== undefined, spec.positional === 'learned', name);
  }
});

test('keeps the stored dtype of each fixture', async () => {
  assert.equal((await loadModelFolder(fixtureDir('llama-bf16'))).weights.layers[0].q.weight.dtype, 'BF16');
  assert.equal((await loadModelFolder(fixtureDir('qwen2-f16'))).weights.layers[1].k.bias!.dtype, 'F16');
});

test('GPT-2 Conv1D weights are transposed to [out, in] and c_attn is split into q, k, v', async () => {
  const file = path.join(fixtureDir('gpt2-f32'), 'model.safetensors');
  const raw = await readSafetensors(bytesAsFile(new Uint8Array(fs.readFileSync(file))), file);
  const cAttn = toFloat32((await raw.readTensor('transformer.h.1.attn.c_attn.weight'))!); // [in 64, out 192]
  const cAttnBias = toFloat32((await raw.readTensor('transformer.h.1.attn.c_attn.bias'))!);
  const model = await loadModelFolder(fixtureDir('gpt2-f32'));
  const d = 64;
  const parts = [model.weights.layers[1].q, model.weights.layers[1].k, model.weights.layers[1].v];
  parts.forEach((part, index) => {
    const w = toFloat32(part.weight);
    for (const [out, inp] of [[0, 0], [5, 17], [63, 63], [31, 2]]) {
      assert.equal(w[out * d + inp], cAttn[inp * 3 * d + index * d + out]);
    }
    assert.deepEqual([...toFloat32(part.bias!)], [...cAttnBias.subarray(index * d, (index + 1) * d)]);
  });
});

/** Every tensor object of a loaded model, each once (tied embeddings are one object). */
function allTensors(model: LoadedModel): HostTensor[] {
  const w = model.weights;
  const found = new Set<HostTensor | undefined>([w.tokenEmbedding, w.positionEmbedding, w.lmHead, w.finalNorm.weight, w.finalNorm.bias]);
  for (const layer of w.layers) {
    for (const part of [layer.attnNorm, layer.mlpNorm, layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]) {
      found.add(part?.weight);
      found.add(part?.bias);
    }
  }
  found.delete(undefined);
  return [...found] as HostTensor[];
}

test('each tensor read as stored says where its bytes lie on disk, and the bytes there are its own', async () => {
  for (const name of ['llama-f32', 'qwen2-sharded', 'gpt2-f32']) {
    const model = await loadModelFolder(fixtureDir(name));
    const tensors = allTensors(model);
    const withSource = tensors.filter((t) => t.source);
    for (const t of withSource) {
      const { file, offset, length } = t.source!;
      assert.ok(path.isAbsolute(file) && path.dirname(file) === fixtureDir(name) && file.endsWith('.safetensors'), `${t.name}: ${file}`);
      assert.equal(length, t.bytes.byteLength, t.name);
      const onDisk = Buffer.alloc(length);
      const fd = fs.openSync(file, 'r');
      try {
        assert.equal(fs.readSync(fd, onDisk, 0, length, offset), length, t.name);
      } finally {
        fs.closeSync(fd);
      }
      assert.ok(onDisk.equals(t.bytes), `${t.name}: the bytes at offset ${offset} of ${file} differ from the tensor's`);
    }
    if (name === 'gpt2-f32') {
      // Conv1D weights are transposed and c_attn is split at load time: those bytes are on no disk.
      assert.equal(model.weights.layers[0].q.weight.source, undefined);
      assert.equal(model.weights.layers[0].up.weight.source, undefined);
      assert.ok(model.weights.layers[0].attnNorm.weight.source && model.weights.positionEmbedding!.source);
    } else {
      assert.equal(withSource.length, tensors.length, `${name}: every Llama-family tensor is used as stored`);
    }
    if (name === 'qwen2-sharded') assert.equal(new Set(withSource.map((t) => t.source!.file)).size, 2, 'both shards are referenced');
  }
});

test('a missing tensor is named with the file and its expected shape', async () => {
  const source = MemorySource.fromFixture('llama-f32');
  await editWeights(source, 'model.safetensors', (t) => delete t['model.layers.1.mlp.up_proj.weight']);
  await rejects(loadModel(source), 'memory/llama-f32/model.safetensors', /tensor model\.layers\.1\.mlp\.up_proj\.weight is missing from memory\/llama-f32\/model\.safetensors \(expected shape \[128, 64\]\)/);
});

test('an untied model without lm_head.weight is refused', async () => {
  const source = MemorySource.fromFixture('llama-bf16');
  await editWeights(source, 'model.safetensors', (t) => delete t['lm_head.weight']);
  await rejects(loadModel(source), 'memory/llama-bf16/model.safetensors', /tensor lm_head\.weight is missing/);
});

test('a shape mismatch names tensor, file, actual and expected shape', async () => {
  const source = MemorySource.fromFixture('qwen2-f16');
  await editWeights(source, 'model.safetensors', (t) => {
    const bias = t['model.layers.0.self_attn.k_proj.bias'];
    t['model.layers.0.self_attn.k_proj.bias'] = { ...bias, shape: [4, 8] };
  });
  await rejects(
    loadModel(source),
    'memory/qwen2-f16/model.safetensors',
    /tensor model\.layers\.0\.self_attn\.k_proj\.bias in memory\/qwen2-f16\/model\.safetensors has shape \[4, 8\] but config\.json implies \[32\]/,
  );
});

test('GPT-2 names without the "transformer." prefix load, extra buffers are ignored', async () => {
  const model = await loadModelFolder(fixtureDir('gpt2-f16'));
  assert.equal(model.weights.layers.length, 2);
});

test('shard names in the index must be plain file names', async () => {
  for (const bad of ['../model-00001-of-00002.safetensors', 'sub/model.safetensors', 'C:\\x.safetensors', 'model.bin']) {
    const source = MemorySource.fromFixture('qwen2-sharded');
    const index = JSON.parse(await source.readText('model.safetensors.index.json'));
    index.weight_map['model.norm.weight'] = bad;
    source.setText('model.safetensors.index.json', JSON.stringify(index));
    await rejects(loadModel(source), 'memory/qwen2-sharded/model.safetensors.index.json', /maps tensor model\.norm\.weight to .* which is not a plain \.safetensors file name/);
  }
});

test('an index whose shard is missing, or whose tensor is not in its shard, is refused', async () => {
  const missing = MemorySource.fromFixture('qwen2-sharded');
  missing.files.delete('model-00002-of-00002.safetensors');
  await rejects(loadModel(missing), 'memory/qwen2-sharded/model-00002-of-00002.safetensors', /lists the shard model-00002-of-00002\.safetensors, but .* does not exist/);

  const moved = MemorySource.fromFixture('qwen2-sharded');
  const index = JSON.parse(await moved.readText('model.safetensors.index.json'));
  const [name, shard] = Object.entries(index.weight_map as Record<string, string>)[0];
  index.weight_map[name] = shard.startsWith('model-00001') ? 'model-00002-of-00002.safetensors' : 'model-00001-of-00002.safetensors';
  moved.setText('model.safetensors.index.json', JSON.stringify(index));
  await rejects(loadModel(moved), `memory/qwen2-sharded/${index.weight_map[name]}`, new RegExp(`says tensor ${name.replace(/\./g, '\\.')} is in`));

  const noMap = MemorySource.fromFixture('qwen2-sharded');
  noMap.setText('model.safetensors.index.json', '{"metadata": {}}');
  await rejects(loadModel(noMap), 'memory/qwen2-sharded/model.safetensors.index.json', /no "weight_map" object/);
});

test('a folder without weights, or with a broken config, is refused', async () => {
  const noWeights = MemorySource.fromFixture('llama-f32');
  noWeights.files.delete('model.safetensors');
  await rejects(loadModel(noWeights), 'memory/llama-f32/model.safetensors', /has neither model\.safetensors nor model\.safetensors\.index\.json/);

  const badConfig = MemorySource.fromFixture('llama-f32');
  badConfig.setText('config.json', '{"architectures": [');
  await rejects(loadModel(badConfig), 'memory/llama-f32/config.json', /config\.json is not valid JSON/);

  const noConfig = MemorySource.fromFixture('llama-f32');
  noConfig.files.delete('config.json');
  await rejects(loadModel(noConfig), 'memory/llama-f32/config.json', /has no config\.json/);
});

test('ModelFolder refuses missing folders, files and folders without config.json', async () => {
  const missing = path.join(os.tmpdir(), 'attention-lens-no-such-folder');
  await rejects(ModelFolder.open(missing), missing, /model folder .* does not exist/);
  const file = path.join(fixtureDir('llama-f32'), 'config.json');
  await rejects(ModelFolder.open(file), file, /is not a folder/);
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-'));
  try {
    await rejects(ModelFolder.open(empty), path.join(empty, 'config.json'), /has no config\.json/);
  } finally {
    fs.rmSync(empty, { recursive: true });
  }
  const folder = await ModelFolder.open(fixtureDir('llama-f32'));
  await assert.rejects(folder.openBinary('../llama-bf16/model.safetensors'), /only plain file names/);
});
