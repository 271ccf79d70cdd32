// The extension in a real VS Code: it activates from its command, its panel's webview gets a
// WebGPU adapter, and every command it contributes is registered.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { WebGpuProbeResult } from '../../../src/shared/protocol';
import { takeScreenshot } from '../screenshots';

const EXTENSION_ID = 'attention-lens.attention-lens';

/** What activate() returns, as far as the tests use it. */
interface AttentionLensApi {
  whenProbed(timeoutMs: number): Promise<WebGpuProbeResult>;
}

/** Opens a file of the sample workspace the runner copied for this run. */
async function openWorkspaceFile(relativePath: string): Promise<vscode.TextEditor> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the test run opens a copy of sample-workspace/ as its workspace folder');
  const document = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder.uri, relativePath));
  return vscode.window.showTextDocument(document);
}

suite('Attention Lens: activation and WebGPU', () => {
  suiteSetup(() => {
    console.log(`[integration] ${vscode.env.appName} ${vscode.version}, ui ${vscode.UIKind[vscode.env.uiKind]}, remote ${vscode.env.remoteName ?? 'none'}`);
  });

  test('showPanel activates the extension and its webview gets a WebGPU adapter', async () => {
    const editor = await openWorkspaceFile('src/inventory.ts');
    assert.equal(editor.document.languageId, 'typescript');

    const extension = vscode.extensions.getExtension<AttentionLensApi>(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is loaded as the development extension`);
    await vscode.commands.executeCommand('attentionLens.showPanel');
    assert.ok(extension.isActive, 'running attentionLens.showPanel activates the extension');
    assert.equal(typeof extension.exports?.whenProbed, 'function', 'activate() returns an API with whenProbed(timeoutMs)');

    const probe = await extension.exports.whenProbed(60_000);
    console.log(`[integration] WebGPU probe: ${JSON.stringify(probe.ok ? { ...probe.adapter, limits: undefined } : probe)}`);
    assert.ok(probe.ok, `the webview reported no WebGPU adapter: ${probe.ok ? '' : probe.error}`);
    assert.ok(probe.adapter.vendor.length > 0, 'the adapter names its vendor');
    assert.ok(Array.isArray(probe.adapter.features), 'the adapter lists its features');

    await takeScreenshot('workbench.png');
  });

  test('every contributed command is registered', async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is loaded as the development extension`);
    await extension.activate();
    const contributed: string[] = (extension.packageJSON.contributes?.commands ?? []).map((command: { command: string }) => command.command);
    assert.ok(contributed.includes('attentionLens.showPanel'), 'package.json contributes attentionLens.showPanel');
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = contributed.filter((command) => !registered.has(command));
    assert.deepEqual(missing, [], 'contributed commands that activate() did not register');
  });
});
