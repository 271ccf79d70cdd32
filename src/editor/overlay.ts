/**
 * The overlay: for the token at the cursor, the distant definitions and imports it attends to are
 * highlighted with an intensity by weight, marked in the gutter and labelled with the weight.
 * Decoration types are created once; only visible editors of analysed documents are updated.
 */
import * as vscode from 'vscode';
import type { AttentionLensConfig } from '../config';
import type { AnalysisController } from '../analysis/analysisController';
import { describeView, type ViewState } from './viewState';
import { percent, presentAt, type PresentedQuery } from './presentation';

/** What the overlay shows in one editor: the API gives this to tests, since VS Code cannot read decorations back. */
export interface OverlaySnapshot {
  readonly uri: string;
  readonly query?: { readonly name: string; readonly range: vscode.Range };
  readonly sources: readonly { readonly name: string; readonly kind: string; readonly range: vscode.Range; readonly weight: number; readonly label: string }[];
}

export class AttentionOverlay implements vscode.Disposable {
  private readonly levels: readonly { readonly min: number; readonly type: vscode.TextEditorDecorationType }[];
  private readonly queryType: vscode.TextEditorDecorationType;
  /** The weight labels, at the end of a span's first line (so they never push code aside). */
  private readonly labelType = vscode.window.createTextEditorDecorationType({ rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed });
  private readonly snapshots = new Map<vscode.TextEditor, OverlaySnapshot>();
  private readonly disposables: vscode.Disposable[] = [];
  private enabledForSession: boolean | undefined;

