/**
 * Which layer, head and aggregation the views show, remembered per workspace (workspaceState).
 */
import * as vscode from 'vscode';
import type { AttentionView } from '../analysis/documentAnalysis';

const KEY = 'attentionLens.view';

/** The default: this file's definition heads, chosen by measurement on the file (src/analysis/reading.ts). */
export const DEFAULT_VIEW: AttentionView = { layer: 'all', head: 'definition' };

/** The view as chosen (describeReading says which heads it resolves to for a given analysis). */
export function describeView(view: AttentionView): string {
  if (view.head === 'definition') return "this file's definition heads";
  const layer = view.layer === 'all' ? 'all layers (strongest)' : `layer ${view.layer}`;
  const head = view.head === 'mean' ? 'mean of heads' : view.head === 'max' ? 'max of heads' : `head ${view.head}`;
  return `${layer}, ${head}`;
}

function isView(value: unknown): value is AttentionView {
  if (typeof value !== 'object' || value === null) return false;
  const { layer, head } = value as Record<string, unknown>;
  const layerOk = layer === 'all' || (typeof layer === 'number' && Number.isInteger(layer) && layer >= 0);
  const headOk = head === 'mean' || head === 'max' || head === 'definition' || (typeof head === 'number' && Number.isInteger(head) && head >= 0);
  return layerOk && headOk;
}

export class ViewState implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<AttentionView>();
  readonly onDidChange = this.emitter.event;

  constructor(private readonly memento: vscode.Memento) {}

  get view(): AttentionView {
    const stored = this.memento.get<unknown>(KEY);
    return isView(stored) ? stored : DEFAULT_VIEW;
  }

  async set(view: AttentionView): Promise<void> {
    await this.memento.update(KEY, view);
    this.emitter.fire(view);
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
