// Endurance in the real VS Code: 1,000 edits in rapid succession on an analysed 2,000+-token file
// with automatic re-analysis on idle (runs start and are cancelled by the next burst). Afterwards no
// view may show a result of an older version, the final analysis must equal a fresh one, and the
// extension host's memory must come back to its level after the first analysis (printed).
import * as assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import * as vscode from 'vscode';

const EXTENSION_ID = 'attention-lens.attention-lens';

interface Api {
  analysisStats(uri: string): { tokens: number; version: number; forwardMs: number; elapsedMs: number; reusedTokens: number; partial: boolean } | undefined;
  webviewMemory(): Promise<{ jsHeapBytes: number | null; gpuBufferBytes: number | null; collected: boolean } | undefined>;
  hasAnalysis(uri: string): boolean;
  overlaySnapshot(uri: string): { query?: { name: string }; sources: unknown[] } | undefined;
}

type Exported = { document: { version: number }; identifiers: { name: string; start: number; sources: { definition: number; weight: number }[] }[] };

async function settle(check: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Analyse the document from the command. An automatic run of the same document (the previous
 * suite's undo, an edit pause) may start meanwhile and cancel this one, as it should: try again.
 */
async function analyseUntilDone(): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const outcome = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as { kind: string; message?: string };
    if (outcome.kind === 'done') return;
    if (attempt >= 5 || (outcome.kind !== 'cancelled' && outcome.kind !== 'stale')) assert.fail(`analysis ${outcome.kind}: ${outcome.message}`);
  }
}

/**
 * The extension host's memory with garbage collected first, so that what is compared is what stays
 * alive, not when the collector last ran. (The host runs without --expose-gc; the flag can be turned
 * on at run time and `gc` taken from a fresh context.)
 */
function liveMemory(): NodeJS.MemoryUsage {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage();
}

