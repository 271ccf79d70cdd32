/**
 * Attention Lens extension entry point. Reads top-down: log and status bar, the panel, the analysis
 * controller, the editor views (overlay, hover, CodeLens), then the commands and automatic runs.
 * Everything disposable goes to `context.subscriptions`.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AnalysisController, type AnalysisOutcome } from './analysis/analysisController';
import { queryAt, type DocumentAnalysisResult } from './analysis/documentResult';
import { documentView, queryView } from './panel/panelViews';
import { COMMANDS, PANEL_VIEW_TYPE } from './commandIds';
import { readConfig } from './config';
import { AttendedByCodeLensProvider } from './editor/codeLensProvider';
import { AttentionHoverProvider } from './editor/hoverProvider';
import { AttentionOverlay, type OverlaySnapshot } from './editor/overlay';
import { distanceRule, percent, presentAt } from './editor/presentation';
import { describeView, ViewState } from './editor/viewState';
import { exportHtml, exportJson } from './export/exportAnalysis';
import { ModelHub, type ChooseModelArgs } from './hub/modelHub';
import { AttentionPanel, type PanelHost } from './panel/attentionPanel';
import type { ViewRenderedMessage, WebGpuProbeResult } from './shared/protocol';
import { AttentionStatusBar } from './statusBar';

/** What `activate` returns: used by the integration tests and by other extensions. */
export interface AttentionLensApi {
  /** Resolves with the panel's next (or latest) WebGPU probe; rejects after `timeoutMs`. */
  whenProbed(timeoutMs: number): Promise<WebGpuProbeResult>;
  /** What the overlay shows in the visible editor of `uri` (VS Code cannot read decorations back). */
  overlaySnapshot(uri: string): OverlaySnapshot | undefined;
  /** True when `uri` has an analysis for its current version. */
  hasAnalysis(uri: string): boolean;
  /** Resolves with the next panel render that satisfies `accept` (or the latest one, if it does). */
  whenPanelRendered(accept: (message: ViewRenderedMessage) => boolean, timeoutMs: number): Promise<ViewRenderedMessage>;
}

export function activate(context: vscode.ExtensionContext): AttentionLensApi {
  const log = vscode.window.createOutputChannel('Attention Lens', { log: true });
  context.subscriptions.push(log);
  try {
    return activateWith(context, log);
  } catch (error) {
    // VS Code shows nothing for a failed activation: tell the user, then let VS Code record it.
    const message = error instanceof Error ? error.message : String(error);
    log.error(`Activation failed: ${message}`);
    void vscode.window.showErrorMessage(`Attention Lens could not start: ${message}`, 'Show Log').then((choice) => {
      if (choice) log.show();
    });
    throw error;
  }
}

