/**
 * Runs analyses for editor documents and keeps their results: checks the document, tokenizes it
 * with the model's tokenizer, finds definitions and imports, sends the windows to the engine in the
 * panel's webview, merges the summaries, and publishes a result tied to the document version.
 * Edits discard results at once; results computed for an older version are dropped.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AttentionLensConfig } from '../config';
import { AttentionPanel, PANEL_CLOSED_DURING_RUN, type PanelHost } from '../panel/attentionPanel';
import type { AdapterSummary, AttentionSummary, BackendInfo } from '../../engine/attention';
import { adapterName, chooseBackend, describeBackend, needsAdapterProbe, windowTokens, type BackendChoice, type BackendFacts } from '../../engine/backendPolicy';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { NodeOnnxEngine, OnnxRuntimeUnavailableError, onnxRuntimeProblem } from '../../engine/hosts/nodeOnnx';
import type { LoadedModelInfo, WebGpuProbeResult } from '../shared/protocol';
import { HostOnnxEngine, PanelCausalEngine, PanelEngine, type AnalysisEngine, type CausalEngine } from './analysisEngines';
import { checkDependencies, spanEffectOnFile, type DependencyCheck, type SpanEffectOnFile } from './dependencyCheck';
import { queryAt } from './documentResult';
import type { AttentionView } from './documentAnalysis';
import type { AttentionEngine } from '../../engine/engine';
import type { ModelSpec } from '../../engine/model/modelTypes';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import { loadActiveModel, type ActiveModel } from '../model/activeModel';
import { defaultCacheRoot } from '../hub/modelCache';
import { checkModelFits } from '../hub/memoryEstimate';
import { DefinitionExtractor, type SourceDefinition } from './definitions';
import type { CodeReference } from './references';
import { DEFINITION_KINDS, type DefinitionKind } from './definitionQueries';
import { checkDocument } from './documentChecks';
import { prepareDocument } from './documentAnalysis';
import type { DocumentAnalysisResult } from './documentResult';
import { PrepareWorkerClient } from '../node/prepareWorkerClient';
import { inheritReading, prepareReading } from './reading';
import { mergeWindowSummariesAsync, planWindows, prefixCandidates, type AnalysisWindow } from './windows';
import { prefixResult } from './prefixResult';

/** Time limit for loading a model in the webview; SwiftShader (a CPU adapter) is slow on large models. */
const LOAD_TIMEOUT_MS = 10 * 60_000;
/** Runs shorter than this finish without a progress notification. */
const PROGRESS_DELAY_MS = 600;
/** Readback budget per window, bytes: beyond it only the selected layer is summarised. */
const WINDOW_READBACK_BUDGET = 96 * 1024 * 1024;

export interface AnalysisRequestOptions {
  /** Analyse only this range of the document. */
  readonly selection?: vscode.Range;
  /** Automatic runs never show refusal messages as pop-ups (they go to the log and status bar). */
  readonly automatic?: boolean;
  /** The layer the user looks at, summarised even when the budget forbids all layers. */
  readonly preferredLayer?: number;
  /**
   * Where the user is (document offset of the cursor): the window that holds it runs first, and its
   * part of the result is shown while the other windows run.
   */
  readonly focusOffset?: number;
}

export type AnalysisOutcome =
  | { readonly kind: 'done'; readonly result: DocumentAnalysisResult; readonly warnings: readonly string[] }
  | { readonly kind: 'refused' | 'cancelled' | 'stale' | 'failed'; readonly message: string };

/**
 * The panel's last WebGPU probe on this machine and VS Code version (globalState), so that the next
 * session knows, before the webview opens, whether a hardware adapter is there.
 */
export interface ProbeMemory {
  get(): WebGpuProbeResult | undefined;
  set(probe: WebGpuProbeResult): void;
}

export interface AnalysisEvents {
  /** The run started: for the status bar. */
  onStart(document: vscode.TextDocument): void;
  /** `done` of `total` windows have run (a partial result is shown); for the status bar and the panel. */
  onProgress?(document: vscode.TextDocument, done: number, total: number): void;
  /** A result was published or removed for `uri`. */
  onResultChanged(uri: string): void;
  onOutcome(document: vscode.TextDocument, outcome: AnalysisOutcome): void;
}

/** The CPU engine of the current model and settings: its start, and the engine once it answers. */
interface HostEngineSlot {
  readonly key: string;
  readonly promise: Promise<HostOnnxEngine>;
  engine?: HostOnnxEngine;
}

export class AnalysisController implements vscode.Disposable {
  private readonly results = new Map<string, DocumentAnalysisResult>();
  /** The engine cache keys each document's windows ran under (released when it closes). */
  private readonly cacheKeys = new Map<string, string[]>();
  /** "Check dependencies" results per document, for its analysed version only. */
  private readonly checks = new Map<string, DependencyCheck[]>();
  private readonly running = new Map<string, vscode.CancellationTokenSource>();
  /** Runs that a newer analysis of their document replaced. */
  private readonly superseded = new WeakSet<vscode.CancellationTokenSource>();
  private model: { key: string; promise: Promise<ActiveModel> } | undefined;
  /** The CPU engine (ONNX Runtime) of the extension host, for one model, thread count and reason. */
  private hostEngine: HostEngineSlot | undefined;
  private extractor: Promise<DefinitionExtractor> | undefined;
  /** Tree-sitter and the tokenizer on a worker thread (the extension host's thread stays free). */
  private readonly preparation: PrepareWorkerClient;
  /** Set once the worker failed: the work runs on this thread, and the log said why once. */
  private preparationProblem: string | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  /** Where repo ids in `attentionLens.model` are looked up, in order (the hub commands set it). */
  modelCacheRoots: () => readonly string[] = () => [defaultCacheRoot()];

