// A lost GPU device in the real VS Code: the webview's WebGPU device is destroyed in the middle of
// an analysis (as a driver reset would), the run ends with a message that says so, the status bar
// shows the problem, and the next analysis creates a new device and runs on WebGPU again, as the
// status bar then says.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';

const EXTENSION_ID = 'attention-lens.attention-lens';

interface Api {
  statusBarText(): string;
  statusBarTooltip(): string;
}

type Outcome = { kind: string; message?: string; result?: { backend: { kind: string }; windows: number } };

/** Analyse the active file; an automatic re-analysis (an earlier suite's edits) may cancel a run: try again. */
async function analyseUntilDone(): Promise<Outcome> {
  for (let attempt = 0; ; attempt++) {
    const outcome = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as Outcome;
    if (outcome.kind !== 'cancelled' || attempt >= 5) return outcome;
  }
}

suite('Attention Lens: a lost GPU device', function () {
  this.timeout(600_000);

  test('losing the WebGPU device mid-analysis ends the run with a message; the next analysis recreates the device', async () => {
    const extension = vscode.extensions.getExtension<Api>(EXTENSION_ID)!;
    await extension.activate();
    const api = extension.exports;
    const settings = vscode.workspace.getConfiguration('attentionLens');
    // The embedded default model on WebGPU (SwiftShader here): a 500-token file takes seconds.
    for (const key of ['model', 'autoAnalyze']) await settings.update(key, undefined, vscode.ConfigurationTarget.Global);
    await settings.update('backend', 'webgpu', vscode.ConfigurationTarget.Global);
    // No automatic re-analysis after this test's edit (it would race the runs the test makes).
    await settings.update('idleDelayMs', 60_000, vscode.ConfigurationTarget.Global);
    try {
      const folder = vscode.workspace.workspaceFolders![0].uri;
      const document = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder, 'src', 'money.ts'));
      await vscode.window.showTextDocument(document, vscode.ViewColumn.One);

      // A first analysis loads the model on a device (and proves WebGPU works here).
      const first = await analyseUntilDone();
      assert.equal(first.kind, 'done', first.message);
      assert.equal(first.result?.backend.kind, 'webgpu');

      // Edit, so the next analysis computes again, and lose the device while it runs.
      const editor = vscode.window.activeTextEditor!;
      await editor.edit((edit) => edit.insert(new vscode.Position(0, 0), '// device loss\n'));
      // The webview destroys its device as soon as the next analysis has started on it.
      assert.equal(await vscode.commands.executeCommand('attentionLens.test.simulateDeviceLoss', 'duringNextAnalysis'), true, 'the panel got the message');
      const started = Date.now();
      const lost = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as Outcome;
      console.log(`[integration] device lost ${Date.now() - started} ms into the analysis: ${lost.kind}: ${lost.message}`);
      assert.equal(lost.kind, 'failed', `the run ends (${lost.kind}: ${lost.message})`);
      assert.match(lost.message ?? '', /GPU device was lost/);
      assert.match(api.statusBarText(), /warning/);
      assert.match(api.statusBarTooltip(), /GPU device was lost/);

      const again = await analyseUntilDone();
      assert.equal(again.kind, 'done', again.message);
      assert.equal(again.result?.backend.kind, 'webgpu', 'the next analysis runs on a new WebGPU device');
      assert.match(api.statusBarText(), /WebGPU/, `status bar: ${api.statusBarText()}`);
      console.log(`[integration] after the lost device: ${api.statusBarText()}`);
      await vscode.commands.executeCommand('undo');
    } finally {
      await settings.update('backend', undefined, vscode.ConfigurationTarget.Global);
      await settings.update('idleDelayMs', undefined, vscode.ConfigurationTarget.Global);
    }
  });
});
