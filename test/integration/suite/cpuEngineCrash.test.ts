// A native crash of the CPU engine in the real VS Code: the engine (ONNX Runtime) runs in a child
// process of the extension host; when that process dies with SIGSEGV during an analysis, the run
// ends with one clear message, the status bar says so, the extension host and everything in it stay
// up (the overlay of the last good analysis, the commands), and the next analysis starts a new
// engine process and works.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';

const EXTENSION_ID = 'attention-lens.attention-lens';

interface Api {
  statusBarText(): string;
  statusBarTooltip(): string;
  cpuEngineProcessId(): number | undefined;
  hasAnalysis(uri: string): boolean;
}

type Outcome = { kind: string; message?: string; result?: { backend: { kind: string } } };

async function analyseUntilDone(): Promise<Outcome> {
  for (let attempt = 0; ; attempt++) {
    const outcome = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as Outcome;
    if (outcome.kind !== 'cancelled' || attempt >= 5) return outcome;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

suite('Attention Lens: the CPU engine crashes', function () {
  this.timeout(600_000);

  test('a SIGSEGV in the engine process ends that run with a message; the extension host stays up and the next analysis starts a new engine', async () => {
    const extension = vscode.extensions.getExtension<Api>(EXTENSION_ID)!;
    await extension.activate();
    const api = extension.exports;
    const settings = vscode.workspace.getConfiguration('attentionLens');
    for (const key of ['model', 'autoAnalyze']) await settings.update(key, undefined, vscode.ConfigurationTarget.Global);
    await settings.update('backend', 'cpu', vscode.ConfigurationTarget.Global);
    await settings.update('idleDelayMs', 60_000, vscode.ConfigurationTarget.Global);
    try {
      const folder = vscode.workspace.workspaceFolders![0].uri;
      const document = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder, 'src', 'money.ts'));
      await vscode.window.showTextDocument(document, vscode.ViewColumn.One);
      const first = await analyseUntilDone();
      assert.equal(first.kind, 'done', first.message);
      assert.equal(first.result?.backend.kind, 'onnxruntime');
      const pid = api.cpuEngineProcessId();
      assert.ok(pid && pid !== process.pid, `the engine runs in a process of its own (${pid}), not in the extension host (${process.pid})`);

      // Edit, so the next analysis runs, and make the engine's process die with SIGSEGV as it starts.
      const editor = vscode.window.activeTextEditor!;
      await editor.edit((edit) => edit.insert(new vscode.Position(0, 0), '// crash\n'));
      assert.equal(await vscode.commands.executeCommand('attentionLens.test.crashCpuEngineOnNextRun'), pid);
      const crashed = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as Outcome;
      console.log(`[integration] engine process ${pid} crashed: ${crashed.kind}: ${crashed.message}`);
      assert.equal(crashed.kind, 'failed');
      assert.match(crashed.message ?? '', /the CPU engine stopped \(signal SIGSEGV\).*the next analysis starts a new one/);
      assert.match(api.statusBarText(), /warning/);
      assert.match(api.statusBarTooltip(), /signal SIGSEGV/);
      assert.equal(alive(pid), false, 'the crashed process is gone');
      // The extension host is the same process and still answers: its commands run.
      assert.equal(await vscode.commands.executeCommand('attentionLens.toggleOverlay'), false);
      assert.equal(await vscode.commands.executeCommand('attentionLens.toggleOverlay'), true);

      const again = await analyseUntilDone();
      assert.equal(again.kind, 'done', again.message);
      assert.equal(again.result?.backend.kind, 'onnxruntime');
      const next = api.cpuEngineProcessId();
      assert.ok(next && next !== pid && alive(next), `a new engine process (${next}) after ${pid}`);
      assert.ok(api.hasAnalysis(document.uri.toString()));
      assert.match(api.statusBarText(), /CPU/, `status bar: ${api.statusBarText()}`);
      console.log(`[integration] after the crash: engine process ${next}; ${api.statusBarText()}`);
      await vscode.commands.executeCommand('undo');
    } finally {
      await settings.update('backend', undefined, vscode.ConfigurationTarget.Global);
      await settings.update('idleDelayMs', undefined, vscode.ConfigurationTarget.Global);
    }
  });
});
