/** The Attention Lens status bar item: which backend runs the model, and what the last run did. */
import * as vscode from 'vscode';
import { COMMANDS } from './commandIds';
import { describeAdapter, formatBytes } from './shared/format';
import type { WebGpuProbeResult } from './shared/protocol';
import type { BackendKind } from '../engine/attention';
import { describeBackend, type BackendChoice } from '../engine/backendPolicy';

/** Short engine names for the status bar. */
export const ENGINE_NAMES: Record<BackendKind, string> = { webgpu: 'WebGPU', onnxruntime: 'CPU (ONNX Runtime)', reference: 'CPU reference (slow)' };
import type { DocumentAnalysisResult } from './analysis/documentResult';

export class AttentionStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('attentionLens.status', vscode.StatusBarAlignment.Right, 100);

  constructor() {
    this.item.name = 'Attention Lens';
    this.item.command = COMMANDS.showPanel;
    this.showIdle();
  }

  /** What the item shows now (for the integration tests). */
  get text(): string {
    return this.item.text;
  }

  /** The tooltip (the whole message of a problem, the engine and why of a result). */
  get tooltip(): string {
    const tooltip = this.item.tooltip;
    return typeof tooltip === 'string' ? tooltip : (tooltip?.value ?? '');
  }

  showIdle(): void {
    this.item.text = '$(eye) Attention Lens';
    this.item.tooltip = 'Attention Lens: open the panel to probe WebGPU and see attention.';
    this.item.backgroundColor = undefined;
    this.item.show();
  }

  /** What the panel's probe means for the engine: the policy's choice for the current setting. */
  showProbe(probe: WebGpuProbeResult, choice: BackendChoice): void {
    const tooltip = new vscode.MarkdownString(undefined, true);
    tooltip.appendMarkdown(`**Attention Lens**\n\n`);
    if (choice.error !== undefined) {
      this.item.text = '$(warning) Attention Lens: no engine';
      tooltip.appendMarkdown(escape(choice.error));
    } else {
      this.item.text = `$(eye) Attention Lens: ${ENGINE_NAMES[choice.kind]}`;
      tooltip.appendMarkdown(`- Engine: ${ENGINE_NAMES[choice.kind]} (${escape(choice.reason)})\n`);
    }
    if (probe.ok) {
      const adapter = probe.adapter;
      const name = describeAdapter(adapter.vendor, adapter.architecture, adapter.description);
      tooltip.appendMarkdown(`- WebGPU adapter: ${escape(name)}${adapter.isFallbackAdapter ? ' (software fallback adapter)' : ''}\n`);
      tooltip.appendMarkdown(`- Features: ${adapter.features.length ? escape(adapter.features.join(', ')) : 'none'}\n`);
      tooltip.appendMarkdown(`- Max storage binding: ${formatBytes(adapter.limits.maxStorageBufferBindingSize)}\n`);
    } else {
      tooltip.appendMarkdown(`- No WebGPU adapter in the panel: ${escape(probe.error)}\n`);
    }
    this.item.tooltip = tooltip;
    this.item.backgroundColor = choice.error !== undefined || choice.kind === 'reference' ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.show();
  }

  /** `note`: why it runs again (an edit during the previous run). */
  showRunning(fileName: string, modelName: string, windows?: { done: number; total: number }, note?: string): void {
    this.item.text = `$(sync~spin) Attention Lens: ${fileName}${windows ? ` (${windows.done} of ${windows.total} windows)` : note ? ' (edited, again)' : ''}`;
    this.item.tooltip = `${note ? `${fileName} ${note}` : `Analysing ${fileName} with the ${modelName}`}${windows ? `: ${windows.done} of ${windows.total} windows done, the one with the cursor first (its tokens can be hovered now)` : ''}. Click to open the panel.`;
    this.item.backgroundColor = undefined;
    this.item.show();
  }

  /** Model, token count, time and backend of a finished analysis; says when windows were used. */
  /** `reading`: the view the numbers are read under, in words (src/analysis/reading.ts). */
  showResult(result: DocumentAnalysisResult, reading?: string): void {
    const backend = result.backend.kind === 'webgpu' ? `WebGPU ${describeAdapter(result.backend.adapter.vendor, result.backend.adapter.architecture, result.backend.adapter.description)}` : ENGINE_NAMES[result.backend.kind];
    // The time the user waited: from the command to the views (the engine's own times are in the tooltip).
    const waited = result.stats.shownMs ?? result.stats.elapsedMs;
    const seconds = formatMs(waited);
    const windows = result.windows > 1 ? ` · ${result.windows} windows` : '';
    // The model is named by its own item beside this one (src/hub/modelHub.ts) and in the tooltip.
    this.item.text = `$(eye) ${result.doc.tokenIds.length.toLocaleString('en-US')} tok · ${seconds} · ${backend}${windows}`;
    const tooltip = new vscode.MarkdownString(undefined, true);
    tooltip.appendMarkdown(`**Attention Lens**

`);
    tooltip.appendMarkdown(`- Model: ${escape(result.model.label)} (${escape(result.model.architecture)}, ${result.model.numLayers} layers x ${result.model.numHeads} heads, context ${result.model.context})
`);
    tooltip.appendMarkdown(`- Tokens: ${result.doc.tokenIds.length}; definitions and imports: ${result.doc.definitions.length}
`);
    if (result.windows > 1) tooltip.appendMarkdown(`- Longer than the model's context: analysed in ${result.windows} overlapping windows, each starting with the file's imports and top-level signatures
`);
    tooltip.appendMarkdown(`- Engine: ${escape(describeBackend(result.backend))}
`);
    if (reading) tooltip.appendMarkdown(`- View: ${escape(reading)}
`);
    const first = result.stats.firstShownMs !== undefined ? `the window with the cursor shown at ${formatMs(result.stats.firstShownMs)}, ` : '';
    const engineReady = result.stats.engineReadyMs !== undefined ? `engine ready at ${formatMs(result.stats.engineReadyMs)} of the run, ` : '';
    tooltip.appendMarkdown(`- Time: ${seconds} from the command to the views (${first}${engineReady}forward passes ${formatMs(result.stats.forwardMs)}, summaries ${formatMs(result.stats.summaryMs)}); read back ${formatBytes(result.stats.readbackBytes)}
`);
    this.item.tooltip = tooltip;
    this.item.backgroundColor = result.backend.kind === 'reference' ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.show();
  }

  showProblem(message: string): void {
    this.item.text = '$(warning) Attention Lens';
    this.item.tooltip = message;
    this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}

function escape(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`);
}

/** 840 ms, 2.5 s. */
function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}