  constructor(
    private readonly extensionPath: string,
    private readonly panelHost: PanelHost,
    private readonly log: vscode.LogOutputChannel,
    private readonly config: () => AttentionLensConfig,
    private readonly events: AnalysisEvents,
    private readonly probeMemory?: ProbeMemory,
  ) {
    this.preparation = new PrepareWorkerClient(path.join(extensionPath, 'out', 'prepareWorker.js'), path.join(extensionPath, 'out', 'tree-sitter'));
    this.disposables.push(
      vscode.workspace.onDidChangeTextDocument((event) => {
        if (event.contentChanges.length === 0) return;
        const uri = event.document.uri.toString();
        // An edit invalidates the result at once, except the tokens before the first change: a
        // causal model computes them from earlier tokens only, so they stay exact for the new
        // version (and their decorations do not flicker). Nothing after the change outlives it.
        this.checks.delete(uri);
        const previous = this.results.get(uri);
        if (!previous) return;
        const changeOffset = Math.min(...event.contentChanges.map((change) => change.rangeOffset));
        // (Not for the rotary scalings whose tables depend on the window's length: there the prefix
        // may be rotated differently once the window grows or shrinks.)
        const kept = previous.version === event.document.version - 1 && !previous.progress && !previous.model.rotationDependsOnLength ? prefixResult(previous, event.document.version, changeOffset) : undefined;
        if (kept) {
          inheritReading(previous, kept);
          this.results.set(uri, kept);
        }
        else this.results.delete(uri);
        this.events.onResultChanged(uri);
      }),
      vscode.workspace.onDidCloseTextDocument((document) => {
        const uri = document.uri.toString();
        this.running.get(uri)?.cancel();
        this.checks.delete(uri);
        const keys = this.cacheKeys.get(uri);
        this.cacheKeys.delete(uri);
        if (keys) {
          void this.hostEngine?.promise.then((engine) => engine.releaseCache(keys), () => undefined);
          AttentionPanel.instance?.post({ type: 'releaseCache', keys });
        }
        if (this.results.delete(uri)) this.events.onResultChanged(uri);
      }),
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('attentionLens.model') || event.affectsConfiguration('attentionLens.cacheDirectory')) this.reloadModel();
      }),
    );
  }

  /** The result for the document's current version, if any. */
  resultFor(document: vscode.TextDocument): DocumentAnalysisResult | undefined {
    const result = this.results.get(document.uri.toString());
    return result && result.version === document.version ? result : undefined;
  }

  allResults(): DocumentAnalysisResult[] {
    return [...this.results.values()];
  }

  isRunning(document: vscode.TextDocument): boolean {
    return this.running.has(document.uri.toString());
  }

  clear(uri?: string): void {
    const uris = uri ? [uri] : [...this.results.keys()];
    for (const key of uris) {
      this.running.get(key)?.cancel();
      if (this.results.delete(key)) this.events.onResultChanged(key);
    }
  }

  /** Integration tests: the CPU engine's process (when one runs) crashes at its next run; its process id, or undefined. */
  crashCpuEngineOnNextRunForTest(): number | undefined {
    const engine = this.hostEngine?.engine;
    if (!engine || engine.stopped) return undefined;
    engine.crashOnNextRunForTest();
    return engine.pid;
  }

  /** The CPU engine's process id while one runs. */
  cpuEngineProcessId(): number | undefined {
    const engine = this.hostEngine?.engine;
    return engine && !engine.stopped ? engine.pid : undefined;
  }

  /** Forgets the loaded model, e.g. after a download replaced the snapshot a repo id points to. */
  reloadModel(): void {
    // Runs of the old model would answer with it: stop them, and say why.
    for (const source of this.running.values()) {
      this.cancelReasons.set(source, 'The model changed during the analysis; it was stopped. Run it again to analyse with the new model.');
      source.cancel();
    }
    this.model = undefined;
    this.releaseHostEngine();
  }

  /** Why a run was cancelled, when not by the user or a newer run of the same document. */
  private readonly cancelReasons = new WeakMap<vscode.CancellationTokenSource, string>();

  private releaseHostEngine(): void {
    const previous = this.hostEngine;
    this.hostEngine = undefined;
    void previous?.promise.then((engine) => engine.dispose(), () => undefined);
  }

  /** The active model, loaded once per setting value. */
  activeModel(): Promise<ActiveModel> {
    const key = this.config().model;
    if (!this.model || this.model.key !== key) {
      const promise = loadActiveModel(this.extensionPath, key, this.modelCacheRoots());
      this.model = { key, promise };
      promise.catch(() => {
        if (this.model?.promise === promise) this.model = undefined;
      });
    }
    return this.model.promise;
  }

  /** `work` on the worker thread; on this thread (`fallback`) where the worker cannot run, said once in the log. */
  private async onWorker<T>(work: (worker: PrepareWorkerClient) => Promise<T>, fallback: () => Promise<T> | T): Promise<T> {
    if (this.preparationProblem === undefined) {
      try {
        return await work(this.preparation);
      } catch (error) {
        this.preparationProblem = error instanceof Error ? error.message : String(error);
        this.log.warn(`Tokenizing and parsing run on the extension host's thread from now on: the worker thread failed (${this.preparationProblem}).`);
      }
    }
    return fallback();
  }

  private definitionExtractor(): Promise<DefinitionExtractor> {
    if (!this.extractor) {
      const wasmDir = path.join(this.extensionPath, 'out', 'tree-sitter');
      this.extractor = DefinitionExtractor.create((name) => fs.readFile(path.join(wasmDir, name)));
      this.extractor.catch(() => (this.extractor = undefined));
    }
    return this.extractor;
  }

  async analyze(document: vscode.TextDocument, options: AnalysisRequestOptions = {}): Promise<AnalysisOutcome> {
    const uri = document.uri.toString();
    const requested = performance.now();
    const startVersion = document.version;
    const previous = this.running.get(uri);
    if (previous) {
      // A newer analysis of the same document replaces this one: it ends as stale, not as cancelled.
      this.superseded.add(previous);
      previous.cancel();
    }
    const cancellation = new vscode.CancellationTokenSource();
    this.running.set(uri, cancellation);
    this.events.onStart(document);
    let outcome: AnalysisOutcome;
    const work = this.run(document, options, cancellation.token, requested).catch((error: unknown): AnalysisOutcome => {
      if (cancellation.token.isCancellationRequested) return { kind: 'cancelled', message: 'The analysis was cancelled.' };
      const message = error instanceof Error ? error.message : String(error);
      // VS Code's own words when the panel went away between two steps of the run.
      if (/webview is disposed/i.test(message)) return { kind: 'failed', message: PANEL_CLOSED_DURING_RUN };
      return { kind: 'failed', message };
    });
    // Only runs that take more than a moment get a (cancellable) progress notification.
    const timer = setTimeout(() => {
      void vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Attention Lens: analysing ${path.basename(document.fileName)}`, cancellable: true },
        (_progress, token) => {
          token.onCancellationRequested(() => cancellation.cancel());
          return work;
        },
      );
    }, PROGRESS_DELAY_MS);
    try {
      outcome = await work;
      const reason = this.cancelReasons.get(cancellation);
      if (reason) outcome = { kind: 'cancelled', message: reason };
      else if (this.superseded.has(cancellation) && outcome.kind === 'cancelled') {
        const changed = document.version !== startVersion ? ' changed during the analysis and' : '';
        outcome = { kind: 'stale', message: `${path.basename(document.fileName)}${changed} is being analysed again: a newer analysis replaced this one.` };
      }
    } finally {
      clearTimeout(timer);
      if (this.running.get(uri) === cancellation) this.running.delete(uri);
      cancellation.dispose();
    }
    if (outcome.kind === 'done') {
      this.results.set(uri, outcome.result);
      this.checks.delete(uri);
      this.events.onResultChanged(uri);
      // What the status bar shows: the time from the command to these views, not the engine's.
      outcome.result.stats.shownMs = performance.now() - requested;
    } else if (this.results.get(uri)?.progress) {
      // A run that did not finish leaves no partial result behind.
      this.results.delete(uri);
      this.events.onResultChanged(uri);
    }
    this.log.info(`${path.basename(document.fileName)}: ${outcome.kind === 'done' ? describeResult(outcome.result) : `${outcome.kind}: ${outcome.message}`}`);
    this.events.onOutcome(document, outcome);
    return outcome;
  }

  private async run(document: vscode.TextDocument, options: AnalysisRequestOptions, token: vscode.CancellationToken, requested: number): Promise<AnalysisOutcome> {
    const config = this.config();
    const version = document.version;
    const range = options.selection && !options.selection.isEmpty ? options.selection : undefined;
    const baseOffset = range ? document.offsetAt(range.start) : 0;
    const text = document.getText(range);
    const fileName = path.basename(document.fileName) || document.uri.toString();
    const problems = checkDocument({ text, fileName, uriScheme: document.uri.scheme, isSelection: range !== undefined, maxFileTokens: config.maxFileTokens });
    const refusal = problems.find((p) => p.kind === 'refuse');
    if (refusal) return { kind: 'refused', message: refusal.message };
    for (const warning of problems) {
      this.log.warn(warning.message);
      if (!options.automatic) void vscode.window.showWarningMessage(`Attention Lens: ${warning.message}`);
    }

    const model = await this.activeModel();
    const started = performance.now();
    // Which engine runs depends on the panel's WebGPU probe; the probe and, for the CPU engine, its
    // loading (a worker thread) go on while this thread tokenizes and finds definitions.
    const panel = AttentionPanel.createOrShow(this.panelHost, model.folder, false);
    // Which engine runs depends on whether the panel's WebGPU has a hardware adapter. The answer of
    // the last probe on this machine and VS Code version is taken at once, so a machine without a
    // GPU starts its CPU engine while the webview is still opening; the live probe updates it for
    // the next run. Without a remembered answer, the CPU engine is started anyway (warm if needed).
    const live = this.backendFacts(panel, config);
    const remembered = needsAdapterProbe(config.backend) ? this.probeMemory?.get() : undefined;
    live.then((facts) => this.rememberProbe(remembered, facts), () => undefined);
    // A remembered hardware adapter is not trusted the same way: WebGPU runs in the panel anyway,
    // so its own probe is waited for.
    const noHardware = remembered !== undefined && !(remembered.ok && !remembered.adapter.isFallbackAdapter);
    const decided = (noHardware ? Promise.resolve(factsOf(remembered, onnxRuntimeProblem())) : live).then((facts) => ({ facts, choice: chooseBackend(config.backend, facts, { valueWeighting: config.weighting === 'valueWeighted' }) }));
    const mayRunOnCpu = config.backend === 'cpu' || (config.backend === 'auto' && (noHardware || remembered === undefined));
    if (mayRunOnCpu && !onnxRuntimeProblem()) this.hostOnnxEngine(model, config, 'starting').catch(() => undefined);
    const preloaded = decided.then(({ choice }) => (choice.kind === 'onnxruntime' ? this.engineFor(choice, panel, model, config) : undefined));
    preloaded.catch(() => undefined);
    const { definitions, references, comments } = await this.findDefinitions(document, text, baseOffset, range);
    const doc = await this.onWorker(
      (worker) => worker.prepare(text, path.join(model.folder, 'tokenizer.json'), definitions, references, comments),
      () => prepareDocument(text, model.tokenizer, definitions, references, comments),
    );
    const preparedMs = performance.now() - started;
    if (doc.tokenIds.length > config.maxFileTokens) {
      return {
        kind: 'refused',
        message: `${range ? 'The selection' : fileName} has ${doc.tokenIds.length.toLocaleString('en-US')} tokens, more than attentionLens.maxFileTokens (${config.maxFileTokens.toLocaleString('en-US')}). Select the part you want and run "Attention Lens: Analyze Selection", or raise the setting.`,
      };
    }
    if (doc.tokenIds.some((id) => id >= model.spec.vocabSize)) {
      return { kind: 'failed', message: `The tokenizer of ${model.label} produced ids outside its model's vocabulary (${model.spec.vocabSize}): tokenizer.json and the weights do not belong together.` };
    }
    if (token.isCancellationRequested) return { kind: 'cancelled', message: 'The analysis was cancelled.' };

    const { facts, choice } = await decided;
    if (choice.error !== undefined) return { kind: 'failed', message: choice.error };
    const planned = { kind: choice.kind, adapter: choice.kind === 'webgpu' ? facts.adapter : undefined };
    let context = windowTokens(config.contextWindow, planned, model.spec.maxPositions);
    const plan = (tokens: number) => planWindows({ numTokens: doc.tokenIds.length, context: tokens, spans: doc.spans, ...(config.windowPrefix ? { prefixCandidates: prefixCandidates(doc.definitions) } : { prefixCandidates: [], prefixShare: 0 }) });
    let windows = plan(context);
    const memoryNotes: string[] = [];
    if (choice.kind === 'webgpu') {
      // Checked before anything is loaded on the GPU.
      const tooLarge = this.gpuMemoryProblem(facts.adapter, model, windows[0].positions.length, doc.spans.length);
      if (tooLarge) return { kind: 'refused', message: tooLarge };
    }
    const engine = (await preloaded) ?? (await this.engineFor(choice, panel, model, config));
    const engineReadyMs = performance.now() - started;
    if (token.isCancellationRequested) return { kind: 'cancelled', message: 'The analysis was cancelled.' };
    const layers = this.layersToSummarise(model, windows[0].positions.length, doc.spans.length, config.topK, options.preferredLayer);
    const summaries: AttentionSummary[] = [];
    let readbackBytes = 0;
    let forwardMs = 0;
    let summaryMs = 0;
    let backend: BackendInfo = engine.backend;
    let lastRunId = -1;
    let reusedTokens = 0;
    let firstShownMs: number | undefined;
    // The window that holds the cursor runs first; the others follow in file order.
    const orderOf = (plan: readonly AnalysisWindow[]) => {
      const focusToken = options.focusOffset === undefined ? -1 : tokenAtOffset(doc, options.focusOffset - baseOffset);
      const first = Math.max(0, plan.findIndex((w) => focusToken >= w.ownedStart && focusToken < w.ownedEnd));
      return [first, ...plan.map((_, i) => i).filter((i) => i !== first)];
    };
    let order = orderOf(windows);
    let byWindow: (AttentionSummary | undefined)[] = windows.map(() => undefined);
    for (let step = 0; step < order.length; step++) {
      const index = order[step];
      const window = windows[index];
      if (token.isCancellationRequested) return { kind: 'cancelled', message: 'The analysis was cancelled.' };
      const cacheKey = `${document.uri.toString()}#${index}`;
      this.cacheKeys.set(document.uri.toString(), [...new Set([...(this.cacheKeys.get(document.uri.toString()) ?? []), cacheKey])]);
      const outcome = await engine.runWindow({ tokenIds: window.positions.map((p) => doc.tokenIds[p]), spans: window.spans, topK: config.topK, layers, weighting: config.weighting, cacheKey }, token);
      if (outcome.kind === 'cancelled') return { kind: 'cancelled', message: 'The analysis was cancelled.' };
      if (outcome.kind === 'failed' && outcome.longestWindow && step === 0 && config.contextWindow === 0 && outcome.longestWindow < window.positions.length) {
        // The automatic window was the model's whole context, and this machine has not the memory
        // for it: the file is analysed in the longest windows that fit instead, and the status bar
        // and log say so (a window set by hand is refused with the message instead).
        context = outcome.longestWindow;
        windows = plan(context);
        order = orderOf(windows);
        byWindow = windows.map(() => undefined);
        const note = `Analysed in windows of ${context.toLocaleString('en-US')} tokens, not the model's whole context: ${outcome.message}`;
        this.log.warn(note);
        memoryNotes.push(note);
        step = -1;
        continue;
      }
      if (outcome.kind === 'failed') return { kind: 'failed', message: outcome.message };
      byWindow[index] = outcome.summary;
      lastRunId = outcome.runId;
      readbackBytes += outcome.stats.readbackBytes;
      forwardMs += outcome.stats.forwardMs;
      reusedTokens += outcome.stats.reusedTokens ?? 0;
      summaryMs += outcome.stats.summaryMs;
      backend = outcome.backend;
      if (step === 0 && order.length > 1 && document.version === version) {
        // Show the cursor's window at once: the views answer for its tokens while the rest run
        // (once: every publication costs the views a refresh, and the whole result follows).
        firstShownMs = performance.now() - requested;
        await this.showPartial(document, { uri: document.uri.toString(), version, languageId: document.languageId, baseOffset, doc, windows, byWindow, backend, config, model, context, started, preparedMs, engineReadyMs, readbackBytes, forwardMs, summaryMs, reusedTokens });
        this.events.onProgress?.(document, step + 1, order.length);
      }
    }
    summaries.push(...byWindow.map((summary) => summary!));
    if (document.version !== version) {
      return { kind: 'stale', message: `${fileName} changed during the analysis; its result was discarded.` };
    }
    // In slices: a long file's merge must not hold up the editor (hovers, typing) at once.
    const summary = await mergeWindowSummariesAsync(windows, summaries, doc.tokenIds.length, doc.spans.length);
    if (document.version !== version) {
      return { kind: 'stale', message: `${fileName} changed during the analysis; its result was discarded.` };
    }
    const result: DocumentAnalysisResult = {
      uri: document.uri.toString(),
      version,
      languageId: document.languageId,
      baseOffset,
      doc,
      summary,
      windows: windows.length,
      backend,
      weighting: config.weighting,
      model: { label: model.label, shortName: model.shortName, architecture: model.spec.architecture, numLayers: model.spec.numLayers, numHeads: model.spec.numHeads, context, ...lengthDependence(model.spec) },
      stats: { forwardMs, summaryMs, readbackBytes, elapsedMs: performance.now() - started, preparedMs, engineReadyMs, reusedTokens, ...(firstShownMs === undefined ? {} : { firstShownMs }) },
      runId: windows.length === 1 ? lastRunId : undefined,
      windowPlan: windows,
    };
    // Sinks and the file's definition heads, in slices, before the views read them at once.
    await prepareReading(result, config.minDistance);
    if (document.version !== version) {
      return { kind: 'stale', message: `${fileName} changed during the analysis; its result was discarded.` };
    }
    return { kind: 'done', result, warnings: [...problems.map((p) => p.message), ...memoryNotes] };
  }

  /** Publishes the part of a run that is done (the windows in `byWindow`), until the whole result replaces it. */
  private async showPartial(
    document: vscode.TextDocument,
    run: {
      uri: string; version: number; languageId: string; baseOffset: number; doc: DocumentAnalysisResult['doc']; windows: readonly AnalysisWindow[]; byWindow: readonly (AttentionSummary | undefined)[];
      backend: BackendInfo; config: AttentionLensConfig; model: ActiveModel; context: number; started: number; preparedMs: number; engineReadyMs: number; readbackBytes: number; forwardMs: number; summaryMs: number; reusedTokens: number;
    },
  ): Promise<void> {
    if (!run.byWindow.some((s) => s !== undefined)) return;
    // The windows not run yet stay empty (no sources): their tokens are not queried meanwhile.
    const summary = await mergeWindowSummariesAsync(run.windows, run.byWindow, run.doc.tokenIds.length, run.doc.spans.length);
    const owned = new Uint8Array(run.doc.tokenIds.length);
    run.windows.forEach((w, i) => {
      if (run.byWindow[i]) owned.fill(1, w.ownedStart, w.ownedEnd);
    });
    const partial: DocumentAnalysisResult = {
      uri: run.uri,
      version: run.version,
      languageId: run.languageId,
      baseOffset: run.baseOffset,
      doc: run.doc,
      summary,
      windows: run.windows.length,
      backend: run.backend,
      weighting: run.config.weighting,
      model: { label: run.model.label, shortName: run.model.shortName, architecture: run.model.spec.architecture, numLayers: run.model.spec.numLayers, numHeads: run.model.spec.numHeads, context: run.context, ...lengthDependence(run.model.spec) },
      stats: { forwardMs: run.forwardMs, summaryMs: run.summaryMs, readbackBytes: run.readbackBytes, elapsedMs: performance.now() - run.started, preparedMs: run.preparedMs, engineReadyMs: run.engineReadyMs, reusedTokens: run.reusedTokens },
      windowPlan: run.windows,
      progress: { windowsDone: run.byWindow.filter(Boolean).length, windowsTotal: run.windows.length, tokensDone: owned },
    };
    await prepareReading(partial, run.config.minDistance);
    if (document.version !== run.version) return;
    this.results.set(run.uri, partial);
    this.events.onResultChanged(run.uri);
  }

  /** Keeps the live probe for the next session; says when it changes what runs. */
  private rememberProbe(remembered: WebGpuProbeResult | undefined, facts: BackendFacts): void {
    if (!this.probeMemory) return;
    const probe: WebGpuProbeResult | undefined = facts.adapter ? { ok: true, adapter: facts.adapter } : facts.adapterProblem !== undefined ? { ok: false, error: facts.adapterProblem } : undefined;
    if (!probe) return;
    const hardware = (p: WebGpuProbeResult | undefined) => Boolean(p?.ok && !p.adapter.isFallbackAdapter);
    if (remembered && hardware(remembered) !== hardware(probe)) {
      this.log.info(hardware(probe) ? `The panel found a hardware WebGPU adapter (${adapterName((probe as { adapter: AdapterSummary }).adapter)}): the next analysis runs on WebGPU.` : 'The panel has no hardware WebGPU adapter any more: the next analysis runs on the CPU engine.');
    }
    this.probeMemory.set(probe);
  }

  /** What the backend policy needs: the panel's WebGPU adapter (only when the setting asks about it) and whether ONNX Runtime loads here. */
  private async backendFacts(panel: AttentionPanel, config: AttentionLensConfig): Promise<BackendFacts> {
    const onnxProblem = onnxRuntimeProblem();
    if (!needsAdapterProbe(config.backend)) return { onnxProblem };
    const probe = await panel.whenProbed();
    return probe.ok ? { adapter: probe.adapter, onnxProblem } : { adapterProblem: probe.error, onnxProblem };
  }

  /** The engine for the policy's choice, loaded with the model; the reference (in the panel) when ONNX Runtime cannot start. */
  private async engineFor(choice: BackendChoice & { kind: NonNullable<BackendChoice['kind']> }, panel: AttentionPanel, model: ActiveModel, config: AttentionLensConfig): Promise<AnalysisEngine> {
    if (choice.kind === 'onnxruntime') {
      try {
        return await this.hostOnnxEngine(model, config, choice.reason);
      } catch (error) {
        if (!(error instanceof OnnxRuntimeUnavailableError)) throw error;
        const reason = `${choice.reason}; ONNX Runtime could not start (${error.message}), so the slow TypeScript reference engine runs`;
        this.log.warn(`The CPU engine is unavailable: ${reason}.`);
        return new PanelEngine(panel, (await this.loadInPanel(panel, model, 'reference', reason)).backend);
      }
    }
    return new PanelEngine(panel, (await this.loadInPanel(panel, model, choice.kind, choice.reason)).backend);
  }

  /** Starts the CPU engine's process with the model; `ready` sees the engine once it answers. */
  private async startHostEngine(model: ActiveModel, config: AttentionLensConfig, reason: string, ready: (engine: HostOnnxEngine) => void): Promise<HostOnnxEngine> {
    const started = performance.now();
    // The engine's process reads the weights itself: the extension host holds none of them.
    const engine = new HostOnnxEngine(await NodeOnnxEngine.create({ spec: model.spec, folder: model.folder }, { threads: config.cpuThreads, reason, cacheBytes: config.cacheMegabytes * 1024 * 1024 }), reason);
    this.log.info(`Loaded ${model.label} in ${Math.round(performance.now() - started)} ms on ${describeBackend(engine.backend)} (engine process ${engine.pid ?? '?'}).`);
    for (const note of engine.notes) this.log.info(`CPU engine: ${note}.`);
    ready(engine);
    return engine;
  }

  private hostOnnxEngine(model: ActiveModel, config: AttentionLensConfig, reason: string): Promise<HostOnnxEngine> {
    // The reason is only what the engine says about why it runs: it does not need a new process.
    const key = `${model.folder}|${config.cpuThreads}|${config.cacheMegabytes}`;
    const stopped = this.hostEngine?.engine?.stopped;
    if (stopped) {
      // Its process died (a crash, an out-of-memory kill): the run that saw it has said so; this
      // analysis starts a new process.
      this.log.warn(`${stopped.message}: starting a new CPU engine.`);
      this.releaseHostEngine();
    }
    if (this.hostEngine?.key !== key) {
      this.releaseHostEngine();
      const slot: HostEngineSlot = { key, promise: this.startHostEngine(model, config, reason, (engine) => (slot.engine = engine)) };
      this.hostEngine = slot;
      slot.promise.catch(() => {
        if (this.hostEngine === slot) this.hostEngine = undefined;
      });
    }
    return this.hostEngine!.promise.then((engine) => {
      if (reason !== 'starting') engine.reason = reason;
      return engine;
    });
  }

  private async loadInPanel(panel: AttentionPanel, model: ActiveModel, backend: 'webgpu' | 'reference', reason: string): Promise<LoadedModelInfo> {
    const response = await panel.request({ type: 'loadModel', model: panel.modelLocation(model.label, model.folder, model.files), backend, reason }, LOAD_TIMEOUT_MS);
    if (response.error || !response.model) throw new Error(response.error ?? `The panel could not load ${model.label}.`);
    if (response.model.loadMs > 0) this.log.info(`Loaded ${model.label} in the panel in ${Math.round(response.model.loadMs)} ms on ${describeBackend(response.model.backend)}.`);
    return response.model;
  }

  /**
   * Before loading on WebGPU: would the model fit on the panel's adapter at this window size? A
   * message with the numbers and a way out when not; undefined when it fits.
   */
  private gpuMemoryProblem(adapter: AdapterSummary | undefined, model: ActiveModel, windowTokens: number, spans: number): string | undefined {
    if (!adapter) return undefined;
    const f16 = adapter.features.includes('shader-f16');
    const verdict = checkModelFits(model.spec, windowTokens, { f16, limits: adapter.limits, modelLabel: model.label, spans });
    if (verdict.fits) return undefined;
    this.log.warn(verdict.message);
    return verdict.message;
  }

  /** All layers when their summaries fit the readback budget; otherwise the preferred layer only. */
  private layersToSummarise(model: ActiveModel, windowTokens: number, spans: number, topK: number, preferredLayer: number | undefined): number[] | undefined {
    const { numLayers: L, numHeads: H } = model.spec;
    const perLayer = H * windowTokens * (2 * topK + spans + 2) * 4;
    if (perLayer * L <= WINDOW_READBACK_BUDGET) return undefined;
    const layer = preferredLayer !== undefined && preferredLayer < L ? preferredLayer : L - 1;
    this.log.info(`Summarising layer ${layer} only: all ${L} layers would read back ${Math.round((perLayer * L) / 1048576)} MiB per window.`);
    return [layer];
  }

  /**
   * The exact probability row of (layer, head, query) for a one-window analysis whose run the
   * panel's engine still holds; undefined otherwise (the views then use the top-k summaries).
   */
  async exactRow(result: DocumentAnalysisResult, layer: number, head: number, query: number): Promise<Float32Array | undefined> {
    if (result.runId === undefined) return undefined;
    if (result.backend.kind === 'onnxruntime') {
      const engine = await this.hostEngine?.promise.catch(() => undefined);
      return engine?.exactRow(result.runId, layer, head, query);
    }
    const panel = AttentionPanel.instance;
    return panel ? new PanelEngine(panel, result.backend).exactRow(result.runId, layer, head, query) : undefined;
  }

  /** Every dependency check of this result's document version. */
  checksFor(result: DocumentAnalysisResult): DependencyCheck[] {
    return (this.checks.get(result.uri) ?? []).filter((check) => check.version === result.version);
  }

  /** The dependency check of the identifier at `offset` in the document's current analysis, if it was run. */
  checkAt(document: vscode.TextDocument, offset: number): DependencyCheck | undefined {
    const result = this.resultFor(document);
    if (!result) return undefined;
    return this.checks.get(result.uri)?.find((check) => check.version === result.version && offset >= check.start && offset <= check.end);
  }

  /**
   * "Check dependencies" for the identifier at `offset`: knockout of every earlier definition and
   * import, value-weighted attention, beside the attention the analysis found. Runs where the
   * analysis ran: WebGPU in the panel, or the CPU engine in the extension host (ONNX Runtime; the
   * reference where it cannot load). When the panel's engine fails (a lost device, a closed panel),
   * the check runs again on the CPU engine and the log says so. Throws with a message a user can act on.
   */
  async checkDependencies(document: vscode.TextDocument, offset: number, view: AttentionView): Promise<DependencyCheck> {
    const result = this.resultFor(document);
    if (result?.prefixOf) throw new Error(`${path.basename(document.fileName)} changed since its analysis (only the part before the edit is shown). Run "Attention Lens: Analyze Current File" again first.`);
    if (!result || !result.windowPlan) throw new Error(`${path.basename(document.fileName)} has no current analysis. Run "Attention Lens: Analyze Current File" first.`);
    const query = queryAt(result, offset);
    if (!query) throw new Error('Put the cursor on an analysed token first.');
    const config = this.config();
    const model = await this.activeModel();
    const windows = result.windowPlan;
    const check = await this.withCausalEngine(model, config, result, (engine) => checkDependencies(result, windows, query, engine, view, config.threshold, config.topK));
    if (this.resultFor(document) !== result) throw new Error(`${path.basename(document.fileName)} changed during the check; run it again.`);
    const list = (this.checks.get(result.uri) ?? []).filter((c) => c.start !== check.start || c.end !== check.end);
    this.checks.set(result.uri, [...list, check]);
    this.events.onResultChanged(result.uri);
    this.log.info(`Checked dependencies of ${check.name} in ${Math.round(check.elapsedMs)} ms on ${describeBackend(check.backend)}: ${check.spans.slice(0, 3).map((s) => `${result.doc.definitions[s.definition].name} KL ${s.kl.toFixed(3)}`).join(', ') || 'no earlier definitions or imports'}.`);
    return check;
  }

  /**
   * "Who depends on this definition, causally?": the span hidden from the rest of the file, the
   * change in every later token's prediction. On the CPU engine, like the dependency checks.
   */
  async spanEffect(document: vscode.TextDocument, definition: number): Promise<SpanEffectOnFile> {
    const result = this.resultFor(document);
    if (result?.prefixOf) throw new Error(`${path.basename(document.fileName)} changed since its analysis (only the part before the edit is shown). Run "Attention Lens: Analyze Current File" again first.`);
    if (!result || !result.windowPlan || !result.doc.definitions[definition]) throw new Error(`${path.basename(document.fileName)} has no current analysis. Run "Attention Lens: Analyze Current File" first.`);
    const windows = result.windowPlan;
    const effect = await this.withCausalEngine(await this.activeModel(), this.config(), result, (engine) => spanEffectOnFile(result, windows, definition, engine));
    if (this.resultFor(document) !== result) throw new Error(`${path.basename(document.fileName)} changed during the check; run it again.`);
    this.log.info(`Hid ${result.doc.definitions[definition].name} from ${path.basename(document.fileName)} in ${Math.round(effect.elapsedMs)} ms on ${describeBackend(effect.backend)}.`);
    return effect;
  }

  /**
   * Runs `work` on the engine the analysis ran on: the panel's WebGPU engine (loaded with the same
   * model) when it did, else the CPU engine; a failure of the panel's engine falls back to the CPU.
   */
  private async withCausalEngine<T>(model: ActiveModel, config: AttentionLensConfig, result: DocumentAnalysisResult, work: (engine: CausalEngine) => Promise<T>): Promise<T> {
    const panel = AttentionPanel.instance;
    if (result.backend.kind === 'webgpu' && panel && panel.canRead(model.folder)) {
      try {
        await this.loadInPanel(panel, model, 'webgpu', 'causal checks where the analysis ran');
        return await work(new PanelCausalEngine(panel));
      } catch (error) {
        if (error instanceof Error && error.name === 'AbortError') throw error;
        this.log.warn(`The check could not run on WebGPU in the panel (${error instanceof Error ? error.message : String(error)}); running it on the CPU engine.`);
        return work(await this.causalEngine(model, config, result, `the panel's WebGPU engine failed (${error instanceof Error ? error.message : String(error)})`));
      }
    }
    return work(await this.causalEngine(model, config, result));
  }

  /** An engine with knockout in the extension host for this model: the CPU engine, else the reference. */
  private async causalEngine(model: ActiveModel, config: AttentionLensConfig, result: DocumentAnalysisResult, why?: string): Promise<AttentionEngine> {
    const reason = why ?? (result.backend.kind === 'onnxruntime' ? result.backend.reason : `causal checks run on the CPU engine (the analysis ran on ${describeBackend(result.backend)})`);
    try {
      return (await this.hostOnnxEngine(model, config, reason)).forCausalChecks();
    } catch (error) {
      if (!(error instanceof OnnxRuntimeUnavailableError)) throw error;
      if (this.referenceForChecks?.key !== model.folder) this.referenceForChecks = { key: model.folder, engine: new ReferenceEngine(await loadModelFolder(model.folder), `ONNX Runtime could not start (${error.message})`) };
      return this.referenceForChecks.engine;
    }
  }

  private referenceForChecks: { key: string; engine: ReferenceEngine } | undefined;

  /**
   * Tree-sitter definitions, plus document symbols a language extension reports that tree-sitter
   * missed, and the identifier uses tree-sitter resolved to them (targets index the returned list).
   */
  private async findDefinitions(document: vscode.TextDocument, text: string, baseOffset: number, range: vscode.Range | undefined): Promise<{ definitions: SourceDefinition[]; references: CodeReference[]; comments: readonly { start: number; end: number }[] }> {
    // The language's symbols (the host asks VS Code) while the worker parses.
    const symbolsAsked = symbolsOf(document);
    const parsed = DefinitionExtractor.supports(document.languageId)
      ? await this.onWorker(
          (worker) => worker.parse(document.languageId, text),
          async () => (await this.definitionExtractor()).extractWithReferences(document.languageId, text),
        )
      : { definitions: [], references: [], comments: [] };
    const treeSitter = parsed.definitions;
    const definitions = [...treeSitter];
    const symbols = await symbolsAsked;
    const covered = (start: number) => definitions.some((d) => d.nodeStart <= start && start < d.nodeEnd);
    for (const symbol of symbols) {
      const nameStart = document.offsetAt(symbol.selectionRange.start) - baseOffset;
      const nameEnd = document.offsetAt(symbol.selectionRange.end) - baseOffset;
      if (nameStart < 0 || nameEnd > text.length || (range && !range.contains(symbol.selectionRange)) || covered(nameStart)) continue;
      const start = Math.max(0, document.offsetAt(symbol.range.start) - baseOffset);
      definitions.push({ kind: kindOfSymbol(symbol.kind), name: symbol.name, names: [symbol.name], start, end: nameEnd, nodeStart: start, nodeEnd: Math.min(text.length, document.offsetAt(symbol.range.end) - baseOffset), nameStart });
    }
    definitions.sort((a, b) => a.start - b.start || a.end - b.end);
    const index = new Map(definitions.map((d, i) => [d, i]));
    const remap = (i: number) => (i >= 0 ? (index.get(treeSitter[i]) ?? -1) : -1);
    const references = parsed.references.map((r) => ({ ...r, targets: r.targets.map(remap), enclosing: remap(r.enclosing) }));
    return { definitions, references, comments: parsed.comments };
  }

  dispose(): void {
    this.preparation.dispose();
    for (const source of this.running.values()) source.cancel();
    this.releaseHostEngine();
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }
}