function megabytes(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

suite('Attention Lens: endurance', function () {
  this.timeout(600_000);

  test('1,000 rapid edits with automatic re-analysis leave no stale view, a result equal to a fresh analysis, and no memory growth', async () => {
    const extension = vscode.extensions.getExtension<Api>(EXTENSION_ID)!;
    await extension.activate();
    const api = extension.exports;
    const settings = vscode.workspace.getConfiguration('attentionLens');
    await settings.update('autoAnalyze', 'onIdle', vscode.ConfigurationTarget.Global);
    await settings.update('idleDelayMs', 200, vscode.ConfigurationTarget.Global);
    const folder = vscode.workspace.workspaceFolders![0].uri;
    const document = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder, 'src', 'inventory.ts'));
    const editor = await vscode.window.showTextDocument(document, vscode.ViewColumn.One);
    const uri = document.uri.toString();
    const exportNow = async (name: string): Promise<Exported> => {
      const target = vscode.Uri.joinPath(folder, name);
      await vscode.commands.executeCommand('attentionLens.exportAnalysis', { format: 'json', target });
      const exported = JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(target))) as Exported;
      await vscode.workspace.fs.delete(target);
      return exported;
    };
    try {
      await analyseUntilDone();
      const baseline = liveMemory();
      const webviewBefore = await api.webviewMemory();
      assert.ok(webviewBefore && webviewBefore.jsHeapBytes !== null && webviewBefore.collected, `the panel reports its heap after a collection (${JSON.stringify(webviewBefore)})`);

      // 1,000 edits: bursts of typing near the end and in the middle, with pauses that let an automatic
      // analysis start, which the next burst then cancels or makes stale.
      let edits = 0;
      let pauses = 0;
      for (let burst = 0; edits < 1000; burst++) {
        for (let i = 0; i < 50 && edits < 1000; i++, edits++) {
          const line = burst % 2 === 0 ? document.lineCount - 3 : Math.floor(document.lineCount / 2);
          const position = new vscode.Position(line, 0);
          await editor.edit((edit) => (edits % 3 === 2 ? edit.delete(new vscode.Range(position, position.translate(0, 1))) : edit.insert(position, edits % 3 === 0 ? '/' : '*')), { undoStopBefore: false, undoStopAfter: false });
        }
        if (burst % 4 === 3) {
          pauses++;
          await new Promise((resolve) => setTimeout(resolve, 350));
        }
      }
      // The last burst's automatic analysis: for the document's final version.
      await settle(() => api.analysisStats(uri)?.version === document.version && !api.analysisStats(uri)!.partial, 'the analysis of the final version');
      const stats = api.analysisStats(uri)!;
      assert.ok(api.hasAnalysis(uri));
      // Views: the hover and CodeLens answer from that version only; the exported analysis is of it.
      const incremental = await exportNow('endurance-incremental.json');
      const lenses = (await vscode.commands.executeCommand('vscode.executeCodeLensProvider', document.uri)) as vscode.CodeLens[];
      const hovers = (await vscode.commands.executeCommand('vscode.executeHoverProvider', document.uri, editor.selection.active)) as vscode.Hover[];
      // Stale views: the export (every identifier's sources), each CodeLens and the hover must be
      // of the final version; count what was checked and what was not current.
      let stale = incremental.document.version === document.version ? 0 : 1;
      for (const lens of lenses) if (lens.range.end.line >= document.lineCount || (lens.command?.arguments?.[0] !== undefined && lens.command.arguments[0] !== uri)) stale++;
      const hoverText = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : c.value))).join('\n');
      if (/part of the file before your edit/.test(hoverText)) stale++;
      console.log(`[integration] endurance: stale views 0 expected: ${stale} of ${1 + lenses.length + hovers.length} checked (the export of ${incremental.identifiers.length} identifiers, ${lenses.length} CodeLenses, ${hovers.length} hover)`);
      assert.equal(stale, 0, 'every view shows the current version');

      // A fresh analysis (no cached runs) of the same text gives the same views.
      await settings.update('cacheMegabytes', 0, vscode.ConfigurationTarget.Global);
      await analyseUntilDone();
      const full = await exportNow('endurance-full.json');
      assert.equal(full.identifiers.length, incremental.identifiers.length);
      full.identifiers.forEach((identifier, i) => {
        const other = incremental.identifiers[i];
        assert.equal(identifier.start, other.start);
        assert.deepEqual(identifier.sources.map((s) => s.definition), other.sources.map((s) => s.definition), `sources of ${identifier.name}`);
        identifier.sources.forEach((s, j) => assert.ok(Math.abs(s.weight - other.sources[j].weight) < 1e-3));
      });
      await settings.update('cacheMegabytes', undefined, vscode.ConfigurationTarget.Global);
      // Back to the engine with a cache: the run that loads it is the new steady state.
      await analyseUntilDone();

      const after = liveMemory();
      const growth = (after.heapUsed - baseline.heapUsed) / baseline.heapUsed;
      const webviewAfter = (await api.webviewMemory())!;
      const webviewGrowth = (webviewAfter.jsHeapBytes! - webviewBefore.jsHeapBytes!) / webviewBefore.jsHeapBytes!;
      console.log(`[integration] endurance: webview live heap ${megabytes(webviewBefore.jsHeapBytes!)} after the first analysis -> ${megabytes(webviewAfter.jsHeapBytes!)} (${(webviewGrowth * 100).toFixed(1)}%)`);
      assert.ok(webviewGrowth < 0.1, `the webview's heap grew by ${(webviewGrowth * 100).toFixed(1)}%`);
      console.log(
        `[integration] endurance: ${edits} edits in bursts with ${pauses} pauses; final version ${document.version} (${stats.tokens} tokens, ${stats.reusedTokens} reused); ` +
          `extension host live heap ${megabytes(baseline.heapUsed)} after the first analysis -> ${megabytes(after.heapUsed)} (${(growth * 100).toFixed(1)}%), rss ${megabytes(baseline.rss)} -> ${megabytes(after.rss)}, array buffers ${megabytes(baseline.arrayBuffers)} -> ${megabytes(after.arrayBuffers)}`,
      );
      assert.ok(growth < 0.1, `the extension host's heap grew by ${(growth * 100).toFixed(1)}%`);
    } finally {
      await settings.update('autoAnalyze', undefined, vscode.ConfigurationTarget.Global);
      await settings.update('idleDelayMs', undefined, vscode.ConfigurationTarget.Global);
      await settings.update('cacheMegabytes', undefined, vscode.ConfigurationTarget.Global);
      await vscode.commands.executeCommand('workbench.action.files.revert');
    }
  });

  test('20 documents analysed at once each get their own result, and closing them releases their runs', async () => {
    const extension = vscode.extensions.getExtension<Api>(EXTENSION_ID)!;
    const api = extension.exports;
    const folder = vscode.workspace.workspaceFolders![0].uri;
    const base = new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.joinPath(folder, 'src', 'money.ts')));
    // Twenty different files: the same module with its own constant, so their token counts differ.
    const documents = await Promise.all(
      Array.from({ length: 20 }, (_, i) => vscode.workspace.openTextDocument({ language: 'typescript', content: `${base}\nexport const VARIANT_${i} = ${'1'.repeat(i + 1)};\n` })),
    );
    const outcomes = (await Promise.all(documents.map((document) => vscode.commands.executeCommand('attentionLens.analyzeFile', document.uri)))) as { kind: string; message?: string; result?: { tokens: number } }[];
    const done = outcomes.filter((o) => o.kind === 'done').length;
    console.log(`[integration] 20 documents at once: ${done} analyses done, ${outcomes.filter((o) => o.kind === 'cancelled').length} cancelled`);
    assert.equal(done, 20, JSON.stringify(outcomes.map((o) => o.kind)));
    documents.forEach((document, i) => {
      const stats = api.analysisStats(document.uri.toString());
      assert.ok(stats, `document ${i} has its analysis`);
      assert.equal(stats.version, document.version);
      assert.equal(stats.tokens, outcomes[i].result!.tokens, `document ${i} shows its own result`);
    });
    // Their token counts differ (the constants grow), so no document shows another's result.
    assert.equal(new Set(documents.map((d) => api.analysisStats(d.uri.toString())!.tokens)).size > 1, true);
    for (const document of documents) {
      await vscode.window.showTextDocument(document);
      await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
    }
  });

  test('closing the panel during WebGPU analyses and switching models during an analysis end with a message; the next analyses are right and nothing leaks', async () => {
    const extension = vscode.extensions.getExtension<Api & { statusBarText(): string }>(EXTENSION_ID)!;
    const api = extension.exports;
    const settings = vscode.workspace.getConfiguration('attentionLens');
    const folder = vscode.workspace.workspaceFolders![0].uri;
    type Outcome = { kind: string; message?: string; result?: { backend: { kind: string }; model: { label: string; numHeads: number } } };
    const analyse = () => vscode.commands.executeCommand('attentionLens.analyzeFile') as Thenable<Outcome>;
    // Where a run must finish: an automatic re-analysis (of an earlier edit) may cancel it; try again.
    const analyseDone = async () => {
      for (let attempt = 0; ; attempt++) {
        const outcome = await analyse();
        if (outcome.kind !== 'cancelled' || attempt >= 5) return outcome;
      }
    };
    const closePanel = async () => {
      for (const group of vscode.window.tabGroups.all) {
        for (const tab of group.tabs) if (tab.input instanceof vscode.TabInputWebview && tab.label === 'Attention Lens') await vscode.window.tabGroups.close(tab);
      }
    };
    const document = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder, 'src', 'money.ts'));
    const editor = await vscode.window.showTextDocument(document, vscode.ViewColumn.One);
    const uri = document.uri.toString();
    await settings.update('backend', 'webgpu', vscode.ConfigurationTarget.Global);
    // The test's own edits must not start automatic runs that race the ones it makes.
    await settings.update('idleDelayMs', 60_000, vscode.ConfigurationTarget.Global);
    try {
      const first = await analyseDone();
      assert.equal(first.kind, 'done', first.message);
      const baseline = liveMemory();
      // Three times: an edit, an analysis on WebGPU in the panel, the panel closed while it runs.
      const closed: string[] = [];
      for (let round = 0; round < 3; round++) {
        await editor.edit((edit) => edit.insert(new vscode.Position(0, 0), `// round ${round}\n`));
        const running = analyse();
        await new Promise((resolve) => setTimeout(resolve, 150));
        await closePanel();
        const outcome = await running;
        closed.push(`${outcome.kind}: ${outcome.message}`);
        assert.notEqual(outcome.kind, 'done', 'the run needed the closed panel');
        assert.match(outcome.message ?? '', /panel was closed|cancelled/i);
        assert.ok(!api.hasAnalysis(uri), 'no view shows a result for this version');
        // The next analysis opens the panel again and runs there.
        const again = await analyseDone();
        assert.equal(again.kind, 'done', again.message);
        assert.equal(again.result?.backend.kind, 'webgpu');
        assert.equal(api.analysisStats(uri)?.version, document.version);
      }
      console.log(`[integration] panel closed during analyses: ${closed.join(' | ')}`);

      // A model switch during an analysis: the run stops and says why; the next one
      // uses the new model, and switching back gives the first model's result again.
      await settings.update('backend', 'auto', vscode.ConfigurationTarget.Global);
      await vscode.commands.executeCommand('workbench.action.files.revert');
      const long = await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder, 'src', 'inventory.ts')), vscode.ViewColumn.One);
      const longUri = long.document.uri.toString();
      const defaultRun = await analyseDone();
      assert.equal(defaultRun.kind, 'done', defaultRun.message);
      await long.edit((edit) => edit.insert(new vscode.Position(0, 0), '// model switch\n'));
      // On the slow reference engine, so that the switch lands while the run is still going.
      await settings.update('backend', 'reference', vscode.ConfigurationTarget.Global);
      const running = analyse();
      await new Promise((resolve) => setTimeout(resolve, 300));
      await settings.update('model', `${extension.extensionPath}/test/fixtures/models/llama-f32`, vscode.ConfigurationTarget.Global);
      const switched = await running;
      await settings.update('backend', 'auto', vscode.ConfigurationTarget.Global);
      console.log(`[integration] model switched during an analysis: ${switched.kind}: ${switched.message}`);
      assert.equal(switched.kind, 'cancelled');
      assert.match(switched.message ?? '', /model changed/);
      assert.ok(!api.hasAnalysis(longUri), 'no result of the old model is shown for the new version');
      const withFixture = await analyseDone();
      assert.equal(withFixture.kind, 'done', withFixture.message);
      assert.notEqual(withFixture.result?.model.label, defaultRun.result?.model.label, 'the next analysis uses the new model');
      await settings.update('model', undefined, vscode.ConfigurationTarget.Global);
      const back = await analyseDone();
      assert.equal(back.kind, 'done', back.message);
      assert.equal(back.result?.model.label, defaultRun.result?.model.label);

      await vscode.commands.executeCommand('workbench.action.files.revert');
      const after = liveMemory();
      const growth = (after.heapUsed - baseline.heapUsed) / baseline.heapUsed;
      console.log(`[integration] after 3 closed panels and 2 model switches: extension host live heap ${megabytes(baseline.heapUsed)} -> ${megabytes(after.heapUsed)} (${(growth * 100).toFixed(1)}%)`);
      assert.ok(growth < 0.1, `the extension host's heap grew by ${(growth * 100).toFixed(1)}%`);
    } finally {
      await settings.update('backend', undefined, vscode.ConfigurationTarget.Global);
      await settings.update('model', undefined, vscode.ConfigurationTarget.Global);
      await settings.update('idleDelayMs', undefined, vscode.ConfigurationTarget.Global);
      await vscode.commands.executeCommand('workbench.action.files.revert');
    }
  });
});
