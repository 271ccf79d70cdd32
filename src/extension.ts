/**
 * Attention Lens extension entry point. Reads top-down: log and status bar, the panel, the analysis
 * controller, the editor views (overlay, hover, CodeLens), then the commands and automatic runs.
 * Everything disposable goes to `context.subscriptions`.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AnalysisController, type AnalysisOutcome, type ProbeMemory } from './analysis/analysisController';
import { queryAt, type DocumentAnalysisResult } from './analysis/documentResult';
import { documentView, queryView } from './panel/panelViews';
import { COMMANDS, PANEL_VIEW_TYPE } from './commandIds';
import { readConfig } from './config';
import { AttendedByCodeLensProvider } from './editor/codeLensProvider';
import { AttentionHoverProvider, type HoverTiming } from './editor/hoverProvider';
import { AttentionOverlay, type OverlaySnapshot } from './editor/overlay';
import { distanceRule } from './editor/presentation';
import { registerViewCommands } from './editor/viewCommands';
import { ViewState } from './editor/viewState';
import { ModelHub, type ChooseModelArgs } from './hub/modelHub';
import { AttentionPanel, type PanelHost } from './panel/attentionPanel';
import type { MapRenderedMessage, PanelTab, ViewRenderedMessage, WebGpuProbeResult } from './shared/protocol';
import { dependencyMapMessageSliced, headsTableMessage, languageServerReferences, type LanguageServerReferences } from './editor/dependencyMapHost';
import { AttentionStatusBar, ENGINE_NAMES } from './statusBar';
import { reportOf } from './analysis/analysisReport';
import { describeReading } from './analysis/reading';
import { chooseBackend } from '../engine/backendPolicy';
import { onnxRuntimeProblem } from '../engine/hosts/nodeOnnx';

/** What `activate` returns: used by the integration tests and by other extensions. */
export interface AttentionLensApi {
  /** Resolves with the panel's next (or latest) WebGPU probe; rejects after `timeoutMs`. */
  whenProbed(timeoutMs: number): Promise<WebGpuProbeResult>;
  /** What the overlay shows in the visible editor of `uri` (VS Code cannot read decorations back). */
  overlaySnapshot(uri: string): OverlaySnapshot | undefined;
  /** The status bar item's text (which engine ran, on what). */
  statusBarText(): string;
  /** The status bar item's tooltip (a problem's whole message; the engine and why). */
  statusBarTooltip(): string;
  /** The panel's memory (JavaScript heap after a collection where possible, WebGPU buffers); undefined without a panel. */
  webviewMemory(): Promise<{ jsHeapBytes: number | null; gpuBufferBytes: number | null; collected: boolean } | undefined>;
  /** Size and timings of the current analysis of `uri` (tokens reused from the previous run among them). */
  analysisStats(uri: string): { tokens: number; version: number; windows: number; windowsDone: number; engine: string; forwardMs: number; summaryMs: number; elapsedMs: number; preparedMs: number; engineReadyMs: number; shownMs: number; firstShownMs: number; reusedTokens: number; readbackBytes: number; partial: boolean } | undefined;
  /** When the extension's last hover was answered and how long it took to make. */
  lastHover(): HoverTiming | undefined;
  /** True when `uri` has an analysis for its current version. */
  hasAnalysis(uri: string): boolean;
  /** The CPU engine's process id while one runs (it is a child process of the extension host). */
  cpuEngineProcessId(): number | undefined;
  /** Resolves with the next panel render that satisfies `accept` (or the latest one, if it does). */
  whenPanelRendered(accept: (message: ViewRenderedMessage) => boolean, timeoutMs: number): Promise<ViewRenderedMessage>;
  /** Resolves with the next dependency-map render that satisfies `accept` (or the latest one, if it does). */
  whenMapRendered(accept: (message: MapRenderedMessage) => boolean, timeoutMs: number): Promise<MapRenderedMessage>;
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
  let lastMapRender: MapRenderedMessage | undefined;
  const mapWaiters = new Set<(message: MapRenderedMessage) => void>();
  const probeWaiters = new Set<(probe: WebGpuProbeResult) => void>();
  const panelHost: PanelHost = {
    extensionUri: context.extensionUri,
    log,
    panelWidth: () => config().panelWidth,
    onProbe(probe) {
      latestProbe = probe;
      const choice = chooseBackend(config().backend, probe.ok ? { adapter: probe.adapter, onnxProblem: onnxRuntimeProblem() } : { adapterProblem: probe.error, onnxProblem: onnxRuntimeProblem() });
      if (!controller.allResults().length) statusBar.showProbe(probe, choice);
      log.info(choice.error !== undefined ? `Engine: none can run: ${choice.error}` : `Engine: ${ENGINE_NAMES[choice.kind]} (${choice.reason}).`);
      if (probe.ok) {
        const a = probe.adapter;
        log.info(`WebGPU adapter: vendor=${a.vendor || '?'} architecture=${a.architecture || '?'} device=${a.device || '?'} description=${a.description || '?'} fallback=${a.isFallbackAdapter}`);
        log.info(`WebGPU features: ${a.features.join(', ') || 'none'}`);
        log.info(`WebGPU limits: ${Object.entries(a.limits).map(([k, v]) => `${k}=${v}`).join(' ')}`);
      } else {
        log.warn(`No WebGPU adapter in the panel: ${probe.error}.`);
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
    onMapRendered(message) {
      lastMapRender = message;
      for (const waiter of mapWaiters) waiter(message);
    },
    onTabShown(tab) {
      panelSync.tab = tab;
      schedulePanelSync();
    },
    onPanelReady() {
      panelSync.documentSent = undefined;
      panelSync.mapSent = undefined;
      syncPanel();
    },
  };

  /** Keeps the panel on the active editor's analysis and its cursor token. */
  const panelSync: { documentSent?: DocumentAnalysisResult; mapSent?: string; tab: PanelTab; timer?: ReturnType<typeof setTimeout> } = { tab: 'token' };
  /** Language-server references per analysis, asked once the map is shown. */
  const serverReferences = new WeakMap<DocumentAnalysisResult, LanguageServerReferences | 'pending'>();
  const mapKeys = new WeakMap<DocumentAnalysisResult, number>();
  let mapKeyCounter = 0;
  /** Sends the dependency map and the heads table when the analysis, view, checks or references changed. */
  const syncMap = (panel: AttentionPanel, document: vscode.TextDocument, result: DocumentAnalysisResult) => {
    let server = serverReferences.get(result);
    if (server === undefined && panelSync.tab === 'map') {
      serverReferences.set(result, 'pending');
      void languageServerReferences(document, result).then((found) => {
        serverReferences.set(result, found);
        log.info(`Dependency map of ${path.basename(document.fileName)}: ${found.note}.`);
        schedulePanelSync();
      });
      server = 'pending';
    }
    const checks = controller.checksFor(result);
    if (!mapKeys.has(result)) mapKeys.set(result, ++mapKeyCounter);
    const key = `${mapKeys.get(result)}|${JSON.stringify(viewState.view)}|${checks.length}|${server === undefined || server === 'pending' ? '-' : server.references.length}`;
    if (panelSync.mapSent === key) return;
    panelSync.mapSent = key;
    const view = viewState.view;
    void dependencyMapMessageSliced(result, view, checks, server === 'pending' ? undefined : server).then((message) => {
      // Built in slices: posted only if nothing newer was asked for meanwhile.
      if (panelSync.mapSent !== key || AttentionPanel.instance !== panel) return;
      panel.post(message);
      panel.post(headsTableMessage(result, config().minDistance));
    });
  };
  const syncPanel = () => {
    const panel = AttentionPanel.instance;
    const editor = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors.find((e) => controller.resultFor(e.document));
    const result = editor && controller.resultFor(editor.document);
    if (!panel || !editor || !result) return;
    if (panelSync.documentSent !== result) {
      // The same document (tokens, definitions) needs no new document view: only the summaries changed.
      if (panelSync.documentSent?.doc !== result.doc) panel.post(documentView(result, path.basename(editor.document.fileName)));
      panelSync.documentSent = result;
    }
    // The map and the heads table wait for the whole result (a partial one would draw half a map).
    if (!result.progress) syncMap(panel, editor.document, result);
    const offset = editor.document.offsetAt(editor.selection.active);
    const query = queryAt(result, offset);
    const view = viewState.view;
    const message = queryView(result, query, view, distanceRule(config()), config().threshold, controller.checkAt(editor.document, offset));
    panel.post(message);
    // A single head of a one-window analysis: replace the top-k heatmap by the exact rows.
    if (query && typeof view.layer === 'number' && typeof view.head === 'number' && result.runId !== undefined) {
      const { layer, head } = view;
      void (async () => {
        const heat = new Float32Array(message.heat.length);
        for (const q of query.tokens) {
          const row = await controller.exactRow(result, layer, head, q);
          if (!row) return;
          for (let p = 0; p < row.length; p++) if (row[p] > heat[p]) heat[p] = row[p];
        }
        if (panelSync.documentSent === result) panel.post({ ...message, heat, heatSource: 'exact' });
      })();
    }
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
  /** Documents analysed at least once: edits re-analyse them after a pause (attentionLens.idleDelayMs), whatever autoAnalyze says. */
  const analysed = new Set<string>();
  const setHasAnalysis = () => {
    const editor = vscode.window.activeTextEditor;
    void vscode.commands.executeCommand('setContext', 'attentionLens.hasAnalysis', Boolean(editor && controller.resultFor(editor.document)));
  };
  // The panel's last WebGPU probe, per machine and VS Code version: the next session knows at once
  // whether to start the CPU engine.
  const probeKey = 'attentionLens.webgpuProbe';
  const probeMemory: ProbeMemory = {
    get() {
      const stored = context.globalState.get<{ vscode: string; machine: string; probe: WebGpuProbeResult }>(probeKey);
      return stored && stored.vscode === vscode.version && stored.machine === vscode.env.machineId ? stored.probe : undefined;
    },
    set(probe) {
      void context.globalState.update(probeKey, { vscode: vscode.version, machine: vscode.env.machineId, probe });
    },
  };
  const controller: AnalysisController = new AnalysisController(context.extensionPath, panelHost, log, config, {
    onStart(document) {
      statusBar.showRunning(path.basename(document.fileName), 'current model');
      AttentionPanel.instance?.post({ type: 'panelState', documentName: path.basename(document.fileName), status: `Analysing ${path.basename(document.fileName)}…` });
    },
    onProgress(document, done, total) {
      statusBar.showRunning(path.basename(document.fileName), 'current model', { done, total });
      AttentionPanel.instance?.post({ type: 'panelState', documentName: path.basename(document.fileName), status: `Analysing ${path.basename(document.fileName)}: ${done} of ${total} windows done (the one with the cursor first); their tokens can be hovered now.` });
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
        statusBar.showResult(outcome.result, describeReading(outcome.result, viewState.view, distanceRule(config())));
        AttentionPanel.instance?.post({ type: 'panelState', documentName: path.basename(document.fileName), status: `${outcome.result.doc.tokenIds.length} tokens analysed. Move the cursor onto an identifier to see what it attends to.` });
      } else if (outcome.kind === 'stale') {
        // Edited during the run: analysed again once typing pauses (unless a newer run has begun).
        if (!controller.isRunning(document) && vscode.workspace.textDocuments.includes(document)) {
          analysed.add(document.uri.toString());
          statusBar.showRunning(path.basename(document.fileName), 'current model', undefined, 'changed during the analysis: analysing it again once typing pauses');
          schedule(document, config().idleDelayMs);
        }
      } else {
        statusBar.showProblem(outcome.message);
      }
    },
  }, probeMemory);
  const overlay = new AttentionOverlay(context.extensionUri, controller, viewState, config);
  const codeLens = new AttendedByCodeLensProvider(controller, viewState, config);
  const hoverProvider = new AttentionHoverProvider(controller, viewState, config);
  context.subscriptions.push(
    controller,
    overlay,
    codeLens,
    vscode.languages.registerHoverProvider({ scheme: '*' }, hoverProvider),
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
    const editor = vscode.window.activeTextEditor;
    const focusOffset = editor?.document === document ? document.offsetAt(editor.selection.active) : undefined;
    const outcome = await controller.analyze(document, { selection, automatic, focusOffset, preferredLayer: view.layer === 'all' ? undefined : view.layer });
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
  registerViewCommands(context, { controller, viewState, config, codeLens, activeEditorOrSay });
  context.subscriptions.push(
    // The analysis commands return a small report, never the analysis (see analysisReport.ts).
    vscode.commands.registerCommand(COMMANDS.analyzeFile, async (uri?: vscode.Uri) => {
      const document = uri instanceof vscode.Uri ? await vscode.workspace.openTextDocument(uri) : activeEditorOrSay()?.document;
      return document ? reportOf(await analyzeWithMessages(document)) : undefined;
    }),
    vscode.commands.registerCommand(COMMANDS.analyzeSelection, async () => {
      const editor = activeEditorOrSay();
      if (!editor) return undefined;
      if (editor.selection.isEmpty) {
        void vscode.window.showInformationMessage('Attention Lens: select the code to analyse first.');
        return undefined;
      }
      return reportOf(await analyzeWithMessages(editor.document, editor.selection));
    }),
    vscode.commands.registerCommand(COMMANDS.showPanel, () => {
      AttentionPanel.createOrShow(panelHost);
    }),
    vscode.commands.registerCommand(COMMANDS.showDependencyMap, async () => {
      const editor = activeEditorOrSay();
      if (!editor) return undefined;
      if (!controller.resultFor(editor.document)) await analyzeWithMessages(editor.document);
      const result = controller.resultFor(editor.document);
      if (!result) return undefined;
      const panel = AttentionPanel.createOrShow(panelHost);
      panelSync.tab = 'map';
      panel.post({ type: 'showTab', tab: 'map' });
      syncPanel();
      const map = await dependencyMapMessageSliced(result, viewState.view, controller.checksFor(result), undefined);
      return { nodes: map.nodes.length, edges: map.edges.length };
    }),
    vscode.commands.registerCommand(COMMANDS.showLog, () => log.show()),
    // For the lost-device test in the real VS Code; not registered in an installed extension.
    ...(context.extensionMode === vscode.ExtensionMode.Production
      ? []
      : [
          vscode.commands.registerCommand('attentionLens.test.simulateDeviceLoss', (when?: 'now' | 'duringNextAnalysis') => {
            const panel = AttentionPanel.instance;
            panel?.post({ type: 'simulateDeviceLoss', when: when === 'duringNextAnalysis' ? when : 'now' });
            return Boolean(panel);
          }),
          // The CPU engine's process kills itself with SIGSEGV when its next run starts; returns its pid.
          vscode.commands.registerCommand('attentionLens.test.crashCpuEngineOnNextRun', () => controller.crashCpuEngineOnNextRunForTest()),
        ]),
    vscode.commands.registerCommand(COMMANDS.toggleOverlay, () => {
      const enabled = overlay.toggle();
      void vscode.window.showInformationMessage(`Attention Lens overlay ${enabled ? 'on' : 'off'}.`);
      return enabled;
    }),
    vscode.commands.registerCommand(COMMANDS.chooseModel, (args?: ChooseModelArgs) => modelHub.chooseModel(args)),
    vscode.commands.registerCommand(COMMANDS.checkDependencies, async (uriText?: unknown, offsetArg?: unknown) => {
      // From a hover link: (document uri, offset); from the palette: the cursor.
      const editor = typeof uriText === 'string' ? vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === uriText) : activeEditorOrSay();
      const document = editor?.document ?? (typeof uriText === 'string' ? vscode.workspace.textDocuments.find((d) => d.uri.toString() === uriText) : undefined);
      if (!document) return undefined;
      const offset = typeof offsetArg === 'number' ? offsetArg : editor ? document.offsetAt(editor.selection.active) : 0;
      try {
        const check = await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Window, title: 'Attention Lens: checking dependencies' },
          () => controller.checkDependencies(document, offset, viewState.view),
        );
        // The hover that asked shows the answer: closed and opened again at the token (VS Code
        // does not refresh an open hover by itself).
        const target = editor ?? vscode.window.visibleTextEditors.find((e) => e.document === document);
        if (target) {
          const shown = await vscode.window.showTextDocument(document, { viewColumn: target.viewColumn, preserveFocus: false });
          const position = document.positionAt(check.start);
          shown.selection = new vscode.Selection(position, position);
          await vscode.commands.executeCommand('editor.action.hideHover');
          await vscode.commands.executeCommand('editor.action.showHover');
        } else {
          void vscode.window.showInformationMessage(`Attention Lens: checked what ${check.name} (${path.basename(document.fileName)}, line ${document.positionAt(check.start).line + 1}) depends on; its hover shows it.`, 'Show').then((choice) => {
            if (choice) void vscode.window.showTextDocument(document, { selection: new vscode.Range(document.positionAt(check.start), document.positionAt(check.start)) }).then(() => vscode.commands.executeCommand('editor.action.showHover'));
          });
        }
        return check;
      } catch (error) {
        void vscode.window.showErrorMessage(`Attention Lens: ${error instanceof Error ? error.message : String(error)}`);
        return undefined;
      }
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
      // So is a document edited while its analysis runs (that run's result would be stale).
      if (config().autoAnalyze === 'onIdle' || analysed.has(key) || controller.isRunning(event.document)) schedule(event.document, config().idleDelayMs);
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
    cpuEngineProcessId: () => controller.cpuEngineProcessId(),
    lastHover: () => hoverProvider.last,
    statusBarText: () => statusBar.text,
    statusBarTooltip: () => statusBar.tooltip,
    async webviewMemory() {
      const panel = AttentionPanel.instance;
      if (!panel) return undefined;
      const report = await panel.request({ type: 'reportMemory' }, 30_000);
      return { jsHeapBytes: report.jsHeapBytes, gpuBufferBytes: report.gpuBufferBytes, collected: report.collected };
    },
    analysisStats: (uri) => {
      const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
      const result = document && controller.resultFor(document);
      // `partial`: the part of an earlier analysis before an edit, shown until the re-analysis arrives,
      // or the windows of a running analysis that are done (the cursor's first).
      return (
        result && {
          tokens: result.doc.tokenIds.length,
          version: result.version,
          windows: result.windows,
          windowsDone: result.progress?.windowsDone ?? result.windows,
          engine: result.backend.kind,
          forwardMs: result.stats.forwardMs,
          summaryMs: result.stats.summaryMs,
          elapsedMs: result.stats.elapsedMs,
          shownMs: result.stats.shownMs ?? 0,
          firstShownMs: result.stats.firstShownMs ?? 0,
          readbackBytes: result.stats.readbackBytes,
          preparedMs: result.stats.preparedMs ?? 0,
          engineReadyMs: result.stats.engineReadyMs ?? 0,
          reusedTokens: result.stats.reusedTokens ?? 0,
          partial: result.prefixOf !== undefined || result.progress !== undefined,
        }
      );
    },
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
    whenMapRendered(accept, timeoutMs) {
      if (lastMapRender && accept(lastMapRender)) return Promise.resolve(lastMapRender);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          mapWaiters.delete(check);
          reject(new Error(`The panel did not draw the expected dependency map within ${timeoutMs} ms (last: ${JSON.stringify(lastMapRender ?? null)?.slice(0, 400)}).`));
        }, timeoutMs);
        const check = (message: MapRenderedMessage) => {
          if (!accept(message)) return;
          clearTimeout(timer);
          mapWaiters.delete(check);
          resolve(message);
        };
        mapWaiters.add(check);
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
