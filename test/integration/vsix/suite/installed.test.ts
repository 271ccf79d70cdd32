// The extension as users get it: installed from attention-lens.vsix into a VS Code with no
// development extension (runVsixTests.ts sets that up). It must be the installed copy that loads,
// activates and analyses a file with the default model shipped inside the package.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

const EXTENSION_ID = 'attention-lens.attention-lens';

interface Outcome {
  kind: string;
  message?: string;
  result?: { tokens: number; backend: { kind: string } };
}

/** The extensions folder the .vsix was installed into, as runVsixTests.ts passes it. */
function extensionsDir(): string {
  const dir = process.env.ATTENTION_LENS_VSIX_EXTENSIONS_DIR;
  assert.ok(dir, 'ATTENTION_LENS_VSIX_EXTENSIONS_DIR is set (run this suite through out/test/integration/vsix/runVsixTests.js)');
  return fs.realpathSync(dir);
}

function installed(): vscode.Extension<unknown> {
  const extension = vscode.extensions.getExtension(EXTENSION_ID);
  assert.ok(extension, `${EXTENSION_ID} is installed`);
  return extension;
}

suite('Attention Lens installed from the .vsix', () => {
  test('the copy that loads is the one installed in the extensions folder', () => {
    const extensionPath = fs.realpathSync(installed().extensionPath);
    const relative = path.relative(extensionsDir(), extensionPath);
    console.log(`[vsix] loaded from ${extensionPath}`);
    assert.ok(relative && !relative.startsWith('..') && !path.isAbsolute(relative), `the extension loads from ${extensionPath}, which is not under the extensions folder ${extensionsDir()}`);
    assert.ok(fs.existsSync(path.join(extensionPath, 'default-model', 'model.safetensors')), 'the installed copy holds the default model');
    assert.ok(!fs.existsSync(path.join(extensionPath, 'src')), 'the installed copy has no sources');
  });

  test('showPanel activates it', async () => {
    const extension = installed();
    await vscode.commands.executeCommand('attentionLens.showPanel');
    assert.ok(extension.isActive, 'running attentionLens.showPanel activates the installed extension');
  });

  test('it analyses a sample file with the embedded default model', async function () {
    // About 10 s on SwiftShader; a broken package (say, no webview bundle) fails in a minute, not two.
    this.timeout(60_000);
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the run opens a copy of sample-workspace/');
    const model = vscode.workspace.getConfiguration('attentionLens').get<string>('model');
    assert.equal(model, '', 'attentionLens.model is empty, so the embedded default model is used');
    const document = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder.uri, 'src', 'money.ts'));
    await vscode.window.showTextDocument(document, vscode.ViewColumn.One);
    const outcome = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as Outcome;
    assert.equal(outcome?.kind, 'done', outcome?.message);
    console.log(`[vsix] analysed src/money.ts: ${outcome.result?.tokens} tokens on ${outcome.result?.backend.kind}`);
    assert.ok((outcome.result?.tokens ?? 0) > 0, 'the analysis tokenized the file');
    // The linux-x64 package carries ONNX Runtime; with only a software WebGPU adapter, auto runs it.
    assert.equal(outcome.result?.backend.kind, 'onnxruntime', `the installed package ran ${JSON.stringify(outcome.result?.backend)}`);
  });
});
