/**
 * Hover on any analysed token: what it attends to among distant definitions and imports, with
 * weights, lines and a link to go there; and, after "Check dependencies", what its prediction
 * causally depends on (knockout) beside attention and value-weighted attention, with the spans
 * where they disagree. The Markdown trusts only the extension's own commands.
 */
import * as vscode from 'vscode';
import type { AttentionLensConfig } from '../config';
import type { AnalysisController } from '../analysis/analysisController';
import { COMMANDS } from '../commandIds';
import type { ViewState } from './viewState';
import { definitionRange, percent, presentAt } from './presentation';
import { NO_EFFECT_KL, type DependencyCheck } from '../analysis/dependencyCheck';
import type { DocumentAnalysisResult } from '../analysis/documentResult';

/** The hover names the sinks when at least this share of the token's attention is parked there. */
const SINK_LINE_SHARE = 0.05;

/** Rows of the dependency table in a hover. */
const CHECK_ROWS = 6;

/** When the last hover was answered, and how long it took to make (for the integration tests). */
export interface HoverTiming {
  /** Date.now() when the hover was returned. */
  answeredAt: number;
  /** Milliseconds spent making it. */
  ms: number;
  /** Whether it had something to say. */
  shown: boolean;
}

export class AttentionHoverProvider implements vscode.HoverProvider {
  /** The last hover asked of this provider. */
  last?: HoverTiming;

  constructor(
    private readonly controller: AnalysisController,
    private readonly viewState: ViewState,
    private readonly config: () => AttentionLensConfig,
  ) {}

  provideHover(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const started = performance.now();
    const hover = this.hoverAt(document, position);
    this.last = { answeredAt: Date.now(), ms: performance.now() - started, shown: hover !== undefined };
    return hover;
  }

  private hoverAt(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const result = this.controller.resultFor(document);
    if (!result) return undefined;
    const config = this.config();
    const presented = presentAt(document, result, position, this.viewState.view, config);
    if (!presented) return undefined;
    const markdown = new vscode.MarkdownString(undefined, true);
    markdown.isTrusted = { enabledCommands: [COMMANDS.revealRange, COMMANDS.checkDependencies] };
    markdown.supportThemeIcons = true;
    markdown.appendMarkdown(`$(eye) **Attention Lens**: \`${escapeCode(presented.query.name)}\` attends to\n\n`);
    if (presented.sinkShare >= SINK_LINE_SHARE) {
      markdown.appendMarkdown(`$(circle-slash) **${percent(presented.sinkShare)}** on ${escapeMarkdown(presented.sinkWhere ?? 'an attention sink')}, an _attention sink_: a position the model parks attention on whatever the token is; it says nothing about \`${escapeCode(presented.query.name)}\` and is not listed below.\n\n`);
    }
    if (presented.sources.length === 0) {
      markdown.appendMarkdown(`no distant definition or import with at least ${percent(config.threshold)} of its attention.\n\n`);
    }
    for (const source of presented.sources) {
      const args = encodeURIComponent(JSON.stringify([document.uri.toString(), source.range.start.line, source.range.start.character, source.range.end.line, source.range.end.character]));
      markdown.appendMarkdown(`- **${percent(source.weight)}** ${source.definition.kind} \`${escapeCode(source.definition.name)}\` — [line ${source.range.start.line + 1}](command:${COMMANDS.revealRange}?${args} "Go to the ${source.definition.kind}"), ${source.tokenDistance} tokens back${source.relationText ? ` · _${escapeMarkdown(source.relationText)}_` : ''}\n`);
    }
    const reference = presented.reference;
    if (reference && !reference.listed) {
      const args = encodeURIComponent(JSON.stringify([document.uri.toString(), reference.range.start.line, reference.range.start.character, reference.range.end.line, reference.range.end.character]));
      markdown.appendMarkdown(`\n$(info) The model barely attends to the ${reference.definition.kind} of \`${escapeCode(presented.query.name)}\` ([line ${reference.range.start.line + 1}](command:${COMMANDS.revealRange}?${args} "Go to the ${reference.definition.kind}"), ${percent(reference.weight)}).\n`);
    }
    const check = this.controller.checkAt(document, document.offsetAt(position));
    if (check) appendCheck(markdown, document, result, check, config.threshold);
    else if (!result.prefixOf) {
      const args = encodeURIComponent(JSON.stringify([document.uri.toString(), presented.query.start]));
      markdown.appendMarkdown(`\n[$(beaker) Check dependencies](command:${COMMANDS.checkDependencies}?${args} "Knock each earlier definition and import out of the model's attention and measure how its prediction changes")\n`);
    }
    if (result.prefixOf) markdown.appendMarkdown(`\n_The part of the file before your edit, from the previous analysis (exact: a causal model reads only earlier tokens); the rest waits for the next analysis._\n`);
    markdown.appendMarkdown(`\n_View: ${escapeMarkdown(presented.reading)}${result.weighting === 'valueWeighted' ? ' · value-weighted' : ''} · ${result.model.shortName} · distant = ${config.minDistance}+ tokens${config.distance === 'tokensOrOtherLine' ? ' or another line' : ''}. Percentages: the share of this token's attention (the strongest of the view's heads) that lands in each span, each on its own: they do not add up._`);
    return new vscode.Hover(markdown, presented.range);
  }
}