/** Document symbols flattened, or none when no provider answers within two seconds. */
async function symbolsOf(document: vscode.TextDocument): Promise<vscode.DocumentSymbol[]> {
  const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 2000));
  let symbols: unknown;
  try {
    symbols = await Promise.race([vscode.commands.executeCommand<unknown>('vscode.executeDocumentSymbolProvider', document.uri), timeout]);
  } catch {
    return [];
  }
  if (!Array.isArray(symbols)) return [];
  const flat: vscode.DocumentSymbol[] = [];
  const visit = (list: unknown[]) => {
    for (const symbol of list) {
      if (symbol instanceof vscode.DocumentSymbol || (symbol && typeof symbol === 'object' && 'selectionRange' in symbol)) {
        const s = symbol as vscode.DocumentSymbol;
        if (s.kind !== vscode.SymbolKind.Variable || flat.length < 10_000) flat.push(s);
        if (Array.isArray(s.children)) visit(s.children);
      }
    }
  };
  visit(symbols);
  return flat;
}

function kindOfSymbol(kind: vscode.SymbolKind): DefinitionKind {
  const map: Partial<Record<vscode.SymbolKind, DefinitionKind>> = {
    [vscode.SymbolKind.Function]: 'function',
    [vscode.SymbolKind.Method]: 'method',
    [vscode.SymbolKind.Constructor]: 'method',
    [vscode.SymbolKind.Class]: 'class',
    [vscode.SymbolKind.Struct]: 'class',
    [vscode.SymbolKind.Interface]: 'interface',
    [vscode.SymbolKind.Enum]: 'enum',
    [vscode.SymbolKind.TypeParameter]: 'type',
    [vscode.SymbolKind.Module]: 'module',
    [vscode.SymbolKind.Namespace]: 'module',
    [vscode.SymbolKind.Package]: 'import',
  };
  const mapped = map[kind] ?? 'variable';
  return DEFINITION_KINDS.includes(mapped) ? mapped : 'variable';
}

