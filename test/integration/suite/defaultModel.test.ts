// The acceptance scenario with the embedded default model, in the real VS Code: on a file of
// more than 2,000 tokens, the cursor on a use of an imported name highlights its import line with a
// weight, the hover says so, and the panel shows the same token's attention. Which use the model
// links to its import is the model's business: the CLI (Node, CPU engine) finds one, and the editor
// (here the CPU engine too, SwiftShader being a software adapter) must show exactly that. Then an
// edit near the end re-analyses only the tail and gives what a full analysis gives.
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as vscode from 'vscode';
import { takeScreenshot } from '../screenshots';

const EXTENSION_ID = 'attention-lens.attention-lens';

interface Api {
  analysisStats(uri: string): { tokens: number; version: number; forwardMs: number; elapsedMs: number; reusedTokens: number; partial: boolean } | undefined;
  overlaySnapshot(uri: string): { query?: { name: string }; sources: { name: string; kind: string; range: vscode.Range; weight: number; label: string }[] } | undefined;
  whenPanelRendered(accept: (m: { uri: string; queryName: string | null; sources: { name: string; weight: number }[] }) => boolean, timeoutMs: number): Promise<{ sources: { name: string; weight: number }[] }>;
  whenMapRendered(accept: (m: MapRendered) => boolean, timeoutMs: number): Promise<MapRendered>;
}
interface MapRendered {
  uri: string;
  version: number;
  threshold: number;
  nodes: string[];
  edges: { from: number; to: number; weight: number; agreement: 'both' | 'attentionOnly' | 'referenceOnly' }[];
  heads: string[];
}
interface CliAnalysis {
  tokens: number;
  windows: number;
  definitions: { kind: string; name: string; line: number }[];
  identifiers: { name: string; line: number; column: number; sources: { definition: number; weight: number; tokenDistance: number }[] }[];
}

