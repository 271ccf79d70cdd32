/** The Attention Lens status bar item: which backend runs the model, and what the last run did. */
import * as vscode from 'vscode';
import { COMMANDS } from './commandIds';
import { describeAdapter, formatBytes } from './shared/format';
import type { WebGpuProbeResult } from './shared/protocol';

export class AttentionStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('attentionLens.status', vscode.StatusBarAlignment.Right, 100);

  constructor() {
    this.item.name = 'Attention Lens';
    this.item.command = COMMANDS.showPanel;
    this.showIdle();
  }

  showIdle(): void {
    this.item.text = '$(eye) Attention Lens';
    this.item.tooltip = 'Attention Lens: open the panel to probe WebGPU and see attention.';
    this.item.backgroundColor = undefined;
    this.item.show();
  }

  showProbe(probe: WebGpuProbeResult): void {
    if (probe.ok) {
      const adapter = probe.adapter;
      const name = describeAdapter(adapter.vendor, adapter.architecture, adapter.description);
      this.item.text = `$(eye) WebGPU: ${name}`;
      const tooltip = new vscode.MarkdownString(undefined, true);
      tooltip.appendMarkdown(`**Attention Lens** runs the model on WebGPU.\n\n`);
      tooltip.appendMarkdown(`- Adapter: ${escape(name)}${adapter.isFallbackAdapter ? ' (software fallback adapter)' : ''}\n`);
      tooltip.appendMarkdown(`- Features: ${adapter.features.length ? escape(adapter.features.join(', ')) : 'none'}\n`);
      tooltip.appendMarkdown(`- Max storage binding: ${formatBytes(adapter.limits.maxStorageBufferBindingSize)}\n`);
      this.item.tooltip = tooltip;
      this.item.backgroundColor = undefined;
    } else {
      this.item.text = '$(warning) Attention Lens: CPU fallback';
      this.item.tooltip = `No WebGPU adapter in the panel (${probe.error}). Analyses run on the CPU reference implementation, which is much slower.`;
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    }
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}

function escape(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`);
}
