/**
 * The reverse view: on each analysed definition and import, a CodeLens "attended by N tokens";
 * clicking it lists those tokens and highlights them.
 */
import * as vscode from 'vscode';
import type { AttentionLensConfig } from '../config';
import type { AnalysisController } from '../analysis/analysisController';
import { attenderSteps, type Attender, type DocumentAnalysisResult } from '../analysis/documentResult';
import { runSteps, runStepsSliced } from '../analysis/slices';
import { COMMANDS } from '../commandIds';
import type { ViewState } from './viewState';
import { definitionRange, distanceRule } from './presentation';

export class AttendedByCodeLensProvider implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.emitter.event;
  private cache: { result: DocumentAnalysisResult; key: string; attenders?: Attender[][]; pending?: Promise<Attender[][]> } | undefined;

  constructor(
    private readonly controller: AnalysisController,
    private readonly viewState: ViewState,
    private readonly config: () => AttentionLensConfig,
  ) {}

  refresh(): void {
    this.cache = undefined;
    this.emitter.fire();
  }

  private key(): string {
    const config = this.config();
    return JSON.stringify([this.viewState.view, config.minDistance, config.distance, config.threshold]);
  }

  /** Who attends to each definition of the document's current result (cached per view and settings), at once. */
  attenders(result: DocumentAnalysisResult): Attender[][] {
    const key = this.key();
    if (this.cache?.result !== result || this.cache.key !== key || !this.cache.attenders) {
      const config = this.config();
      this.cache = { result, key, attenders: runSteps(attenderSteps(result, this.viewState.view, distanceRule(config), config.threshold)) };
    }
    return this.cache.attenders!;
  }

  /** The same in slices: a big file's CodeLenses must not hold up the extension host at once. */
  private attendersSliced(result: DocumentAnalysisResult): Promise<Attender[][]> {
    const key = this.key();
    if (this.cache?.result === result && this.cache.key === key) {
      if (this.cache.attenders) return Promise.resolve(this.cache.attenders);
      if (this.cache.pending) return this.cache.pending;
    }
    const config = this.config();
    const entry: NonNullable<typeof this.cache> = { result, key };
    entry.pending = runStepsSliced(attenderSteps(result, this.viewState.view, distanceRule(config), config.threshold)).then((attenders) => {
      entry.attenders = attenders;
      entry.pending = undefined;
      return attenders;
    });
    this.cache = entry;
    return entry.pending;
  }

  async provideCodeLenses(document: vscode.TextDocument, token?: vscode.CancellationToken): Promise<vscode.CodeLens[]> {
    if (!this.config().codeLensEnabled) return [];
    const result = this.controller.resultFor(document);
    if (!result) return [];
    const attenders = await this.attendersSliced(result);
    if (token?.isCancellationRequested || this.controller.resultFor(document) !== result) return [];
    // Read once: VS Code's configuration lookup is not free, and a big file has hundreds of lenses.
    const config = this.config();
    // A block of imports on consecutive lines gets one line of lenses, on its first import: a lens
    // above every import line would double the block's height.
    let blockLine = -1;
    let previousEnd = -2;
    return result.doc.definitions.map((definition, index) => {
      const count = attenders[index].length;
      const range = definitionRange(document, result, definition);
      let title = count === 0 ? '$(eye) attended by no distant tokens' : `$(eye) attended by ${count} token${count === 1 ? '' : 's'}`;
      let line = range.start.line;
      if (definition.kind === 'import') {
        const continues = range.start.line <= previousEnd + 1 && blockLine >= 0;
        if (!continues) blockLine = range.start.line;
        line = blockLine;
        title = `${continues ? '' : '$(eye) imports attended by: '}${definition.name} ${count}`;
        previousEnd = range.end.line;
      } else {
        blockLine = -1;
        previousEnd = -2;
      }
      const at = new vscode.Position(line, 0);
      return new vscode.CodeLens(new vscode.Range(at, at), {
        title,
        tooltip: `Identifiers at least ${config.minDistance} tokens later that give this ${definition.kind} at least ${Math.round(config.threshold * 100)}% of their attention`,
        command: COMMANDS.showAttenders,
        arguments: [document.uri.toString(), index],
      });
    });
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
