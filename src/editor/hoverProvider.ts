/**
 * Hover on any analysed token: what it attends to among distant definitions and imports, with
 * weights, lines and a link to go there. The Markdown trusts only the extension's own command.
 */
import * as vscode from 'vscode';
import type { AttentionLensConfig } from '../config';
import type { AnalysisController } from '../analysis/analysisController';
import { COMMANDS } from '../commandIds';
import { describeView, type ViewState } from './viewState';
import { percent, presentAt } from './presentation';

export class AttentionHoverProvider implements vscode.HoverProvider {
  constructor(
    private readonly controller: AnalysisController,
    private readonly viewState: ViewState,
    private readonly config: () => AttentionLensConfig,
  ) {}

  provideHover(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const result = this.controller.resultFor(document);
    if (!result) return undefined;
    const config = this.config();
    const presented = presentAt(document, result, position, this.viewState.view, config);
    if (!presented) return undefined;
    const markdown = new vscode.MarkdownString(undefined, true);
    markdown.isTrusted = { enabledCommands: [COMMANDS.revealRange] };
    markdown.supportThemeIcons = true;
    markdown.appendMarkdown(`$(eye) **Attention Lens**: \`${escapeCode(presented.query.name)}\` attends to\n\n`);
    if (presented.sources.length === 0) {
      markdown.appendMarkdown(`no distant definition or import with at least ${percent(config.threshold)} of its attention.\n\n`);
    }
    for (const source of presented.sources) {
      const args = encodeURIComponent(JSON.stringify([document.uri.toString(), source.range.start.line, source.range.start.character, source.range.end.line, source.range.end.character]));
      markdown.appendMarkdown(`- **${percent(source.weight)}** ${source.definition.kind} \`${escapeCode(source.definition.name)}\` — [line ${source.range.start.line + 1}](command:${COMMANDS.revealRange}?${args} "Go to the ${source.definition.kind}"), ${source.tokenDistance} tokens back\n`);
    }
    markdown.appendMarkdown(`\n_${describeView(this.viewState.view)} · ${result.model.shortName} · distant = ${config.minDistance}+ tokens${config.distance === 'tokensOrOtherLine' ? ' or another line' : ''}_`);
    return new vscode.Hover(markdown, presented.range);
  }
}

function escapeCode(text: string): string {
  return text.replace(/`/g, "'");
}
