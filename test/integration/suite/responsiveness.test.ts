// A big file, driven the way a person drives the editor: Analyze Current File from the command
// palette (keys pressed in the workbench page by the offline harness) on a 7k-token TypeScript file
// from outside the project, then the hover. The command returns a small report, so the workbench
// does not parse an analysis; the hover answers at once after the analysis is shown. The time from
// the command to the first hover is printed (median of five runs) with its breakdown.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as vscode from 'vscode';
import { canDriveWorkbench, hoverOnScreen, pressKeys, takeScreenshot, typeText, waitForVisible } from '../screenshots';

const EXTENSION_ID = 'attention-lens.attention-lens';

interface Api {
  hasAnalysis(uri: string): boolean;
  lastHover(): { answeredAt: number; ms: number; shown: boolean } | undefined;
  analysisStats(uri: string): { tokens: number; windows: number; windowsDone: number; engine: string; forwardMs: number; summaryMs: number; elapsedMs: number; preparedMs: number; engineReadyMs: number; shownMs: number; firstShownMs: number; readbackBytes: number } | undefined;
  whenPanelRendered(accept: (m: { uri: string; queryName: string | null }) => boolean, timeoutMs: number): Promise<unknown>;
  whenMapRendered(accept: (m: { uri: string; version: number; nodes: string[] }) => boolean, timeoutMs: number): Promise<{ nodes: string[] }>;
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A CPU profile of this process (the extension host), for finding what blocks it. */
async function startProfile(): Promise<import('node:inspector').Session> {
  const inspector = await import('node:inspector');
  const session = new inspector.Session();
  session.connect();
  await new Promise<void>((resolve, reject) => session.post('Profiler.enable', () => session.post('Profiler.start', (error) => (error ? reject(error) : resolve()))));
  return session;
}

async function stopProfile(session: import('node:inspector').Session, file: string): Promise<void> {
  const profile = await new Promise<unknown>((resolve, reject) => session.post('Profiler.stop', (error, result) => (error ? reject(error) : resolve(result.profile))));
  fs.writeFileSync(file, JSON.stringify(profile));
  session.disconnect();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

suite('Attention Lens: a 7k-token file stays responsive', function () {
  this.timeout(600_000);

  test('Analyze Current File from the command palette: the window with the cursor is shown first and its hover answers within 1 s; the first hover is timed', async function () {
    if (!canDriveWorkbench()) {
      // A desktop VS Code has no harness that presses keys in its window: run the command instead.
      console.log('[integration] no workbench driver here: the command palette part needs the offline harness (code-server)');
    }
    const extension = vscode.extensions.getExtension<Api>(EXTENSION_ID)!;
    await extension.activate();
    const api = extension.exports;
    const settings = vscode.workspace.getConfiguration('attentionLens');
    for (const key of ['model', 'backend', 'autoAnalyze']) await settings.update(key, undefined, vscode.ConfigurationTarget.Global);
    await settings.update('idleDelayMs', 60_000, vscode.ConfigurationTarget.Global);
    // TypeScript's own language server answers hovers too, and on a fresh 7k-line file it spends
    // seconds checking it first: its syntax-only server keeps the timing about ours.
    const typescript = vscode.workspace.getConfiguration('typescript');
    await typescript.update('tsserver.useSyntaxServer', 'always', vscode.ConfigurationTarget.Global);
    // An npm package's own source, 7k tokens: not written for this project.
    const source = path.join(extension.extensionPath, 'node_modules', 'onnxruntime-common', 'lib', 'inference-session.ts');
    const folder = vscode.workspace.workspaceFolders![0].uri;
    const target = vscode.Uri.joinPath(folder, 'big', 'inference-session.ts');
    fs.mkdirSync(path.dirname(target.fsPath), { recursive: true });
    fs.copyFileSync(source, target.fsPath);
    try {
      const document = await vscode.workspace.openTextDocument(target);
      const editor = await vscode.window.showTextDocument(document, vscode.ViewColumn.One);
      const uri = document.uri.toString();
      // A name used far from its definition, near the start of its line so that its hover is in view:
      // `InferenceSessionFactory` in the file's last line (found again after each edit).
      const lastUse = () => document.positionAt(document.getText().lastIndexOf(': InferenceSessionFactory') + 5);
      const firstHovers: number[] = [];
      const afterShown: number[] = [];
      const allProviders: number[] = [];
      const blocked: number[] = [];
      for (let run = 0; run < 5; run++) {
        await vscode.commands.executeCommand('attentionLens.clear');
        // A change at the top, so no run reuses the previous one.
        await editor.edit((edit) => edit.insert(new vscode.Position(0, 0), `// run ${run}\n`));
        // The person puts the cursor on the name, then asks for the analysis.
        const at = lastUse();
        await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.One, preserveFocus: false, selection: new vscode.Range(at, at) });
        editor.revealRange(new vscode.Range(at, at), vscode.TextEditorRevealType.InCenter);
        if (canDriveWorkbench()) {
          await pressKeys('F1');
          await waitForVisible('.quick-input-widget', { timeoutMs: 20_000 }).catch(async (error: unknown) => {
            await takeScreenshot('responsiveness-no-palette.png');
            throw error;
          });
          await typeText('Attention Lens: Analyze Current File');
          await waitForVisible('.quick-input-widget .monaco-list-row', { text: 'Analyze Current File', timeoutMs: 20_000 }).catch(async (error: unknown) => {
            await takeScreenshot('responsiveness-palette.png');
            throw error;
          });
        }
        // The command starts when Enter is pressed. The extension host's event loop is watched from then on.
        const loop = monitorEventLoopDelay({ resolution: 5 });
        loop.enable();
        const profiling = process.env.ATTENTION_LENS_PROFILE && run === 2 ? startProfile() : undefined;
        const started = Date.now();
        if (canDriveWorkbench()) await pressKeys('Enter');
        else void vscode.commands.executeCommand('attentionLens.analyzeFile');
        await until(() => api.hasAnalysis(uri), 180_000, 'the analysis');
        const shown = Date.now();
        const hoverStarted = Date.now();
        const hovers = (await vscode.commands.executeCommand('vscode.executeHoverProvider', document.uri, at)) as vscode.Hover[];
        const answered = Date.now();
        // Ours, apart from the other hover providers VS Code waits for (TypeScript's among them).
        const ours = api.lastHover()!;
        assert.ok(ours.shown && ours.answeredAt >= hoverStarted, 'the extension answered this hover');
        const markdown = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : 'value' in c ? c.value : ''))).join('\n');
        assert.match(markdown, /attends to/, 'the hover shows what the token at the cursor attends to (its window ran first)');
        if (canDriveWorkbench()) {
          // Back to the editor (the panel may have taken the focus as it opened), then the hover.
          // Asked again if VS Code dropped it (the panel opening beside can re-lay the editors out).
          await hoverOnScreen(document, at, 'attends to', 20_000);
          if (run === 4) await takeScreenshot('hover-7k.png');
        }
        const visible = Date.now();
        const partial = api.analysisStats(uri)!;
        await until(() => (api.analysisStats(uri)?.windowsDone ?? 0) === api.analysisStats(uri)?.windows, 180_000, 'the whole analysis');
        const whole = Date.now();
        loop.disable();
        if (profiling) await stopProfile(await profiling, path.join(process.env.ATTENTION_LENS_PROFILE!, 'exthost.cpuprofile'));
        const blockedMs = loop.max / 1e6;
        blocked.push(blockedMs);
        firstHovers.push(visible - started);
        afterShown.push(ours.answeredAt - hoverStarted);
        allProviders.push(answered - hoverStarted);
        const stats = api.analysisStats(uri)!;
        console.log(
          `[integration] run ${run + 1}: ${stats.tokens} tokens, ${stats.windows} windows on ${stats.engine}; command to first hover ${visible - started} ms ` +
            `(cursor's window shown ${shown - started} ms, ${partial.windowsDone} of ${partial.windows} windows; our hover answered ${ours.answeredAt - hoverStarted} ms later (made in ${ours.ms.toFixed(0)} ms), every provider's ${answered - hoverStarted} ms, visible ${visible - shown} ms after shown); ` +
            `whole file ${whole - started} ms; extension host blocked at most ${blockedMs.toFixed(0)} ms at a time (tokens and definitions ${Math.round(stats.preparedMs)} ms, engine ready ${Math.round(stats.engineReadyMs)} ms, forward ${Math.round(stats.forwardMs)} ms, analysis ${Math.round(stats.elapsedMs)} ms)`,
        );
        assert.ok(stats.tokens > 7000, `${stats.tokens} tokens`);
        await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
      }
      console.log(`[integration] 7k-token file: first hover after Analyze Current File, median of 5: ${median(firstHovers)} ms (${firstHovers.join(', ')} ms); our hover after the analysis was shown: ${afterShown.join(', ')} ms (every provider's: ${allProviders.join(', ')} ms); extension host's longest block: ${blocked.map((b) => b.toFixed(0)).join(', ')} ms`);
      for (const ms of afterShown) assert.ok(ms < 1000, `the extension answered a hover ${ms} ms after the analysis was shown`);
    } finally {
      await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
      fs.rmSync(path.dirname(target.fsPath), { recursive: true, force: true });
      await settings.update('idleDelayMs', undefined, vscode.ConfigurationTarget.Global);
      await typescript.update('tsserver.useSyntaxServer', undefined, vscode.ConfigurationTarget.Global);
    }
  });

  test('2k, 7k and 24k-token files: what each phase costs and how long the extension host is blocked at a time (the editor table of npm run bench -- --editor)', async () => {
    const extension = vscode.extensions.getExtension<Api>(EXTENSION_ID)!;
    const api = extension.exports;
    const settings = vscode.workspace.getConfiguration('attentionLens');
    await settings.update('maxFileTokens', 32_768, vscode.ConfigurationTarget.Global);
    const typescript = vscode.workspace.getConfiguration('typescript');
    await typescript.update('tsserver.useSyntaxServer', 'always', vscode.ConfigurationTarget.Global);
    const folder = vscode.workspace.workspaceFolders![0].uri;
    // Real files, none written for this project but the sample: the sample (2.7k tokens), an npm
    // package's source (7k) and a large module of Python's standard library (24k).
    const files = [
      { label: '2k', source: path.join(extension.extensionPath, 'sample-workspace', 'src', 'inventory.ts') },
      { label: '7k', source: path.join(extension.extensionPath, 'node_modules', 'onnxruntime-common', 'lib', 'inference-session.ts') },
      { label: '24k', source: '/usr/lib/python3.11/argparse.py' },
    ];
    const scratch = vscode.Uri.joinPath(folder, 'sizes');
    fs.mkdirSync(scratch.fsPath, { recursive: true });
    const rows: string[] = [];
    try {
      for (const file of files) {
        assert.ok(fs.existsSync(file.source), `${file.source} is on this machine`);
        const target = path.join(scratch.fsPath, path.basename(file.source));
        fs.copyFileSync(file.source, target);
        const document = await vscode.workspace.openTextDocument(target);
        const editor = await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.One, preserveFocus: false });
        // The cursor on a name in the last quarter of the file (its window runs first).
        const text = document.getText();
        const nameAt = text.slice(Math.floor(text.length * 0.8)).search(/[A-Za-z_][A-Za-z0-9_]{5,}/) + Math.floor(text.length * 0.8);
        const at = document.positionAt(nameAt + 2);
        editor.selection = new vscode.Selection(at, at);
        await vscode.commands.executeCommand('attentionLens.clear');
        const loop = monitorEventLoopDelay({ resolution: 5 });
        loop.enable();
        const profiling = process.env.ATTENTION_LENS_PROFILE && file.label === '24k' ? startProfile() : undefined;
        const outcome = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as { kind: string; message?: string };
        assert.equal(outcome.kind, 'done', outcome.message);
        const stats = api.analysisStats(document.uri.toString())!;
        let started = Date.now();
        const hovers = (await vscode.commands.executeCommand('vscode.executeHoverProvider', document.uri, at)) as vscode.Hover[];
        const hover = api.lastHover()!;
        const hoverText = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : 'value' in c ? c.value : ''))).join('\n');
        assert.match(hoverText, /attends to/, `the hover answers on ${path.basename(target)}`);
        started = Date.now();
        const lenses = (await vscode.commands.executeCommand('vscode.executeCodeLensProvider', document.uri)) as vscode.CodeLens[];
        const lensMs = Date.now() - started;
        assert.ok(lenses.some((l) => l.command?.command === 'attentionLens.showAttenders'), 'CodeLenses on the definitions');
        started = Date.now();
        await vscode.commands.executeCommand('attentionLens.showPanel');
        await api.whenPanelRendered((m) => m.uri === document.uri.toString() && m.queryName !== null, 60_000);
        const panelMs = Date.now() - started;
        started = Date.now();
        await vscode.commands.executeCommand('attentionLens.showDependencyMap');
        const map = await api.whenMapRendered((m) => m.uri === document.uri.toString() && m.version === document.version, 120_000);
        const mapMs = Date.now() - started;
        assert.ok(map.nodes.length > 0, 'the map has nodes');
        loop.disable();
        if (profiling) await stopProfile(await profiling, path.join(process.env.ATTENTION_LENS_PROFILE!, 'exthost-24k.cpuprofile'));
        const row = `| ${file.label} | ${path.basename(target)} | ${stats.tokens.toLocaleString('en-US')} | ${stats.windows} | ${Math.round(stats.preparedMs)} | ${Math.round(stats.engineReadyMs)} | ${Math.round(stats.forwardMs)} | ${Math.round(stats.summaryMs)} | ${Math.round(stats.firstShownMs)} | ${Math.round(stats.shownMs)} | ${(stats.readbackBytes / 2 ** 20).toFixed(1)} | ${hover.ms.toFixed(0)} | ${lensMs} | ${panelMs} | ${mapMs} | ${(loop.max / 1e6).toFixed(0)} |`;
        rows.push(row);
        console.log(`[editor-bench] ${row}`);
        await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
      }
      console.log('[editor-bench] | file | name | tokens | windows | tokens and definitions ms | engine ready ms | forward ms | summaries ms | cursor window shown ms | whole result shown ms | read back MiB | hover made ms | CodeLens ms | panel ms | map ms | longest extension-host block ms |');
    } finally {
      fs.rmSync(scratch.fsPath, { recursive: true, force: true });
      await settings.update('maxFileTokens', undefined, vscode.ConfigurationTarget.Global);
      await typescript.update('tsserver.useSyntaxServer', undefined, vscode.ConfigurationTarget.Global);
    }
  });
});