export function describeResult(result: DocumentAnalysisResult): string {
  const windowTokens = result.windowPlan?.reduce((sum, w) => sum + w.positions.length, 0) ?? result.doc.tokenIds.length;
  const reused = result.stats.reusedTokens
    ? `, re-analysed incrementally: ${result.stats.reusedTokens.toLocaleString('en-US')} of the ${windowTokens.toLocaleString('en-US')} tokens run${result.windows > 1 ? ' (windows overlap and each starts with the file\'s imports, so they hold more tokens than the file)' : ''} taken from the previous run`
    : '';
  return `${result.doc.tokenIds.length} tokens, ${result.doc.definitions.length} definitions/imports, ${result.windows} window${result.windows === 1 ? '' : 's'} of <= ${result.model.context} tokens${reused}, ${result.stats.shownMs !== undefined ? `shown ${Math.round(result.stats.shownMs)} ms after the command${result.stats.firstShownMs !== undefined ? ` (the cursor's window at ${Math.round(result.stats.firstShownMs)} ms)` : ''}; run ` : ''}${Math.round(result.stats.elapsedMs)} ms${result.stats.preparedMs !== undefined ? ` (tokens and definitions ready at ${Math.round(result.stats.preparedMs)} ms, engine at ${Math.round(result.stats.engineReadyMs ?? 0)} ms, forward passes ${Math.round(result.stats.forwardMs)} ms)` : ''} on ${describeBackend(result.backend)} (${result.model.shortName}), read back ${(result.stats.readbackBytes / 1024).toFixed(0)} KiB`;
}