suite('Attention Lens: the default model on a long file', function () {
  this.timeout(900_000);

  test('a use of an imported name far from its import highlights the import with its weight, in overlay, hover and panel', async () => {
    const found = vscode.extensions.getExtension<Api>(EXTENSION_ID);
    assert.ok(found);
    await found.activate();
    const api = found.exports;
    const settings = vscode.workspace.getConfiguration('attentionLens');
    for (const key of ['model', 'minDistance', 'threshold', 'distance', 'backend', 'contextWindow']) await settings.update(key, undefined, vscode.ConfigurationTarget.Global);

    const folder = vscode.workspace.workspaceFolders![0].uri;
    const document = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder, 'src', 'inventory.ts'));
    const editor = await vscode.window.showTextDocument(document, vscode.ViewColumn.One);

    // What the model attends to, computed in Node by the CLI with the same defaults.
    const cli = path.join(found.extensionPath, 'out', 'cli.js');
    const { stdout } = await promisify(execFile)(process.execPath, [cli, 'analyze', document.fileName, '--backend', 'cpu', '--json', '--threshold', '0.05', '--top', '8'], { maxBuffer: 64 << 20 });
    const expected = JSON.parse(stdout) as CliAnalysis;
    assert.ok(expected.tokens >= 2000, `the file has ${expected.tokens} tokens with the default tokenizer`);
    const importUses = expected.identifiers.filter((identifier) =>
      identifier.sources.some((s) => expected.definitions[s.definition].kind === 'import' && expected.definitions[s.definition].name.split(/,\s*/).includes(identifier.name)),
    );
    assert.ok(importUses.length > 0, 'the default model links at least one distant use of an imported name to its import (CLI, CPU engine)');
    const target = importUses[importUses.length - 1];
    const importSource = target.sources.find((s) => expected.definitions[s.definition].kind === 'import' && expected.definitions[s.definition].name.split(/,\s*/).includes(target.name))!;
    const importLine = expected.definitions[importSource.definition].line;
    console.log(`[integration] default model: ${expected.tokens} tokens, ${expected.windows} windows; ${importUses.length} uses of imported names attend to their import; checking ${target.name} at ${target.line}:${target.column} -> import on line ${importLine} (${(importSource.weight * 100).toFixed(1)}%, ${importSource.tokenDistance} tokens back)`);

    const started = Date.now();
    const outcome = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as { kind: string; message?: string; result?: { windows: number; backend: { kind: string; reason: string }; stats: Record<string, number> } };
    assert.equal(outcome.kind, 'done', outcome.message);
    // No hardware GPU here (SwiftShader only): the default policy runs the CPU engine.
    assert.equal(outcome.result?.backend.kind, 'onnxruntime', `ran on ${JSON.stringify(outcome.result?.backend)}`);
    assert.equal(outcome.result?.windows, expected.windows, 'the editor used the same windows as the CLI');

    editor.selection = new vscode.Selection(target.line - 1, target.column - 1, target.line - 1, target.column - 1);
    editor.revealRange(editor.selection, vscode.TextEditorRevealType.InCenter);
    const deadline = Date.now() + 10_000;
    let snapshot = api.overlaySnapshot(document.uri.toString());
    while (snapshot?.query?.name !== target.name && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      snapshot = api.overlaySnapshot(document.uri.toString());
    }
    assert.equal(snapshot?.query?.name, target.name);
    const highlighted = snapshot!.sources.find((s) => s.kind === 'import' && s.range.start.line + 1 === importLine);
    assert.ok(highlighted, `the import on line ${importLine} is decorated (overlay shows ${JSON.stringify(snapshot!.sources.map((s) => [s.kind, s.range.start.line + 1]))})`);
    assert.ok(Math.abs(highlighted.weight - importSource.weight) < 2e-3, `weight in the editor ${highlighted.weight} vs CLI ${importSource.weight}`);
    // The whole label where it fits before the editor's ruler (120 columns without one), the weight alone on a long line.
    const importText = document.lineAt(importLine - 1).text;
    assert.match(highlighted.label, importText.length + 30 <= 120 ? /^\d+(\.\d)?% from / : /^\d+(\.\d)?%( from |$)/, `the decoration carries a weight label that fits (line of ${importText.length} characters)`);

    const hovers = (await vscode.commands.executeCommand('vscode.executeHoverProvider', document.uri, editor.selection.active)) as vscode.Hover[];
    console.log(`[integration] default model: first hover ${Date.now() - started} ms after Analyze Current File (${expected.tokens} tokens, ${outcome.result?.windows} windows, ${outcome.result?.backend.kind}: ${outcome.result?.backend.reason}; timings ${JSON.stringify(outcome.result?.stats)})`);
    const hoverText = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : c.value))).join('\n');
    assert.ok(hoverText.includes(`line ${importLine}]`), `the hover links to line ${importLine}`);
    assert.match(hoverText, new RegExp(`\\*\\*${(importSource.weight * 100).toFixed(importSource.weight >= 0.0995 ? 0 : 1).replace('.', '\\.')}%\\*\\* import`), 'the hover gives the import its weight');

    const rendered = await api.whenPanelRendered((m) => m.uri === document.uri.toString() && m.queryName === target.name, 30_000);
    assert.ok(rendered.sources.some((s) => Math.abs(s.weight - importSource.weight) < 2e-3), 'the panel lists the import with the same weight');
    await takeScreenshot('default-model-overlay.png');
    await vscode.commands.executeCommand('editor.action.showHover');
    await new Promise((resolve) => setTimeout(resolve, 800));
    await takeScreenshot('default-model-hover.png');
    // The import itself, decorated with the weight the use gives it.
    editor.revealRange(new vscode.Range(0, 0, 0, 0), vscode.TextEditorRevealType.AtTop);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await takeScreenshot('default-model-import.png');
  });

  test('an edit near the end of the long file re-analyses from the first changed token and equals a full analysis', async () => {
    const settings = vscode.workspace.getConfiguration('attentionLens');
    const editor = vscode.window.activeTextEditor!;
    const document = editor.document;
    assert.match(document.fileName, /inventory\.ts$/);
    const folder = vscode.workspace.workspaceFolders![0].uri;
    type Outcome = { kind: string; message?: string; result?: { stats: { elapsedMs: number; forwardMs: number; reusedTokens?: number } } };
    type Exported = { identifiers: { name: string; start: number; sources: { definition: number; weight: number }[] }[] };
    const exportNow = async (name: string): Promise<Exported> => {
      const target = vscode.Uri.joinPath(folder, name);
      await vscode.commands.executeCommand('attentionLens.exportAnalysis', { format: 'json', target });
      const exported = JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(target))) as Exported;
      await vscode.workspace.fs.delete(target);
      return exported;
    };
    const api = vscode.extensions.getExtension<Api>(EXTENSION_ID)!.exports;
    const uri = document.uri.toString();
    const lastLine = document.lineCount - 2;
    const cursorSources = api.overlaySnapshot(uri)?.sources.map((s) => `${s.name} ${s.weight}`);
    const fullTokens = api.analysisStats(uri)!.tokens;
    await editor.edit((edit) => edit.insert(new vscode.Position(lastLine, 0), '// an edit near the end\n'));
    try {
      // At once: the part before the edit stays (exact in a causal model), for the new version; the
      // overlay at the cursor, far above the edit, does not change or flicker.
      const kept = api.analysisStats(uri);
      assert.ok(kept?.partial && kept.version === document.version && kept.tokens < fullTokens && kept.tokens > fullTokens - 100, `right after the edit: ${JSON.stringify(kept)}`);
      assert.deepEqual(api.overlaySnapshot(uri)?.sources.map((s) => `${s.name} ${s.weight}`), cursorSources, 'the overlay above the edit is unchanged');
      // An analysed document is analysed again when typing pauses: wait for that result.
      const deadline = Date.now() + 60_000;
      let stats = api.analysisStats(uri);
      while ((!stats || stats.partial) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        stats = api.analysisStats(uri);
      }
      assert.ok(stats, 'the edited file was analysed again after the edit pause');
      assert.equal(stats.version, document.version);
      const reused = stats.reusedTokens;
      const tokens = stats.tokens;
      assert.ok(reused > 0, `the unchanged windows and prefix come from the previous run: ${JSON.stringify(stats)}`);
      const incremental = { result: { stats } };
      const fromIncremental = await exportNow('incremental.json');

      // The same document analysed from scratch (no cache) must give the same views.
      await settings.update('cacheMegabytes', 0, vscode.ConfigurationTarget.Global);
      const full = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as Outcome;
      assert.equal(full.kind, 'done', full.message);
      assert.equal(full.result!.stats.reusedTokens ?? 0, 0);
      const fromFull = await exportNow('full.json');
      console.log(`[integration] edit near the end: re-analysis reused ${reused} window tokens (${tokens} tokens in the file), forward ${Math.round(incremental.result!.stats.forwardMs)} ms vs ${Math.round(full.result!.stats.forwardMs)} ms for a full analysis`);
      assert.equal(fromIncremental.identifiers.length, fromFull.identifiers.length);
      fromIncremental.identifiers.forEach((identifier, i) => {
        const other = fromFull.identifiers[i];
        assert.equal(identifier.start, other.start);
        assert.deepEqual(identifier.sources.map((s) => s.definition), other.sources.map((s) => s.definition), `sources of ${identifier.name} at ${identifier.start}`);
        identifier.sources.forEach((source, j) => assert.ok(Math.abs(source.weight - other.sources[j].weight) < 1e-3, `weight of ${identifier.name} -> ${source.definition}`));
      });
    } finally {
      await settings.update('cacheMegabytes', undefined, vscode.ConfigurationTarget.Global);
      await vscode.commands.executeCommand('undo');
    }
  });

  test('the dependency map of the long file renders in the panel, its arcs are the CLI\'s, and the heads table names the same best head', async () => {
    const found = vscode.extensions.getExtension<Api>(EXTENSION_ID)!;
    const api = found.exports;
    const editor = vscode.window.activeTextEditor!;
    const document = editor.document;
    assert.match(document.fileName, /inventory\.ts$/);
    for (let i = 0; i < 50 && document.isDirty; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(!document.isDirty, 'the file is as on disk (the CLI reads it from disk)');
    const cli = path.join(found.extensionPath, 'out', 'cli.js');
    const run = async (args: string[]) => JSON.parse((await promisify(execFile)(process.execPath, [cli, ...args, document.fileName, '--backend', 'cpu', '--json'], { maxBuffer: 64 << 20 })).stdout);
    const expected = (await run(['map', '--threshold', '0.1'])) as { tokens: number; nodes: { kind: string; name: string }[]; edges: { from: number; to: number; weight: number; references: number; agreement: string }[] };
    const heads = (await run(['heads'])) as { uses: number; heads: { layer: number; head: number; precision: number }[] };
    assert.ok(expected.tokens >= 2000 && expected.nodes.length >= 25);

    const outcome = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as { kind: string; message?: string };
    assert.equal(outcome.kind, 'done', outcome.message);
    const shown = (await vscode.commands.executeCommand('attentionLens.showDependencyMap')) as { nodes: number; edges: number };
    assert.equal(shown.nodes, expected.nodes.length);
    const uri = document.uri.toString();
    const rendered = await api.whenMapRendered((m) => m.uri === uri && m.version === document.version && m.heads.length > 0 && Math.abs(m.threshold - 0.1) < 1e-9, 60_000);
    assert.deepEqual(rendered.nodes, expected.nodes.map((n) => `${n.kind} ${n.name}`), 'the same nodes in file order');
    // Every arc the CLI draws, the panel draws with the same weight; a language server may add
    // references (never remove them), so the panel can only have more "referenced" arcs.
    const key = (e: { from: number; to: number }) => `${e.from}->${e.to}`;
    const drawn = new Map(rendered.edges.map((e) => [key(e), e]));
    for (const edge of expected.edges) {
      const mine = drawn.get(key(edge));
      assert.ok(mine, `the panel draws ${expected.nodes[edge.from].name} -> ${expected.nodes[edge.to].name}`);
      assert.ok(Math.abs(mine.weight - edge.weight) < 2e-3, `weight ${mine.weight} vs CLI ${edge.weight}`);
      if (edge.agreement === 'both') assert.equal(mine.agreement, 'both');
      if (edge.agreement === 'attentionOnly') assert.ok(mine.agreement === 'attentionOnly' || mine.agreement === 'both');
    }
    const cliKeys = new Set(expected.edges.map(key));
    for (const extra of rendered.edges.filter((e) => !cliKeys.has(key(e)))) assert.equal(extra.agreement, 'referenceOnly', `an extra arc ${key(extra)} can only be a language-server reference`);
    console.log(`[integration] dependency map of ${path.basename(document.fileName)}: ${rendered.nodes.length} nodes, ${rendered.edges.length} arcs at 10% (${rendered.edges.filter((e) => e.agreement === 'both').length} attended and referenced, ${rendered.edges.filter((e) => e.agreement === 'attentionOnly').length} attended only, ${rendered.edges.filter((e) => e.agreement === 'referenceOnly').length} referenced only); best head ${rendered.heads[0]} on ${heads.uses} uses`);
    assert.equal(rendered.heads[0], `L${heads.heads[0].layer} H${heads.heads[0].head}`, 'the panel\'s best definition head is the CLI\'s');
    await new Promise((resolve) => setTimeout(resolve, 500));
    await takeScreenshot('dependency-map.png');
    // The map uses theme colours only: the same view in a light theme.
    const workbench = vscode.workspace.getConfiguration('workbench');
    await workbench.update('colorTheme', 'Default Light Modern', vscode.ConfigurationTarget.Global);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await takeScreenshot('dependency-map-light.png');
    } finally {
      await workbench.update('colorTheme', undefined, vscode.ConfigurationTarget.Global);
    }
  });
});