/**
 * The dependency table: the spans with the largest knockout effect and every attended one, each with
 * its attention, value-weighted attention, KL and change in log p of the next token; then the
 * disagreements in words.
 */
function appendCheck(markdown: vscode.MarkdownString, document: vscode.TextDocument, result: DocumentAnalysisResult, check: DependencyCheck, threshold: number): void {
  // The strongest effects, every attended span, and every span the lists below name.
  const flagged = (s: DependencyCheck['spans'][number]) => s.verdict === 'attendedNoEffect' || s.verdict === 'effectWithoutAttention';
  const shown = check.spans.filter((s, i) => i < CHECK_ROWS || s.attention >= threshold || flagged(s)).slice(0, CHECK_ROWS + 6);
  markdown.appendMarkdown(`\n**Does the prediction depend on them?** Knockout on the ${check.backend.kind === 'onnxruntime' ? 'CPU engine' : check.backend.kind === 'reference' ? 'reference engine' : check.backend.kind}, ${Math.round(check.elapsedMs)} ms:\n\n`);
  if (shown.length === 0) {
    markdown.appendMarkdown('no definition or import comes before this token.\n');
    return;
  }
  // Non-breaking spaces and hyphens: the hover is narrow and the headers must not wrap mid-word.
  markdown.appendMarkdown('| span | attention | value\u2011weighted | knockout\u00a0KL | Δ\u00a0log\u00a0p |\n|---|--:|--:|--:|--:|\n');
  const label = (definition: number) => {
    const d = result.doc.definitions[definition];
    return `${d.kind} \`${escapeCode(d.name)}\` (line ${definitionRange(document, result, d).start.line + 1})`;
  };
  for (const span of shown) {
    const flag = span.verdict === 'attendedNoEffect' ? ' $(warning)' : span.verdict === 'effectWithoutAttention' ? ' $(alert)' : '';
    const delta = span.deltaLogProb === null ? '–' : `${span.deltaLogProb >= 0 ? '+' : '−'}${Math.abs(span.deltaLogProb).toFixed(2)}`;
    markdown.appendMarkdown(`| ${label(span.definition)}${flag} | ${percent(span.attention)} | ${percent(span.valueWeighted)} | ${span.kl.toFixed(3)} | ${delta} |\n`);
  }
  markdown.appendMarkdown(`\n_Attention: this token's share on the span (the view's strongest head). Value-weighted: the same, weighted by how much each position writes into the token. Knockout KL: how far the prediction of the next token moves when the span is hidden from attention (0 = not at all). Δ log p: the change in the log-probability of the file's next token; negative: predicting it leaned on the span; positive: hiding the span made it likelier (the span competed with it)._\n`);
  const attendedNoEffect = shown.filter((s) => s.verdict === 'attendedNoEffect');
  const effectWithout = shown.filter((s) => s.verdict === 'effectWithoutAttention');
  if (attendedNoEffect.length) markdown.appendMarkdown(`\n$(warning) **Attended but no effect** (KL < ${NO_EFFECT_KL}): ${attendedNoEffect.map((s) => label(s.definition)).join(', ')}. The attention there does not change the prediction.\n`);
  if (effectWithout.length) markdown.appendMarkdown(`\n$(alert) **Effect without much attention**: ${effectWithout.map((s) => label(s.definition)).join(', ')}. The prediction depends on it through other paths.\n`);
}

function escapeCode(text: string): string {
  return text.replace(/`/g, "'");
}

/** Escapes Markdown emphasis and link syntax in plain text. */
function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+!|<>]/g, (c) => `\\${c}`);
}
