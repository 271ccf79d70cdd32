/**
 * The reverse view: on each analysed definition and import, a CodeLens "attended by N tokens";
 * clicking it lists those tokens and highlights them.
 */
import * as vscode from 'vscode';
import type { AttentionLensConfig } from '../config';
import type { AnalysisController } from '../analysis/analysisController';
import { attendersByDefinition, type Attender, type DocumentAnalysisResult } from '../analysis/documentResult';
import { COMMANDS } from '../commandIds';
import type { ViewState } from './viewState';
import { definitionRange, distanceRule } from './presentation';

export class AttendedByCodeLensProvider implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.emitter.event;
  private cache: { result: DocumentAnalysisResult; key: string; attenders: Attender[][] } | undefined;

  constructor(
    private readonly controller: AnalysisController,
    private readonly viewState: ViewState,
    private readonly config: () => AttentionLensConfig,
  ) {}

  refresh(): void {
    this.cache = undefined;
    this.emitter.fire();
  }

  /** Who attends to each definition of the document's current result (cached per view and settings). */
  attenders(result: DocumentAnalysisResult): Attender[][] {
    const config = this.config();
    const key = JSON.stringify([this.viewState.view, config.minDistance, config.distance, config.threshold]);
    if (this.cache?.result !== result || this.cache.key !== key) {
      this.cache = { result, key, attenders: attendersByDefinition(result, this.viewState.view, distanceRule(config), config.threshold) };
    }
    return this.cache.attenders;
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    if (!this.config().codeLensEnabled) return [];
    const result = this.controller.resultFor(document);
    if (!result) return [];
    const attenders = this.attenders(result);
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
        tooltip: `Identifiers at least ${this.config().minDistance} tokens later that give this ${definition.kind} at least ${Math.round(this.config().threshold * 100)}% of their attention`,
        command: COMMANDS.showAttenders,
        arguments: [document.uri.toString(), index],
      });
    });
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
