/**
 * The security claims of SECURITY.md that are code and configuration: the panel's CSP and resource
 * roots, what an untrusted workspace may not set, and that pickled weights are never read.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadActiveModel } from '../../src/model/activeModel';
import { isUnderRoots, PANEL_RESOURCE_FOLDERS, panelContentSecurityPolicy } from '../../src/panel/panelSecurity';
import { repoRoot } from './fixtureModels';

test('the panel CSP allows nothing by default, scripts only with the nonce, no inline code or eval', () => {
  const csp = panelContentSecurityPolicy('https://webview.example', 'abc123');
  const directives = new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values]));
  assert.deepEqual(directives.get('default-src'), ["'none'"]);
  assert.deepEqual(directives.get('script-src'), ["'nonce-abc123'"]);
  assert.deepEqual(directives.get('connect-src'), ['https://webview.example']);
  assert.ok(!/unsafe-inline|unsafe-eval|\*/.test(csp), csp);
  for (const [name, values] of directives) if (name !== 'default-src' && name !== 'script-src') assert.ok(values.every((v) => v === 'https://webview.example' || v === 'data:'), `${name}: ${values.join(' ')}`);
});

test('the webview reads only its bundle, media, the embedded model and folders under them', () => {
  assert.deepEqual(PANEL_RESOURCE_FOLDERS.map((parts) => parts.join('/')), ['out/webview', 'media', 'default-model']);
  const roots = ['/ext/out/webview', '/ext/media', '/ext/default-model'];
  assert.ok(isUnderRoots('/ext/default-model', roots));
  assert.ok(isUnderRoots('/ext/media/icons', roots));
  assert.ok(!isUnderRoots('/ext/default-model-evil', roots), 'a sibling with the same prefix is not inside');
  assert.ok(!isUnderRoots('/ext', roots));
  assert.ok(!isUnderRoots('/home/user/.ssh', roots));
});

test('untrusted workspaces cannot point the extension at a model folder, a hub endpoint or a cache folder', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { capabilities: { untrustedWorkspaces: { supported: string | boolean; restrictedConfigurations: string[] } }; activationEvents: string[] };
  assert.equal(manifest.capabilities.untrustedWorkspaces.supported, 'limited');
  assert.deepEqual([...manifest.capabilities.untrustedWorkspaces.restrictedConfigurations].sort(), ['attentionLens.cacheDirectory', 'attentionLens.huggingFaceEndpoint', 'attentionLens.model']);
  assert.ok(!manifest.activationEvents.includes('*'), 'no activation on startup');
});

test('a local model folder with only PyTorch pickles is refused before anything is read from them', async () => {
  const folder = await fsp.mkdtemp(path.join(os.tmpdir(), 'attention-lens-pickles-'));
  try {
    const fixture = path.join(repoRoot, 'test', 'fixtures', 'models', 'llama-f32');
    await fsp.copyFile(path.join(fixture, 'config.json'), path.join(folder, 'config.json'));
    await fsp.copyFile(path.join(fixture, 'tokenizer.json'), path.join(folder, 'tokenizer.json'));
    // A "pickle" that would fail loudly if anything parsed it.
    await fsp.writeFile(path.join(folder, 'pytorch_model.bin'), Buffer.from([0x80, 0x04, 0xff, 0xff]));
    await assert.rejects(loadActiveModel(repoRoot, folder, []), /has no model\.safetensors .*PyTorch \.bin checkpoints are not loaded \(they can run code\)/);
  } finally {
    await fsp.rm(folder, { recursive: true, force: true });
  }
});
