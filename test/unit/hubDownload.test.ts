/**
 * Downloading models from a hub-shaped server on 127.0.0.1 (test/support/fakeHub.ts) with the
 * generated fixture models: redirects to a CDN, ETag sha256 checks, resume after a dropped
 * connection, hash mismatches, sharded models, and every error a user must be able to act on.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { downloadModel, type DownloadOptions } from '../../src/hub/download';
import { HubClient } from '../../src/hub/hubClient';
import { HubError } from '../../src/hub/hubError';
import { ModelCache } from '../../src/hub/modelCache';
import { FakeHub, repoFromFolder } from '../support/fakeHub';
import { fixtureDir, repoRoot } from './fixtureModels';

const TOKEN = 'hf_test_token_123';
const PICKLE = Buffer.from('not really a pickle; must never be fetched');

function repos() {
  const llama = repoFromFolder(fixtureDir('llama-f32'), { 'pytorch_model.bin': PICKLE, 'README.md': Buffer.from('# tiny llama\n') });
  const unsupportedConfig = { ...JSON.parse(fs.readFileSync(path.join(fixtureDir('llama-f32'), 'config.json'), 'utf8')), architectures: ['MambaForCausalLM'], model_type: 'mamba' };
  return {
    'test-org/tiny-llama': { files: llama },
    'test-org/tiny-qwen2-sharded': { files: repoFromFolder(fixtureDir('qwen2-sharded')) },
    'test-org/private-llama': { files: llama, access: 'private' as const },
    'test-org/gated-llama': { files: llama, access: 'gated' as const },
    'test-org/mamba': { files: { ...llama, 'config.json': Buffer.from(JSON.stringify(unsupportedConfig)) } },
    'test-org/pickles-only': { files: { 'config.json': llama['config.json'], 'pytorch_model.bin': PICKLE } },
  };
}

async function withHub(run: (hub: FakeHub, cacheRoot: string) => Promise<void>): Promise<void> {
  const hub = await FakeHub.start(repos(), TOKEN);
  const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-hub-'));
  try {
    await run(hub, cacheRoot);
  } finally {
    await hub.close();
    fs.rmSync(cacheRoot, { recursive: true, force: true });
  }
}

function options(hub: FakeHub, cacheRoot: string, extra: Partial<DownloadOptions> & { token?: string } = {}): DownloadOptions {
  return { client: new HubClient({ endpoint: hub.url, token: extra.token }), cache: new ModelCache(cacheRoot), ...extra };
}

function assertSameFiles(folder: string, fixture: string, files: string[]): void {
  for (const file of files) assert.ok(fs.readFileSync(path.join(folder, file)).equals(fs.readFileSync(path.join(fixture, file))), `${file} is byte-identical to the fixture`);
}

async function rejectsWith(promise: Promise<unknown>, kind: HubError['kind'], pattern: RegExp): Promise<HubError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof HubError, `a HubError, got ${error}`);
    assert.equal(error.kind, kind, error.message);
    assert.match(error.message, pattern);
    return error;
  }
  assert.fail(`expected a ${kind} error`);
}

test('a model is downloaded through the CDN redirect, verified, cached by revision and commit; pickles are never fetched', async () => {
  await withHub(async (hub, cacheRoot) => {
    const progress: number[] = [];
    const model = await downloadModel({ repo: 'test-org/tiny-llama', revision: 'main' }, options(hub, cacheRoot, { onProgress: (p) => progress.push(p.bytes) }));
    const sha = hub.shaOf('test-org/tiny-llama');
    assert.equal(model.sha, sha);
    assert.equal(model.folder, path.join(cacheRoot, 'models--test-org--tiny-llama', 'snapshots', sha));
    assert.deepEqual(fs.readdirSync(model.folder).sort(), ['config.json', 'model.safetensors', 'tokenizer.json']);
    assertSameFiles(model.folder, fixtureDir('llama-f32'), ['config.json', 'model.safetensors', 'tokenizer.json']);
    assert.equal(model.spec.architecture, 'LlamaForCausalLM');
    assert.ok(hub.requests.some((r) => r.server === 'cdn' && r.method === 'GET' && r.path.includes('model.safetensors')), 'weights came from the CDN after the redirect');
    assert.deepEqual(hub.requestsFor('pytorch_model.bin'), [], 'the pickle was never requested');
    assert.ok(progress.length > 0 && progress[progress.length - 1] >= fs.statSync(path.join(model.folder, 'model.safetensors')).size, 'progress reached the total');
    // Cached: the ref resolves without the network, and a second download fetches nothing.
    const cache = new ModelCache(cacheRoot);
    assert.equal(await cache.find({ repo: 'test-org/tiny-llama', revision: 'main' }), model.folder);
    assert.equal(await cache.find({ repo: 'test-org/tiny-llama', revision: sha }), model.folder);
    const again = await downloadModel({ repo: 'test-org/tiny-llama', revision: 'main' }, options(hub, cacheRoot));
    assert.deepEqual(again.fetched, []);
    assert.equal(fs.existsSync(path.join(cacheRoot, 'models--test-org--tiny-llama', 'incomplete')), false, 'no partial files are left');
  });
});

test('a sharded model downloads its index and every shard', async () => {
  await withHub(async (hub, cacheRoot) => {
    const model = await downloadModel({ repo: 'test-org/tiny-qwen2-sharded', revision: 'main' }, options(hub, cacheRoot));
    const files = ['config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    assert.deepEqual(fs.readdirSync(model.folder).sort(), [...files].sort());
    assertSameFiles(model.folder, fixtureDir('qwen2-sharded'), files);
    assert.equal(model.spec.architecture, 'Qwen2ForCausalLM');
  });
});

test('a connection cut mid-file keeps every byte received: the retry asks for the rest with a range request', async () => {
  await withHub(async (hub, cacheRoot) => {
    // A few hundred KB arrive before the cut: far more than a socket read, so some of them are
    // still on their way to the disk when the connection breaks.
    hub.dropAfter.set('model.safetensors', 300_000);
    const lines: string[] = [];
    const model = await downloadModel({ repo: 'test-org/tiny-llama', revision: 'main' }, options(hub, cacheRoot, { log: (line) => lines.push(line) }));
    assert.deepEqual(hub.cuts, [{ file: 'model.safetensors', sentBytes: 300_000 }]);
    const gets = hub.requests.filter((r) => r.server === 'cdn' && r.method === 'GET');
    assert.equal(gets.length, 2, 'one cut-off GET and one resumed GET');
    assert.equal(gets[0].range, undefined);
    assert.equal(gets[1].range, 'bytes=300000-', 'the retry starts after every byte the first attempt was sent');
    assert.ok(lines.some((line) => /model\.safetensors: ECONNRESET; resuming \(attempt 2 of 4\)/.test(line)), lines.join('\n'));
    assert.ok(lines.some((line) => /resuming at byte 300000/.test(line)), lines.join('\n'));
    const expected = createHash('sha256').update(fs.readFileSync(path.join(fixtureDir('llama-f32'), 'model.safetensors'))).digest('hex');
    assert.equal(createHash('sha256').update(fs.readFileSync(path.join(model.folder, 'model.safetensors'))).digest('hex'), expected);
  });
});

test('a wrong hash is rejected, the file deleted and downloaded once more', async () => {
  await withHub(async (hub, cacheRoot) => {
    hub.corrupt.set('model.safetensors', 1);
    const model = await downloadModel({ repo: 'test-org/tiny-llama', revision: 'main' }, options(hub, cacheRoot));
    assertSameFiles(model.folder, fixtureDir('llama-f32'), ['model.safetensors']);
    assert.equal(hub.requests.filter((r) => r.server === 'cdn' && r.method === 'GET').length, 2);
  });
});

test('a hash that is wrong twice is reported, and nothing unverified is kept or used', async () => {
  await withHub(async (hub, cacheRoot) => {
    hub.corrupt.set('model.safetensors', 2);
    await rejectsWith(downloadModel({ repo: 'test-org/tiny-llama', revision: 'main' }, options(hub, cacheRoot)), 'hashMismatch', /model\.safetensors.*sha256.*deleted/);
    const cache = new ModelCache(cacheRoot);
    const sha = hub.shaOf('test-org/tiny-llama');
    assert.equal(fs.existsSync(path.join(cache.snapshotFolder('test-org/tiny-llama', sha), 'model.safetensors')), false);
    assert.equal(fs.existsSync(cache.incompleteFile('test-org/tiny-llama', sha, 'model.safetensors')), false);
    assert.equal(await cache.find({ repo: 'test-org/tiny-llama', revision: 'main' }), undefined, 'the model is not usable');
  });
});

test('a cancelled download keeps its partial file, is never used, and resumes next time', async () => {
  await withHub(async (hub, cacheRoot) => {
    hub.bytesPerSecond = 400_000;
    const abort = new AbortController();
    hub.onTransfer = (file) => {
      if (file === 'model.safetensors') setTimeout(() => abort.abort(), 300);
    };
    await rejectsWith(downloadModel({ repo: 'test-org/tiny-llama', revision: 'main' }, options(hub, cacheRoot, { signal: abort.signal })), 'cancelled', /cancelled.*kept/);
    const cache = new ModelCache(cacheRoot);
    const sha = hub.shaOf('test-org/tiny-llama');
    const partial = cache.incompleteFile('test-org/tiny-llama', sha, 'model.safetensors');
    assert.ok(fs.statSync(partial).size > 0, 'the partial file is kept');
    assert.equal(await cache.find({ repo: 'test-org/tiny-llama', revision: 'main' }), undefined, 'a cancelled download is not a model');
    hub.onTransfer = undefined;
    hub.bytesPerSecond = undefined;
    const model = await downloadModel({ repo: 'test-org/tiny-llama', revision: 'main' }, options(hub, cacheRoot));
    assertSameFiles(model.folder, fixtureDir('llama-f32'), ['model.safetensors']);
    assert.match(hub.requests.filter((r) => r.server === 'cdn' && r.method === 'GET').at(-1)?.range ?? '', /^bytes=[1-9]\d*-$/, 'the second download resumed');
  });
});

test('404, 401 and 403 become errors that say what to do', async () => {
  await withHub(async (hub, cacheRoot) => {
    const get = (repo: string, revision = 'main', token?: string) => downloadModel({ repo, revision }, options(hub, cacheRoot, { token }));
    await rejectsWith(get('test-org/no-such-model', 'main', TOKEN), 'notFound', /has no test-org\/no-such-model.*HTTP 404.*Check the repo id/);
    await rejectsWith(get('test-org/tiny-llama', 'no-such-branch'), 'notFound', /revision "no-such-branch".*revision/);
    await rejectsWith(get('test-org/private-llama'), 'unauthorized', /authentication.*Set Hugging Face Token/);
    await rejectsWith(get('test-org/no-such-model'), 'unauthorized', /either the repo id is wrong, or the repo is private or gated.*Check the id/);
    await rejectsWith(get('test-org/gated-llama'), 'unauthorized', /gated: accept its license/);
    await rejectsWith(get('test-org/gated-llama', 'main', TOKEN), 'forbidden', /accept its license/);
    // With the token the private repo downloads, and the token never reaches the CDN.
    const before = hub.requests.length;
    const model = await get('test-org/private-llama', 'main', TOKEN);
    assertSameFiles(model.folder, fixtureDir('llama-f32'), ['model.safetensors']);
    const sent = hub.requests.slice(before);
    assert.ok(sent.filter((r) => r.server === 'hub').every((r) => r.authorized), 'the token goes to the hub');
    assert.ok(sent.some((r) => r.server === 'cdn') && sent.filter((r) => r.server === 'cdn').every((r) => !r.authorized), 'no Authorization header to the CDN');
  });
});

test('an unsupported architecture is refused from config.json, before any weights', async () => {
  await withHub(async (hub, cacheRoot) => {
    await rejectsWith(downloadModel({ repo: 'test-org/mamba', revision: 'main' }, options(hub, cacheRoot)), 'unsupportedArchitecture', /MambaForCausalLM.*LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, SmolLM3ForCausalLM, Starcoder2ForCausalLM, Phi3ForCausalLM, GraniteForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, GPT2LMHeadModel/);
    assert.deepEqual(hub.requestsFor('model.safetensors'), []);
  });
});

test('a repo with only pickled weights is refused without fetching them', async () => {
  await withHub(async (hub, cacheRoot) => {
    await rejectsWith(downloadModel({ repo: 'test-org/pickles-only', revision: 'main' }, options(hub, cacheRoot)), 'unusableModel', /only PyTorch pickles.*never loaded/);
    assert.deepEqual(hub.requestsFor('pytorch_model.bin'), []);
  });
});

test('too little free disk space is reported before the download starts', async () => {
  await withHub(async (hub, cacheRoot) => {
    await rejectsWith(downloadModel({ repo: 'test-org/tiny-llama', revision: 'main' }, options(hub, cacheRoot, { freeBytes: async () => 10_000 })), 'diskFull', /needs .* MB more .* only 0\.0 MB is free/);
    assert.deepEqual(hub.requestsFor('model.safetensors').filter((r) => r.method === 'GET'), []);
  });
});

test('a disk that fills up during the download is reported as full', { skip: !fs.existsSync('/dev/full') && 'no /dev/full here' }, async () => {
  await withHub(async (hub, cacheRoot) => {
    // Writes to /dev/full fail with ENOSPC, as on a full disk.
    const cache = new ModelCache(cacheRoot);
    const partial = cache.incompleteFile('test-org/tiny-llama', hub.shaOf('test-org/tiny-llama'), 'model.safetensors');
    fs.mkdirSync(path.dirname(partial), { recursive: true });
    fs.symlinkSync('/dev/full', partial);
    await rejectsWith(downloadModel({ repo: 'test-org/tiny-llama', revision: 'main' }, options(hub, cacheRoot)), 'diskFull', /disk holding .* is full: model\.safetensors .*Free some space/);
    assert.equal(await cache.find({ repo: 'test-org/tiny-llama', revision: 'main' }), undefined);
  });
});

test('offline: an unreachable endpoint says so, and a cached revision is used instead', async () => {
  await withHub(async (hub, cacheRoot) => {
    const endpoint = hub.url;
    await downloadModel({ repo: 'test-org/tiny-llama', revision: 'main' }, options(hub, cacheRoot));
    await hub.close();
    const offline = { client: new HubClient({ endpoint }), cache: new ModelCache(cacheRoot) };
    const cached = await downloadModel({ repo: 'test-org/tiny-llama', revision: 'main' }, offline);
    assert.equal(cached.offline, true);
    assert.ok(fs.existsSync(path.join(cached.folder, 'model.safetensors')));
    await rejectsWith(downloadModel({ repo: 'test-org/tiny-qwen2-sharded', revision: 'main' }, offline), 'offline', /Cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\).*already downloaded keep working offline/);
  });
});

test('the CLI pulls into a cache with a progress report, prints the folder, and forward/analyze take --model REPO', async () => {
  await withHub(async (hub, cacheRoot) => {
    const cli = path.join(repoRoot, 'out', 'cli.js');
    const run = (args: string[]) => spawnAsync(process.execPath, [cli, ...args]);
    const pulled = await run(['pull', 'test-org/tiny-llama', '--endpoint', hub.url, '--cache', cacheRoot]);
    assert.equal(pulled.status, 0, pulled.stderr);
    const folder = pulled.stdout.trim();
    assert.equal(folder, path.join(cacheRoot, 'models--test-org--tiny-llama', 'snapshots', hub.shaOf('test-org/tiny-llama')));
    assert.match(pulled.stderr, /100% .*MB of .*MB/);
    assert.match(pulled.stderr, /LlamaForCausalLM, 2 layers x 4 heads/);
    const forward = await run(['forward', '--model', 'test-org/tiny-llama', '--cache', cacheRoot, '--backend', 'cpu', '--token-ids', '1,2,3']);
    assert.equal(forward.status, 0, forward.stderr);
    assert.equal((JSON.parse(forward.stdout) as { logits: number[] }).logits.length, 300);
    const source = path.join(cacheRoot, 'sample.py');
    fs.writeFileSync(source, 'import os\n\ndef area(width, height):\n    return width * height\n\nprint(area(2, 3), os.sep)\n');
    const analyze = await run(['analyze', source, '--model', 'test-org/tiny-llama', '--cache', cacheRoot, '--backend', 'cpu', '--json', '--min-distance', '2']);
    assert.equal(analyze.status, 0, analyze.stderr);
    assert.equal((JSON.parse(analyze.stdout) as { model: { folder: string } }).model.folder, folder);
    const missing = await run(['forward', '--model', 'test-org/not-pulled', '--cache', cacheRoot, '--token-ids', '1']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /not in the model cache .* attention-lens pull test-org\/not-pulled/);
    const notFound = await run(['pull', 'test-org/no-such-model', '--endpoint', hub.url, '--cache', cacheRoot]);
    assert.equal(notFound.status, 2);
    assert.match(notFound.stderr, /^attention-lens: .*HTTP 401.*Check the id .*HF_TOKEN/m);
  });
});

/** spawnSync would block the fake hub's event loop in this same process. */
function spawnAsync(command: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: repoRoot, env: { ...process.env, HF_TOKEN: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
