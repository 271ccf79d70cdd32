// The analysis in a real VS Code: Analyze Current File runs the model in the panel's webview
// (WebGPU), and the overlay, hover, CodeLens and commands show what the CLI computes for the same
// file in Node (the CPU reference engine): two engines, two hosts, one answer.
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as vscode from 'vscode';
import { takeScreenshot } from '../screenshots';

const EXTENSION_ID = 'attention-lens.attention-lens';

interface OverlaySnapshot {
  query?: { name: string; range: vscode.Range };
  sources: { name: string; kind: string; range: vscode.Range; weight: number; label: string }[];
}
interface PanelRender {
  uri: string;
  heatSource: 'exact' | 'topK';
  queryName: string | null;
  sources: { name: string; weight: number }[];
  heatedTokens: number;
  gridCells: number;
  dependencies?: { name: string; attention: number; kl: number }[];
}
interface AttentionLensApi {
  overlaySnapshot(uri: string): OverlaySnapshot | undefined;
  statusBarText(): string;
  hasAnalysis(uri: string): boolean;
  whenPanelRendered(accept: (message: PanelRender) => boolean, timeoutMs: number): Promise<PanelRender>;
}
interface Outcome {
  kind: string;
  message?: string;
  warnings?: string[];
  result?: { doc: { tokenIds: number[] }; backend: { kind: string }; windows: number };
}
interface CliAnalysis {
  definitions: { kind: string; name: string; line: number }[];
  identifiers: { name: string; line: number; column: number; sources: { definition: number; weight: number }[] }[];
}

const extension = () => {
  const found = vscode.extensions.getExtension<AttentionLensApi>(EXTENSION_ID);
  assert.ok(found, `${EXTENSION_ID} is loaded`);
  return found;
};

async function configure(values: Record<string, unknown>): Promise<void> {
  const settings = vscode.workspace.getConfiguration('attentionLens');
  for (const [key, value] of Object.entries(values)) await settings.update(key, value, vscode.ConfigurationTarget.Global);
}

async function open(relativePath: string): Promise<vscode.TextEditor> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder);
  const document = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder.uri, relativePath));
  return vscode.window.showTextDocument(document, vscode.ViewColumn.One);
}

