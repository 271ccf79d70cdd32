// Models from the Hugging Face Hub in a real VS Code: Choose Model with a repo id downloads the
// model from a hub-shaped server on 127.0.0.1 (test/support/fakeHub.ts) with a progress
// notification, caches it under the extension's global storage, makes it the active model, and
// the analysis runs with it. Errors leave the current model alone.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { FakeHub, repoFromFolder } from '../../support/fakeHub';
import { takeScreenshot } from '../screenshots';

const EXTENSION_ID = 'attention-lens.attention-lens';
const REPO = 'test-org/tiny-llama';

interface ChooseModelResult {
  setting: string;
  folder: string;
  fetched: string[];
  progressMessages: string[];
}
interface Outcome {
  kind: string;
  message?: string;
  result?: { model: { label: string; shortName: string; architecture: string } };
}

async function configure(values: Record<string, unknown>): Promise<void> {
  const settings = vscode.workspace.getConfiguration('attentionLens');
  for (const [key, value] of Object.entries(values)) await settings.update(key, value, vscode.ConfigurationTarget.Global);
}

suite('Attention Lens: models from the Hugging Face Hub', function () {
  this.timeout(300_000);
  let hub: FakeHub;
  let downloadedFolder: string | undefined;

  suiteSetup(async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension);
    await extension.activate();
    const fixture = path.join(extension.extensionPath, 'test', 'fixtures', 'models', 'llama-f32');
    hub = await FakeHub.start({ [REPO]: { files: repoFromFolder(fixture) } });
    await configure({ huggingFaceEndpoint: hub.url, model: undefined });
  });

  suiteTeardown(async () => {
    await configure({ model: undefined, huggingFaceEndpoint: undefined });
    await hub?.close();
    // The snapshot folder is <cache>/models--test-org--tiny-llama/snapshots/<sha>.
    if (downloadedFolder) fs.rmSync(path.resolve(downloadedFolder, '..', '..'), { recursive: true, force: true });
  });

  test('choosing a model by repo id downloads it with a progress notification, and the analysis runs with it', async () => {
    // Slow the weights down so the notification stays up for a moment, and photograph it halfway.
    hub.bytesPerSecond = 250_000;
    const halfway = new Promise<void>((resolve) => {
      hub.onChunk = (file, sent, total) => {
        if (file === 'model.safetensors' && sent >= total / 2) resolve();
      };
    });
    await vscode.commands.executeCommand('notifications.clearAll');
    const choosing = vscode.commands.executeCommand<ChooseModelResult | undefined>('attentionLens.chooseModel', { repo: REPO });
    await halfway;
    // Headless, VS Code keeps new notifications out of sight as toasts: open the list to show it.
    await vscode.commands.executeCommand('notifications.showList');
    await takeScreenshot('download-progress.png');
    await vscode.commands.executeCommand('notifications.hideList');
    const result = await choosing;
    hub.onChunk = undefined;
    hub.bytesPerSecond = undefined;

    assert.ok(result, 'the model was chosen');
    downloadedFolder = result.folder;
    assert.equal(result.setting, REPO);
    assert.equal(vscode.workspace.getConfiguration('attentionLens').get('model'), REPO, 'the choice is remembered in the setting');
    assert.deepEqual([...result.fetched].sort(), ['config.json', 'model.safetensors', 'tokenizer.json']);
    assert.match(result.folder, /[/\\]hub[/\\]models--test-org--tiny-llama[/\\]snapshots[/\\][0-9a-f]{40}$/, 'cached under the extension storage by repo and commit');
    const progress = result.progressMessages.filter((m) => /^model\.safetensors: [\d.]+ MB of [\d.]+ MB, [\d.]+ MB\/s$/.test(m));
    assert.ok(progress.length >= 2, `the notification showed bytes, total and speed: ${JSON.stringify(result.progressMessages)}`);
    console.log(`[integration] download progress: ${progress.slice(0, 3).join(' | ')} ... (${result.progressMessages.length} updates)`);

    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder);
    const document = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder.uri, 'src', 'money.ts'));
    await vscode.window.showTextDocument(document, vscode.ViewColumn.One);
    const outcome = await vscode.commands.executeCommand<Outcome>('attentionLens.analyzeFile');
    assert.equal(outcome.kind, 'done', outcome.message);
    assert.equal(outcome.result?.model.label, REPO, 'the analysis used the downloaded model');
    assert.equal(outcome.result?.model.architecture, 'LlamaForCausalLM');
  });

  test('choosing it again uses the cache without downloading', async () => {
    const before = hub.requests.length;
    const result = await vscode.commands.executeCommand<ChooseModelResult | undefined>('attentionLens.chooseModel', { repo: REPO });
    assert.ok(result);
    assert.deepEqual(result.fetched, []);
    assert.equal(hub.requests.slice(before).filter((r) => r.method === 'GET' && r.server === 'cdn').length, 0, 'no weights were fetched again');
  });

  test('a repo id the hub does not know leaves the current model in place', async () => {
    const result = await vscode.commands.executeCommand<ChooseModelResult | undefined>('attentionLens.chooseModel', { repo: 'test-org/no-such-model' });
    assert.equal(result, undefined);
    assert.equal(vscode.workspace.getConfiguration('attentionLens').get('model'), REPO);
  });
});