/** The policy's facts from a remembered probe (and whether ONNX Runtime loads here, checked now). */
function factsOf(probe: WebGpuProbeResult, onnxProblem: string | undefined): BackendFacts {
  return probe.ok ? { adapter: probe.adapter, onnxProblem } : { adapterProblem: probe.error, onnxProblem };
}

/** The token whose range holds `offset` (an offset into the analysed text), or -1. */
function tokenAtOffset(doc: DocumentAnalysisResult['doc'], offset: number): number {
  let lo = 0;
  let hi = doc.ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const range = doc.ranges[mid];
    if (offset < range.start) hi = mid - 1;
    else if (offset >= range.end) lo = mid + 1;
    else return mid;
  }
  return Math.min(Math.max(0, lo), doc.ranges.length - 1);
}

/**
 * What the views say of the model's layers (sliding windows, NoPE layers), and whether its rotary
 * tables depend on the window's length (dynamic NTK, LongRoPE): then a prefix of a result is not a result.
 */
function lengthDependence(spec: ModelSpec): { rotationDependsOnLength?: true; slidingWindow?: readonly number[]; ropeLayers?: readonly boolean[] } {
  const type = spec.ropeScaling?.type;
  return {
    ...(type === 'dynamic' || type === 'longrope' ? { rotationDependsOnLength: true as const } : {}),
    ...(spec.slidingWindow ? { slidingWindow: spec.slidingWindow } : {}),
    ...(spec.ropeLayers ? { ropeLayers: spec.ropeLayers } : {}),
  };
}