  constructor(
    extensionUri: vscode.Uri,
    private readonly controller: AnalysisController,
    private readonly viewState: ViewState,
    private readonly config: () => AttentionLensConfig,
  ) {
    const gutterIconPath = vscode.Uri.joinPath(extensionUri, 'media', 'gutter.svg');
    const level = (min: number, color: string) => ({
      min,
      type: vscode.window.createTextEditorDecorationType({
        backgroundColor: new vscode.ThemeColor(color),
        border: '1px solid',
        borderColor: new vscode.ThemeColor('attentionLens.sourceBorder'),
        borderRadius: '2px',
        gutterIconPath,
        gutterIconSize: 'contain',
        overviewRulerColor: new vscode.ThemeColor('attentionLens.sourceBorder'),
        overviewRulerLane: vscode.OverviewRulerLane.Right,
        rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
      }),
    });
    this.levels = [level(0.5, 'attentionLens.sourceBackground'), level(0.2, 'attentionLens.sourceBackgroundMedium'), level(0, 'attentionLens.sourceBackgroundWeak')];
    this.queryType = vscode.window.createTextEditorDecorationType({ backgroundColor: new vscode.ThemeColor('attentionLens.queryBackground'), borderRadius: '2px' });
    this.disposables.push(
      ...this.levels.map((l) => l.type),
      this.queryType,
      this.labelType,
      vscode.window.onDidChangeTextEditorSelection((event) => this.update(event.textEditor)),
      vscode.window.onDidChangeVisibleTextEditors(() => this.updateAll()),
      viewState.onDidChange(() => this.updateAll()),
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('attentionLens')) this.updateAll();
      }),
    );
  }

  get enabled(): boolean {
    return this.enabledForSession ?? this.config().overlayEnabled;
  }

  /** Flips the overlay for this session (the setting keeps the default for new windows). */
  toggle(): boolean {
    this.enabledForSession = !this.enabled;
    this.updateAll();
    return this.enabledForSession;
  }

  updateAll(): void {
    for (const editor of vscode.window.visibleTextEditors) this.update(editor);
  }

  /** Re-draws one editor: cleared when it has no current result or the overlay is off. */
  update(editor: vscode.TextEditor): void {
    const result = this.controller.resultFor(editor.document);
    const presented = result && this.enabled ? presentAt(editor.document, result, editor.selection.active, this.viewState.view, this.config()) : undefined;
    this.draw(editor, presented);
  }

  private draw(editor: vscode.TextEditor, presented: PresentedQuery | undefined): void {
    const byLevel = this.levels.map(() => [] as vscode.DecorationOptions[]);
    const labels: vscode.DecorationOptions[] = [];
    const sources: OverlaySnapshot['sources'][number][] = [];
    const width = labelColumn(editor);
    if (presented) {
      const view = describeView(this.viewState.view);
      for (const source of presented.sources) {
        const level = this.levels.findIndex((l) => source.weight >= l.min);
        const kindNote = source.relation?.kind === 'definition' ? ' (its definition)' : source.relation?.kind === 'earlierUse' ? ' (earlier use)' : source.relation?.kind === 'unrelated' ? ' (unrelated)' : '';
        const full = `${percent(source.weight)} from ${presented.query.name}${kindNote}`;
        // Past the editor's ruler (or wrap column) only the weight: the hover has the rest.
        const line = editor.document.lineAt(source.range.start.line);
        const lineWidth = visualWidth(line.text, typeof editor.options.tabSize === 'number' ? editor.options.tabSize : 4);
        const label = lineWidth + full.length + 4 <= width ? full : percent(source.weight);
        byLevel[level].push({
          range: source.range,
          hoverMessage: new vscode.MarkdownString(`**Attention Lens**: \`${presented.query.name}\` (line ${presented.range.start.line + 1}) gives ${percent(source.weight)} of its attention to this ${source.definition.kind}, ${source.tokenDistance} tokens back (${view})${source.relationText ? `: ${source.relationText}` : ''}.`),
        });
        labels.push({
          range: new vscode.Range(line.range.end, line.range.end),
          renderOptions: { after: { contentText: `◀ ${label}`, color: new vscode.ThemeColor('attentionLens.weightForeground'), margin: '0 0 0 1.5em', fontStyle: 'italic' } },
        });
        sources.push({ name: source.definition.name, kind: source.definition.kind, range: source.range, weight: source.weight, label });
      }
    }
    this.levels.forEach((l, i) => editor.setDecorations(l.type, byLevel[i]));
    editor.setDecorations(this.labelType, labels);
    editor.setDecorations(this.queryType, presented && presented.sources.length > 0 ? [presented.range] : []);
    this.snapshots.set(editor, { uri: editor.document.uri.toString(), query: presented ? { name: presented.query.name, range: presented.range } : undefined, sources });
  }

  /** What the overlay currently shows in the editor of `uri` (for tests and diagnostics). */
  snapshot(uri: string): OverlaySnapshot | undefined {
    for (const [editor, snapshot] of this.snapshots) {
      if (snapshot.uri === uri && vscode.window.visibleTextEditors.includes(editor)) return snapshot;
    }
    return undefined;
  }

  dispose(): void {
    while (this.disposables.length) this.disposables.pop()?.dispose();
    this.snapshots.clear();
  }
}

/** The column labels should end by: the editor's last ruler, else its wrap column when it wraps there, else 120. */
function labelColumn(editor: vscode.TextEditor): number {
  const settings = vscode.workspace.getConfiguration('editor', editor.document);
  const rulers = (settings.get<unknown[]>('rulers') ?? []).map((r) => (typeof r === 'number' ? r : typeof r === 'object' && r && typeof (r as { column?: unknown }).column === 'number' ? (r as { column: number }).column : 0));
  if (rulers.length && Math.max(...rulers) > 0) return Math.max(...rulers);
  const wrap = settings.get<string>('wordWrap');
  if (wrap === 'wordWrapColumn' || wrap === 'bounded') return settings.get<number>('wordWrapColumn') ?? 80;
  return 120;
}

/** Columns a line takes with tabs expanded. */
function visualWidth(text: string, tabSize: number): number {
  let width = 0;
  for (const c of text) width = c === '\t' ? width + tabSize - (width % tabSize) : width + 1;
  return width;
}