/** Waits until `check` returns a value (the overlay redraws on selection events). */
async function eventually<T>(check: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

suite('Attention Lens: analysis, overlay, hover, CodeLens', function () {
  this.timeout(600_000);
  const fixtureModel = () => path.join(extension().extensionPath, 'test', 'fixtures', 'models', 'llama-f32');
  const view = { minDistance: 8, threshold: 0.02 };

  suiteSetup(async () => {
    await extension().activate();
    await configure({ model: fixtureModel(), minDistance: view.minDistance, threshold: view.threshold, distance: 'tokens', backend: 'auto' });
  });

  suiteTeardown(async () => {
    await configure({ model: undefined, minDistance: undefined, threshold: undefined, distance: undefined, backend: undefined });
  });

  test('analysing a file on WebGPU puts the same distant sources on the overlay as the CLI computes on ONNX Runtime', async () => {
    const editor = await open('src/money.ts');
    await configure({ backend: 'webgpu' });
    let outcome: Outcome;
    try {
      outcome = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as Outcome;
    } finally {
      await configure({ backend: 'auto' });
    }
    assert.equal(outcome.kind, 'done', outcome.message);
    assert.equal(outcome.result?.backend.kind, 'webgpu', 'the webview ran the model on WebGPU');
    const api = extension().exports;
    const uri = editor.document.uri.toString();
    assert.ok(api.hasAnalysis(uri));

    // The CLI, in Node on the CPU engine (ONNX Runtime), analyses the same file with the same settings.
    const cli = path.join(extension().extensionPath, 'out', 'cli.js');
    const { stdout } = await promisify(execFile)(process.execPath, [cli, 'analyze', editor.document.fileName, '--model', fixtureModel(), '--backend', 'cpu', '--json', '--min-distance', String(view.minDistance), '--threshold', String(view.threshold), '--top', '8'], { maxBuffer: 64 << 20 });
    const expected = JSON.parse(stdout) as CliAnalysis;
    // The last identifier with sources: move the cursor there and compare.
    const target = expected.identifiers[expected.identifiers.length - 1];
    assert.ok(target, 'the CLI found identifiers with distant sources');
    editor.selection = new vscode.Selection(target.line - 1, target.column - 1, target.line - 1, target.column - 1);
    const snapshot = await eventually(() => {
      const s = api.overlaySnapshot(uri);
      return s?.query?.name === target.name ? s : undefined;
    }, `the overlay for ${target.name}`);
    const want = target.sources.map((s) => ({ name: expected.definitions[s.definition].name, line: expected.definitions[s.definition].line, weight: s.weight }));
    const got = snapshot.sources.map((s) => ({ name: s.name, line: s.range.start.line + 1, weight: Number(s.weight.toFixed(4)) }));
    console.log(`[integration] ${target.name} at ${target.line}:${target.column} attends to ${JSON.stringify(got)}`);
    assert.deepEqual(got.map((s) => [s.name, s.line]), want.map((s) => [s.name, s.line]), 'the overlay decorates the definitions the CLI names, in the same order');
    got.forEach((s, i) => assert.ok(Math.abs(s.weight - want[i].weight) < 2e-3, `weight of ${s.name}: WebGPU ${s.weight} vs ONNX Runtime ${want[i].weight}`));

    // The hover on that token names the same sources with their weights.
    const hovers = (await vscode.commands.executeCommand('vscode.executeHoverProvider', editor.document.uri, editor.selection.active)) as vscode.Hover[];
    const text = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : c.value))).join('\n');
    assert.match(text, /Attention Lens/);
    for (const source of want.slice(0, 3)) {
      assert.ok(text.includes(`\`${source.name}\``), `the hover names ${source.name}`);
      assert.ok(text.includes(`line ${source.line}`), `the hover gives line ${source.line}`);
    }
    await takeScreenshot('overlay.png');

    // The panel answers for the same token: same sources and weights, a heatmap and a full grid.
    const rendered = await api.whenPanelRendered((m) => m.uri === uri && m.queryName === target.name, 20_000);
    assert.deepEqual(rendered.sources.map((s) => s.name), want.map((s) => s.name), 'the panel lists the sources the overlay shows');
    assert.ok(rendered.heatedTokens > 0, 'the panel paints a heatmap');
    assert.equal(rendered.gridCells, 2 * 4, 'one grid cell per layer and head (2 x 4 in the fixture model)');
    await takeScreenshot('panel.png');

    // CodeLens: every definition gets an "attended by" count.
    const lenses = (await vscode.commands.executeCommand('vscode.executeCodeLensProvider', editor.document.uri)) as vscode.CodeLens[];
    const ours = lenses.filter((lens) => lens.command?.command === 'attentionLens.showAttenders');
    assert.equal(ours.length, expected.definitions.length, 'one CodeLens per definition or import');
    assert.ok(ours.some((lens) => /attended by \d+ token/.test(lens.command?.title ?? '')), 'at least one definition is attended by some token');
  });

  test('Check dependencies from the hover puts the knockout effect beside attention in the hover, the panel and the export', async () => {
    const editor = vscode.window.activeTextEditor!;
    const api = extension().exports;
    const uri = editor.document.uri.toString();
    const snapshot = api.overlaySnapshot(uri);
    assert.ok(snapshot?.query && snapshot.sources.length > 0, 'the cursor is on a token with distant sources');
    const hoverText = async () => {
      const hovers = (await vscode.commands.executeCommand('vscode.executeHoverProvider', editor.document.uri, editor.selection.active)) as vscode.Hover[];
      return hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : c.value))).join('\n');
    };
    const before = await hoverText();
    const link = /\[\$\(beaker\) Check dependencies\]\(command:attentionLens\.checkDependencies\?([^ )]+)/.exec(before);
    assert.ok(link, `the hover offers "Check dependencies": ${before}`);
    type Check = { name: string; spans: { definition: number; attention: number; valueWeighted: number; kl: number; deltaLogProb: number | null; verdict: string }[]; backend: { kind: string; reason: string }; elapsedMs: number };
    // What clicking the link runs: the command with the link's arguments.
    const check = (await vscode.commands.executeCommand('attentionLens.checkDependencies', ...(JSON.parse(decodeURIComponent(link[1])) as unknown[]))) as Check;
    assert.ok(check && check.spans.length > 0, 'the check knocked out the earlier definitions and imports');
    assert.equal(check.name, snapshot.query.name);
    // The file was analysed on WebGPU (the test before forced it): the check runs there too.
    assert.equal(check.backend.kind, 'webgpu', `the check ran on ${JSON.stringify(check.backend)}`);
    for (const span of check.spans) assert.ok(span.kl >= 0 && Number.isFinite(span.kl), `KL ${span.kl}`);
    const strongest = snapshot.sources[0];
    assert.ok(check.spans.some((s) => Math.abs(s.attention - strongest.weight) < 2e-3), `the check carries the attention the overlay shows for ${strongest.name} (${strongest.weight})`);
    console.log(`[integration] check dependencies of ${check.name} in ${Math.round(check.elapsedMs)} ms: ${JSON.stringify(check.spans.slice(0, 4))}`);

    const after = await hoverText();
    // The hover trusts only the extension's own commands (SECURITY.md): every command link is one.
    const commands = [...`${before}\n${after}`.matchAll(/\(command:([\w.]+)/g)].map((m) => m[1]);
    assert.ok(commands.length > 0);
    assert.deepEqual([...new Set(commands)].filter((c) => c !== 'attentionLens.revealRange' && c !== 'attentionLens.checkDependencies'), []);
    assert.match(after, /Does the prediction depend on them\?/);
    // Headers that do not wrap (non-breaking hyphen and spaces), each number explained under the table.
    assert.match(after, /\| span \| attention \| value\u2011weighted \| knockout\u00a0KL \| Δ\u00a0log\u00a0p \|/);
    assert.match(after, /Knockout KL: how far the prediction of the next token moves/);
    assert.match(after, /Δ log p: the change in the log-probability of the file's next token; negative/);
    assert.ok(after.includes(check.spans[0].kl.toFixed(3)), `the hover shows the largest knockout KL ${check.spans[0].kl.toFixed(3)}`);
    assert.ok(after.includes(`\`${strongest.name}\``), `the hover names ${strongest.name}`);

    const rendered = await api.whenPanelRendered((m) => m.uri === uri && (m.dependencies?.length ?? 0) > 0, 20_000);
    assert.ok(Math.abs(rendered.dependencies![0].kl - check.spans[0].kl) < 1e-9, 'the panel lists the same effects, strongest first');
    await vscode.commands.executeCommand('editor.action.showHover');
    await new Promise((resolve) => setTimeout(resolve, 800));
    await takeScreenshot('check-dependencies.png');

    const target = vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0].uri, 'money.dependencies.json');
    await vscode.commands.executeCommand('attentionLens.exportAnalysis', { format: 'json', target });
    const exported = JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(target))) as { dependencyChecks: { name: string; spans: { kl: number }[] }[] };
    assert.equal(exported.dependencyChecks.length, 1);
    assert.equal(exported.dependencyChecks[0].name, check.name);
    assert.ok(Math.abs(exported.dependencyChecks[0].spans[0].kl - check.spans[0].kl) < 1e-4);
    await vscode.workspace.fs.delete(target);

    // The reverse view, causally: hide the strongest span from the whole file; the tokens whose
    // prediction changes most come first.
    const definitionIndex = (exported as unknown as { definitions: { name: string }[] }).definitions.findIndex((d) => d.name === strongest.name);
    assert.ok(definitionIndex >= 0);
    const dependents = (await vscode.commands.executeCommand('attentionLens.showCausalDependents', uri, definitionIndex, { pick: false })) as { name: string; line: number; kl: number; deltaLogProb: number | null }[];
    console.log(`[integration] hiding ${strongest.name} from the file: ${dependents.length} identifiers change, strongest ${JSON.stringify(dependents.slice(0, 3))}`);
    assert.ok(dependents.length > 0, 'hiding the span changes some later predictions');
    for (let i = 1; i < dependents.length; i++) assert.ok(dependents[i - 1].kl >= dependents[i].kl, 'sorted by effect');

    // The same check after a CPU analysis gives the same effects: WebGPU in the webview vs ONNX
    // Runtime in the extension host, within the engines' tolerance.
    await configure({ backend: 'cpu' });
    let onCpu: Check;
    try {
      const outcome = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as Outcome;
      assert.equal(outcome.kind, 'done', outcome.message);
      onCpu = (await vscode.commands.executeCommand('attentionLens.checkDependencies', ...(JSON.parse(decodeURIComponent(link[1])) as unknown[]))) as Check;
    } finally {
      await configure({ backend: 'auto' });
    }
    assert.equal(onCpu.backend.kind, 'onnxruntime');
    assert.equal(onCpu.spans.length, check.spans.length);
    let worst = 0;
    for (const span of check.spans) {
      const other = onCpu.spans.find((s) => s.definition === span.definition)!;
      assert.ok(other, `definition ${span.definition} checked on both engines`);
      worst = Math.max(worst, Math.abs(other.kl - span.kl), Math.abs(other.valueWeighted - span.valueWeighted), Math.abs((other.deltaLogProb ?? 0) - (span.deltaLogProb ?? 0)));
    }
    console.log(`[integration] check dependencies on WebGPU (${Math.round(check.elapsedMs)} ms) vs the CPU engine (${Math.round(onCpu.elapsedMs)} ms): max |diff| ${worst.toExponential(2)} over KL, value-weighted attention and delta log p`);
    assert.ok(worst < 1e-3, `WebGPU and the CPU engine agree within 1e-3 (worst ${worst})`);
  });

  test('sources at cursor lists what the overlay shows, and export writes JSON and a standalone HTML page', async () => {
    const editor = vscode.window.activeTextEditor!;
    const api = extension().exports;
    const snapshot = api.overlaySnapshot(editor.document.uri.toString());
    assert.ok(snapshot && snapshot.sources.length > 0);
    // The command shows a quick pick; close it the way a user pressing Escape would.
    const listing = vscode.commands.executeCommand('attentionLens.showSourcesAtCursor') as Thenable<{ name: string; weight: number }[]>;
    await new Promise((resolve) => setTimeout(resolve, 500));
    await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
    const listed = await listing;
    assert.deepEqual(listed.map((s) => s.name), snapshot.sources.map((s) => s.name));

    const folder = vscode.workspace.workspaceFolders![0].uri;
    const jsonTarget = vscode.Uri.joinPath(folder, 'money.attention.json');
    const htmlTarget = vscode.Uri.joinPath(folder, 'money.attention.html');
    await vscode.commands.executeCommand('attentionLens.exportAnalysis', { format: 'json', target: jsonTarget });
    await vscode.commands.executeCommand('attentionLens.exportAnalysis', { format: 'html', target: htmlTarget });
    const exported = JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(jsonTarget)));
    assert.equal(exported.format, 'attention-lens-analysis');
    assert.equal(exported.tokens.length, exported.tokens.filter((t: { id: number }) => Number.isInteger(t.id)).length);
    assert.ok(exported.definitions.some((d: { name: string }) => d.name === snapshot.sources[0].name));
    const html = new TextDecoder().decode(await vscode.workspace.fs.readFile(htmlTarget));
    assert.match(html, /^<!DOCTYPE html>/);
    assert.ok(!/(src|href)=["']https?:/.test(html), 'the page loads nothing from the network');
    assert.match(html, /class="ident"/, 'identifiers are clickable in the page');
  });

  test('for a single head of a one-window analysis the panel paints the exact attention row', async () => {
    const document = await vscode.workspace.openTextDocument({ language: 'typescript', content: "import { a } from './a';\nconst b = a + a;\n" });
    const editor = await vscode.window.showTextDocument(document);
    const outcome = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as Outcome;
    assert.equal(outcome.kind, 'done', outcome.message);
    assert.equal(outcome.result?.windows, 1);
    await vscode.commands.executeCommand('attentionLens.selectLayerHead', { layer: 1, head: 2 });
    try {
      editor.selection = new vscode.Selection(1, 14, 1, 14);
      const rendered = await extension().exports.whenPanelRendered((m) => m.uri === document.uri.toString() && m.queryName === 'a' && m.heatSource === 'exact', 20_000);
      assert.ok(rendered.heatedTokens >= 5, `an exact row weighs every earlier token (${rendered.heatedTokens} painted)`);
    } finally {
      // Back to the default view (the later suites compare with the CLI's default).
      await vscode.commands.executeCommand('attentionLens.selectLayerHead', { layer: 'all', head: 'definition' });
      await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
    }
  });

  test('an edit during an analysis discards its result', async () => {
    const editor = await open('src/csv.ts');
    const running = vscode.commands.executeCommand('attentionLens.analyzeFile') as Thenable<Outcome>;
    // The edit lands while the run is still loading the model and tokenizing.
    await editor.edit((edit) => edit.insert(new vscode.Position(0, 0), '// changed while analysing\n'));
    const outcome = await running;
    assert.equal(outcome.kind, 'stale', outcome.message);
    assert.match(outcome.message ?? '', /changed during the analysis/);
    assert.equal(extension().exports.hasAnalysis(editor.document.uri.toString()), false, 'no result is kept for the edited document');
    await vscode.commands.executeCommand('workbench.action.files.revert');
    await open('src/money.ts');
  });

  test('an edit clears the overlay at once, before any re-analysis', async () => {
    const editor = vscode.window.activeTextEditor!;
    const uri = editor.document.uri.toString();
    const api = extension().exports;
    assert.ok(api.hasAnalysis(uri), 'the previous test left an analysis');
    assert.ok((api.overlaySnapshot(uri)?.sources.length ?? 0) > 0, 'the overlay shows sources before the edit');
    await editor.edit((edit) => edit.insert(new vscode.Position(0, 0), '// edited\n'));
    assert.equal(api.hasAnalysis(uri), false, 'the result of the old version is gone');
    const snapshot = api.overlaySnapshot(uri);
    assert.equal(snapshot?.sources.length ?? 0, 0, 'no decoration survives the edit');
    await vscode.commands.executeCommand('workbench.action.files.revert');
  });

  test('with autoAnalyze onSave, saving a file analyses it without a command', async () => {
    await configure({ autoAnalyze: 'onSave' });
    try {
      const editor = await open('src/csv.ts');
      const uri = editor.document.uri.toString();
      assert.equal(extension().exports.hasAnalysis(uri), false);
      await editor.edit((edit) => edit.insert(new vscode.Position(0, 0), '// saved\n'));
      await editor.document.save();
      await eventually(() => (extension().exports.hasAnalysis(uri) ? true : undefined), 'the analysis after saving', 60_000);
    } finally {
      await configure({ autoAnalyze: undefined });
      await open('src/money.ts');
    }
  });

  test('minified, invalid UTF-8, read-only virtual documents and notebook cells are analysed, each with its note', async () => {
    const analyse = async (uri: vscode.Uri) => (await vscode.commands.executeCommand('attentionLens.analyzeFile', uri)) as Outcome;

    const minified = await vscode.workspace.openTextDocument({ language: 'javascript', content: `var a=1;${'a=a+1;'.repeat(600)}` });
    const minifiedOutcome = await analyse(minified.uri);
    assert.equal(minifiedOutcome.kind, 'done', minifiedOutcome.message);
    assert.ok(minifiedOutcome.warnings?.some((w) => /looks minified/.test(w)), JSON.stringify(minifiedOutcome.warnings));

    const folder = vscode.workspace.workspaceFolders![0].uri;
    const latin1 = vscode.Uri.joinPath(folder, 'latin1.ts');
    await vscode.workspace.fs.writeFile(latin1, Uint8Array.from([...Buffer.from('export const caf = "caf'), 0xe9, ...Buffer.from('";\n')]));
    const invalidOutcome = await analyse(latin1);
    assert.equal(invalidOutcome.kind, 'done', invalidOutcome.message);
    assert.ok(invalidOutcome.warnings?.some((w) => /not valid in its encoding/.test(w)), JSON.stringify(invalidOutcome.warnings));

    const scheme = 'attention-lens-test';
    const provider = vscode.workspace.registerTextDocumentContentProvider(scheme, { provideTextDocumentContent: () => "import { a } from './a';\nexport function f() { return a; }\n" });
    try {
      const virtual = await vscode.workspace.openTextDocument(vscode.Uri.parse(`${scheme}:/virtual.ts`));
      await vscode.languages.setTextDocumentLanguage(virtual, 'typescript');
      const virtualOutcome = await analyse(virtual.uri);
      assert.equal(virtualOutcome.kind, 'done', virtualOutcome.message);
    } finally {
      provider.dispose();
    }

    const notebook = await vscode.workspace.openNotebookDocument('jupyter-notebook', new vscode.NotebookData([new vscode.NotebookCellData(vscode.NotebookCellKind.Code, 'import os\nprint(os.getcwd())\n', 'python')]));
    const cellOutcome = await analyse(notebook.cellAt(0).document.uri);
    assert.equal(cellOutcome.kind, 'done', cellOutcome.message);
    assert.ok(cellOutcome.warnings?.some((w) => /notebook cell on its own/.test(w)), JSON.stringify(cellOutcome.warnings));
  });

  test('each backend setting runs the engine the policy names, says why, and finds the same sources', async () => {
    type Ran = Outcome & { result?: { backend: { kind: string; reason?: string }; summary: { topIndices: Record<string, number> } } };
    const api = extension().exports;
    const runs: Record<string, Ran> = {};
    try {
      for (const backend of ['auto', 'cpu', 'reference'] as const) {
        await configure({ backend });
        const editor = await open('src/money.ts');
        runs[backend] = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as Ran;
        assert.equal(runs[backend].kind, 'done', runs[backend].message);
        assert.ok(api.hasAnalysis(editor.document.uri.toString()));
      }
    } finally {
      await configure({ backend: 'auto' });
    }
    // The test VS Code's only adapter is SwiftShader, a software one: auto picks ONNX Runtime.
    assert.equal(runs.auto.result?.backend.kind, 'onnxruntime');
    assert.match(runs.auto.result?.backend.reason ?? '', /the only WebGPU adapter is a software one/);
    assert.equal(runs.cpu.result?.backend.kind, 'onnxruntime');
    assert.match(runs.cpu.result?.backend.reason ?? '', /requested \(backend "cpu"\)/);
    assert.equal(runs.reference.result?.backend.kind, 'reference');
    assert.match(runs.reference.result?.backend.reason ?? '', /requested \(backend "reference"\)/);
    const status = api.statusBarText();
    console.log(`[integration] status bar after the reference run: ${status}`);
    assert.match(status, /CPU reference/);
  });

  test('bad inputs get a clear message, never an exception', async () => {
    const empty = await vscode.workspace.openTextDocument({ language: 'typescript', content: '' });
    await vscode.window.showTextDocument(empty);
    const emptyOutcome = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as Outcome;
    assert.equal(emptyOutcome.kind, 'refused');
    assert.match(emptyOutcome.message ?? '', /empty/);

    const binary = await vscode.workspace.openTextDocument({ language: 'plaintext', content: 'PK\u0003\u0004\u0000\u0000\u0000binary' });
    await vscode.window.showTextDocument(binary);
    const binaryOutcome = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as Outcome;
    assert.equal(binaryOutcome.kind, 'refused');
    assert.match(binaryOutcome.message ?? '', /binary/);

    await configure({ maxFileTokens: 256 });
    try {
      const large = await vscode.workspace.openTextDocument({ language: 'typescript', content: 'export const value = 1;\n'.repeat(400) });
      await vscode.window.showTextDocument(large);
      const largeOutcome = (await vscode.commands.executeCommand('attentionLens.analyzeFile')) as Outcome;
      assert.equal(largeOutcome.kind, 'refused');
      assert.match(largeOutcome.message ?? '', /Analyze Selection/, 'a too-large file says how to analyse part of it');
      const editor = vscode.window.activeTextEditor!;
      editor.selection = new vscode.Selection(0, 0, 3, 0);
      const selectionOutcome = (await vscode.commands.executeCommand('attentionLens.analyzeSelection')) as Outcome;
      assert.equal(selectionOutcome.kind, 'done', selectionOutcome.message);
    } finally {
      await configure({ maxFileTokens: undefined });
      // Close the scratch documents without saving them.
      for (let i = 0; i < 3; i++) await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
    }
  });
});