function activateWith(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): AttentionLensApi {
  const config = () => readConfig((key) => vscode.workspace.getConfiguration('attentionLens').get(key));
  log.info(`Attention Lens ${context.extension.packageJSON.version} activated in ${vscode.env.appName} ${vscode.version} (${vscode.env.uiKind === vscode.UIKind.Web ? 'web' : 'desktop'} UI${vscode.env.remoteName ? `, remote ${vscode.env.remoteName}` : ''}).`);

  const statusBar = new AttentionStatusBar();
  const viewState = new ViewState(context.workspaceState);
  context.subscriptions.push(statusBar, viewState);

  // ---- The panel (where the engine runs) -------------------------------------------------------
  let latestProbe: WebGpuProbeResult | undefined;
  let lastPanelRender: ViewRenderedMessage | undefined;
  const renderWaiters = new Set<(message: ViewRenderedMessage) => void>();
  const probeWaiters = new Set<(probe: WebGpuProbeResult) => void>();
  const panelHost: PanelHost = {
    extensionUri: context.extensionUri,
    log,
    onProbe(probe) {
      latestProbe = probe;
      if (!controller.allResults().length) statusBar.showProbe(probe);
      if (probe.ok) {
        const a = probe.adapter;
        log.info(`WebGPU adapter: vendor=${a.vendor || '?'} architecture=${a.architecture || '?'} device=${a.device || '?'} description=${a.description || '?'} fallback=${a.isFallbackAdapter}`);
        log.info(`WebGPU features: ${a.features.join(', ') || 'none'}`);
        log.info(`WebGPU limits: ${Object.entries(a.limits).map(([k, v]) => `${k}=${v}`).join(' ')}`);
      } else {
        log.warn(`No WebGPU adapter in the panel: ${probe.error}. The CPU reference implementation will be used.`);
      }
      for (const waiter of probeWaiters) waiter(probe);
      probeWaiters.clear();
    },
    onSelectToken(uri, token) {
      const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === uri);
      const result = editor && controller.resultFor(editor.document);
      const range = result?.doc.ranges[token];
      if (!editor || !result || !range) return;
      const position = editor.document.positionAt(result.baseOffset + range.start);
      editor.selection = new vscode.Selection(position, position);
      editor.revealRange(new vscode.Range(position, position), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      void vscode.window.showTextDocument(editor.document, { viewColumn: editor.viewColumn, preserveFocus: false });
    },
    onSetView(layer, head, threshold) {
      void viewState.set({ layer, head });
      if (Math.abs(threshold - config().threshold) > 1e-9) void vscode.workspace.getConfiguration('attentionLens').update('threshold', threshold, vscode.ConfigurationTarget.Workspace);
    },
    onViewRendered(message) {
      lastPanelRender = message;
      for (const waiter of renderWaiters) waiter(message);
    },
    onPanelReady() {
      panelSync.documentSent = undefined;
      syncPanel();
    },
  };

  /** Keeps the panel on the active editor's analysis and its cursor token. */
  const panelSync: { documentSent?: DocumentAnalysisResult; timer?: ReturnType<typeof setTimeout> } = {};
  const syncPanel = () => {
    const panel = AttentionPanel.instance;
    const editor = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors.find((e) => controller.resultFor(e.document));
    const result = editor && controller.resultFor(editor.document);
    if (!panel || !editor || !result) return;
    if (panelSync.documentSent !== result) {
      panel.post(documentView(result, path.basename(editor.document.fileName)));
      panelSync.documentSent = result;
    }
    const query = queryAt(result, editor.document.offsetAt(editor.selection.active));
    panel.post(queryView(result, query, viewState.view, distanceRule(config()), config().threshold));
  };
  const schedulePanelSync = () => {
    clearTimeout(panelSync.timer);
    panelSync.timer = setTimeout(syncPanel, 80);
  };
  context.subscriptions.push(
    { dispose: () => clearTimeout(panelSync.timer) },
    vscode.window.onDidChangeTextEditorSelection((event) => {
      if (controller.resultFor(event.textEditor.document)) schedulePanelSync();
    }),
    vscode.window.onDidChangeActiveTextEditor(() => schedulePanelSync()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('attentionLens')) schedulePanelSync();
    }),
  );
  context.subscriptions.push(
    vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel) {
        AttentionPanel.revive(panel, panelHost);
      },
    }),
    { dispose: () => AttentionPanel.instance?.dispose() },
  );

  // ---- Analysis and editor views ---------------------------------------------------------------
  /** Documents analysed at least once: edits re-analyse them after a pause (unless autoAnalyze is off). */
  const analysed = new Set<string>();
  const setHasAnalysis = () => {
    const editor = vscode.window.activeTextEditor;
    void vscode.commands.executeCommand('setContext', 'attentionLens.hasAnalysis', Boolean(editor && controller.resultFor(editor.document)));
  };
  const controller: AnalysisController = new AnalysisController(context.extensionPath, panelHost, log, config, {
    onStart(document) {
      statusBar.showRunning(path.basename(document.fileName), 'current model');
    },
    onResultChanged() {
      overlay.updateAll();
      codeLens.refresh();
      setHasAnalysis();
      schedulePanelSync();
    },
    onOutcome(document, outcome) {
      if (outcome.kind === 'done') {
        analysed.add(document.uri.toString());
        statusBar.showResult(outcome.result);
        AttentionPanel.instance?.post({ type: 'panelState', documentName: path.basename(document.fileName), status: `${outcome.result.doc.tokenIds.length} tokens analysed. Move the cursor onto an identifier to see what it attends to.` });
      } else if (outcome.kind !== 'stale') {
        statusBar.showProblem(outcome.message);
      }
    },
  });
  const overlay = new AttentionOverlay(context.extensionUri, controller, viewState, config);
  const codeLens = new AttendedByCodeLensProvider(controller, viewState, config);
  const attendersHighlight = vscode.window.createTextEditorDecorationType({ backgroundColor: new vscode.ThemeColor('attentionLens.queryBackground'), borderRadius: '2px' });
  context.subscriptions.push(
    controller,
    overlay,
    codeLens,
    attendersHighlight,
    vscode.languages.registerHoverProvider({ scheme: '*' }, new AttentionHoverProvider(controller, viewState, config)),
    vscode.languages.registerCodeLensProvider({ scheme: '*' }, codeLens),
    viewState.onDidChange(() => {
      codeLens.refresh();
      schedulePanelSync();
    }),
    vscode.window.onDidChangeActiveTextEditor(() => setHasAnalysis()),
  );

  /** Runs an analysis from a command and tells the user what happened. */
  const analyzeWithMessages = async (document: vscode.TextDocument, selection?: vscode.Range, automatic = false): Promise<AnalysisOutcome> => {
    const view = viewState.view;
    const outcome = await controller.analyze(document, { selection, automatic, preferredLayer: view.layer === 'all' ? undefined : view.layer });
    if (automatic || outcome.kind === 'done' || outcome.kind === 'stale') return outcome;
    if (outcome.kind === 'cancelled') {
      void vscode.window.showInformationMessage('Attention Lens: the analysis was cancelled.');
    } else if (outcome.kind === 'refused') {
      const actions = /Analyze Selection/.test(outcome.message) ? ['Analyze Selection'] : [];
      void vscode.window.showWarningMessage(`Attention Lens: ${outcome.message}`, ...actions).then((choice) => {
        if (choice === 'Analyze Selection') void vscode.commands.executeCommand(COMMANDS.analyzeSelection);
      });
    } else {
      void vscode.window.showErrorMessage(`Attention Lens: ${outcome.message}`, 'Show Log').then((choice) => {
        if (choice) log.show();
      });
    }
    return outcome;
  };

  const activeEditorOrSay = (): vscode.TextEditor | undefined => {
    const editor = vscode.window.activeTextEditor;
    if (!editor) void vscode.window.showInformationMessage('Attention Lens: open a source file first.');
    return editor;
  };

  const resultOrSay = (editor: vscode.TextEditor) => {
    const result = controller.resultFor(editor.document);
    if (!result) {
      void vscode.window.showInformationMessage(
        controller.isRunning(editor.document) ? 'Attention Lens: the analysis of this file is still running.' : 'Attention Lens: this file has no current analysis. Run "Attention Lens: Analyze Current File".',
      );
    }
    return result;
  };

  /** Layer and head counts of the model the views refer to. */
  const modelShape = async (): Promise<{ layers: number; heads: number } | undefined> => {
    const editor = vscode.window.activeTextEditor;
    const result = editor ? controller.resultFor(editor.document) : controller.allResults()[0];
    if (result) return { layers: result.model.numLayers, heads: result.model.numHeads };
    try {
      const model = await controller.activeModel();
      return { layers: model.spec.numLayers, heads: model.spec.numHeads };
    } catch (error) {
      void vscode.window.showErrorMessage(`Attention Lens: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
  };

  const reveal = async (uri: string, range: vscode.Range) => {
    const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(uri));
    const editor = await vscode.window.showTextDocument(document, { preserveFocus: false, preview: true });
    editor.selection = new vscode.Selection(range.start, range.end);
    editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  };

  // ---- Models from the Hugging Face Hub (choose, download, cache, token) --------------------------
  const modelHub = new ModelHub({ context, log, config, models: controller });
  controller.modelCacheRoots = () => modelHub.cacheRoots();
  context.subscriptions.push(
    modelHub,
    vscode.commands.registerCommand(COMMANDS.manageModelCache, () => modelHub.manageCache()),
    vscode.commands.registerCommand(COMMANDS.setHubToken, () => modelHub.setToken()),
    vscode.commands.registerCommand(COMMANDS.clearHubToken, () => modelHub.clearToken()),
  );
  // ---- End of the Hugging Face Hub block ----------------------------------------------------------

  // ---- Commands ----------------------------------------------------------------------------------
  context.subscriptions.push(
    vscode.commands.registerCommand(COMMANDS.analyzeFile, async (uri?: vscode.Uri) => {
      const document = uri instanceof vscode.Uri ? await vscode.workspace.openTextDocument(uri) : activeEditorOrSay()?.document;
      return document ? analyzeWithMessages(document) : undefined;
    }),
    vscode.commands.registerCommand(COMMANDS.analyzeSelection, async () => {
      const editor = activeEditorOrSay();
      if (!editor) return undefined;
      if (editor.selection.isEmpty) {
        void vscode.window.showInformationMessage('Attention Lens: select the code to analyse first.');
        return undefined;
      }
      return analyzeWithMessages(editor.document, editor.selection);
    }),
    vscode.commands.registerCommand(COMMANDS.showPanel, () => {
      AttentionPanel.createOrShow(panelHost);
    }),
    vscode.commands.registerCommand(COMMANDS.showLog, () => log.show()),
    vscode.commands.registerCommand(COMMANDS.toggleOverlay, () => {
      const enabled = overlay.toggle();
      void vscode.window.showInformationMessage(`Attention Lens overlay ${enabled ? 'on' : 'off'}.`);
      return enabled;
    }),
    vscode.commands.registerCommand(COMMANDS.selectLayerHead, async () => {
      const shape = await modelShape();
      if (!shape) return undefined;
      const current = viewState.view;
      const layerPick = await vscode.window.showQuickPick(
        [{ label: 'All layers', description: 'the strongest layer for each source', value: 'all' as const }, ...Array.from({ length: shape.layers }, (_, i) => ({ label: `Layer ${i}`, description: '', value: i }))].map((item) => ({ ...item, picked: item.value === current.layer })),
        { title: 'Attention Lens: layer', placeHolder: `Now: ${describeView(current)}` },
      );
      if (!layerPick) return undefined;
      const headPick = await vscode.window.showQuickPick(
        [{ label: 'Max of heads', value: 'max' as const }, { label: 'Mean of heads', value: 'mean' as const }, ...Array.from({ length: shape.heads }, (_, i) => ({ label: `Head ${i}`, value: i }))],
        { title: 'Attention Lens: head', placeHolder: `Layer: ${layerPick.label}` },
      );
      if (!headPick) return undefined;
      await viewState.set({ layer: layerPick.value, head: headPick.value });
      return viewState.view;
    }),
    vscode.commands.registerCommand(COMMANDS.selectAggregation, async () => {
      const shape = await modelShape();
      if (!shape) return undefined;
      const pick = await vscode.window.showQuickPick(
        [
          { label: 'Max of heads', description: 'a source counts as strongly as the head that attends to it most', value: 'max' as const },
          { label: 'Mean of heads', description: 'the average over all heads of the layer', value: 'mean' as const },
          { label: 'Single head...', description: 'one head of the chosen layer', value: 'single' as const },
        ],
        { title: 'Attention Lens: aggregation over heads', placeHolder: `Now: ${describeView(viewState.view)}` },
      );
      if (!pick) return undefined;
      if (pick.value !== 'single') {
        await viewState.set({ ...viewState.view, head: pick.value });
        return viewState.view;
      }
      const head = await vscode.window.showQuickPick(Array.from({ length: shape.heads }, (_, i) => ({ label: `Head ${i}`, value: i })), { title: 'Attention Lens: head' });
      if (head) await viewState.set({ ...viewState.view, head: head.value });
      return viewState.view;
    }),
    vscode.commands.registerCommand(COMMANDS.chooseModel, (args?: ChooseModelArgs) => modelHub.chooseModel(args)),
    vscode.commands.registerCommand(COMMANDS.showSourcesAtCursor, async () => {
      const editor = activeEditorOrSay();
      const result = editor && resultOrSay(editor);
      if (!editor || !result) return undefined;
      const presented = presentAt(editor.document, result, editor.selection.active, viewState.view, config());
      if (!presented || presented.sources.length === 0) {
        void vscode.window.showInformationMessage(`Attention Lens: ${presented ? `\`${presented.query.name}\`` : 'the cursor'} attends to no distant definition or import above ${percent(config().threshold)} (${describeView(viewState.view)}).`);
        return [];
      }
      const pick = await vscode.window.showQuickPick(
        presented.sources.map((s) => ({ label: `${percent(s.weight)}  ${s.definition.name}`, description: `${s.definition.kind}, line ${s.range.start.line + 1}`, detail: `${s.tokenDistance} tokens back`, source: s })),
        { title: `Attention Lens: what \`${presented.query.name}\` attends to (${describeView(viewState.view)})`, matchOnDescription: true },
      );
      if (pick) await reveal(editor.document.uri.toString(), pick.source.range);
      return presented.sources.map((s) => ({ name: s.definition.name, kind: s.definition.kind, line: s.range.start.line, weight: s.weight }));
    }),
    vscode.commands.registerCommand(COMMANDS.showAttenders, async (uri: string, index: number) => {
      const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
      const result = document && controller.resultFor(document);
      if (!document || !result || !result.doc.definitions[index]) {
        void vscode.window.showInformationMessage('Attention Lens: that analysis is no longer current. Analyse the file again.');
        return [];
      }
      const attenders = codeLens.attenders(result)[index];
      const definition = result.doc.definitions[index];
      const ranges = attenders.map((a) => new vscode.Range(document.positionAt(result.baseOffset + a.identifier.start), document.positionAt(result.baseOffset + a.identifier.end)));
      const editor = vscode.window.visibleTextEditors.find((e) => e.document === document);
      editor?.setDecorations(attendersHighlight, ranges);
      if (attenders.length > 0) {
        const pick = await vscode.window.showQuickPick(
          attenders.map((a, i) => ({ label: `${percent(a.weight)}  ${a.identifier.name}`, description: `line ${ranges[i].start.line + 1}`, detail: `${a.tokenDistance} tokens after the ${definition.kind}`, range: ranges[i] })),
          { title: `Attention Lens: tokens attending to ${definition.kind} ${definition.name}` },
        );
        if (pick) await reveal(uri, pick.range);
      } else {
        void vscode.window.showInformationMessage(`Attention Lens: no distant token gives ${definition.kind} ${definition.name} at least ${percent(config().threshold)} of its attention.`);
      }
      editor?.setDecorations(attendersHighlight, []);
      return attenders.map((a, i) => ({ name: a.identifier.name, line: ranges[i].start.line, weight: a.weight }));
    }),
    vscode.commands.registerCommand(COMMANDS.revealRange, async (uri: string, startLine: number, startCharacter: number, endLine: number, endCharacter: number) => {
      await reveal(uri, new vscode.Range(startLine, startCharacter, endLine, endCharacter));
    }),
    vscode.commands.registerCommand(COMMANDS.exportAnalysis, async (options?: { format?: 'json' | 'html'; target?: vscode.Uri }) => {
      const editor = activeEditorOrSay();
      const result = editor && resultOrSay(editor);
      if (!editor || !result) return undefined;
      const format = options?.format ?? (await vscode.window.showQuickPick([{ label: 'JSON', value: 'json' as const }, { label: 'HTML page with heatmap', value: 'html' as const }], { title: 'Attention Lens: export format' }))?.value;
      if (!format) return undefined;
      const base = path.basename(editor.document.fileName || 'untitled').replace(/\.[^.]+$/, '');
      const defaultUri = vscode.Uri.joinPath(vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(path.dirname(editor.document.fileName)), `${base}.attention.${format}`);
      const target = options?.target ?? (await vscode.window.showSaveDialog({ defaultUri, filters: format === 'json' ? { JSON: ['json'] } : { HTML: ['html'] } }));
      if (!target) return undefined;
      const exported = exportJson(result, viewState.view, distanceRule(config()), config().threshold);
      const content = format === 'json' ? `${JSON.stringify(exported, null, 1)}\n` : exportHtml(result, exported, path.basename(editor.document.fileName));
      await vscode.workspace.fs.writeFile(target, new TextEncoder().encode(content));
      void vscode.window.showInformationMessage(`Attention Lens: exported to ${target.fsPath}.`);
      return target;
    }),
    vscode.commands.registerCommand(COMMANDS.clear, () => {
      controller.clear();
      statusBar.showIdle();
    }),
  );

  // ---- Automatic runs ----------------------------------------------------------------------------
  const pending = new Map<string, ReturnType<typeof setTimeout>>();
  const schedule = (document: vscode.TextDocument, delayMs: number) => {
    const key = document.uri.toString();
    clearTimeout(pending.get(key));
    pending.set(
      key,
      setTimeout(() => {
        pending.delete(key);
        if (vscode.workspace.textDocuments.includes(document)) void analyzeWithMessages(document, undefined, true);
      }, delayMs),
    );
  };
  context.subscriptions.push(
    { dispose: () => pending.forEach((timer) => clearTimeout(timer)) },
    vscode.window.onDidChangeActiveTextEditor((editor) => {
      if (editor && config().autoAnalyze === 'onOpen' && !controller.resultFor(editor.document)) schedule(editor.document, 300);
    }),
    vscode.workspace.onDidSaveTextDocument((document) => {
      if (config().autoAnalyze === 'onSave') schedule(document, 300);
    }),
    vscode.workspace.onDidChangeTextDocument((event) => {
      if (event.contentChanges.length === 0) return;
      const key = event.document.uri.toString();
      // Documents that had an analysis are analysed again once typing pauses, so the view stays alive.
      if (config().autoAnalyze === 'onIdle' || analysed.has(key)) schedule(event.document, config().idleDelayMs);
    }),
  );
  context.subscriptions.push(
    vscode.workspace.onDidCloseTextDocument((document) => analysed.delete(document.uri.toString())),
  );

  return {
    whenProbed(timeoutMs: number) {
      if (latestProbe) return Promise.resolve(latestProbe);
      return new Promise<WebGpuProbeResult>((resolve, reject) => {
        const timer = setTimeout(() => {
          probeWaiters.delete(done);
          reject(new Error(`No WebGPU probe result within ${timeoutMs} ms. Is the Attention Lens panel open?`));
        }, timeoutMs);
        const done = (probe: WebGpuProbeResult) => {
          clearTimeout(timer);
          resolve(probe);
        };
        probeWaiters.add(done);
      });
    },
    overlaySnapshot: (uri) => overlay.snapshot(uri),
    whenPanelRendered(accept, timeoutMs) {
      if (lastPanelRender && accept(lastPanelRender)) return Promise.resolve(lastPanelRender);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          renderWaiters.delete(check);
          reject(new Error(`The panel did not render the expected view within ${timeoutMs} ms (last: ${JSON.stringify(lastPanelRender ?? null)}).`));
        }, timeoutMs);
        const check = (message: ViewRenderedMessage) => {
          if (!accept(message)) return;
          clearTimeout(timer);
          renderWaiters.delete(check);
          resolve(message);
        };
        renderWaiters.add(check);
      });
    },
    hasAnalysis: (uri) => {
      const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
      return Boolean(document && controller.resultFor(document));
    },
  };
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
