/**
 * The model cache layout, repo references in settings, and the GPU memory estimate: pure logic
 * behind Choose Model, Manage Model Cache and the check before a model is loaded.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkModelFits, estimateGpuMemory, parameterCount } from '../../src/hub/memoryEstimate';
import { defaultCacheRoot, ModelCache } from '../../src/hub/modelCache';
import { RECOMMENDED_MODELS } from '../../src/hub/recommendedModels';
import { classifyModelSetting, formatRepoRef, parseRepoRef } from '../../src/hub/repoRef';
import { loadActiveModel } from '../../src/model/activeModel';
import { parseModelConfig } from '../../engine/model/modelConfig';
import { fixtureDir } from './fixtureModels';

const SHA_A = 'a'.repeat(40);
const SHA_B = 'b'.repeat(40);

function scratch(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-cache-'));
}

function writeSnapshot(cache: ModelCache, repo: string, sha: string, files: Record<string, number>): string {
  const folder = cache.snapshotFolder(repo, sha);
  fs.mkdirSync(folder, { recursive: true });
  for (const [name, size] of Object.entries(files)) fs.writeFileSync(path.join(folder, name), Buffer.alloc(size));
  return folder;
}

test('repo references: org/name[@revision], told apart from folder paths', () => {
  assert.deepEqual(parseRepoRef('HuggingFaceTB/SmolLM2-135M'), { repo: 'HuggingFaceTB/SmolLM2-135M', revision: 'main' });
  assert.deepEqual(parseRepoRef(' Qwen/Qwen2.5-Coder-0.5B@v1.0 '), { repo: 'Qwen/Qwen2.5-Coder-0.5B', revision: 'v1.0' });
  assert.deepEqual(parseRepoRef('org/name@refs/pr/1'), { repo: 'org/name', revision: 'refs/pr/1' });
  for (const bad of ['name-only', 'a/b/c', '../etc', 'org/..', 'org/na--me', 'org/name@', 'org/name@../x', '/abs/path']) assert.equal(parseRepoRef(bad), undefined, bad);
  assert.equal(formatRepoRef({ repo: 'a/b', revision: 'main' }), 'a/b');
  assert.equal(formatRepoRef({ repo: 'a/b', revision: 'dev' }), 'a/b@dev');
  assert.deepEqual(classifyModelSetting(''), { kind: 'default' });
  assert.deepEqual(classifyModelSetting('/models/smol'), { kind: 'folder', folder: '/models/smol' });
  assert.deepEqual(classifyModelSetting('~/models/smol', '/home/me'), { kind: 'folder', folder: '/home/me/models/smol' });
  assert.deepEqual(classifyModelSetting('amd/AMD-Llama-135m-code'), { kind: 'repo', ref: { repo: 'amd/AMD-Llama-135m-code', revision: 'main' } });
});

test('Choose Model recommends the small code models of each supported architecture, each a valid repo id with size and license', () => {
  assert.deepEqual(RECOMMENDED_MODELS.map((m) => m.repo), [
    'HuggingFaceTB/SmolLM2-135M',
    'HuggingFaceTB/SmolLM2-360M',
    'Qwen/Qwen2.5-Coder-0.5B',
    'Qwen/Qwen2.5-Coder-1.5B',
    'Qwen/Qwen3-0.6B',
    'Qwen/Qwen3-1.7B',
    'google/gemma-3-1b-pt',
    'bigcode/starcoder2-3b',
    'deepseek-ai/deepseek-coder-1.3b-base',
    'meta-llama/Llama-3.2-1B',
    'amd/AMD-Llama-135m-code',
    'codeparrot/codeparrot-small',
  ]);
  for (const model of RECOMMENDED_MODELS) {
    assert.ok(parseRepoRef(model.repo), model.repo);
    assert.match(model.size, /^\d+ MB$|^\d+\.\d\d? GB$/);
    assert.ok(model.license.length > 0);
  }
});

test('the CLI cache defaults to ATTENTION_LENS_CACHE, else ~/.cache/attention-lens/hub', () => {
  assert.equal(defaultCacheRoot({ ATTENTION_LENS_CACHE: '/tmp/x' }), '/tmp/x');
  assert.equal(defaultCacheRoot({}), path.join(os.homedir(), '.cache', 'attention-lens', 'hub'));
});

test('a snapshot is found only once its ref is written; refs resolve by branch and by commit', async () => {
  const root = scratch();
  const cache = new ModelCache(root);
  const folder = writeSnapshot(cache, 'org/model', SHA_A, { 'config.json': 10 });
  assert.equal(await cache.find({ repo: 'org/model', revision: 'main' }), undefined, 'no ref: an incomplete download');
  await cache.writeRef({ repo: 'org/model', revision: 'main' }, SHA_A);
  assert.equal(await cache.find({ repo: 'org/model', revision: 'main' }), folder);
  assert.equal(await cache.find({ repo: 'org/model', revision: SHA_A }), folder);
  await cache.writeRef({ repo: 'org/model', revision: 'refs/pr/1' }, SHA_A);
  assert.equal(await cache.find({ repo: 'org/model', revision: 'refs/pr/1' }), folder);
  assert.equal(await cache.find({ repo: 'org/other', revision: 'main' }), undefined);
  assert.equal(fs.readdirSync(path.join(cache.repoFolder('org/model'), 'refs')).filter((f) => f.endsWith('.tmp')).length, 0, 'no temporary files left');
  fs.rmSync(root, { recursive: true, force: true });
});

test('listing shows each cached model with its size and partial bytes; delete removes one or all', async () => {
  const root = scratch();
  const cache = new ModelCache(root);
  writeSnapshot(cache, 'org/a', SHA_A, { 'config.json': 100, 'model.safetensors': 5000 });
  await cache.writeRef({ repo: 'org/a', revision: 'main' }, SHA_A);
  writeSnapshot(cache, 'org/b', SHA_B, { 'config.json': 100 });
  const partial = cache.incompleteFile('org/b', SHA_B, 'model.safetensors');
  fs.mkdirSync(path.dirname(partial), { recursive: true });
  fs.writeFileSync(partial, Buffer.alloc(700));
  fs.mkdirSync(path.join(root, 'unrelated-folder'));
  const listed = await cache.list();
  assert.deepEqual(listed.map((m) => [m.repo, m.bytes >= 5100, m.partialBytes]), [['org/a', true, 0], ['org/b', false, 700]]);
  assert.deepEqual(listed[0].refs, { main: SHA_A, [SHA_A]: SHA_A });
  assert.deepEqual(listed[1].refs, {}, 'a model without refs is incomplete');
  await cache.delete('org/a');
  assert.deepEqual((await cache.list()).map((m) => m.repo), ['org/b']);
  await cache.deleteAll();
  assert.deepEqual(await cache.list(), []);
  assert.ok(fs.existsSync(path.join(root, 'unrelated-folder')), 'deleteAll only removes models');
  assert.throws(() => cache.incompleteFile('org/b', SHA_B, '../escape'), /plain file names/);
  fs.rmSync(root, { recursive: true, force: true });
});

test('the model setting resolves a repo id to its cached snapshot, or says how to download it', async () => {
  const root = scratch();
  const cache = new ModelCache(root);
  const folder = cache.snapshotFolder('test-org/tiny-llama', SHA_A);
  fs.mkdirSync(folder, { recursive: true });
  for (const name of ['config.json', 'model.safetensors', 'tokenizer.json']) fs.copyFileSync(path.join(fixtureDir('llama-f32'), name), path.join(folder, name));
  await assert.rejects(loadActiveModel('/nowhere', 'test-org/tiny-llama', [root]), /test-org\/tiny-llama .*not downloaded yet.*Choose Model.*attention-lens pull test-org\/tiny-llama/);
  await cache.writeRef({ repo: 'test-org/tiny-llama', revision: 'main' }, SHA_A);
  const model = await loadActiveModel('/nowhere', 'test-org/tiny-llama', ['/missing-cache', root]);
  assert.equal(model.folder, folder);
  assert.equal(model.label, 'test-org/tiny-llama');
  assert.equal(model.spec.architecture, 'LlamaForCausalLM');
  await assert.rejects(loadActiveModel('/nowhere', `test-org/tiny-llama@${SHA_B}`, [root]), /not downloaded yet/);
  fs.rmSync(root, { recursive: true, force: true });
});

// Configs of real models (from their config.json) for the memory estimate.
const smolLm2 = parseModelConfig(
  { architectures: ['LlamaForCausalLM'], hidden_size: 576, intermediate_size: 1536, num_attention_heads: 9, num_key_value_heads: 3, num_hidden_layers: 30, vocab_size: 49152, max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 100000, hidden_act: 'silu', tie_word_embeddings: true },
  'SmolLM2-135M/config.json',
);
const qwenCoder = parseModelConfig(
  { architectures: ['Qwen2ForCausalLM'], hidden_size: 896, intermediate_size: 4864, num_attention_heads: 14, num_key_value_heads: 2, num_hidden_layers: 24, vocab_size: 151936, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000, hidden_act: 'silu', tie_word_embeddings: true },
  'Qwen2.5-Coder-0.5B/config.json',
);
const bigLimits = { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31 };

test('parameter counts match the published sizes of real models', () => {
  assert.ok(Math.abs(parameterCount(smolLm2) / 134.5e6 - 1) < 0.01, `SmolLM2-135M: ${parameterCount(smolLm2)}`);
  assert.ok(Math.abs(parameterCount(qwenCoder) / 494e6 - 1) < 0.01, `Qwen2.5-Coder-0.5B: ${parameterCount(qwenCoder)}`);
});

test('a model that fits is accepted; one that does not gets the numbers and a shorter window or smaller model', () => {
  const fits = checkModelFits(smolLm2, 2048, { f16: true, limits: bigLimits, modelLabel: 'SmolLM2' });
  assert.equal(fits.fits, true);
  assert.ok(fits.estimate.weightBytes === parameterCount(smolLm2) * 2);
  const tooBig = checkModelFits(qwenCoder, 8192, { f16: false, limits: bigLimits, budgetBytes: 2.5 * 1024 ** 3, modelLabel: 'Qwen/Qwen2.5-Coder-0.5B' });
  assert.equal(tooBig.fits, false);
  if (tooBig.fits) return;
  assert.match(tooBig.message, /^Qwen\/Qwen2\.5-Coder-0\.5B does not fit on this GPU at 8,192 tokens: it needs about [\d,]+ MiB of GPU memory \(weights 1,88\d MiB in f32/);
  assert.match(tooBig.message, /budget of 2,560 MiB\. Analyse at most [\d,]+ tokens at a time .*Analyze Selection.*or choose a smaller model/);
  assert.ok(tooBig.maxContext > 16 && tooBig.maxContext < 8192);
  assert.equal(checkModelFits(qwenCoder, tooBig.maxContext, { f16: false, limits: bigLimits, budgetBytes: 2.5 * 1024 ** 3, modelLabel: 'q' }).fits, true, 'the suggested window fits');
  assert.equal(checkModelFits(qwenCoder, tooBig.maxContext + 1, { f16: false, limits: bigLimits, budgetBytes: 2.5 * 1024 ** 3, modelLabel: 'q' }).fits, false);
  // Weights alone beyond the budget: no window helps.
  const hopeless = checkModelFits(qwenCoder, 512, { f16: false, limits: bigLimits, budgetBytes: 1024 ** 3, modelLabel: 'q' });
  assert.equal(hopeless.fits, false);
  if (!hopeless.fits) assert.match(hopeless.message, /choose a smaller model/);
  // A binding limit smaller than one activation matrix is named as such.
  const smallBinding = checkModelFits(qwenCoder, 4096, { f16: true, limits: { maxBufferSize: 2 ** 28, maxStorageBufferBindingSize: 64 * 1024 ** 2 }, modelLabel: 'q' });
  assert.equal(smallBinding.fits, false);
  if (!smallBinding.fits) assert.match(smallBinding.message, /activation buffer would be 76 MiB, more than the adapter's largest storage binding \(64 MiB\)/);
  assert.ok(estimateGpuMemory(qwenCoder, 1024, { f16: true, limits: bigLimits }).totalBytes < estimateGpuMemory(qwenCoder, 2048, { f16: true, limits: bigLimits }).totalBytes);
});
