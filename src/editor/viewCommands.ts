/**
 * The commands that read an analysis: layer/head and aggregation pickers, sources at the cursor,
 * the reverse view's list, navigation and export.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AnalysisController } from '../analysis/analysisController';
import { COMMANDS } from '../commandIds';
import type { AttentionLensConfig } from '../config';
import { exportHtml, exportJson } from '../export/exportAnalysis';
import type { AttendedByCodeLensProvider } from './codeLensProvider';
import { distanceRule, percent, presentAt } from './presentation';
import { describeView, type ViewState } from './viewState';
import { isKeyword } from '../analysis/keywords';
import { precisionOf, recallOf } from '../analysis/definitionHeads';
import { headsTableOf } from './dependencyMapHost';

export interface ViewCommandDeps {
  readonly controller: AnalysisController;
  readonly viewState: ViewState;
  readonly config: () => AttentionLensConfig;
  readonly codeLens: AttendedByCodeLensProvider;
  readonly activeEditorOrSay: () => vscode.TextEditor | undefined;
}

export function registerViewCommands(context: vscode.ExtensionContext, deps: ViewCommandDeps): void {
  const { controller, viewState, config, codeLens, activeEditorOrSay } = deps;
  const attendersHighlight = vscode.window.createTextEditorDecorationType({ backgroundColor: new vscode.ThemeColor('attentionLens.queryBackground'), borderRadius: '2px' });
  context.subscriptions.push(attendersHighlight);

  const resultOrSay = (editor: vscode.TextEditor) => {
    const result = controller.resultFor(editor.document);
    if (!result) {
      void vscode.window.showInformationMessage(
        controller.isRunning(editor.document) ? 'Attention Lens: the analysis of this file is still running.' : 'Attention Lens: this file has no current analysis. Run "Attention Lens: Analyze Current File".',
      );
    }
    return result;
  };

  /** Layer and head counts of the model the views refer to. */
  const modelShape = async (): Promise<{ layers: number; heads: number } | undefined> => {
    const editor = vscode.window.activeTextEditor;
    const result = editor ? controller.resultFor(editor.document) : controller.allResults()[0];
    if (result) return { layers: result.model.numLayers, heads: result.model.numHeads };
    try {
      const model = await controller.activeModel();
      return { layers: model.spec.numLayers, heads: model.spec.numHeads };
    } catch (error) {
      void vscode.window.showErrorMessage(`Attention Lens: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
  };

  const reveal = async (uri: string, range: vscode.Range) => {
    const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(uri));
    const editor = await vscode.window.showTextDocument(document, { preserveFocus: false, preview: true });
    editor.selection = new vscode.Selection(range.start, range.end);
    editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  };

  context.subscriptions.push(
    vscode.commands.registerCommand(COMMANDS.selectLayerHead, async (choice?: { layer: number | 'all'; head: number | 'mean' | 'max' | 'definition' }) => {
      const shape = await modelShape();
      if (!shape) return undefined;
      // Keybindings and tests may name the view directly.
      if (choice && (choice.layer === 'all' || (Number.isInteger(choice.layer) && choice.layer < shape.layers)) && (choice.head === 'mean' || choice.head === 'max' || choice.head === 'definition' || (Number.isInteger(choice.head) && choice.head < shape.heads))) {
        await viewState.set({ layer: choice.layer, head: choice.head });
        return viewState.view;
      }
      const current = viewState.view;
      // With an analysis of the active file: the heads that follow its references, best first.
      const editor = vscode.window.activeTextEditor;
      const analysed = editor && controller.resultFor(editor.document);
      if (analysed) {
        const table = headsTableOf(analysed, config().minDistance);
        if (table.uses > 0) {
          const nearest = precisionOf(table.baselines.nearestOccurrence);
          type Item = vscode.QuickPickItem & { value?: { layer: number | 'all'; head: number | 'definition' } };
          const items: Item[] = [
            { label: 'Definition heads of this file (the default)', description: 'the best of the heads below, chosen on this file', detail: 'attention sinks shown apart', value: { layer: 'all', head: 'definition' } },
            { label: 'Heads that follow this file\'s references', kind: vscode.QuickPickItemKind.Separator },
            ...table.heads.slice(0, 8).map((h) => ({
              label: `Layer ${h.layer}, head ${h.head}`,
              description: `precision@1 ${percent(precisionOf(h))}, recall@${table.topK} ${percent(recallOf(h))}`,
              // What precision@1 is compared with: a rule, no model, that links each use to the
              // nearest earlier occurrence of its name (a head below it still tracks more than names).
              detail: `on ${table.uses} distant uses: its top distant position is in the definition or import the use refers to ${percent(precisionOf(h))} of the time; pointing each use at the nearest earlier occurrence of its name (a rule, no model) does ${percent(nearest)}`,
              value: { layer: h.layer, head: h.head },
            })),
            { label: '', kind: vscode.QuickPickItemKind.Separator },
            { label: 'Choose layer and head…' },
          ];
          const best = await vscode.window.showQuickPick(items, { title: 'Attention Lens: layer and head', placeHolder: `Now: ${describeView(current)}` });
          if (!best) return undefined;
          if (best.value) {
            await viewState.set(best.value);
            return viewState.view;
          }
        }
      }
      const layerPick = await vscode.window.showQuickPick(
        [{ label: 'All layers', description: 'the strongest layer for each source', value: 'all' as const }, ...Array.from({ length: shape.layers }, (_, i) => ({ label: `Layer ${i}`, description: '', value: i }))].map((item) => ({ ...item, picked: item.value === current.layer })),
        { title: 'Attention Lens: layer', placeHolder: `Now: ${describeView(current)}` },
      );
      if (!layerPick) return undefined;
      const headPick = await vscode.window.showQuickPick(
        [{ label: 'Max of heads', value: 'max' as const }, { label: 'Mean of heads', value: 'mean' as const }, ...Array.from({ length: shape.heads }, (_, i) => ({ label: `Head ${i}`, value: i }))],
        { title: 'Attention Lens: head', placeHolder: `Layer: ${layerPick.label}` },
      );
      if (!headPick) return undefined;
      await viewState.set({ layer: layerPick.value, head: headPick.value });
      return viewState.view;
    }),
    vscode.commands.registerCommand(COMMANDS.selectAggregation, async () => {
      const shape = await modelShape();
      if (!shape) return undefined;
      const pick = await vscode.window.showQuickPick(
        [
          { label: 'Definition heads of this file', description: 'the heads that, on this file, most often attend to the definition or import a name refers to (the default)', value: 'definition' as const },
          { label: 'Max of heads', description: 'a source counts as strongly as the head that attends to it most', value: 'max' as const },
          { label: 'Mean of heads', description: 'the average over all heads of the layer', value: 'mean' as const },
          { label: 'Single head...', description: 'one head of the chosen layer', value: 'single' as const },
        ],
        { title: 'Attention Lens: aggregation over heads', placeHolder: `Now: ${describeView(viewState.view)}` },
      );
      if (!pick) return undefined;
      if (pick.value !== 'single') {
        await viewState.set({ ...viewState.view, head: pick.value });
        return viewState.view;
      }
      const head = await vscode.window.showQuickPick(Array.from({ length: shape.heads }, (_, i) => ({ label: `Head ${i}`, value: i })), { title: 'Attention Lens: head' });
      if (head) await viewState.set({ ...viewState.view, head: head.value });
      return viewState.view;
    }),
    vscode.commands.registerCommand(COMMANDS.showSourcesAtCursor, async () => {
      const editor = activeEditorOrSay();
      const result = editor && resultOrSay(editor);
      if (!editor || !result) return undefined;
      const presented = presentAt(editor.document, result, editor.selection.active, viewState.view, config());
      if (!presented || presented.sources.length === 0) {
        void vscode.window.showInformationMessage(`Attention Lens: ${presented ? `\`${presented.query.name}\`` : 'the cursor'} attends to no distant definition or import above ${percent(config().threshold)} (${describeView(viewState.view)}).`);
        return [];
      }
      const pick = await vscode.window.showQuickPick(
        presented.sources.map((s) => ({ label: `${percent(s.weight)}  ${s.definition.name}`, description: `${s.definition.kind}, line ${s.range.start.line + 1}`, detail: `${s.tokenDistance} tokens back${s.relationText ? ` · ${s.relationText}` : ''}`, source: s })),
        { title: `Attention Lens: what \`${presented.query.name}\` attends to (${describeView(viewState.view)})`, matchOnDescription: true },
      );
      if (pick) await reveal(editor.document.uri.toString(), pick.source.range);
      return presented.sources.map((s) => ({ name: s.definition.name, kind: s.definition.kind, line: s.range.start.line, weight: s.weight, relation: s.relation?.kind }));
    }),
    vscode.commands.registerCommand(COMMANDS.showAttenders, async (uri: string, index: number) => {
      const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
      const result = document && controller.resultFor(document);
      if (!document || !result || !result.doc.definitions[index]) {
        void vscode.window.showInformationMessage('Attention Lens: that analysis is no longer current. Analyse the file again.');
        return [];
      }
      const attenders = codeLens.attenders(result)[index];
      const definition = result.doc.definitions[index];
      const ranges = attenders.map((a) => new vscode.Range(document.positionAt(result.baseOffset + a.identifier.start), document.positionAt(result.baseOffset + a.identifier.end)));
      const editor = vscode.window.visibleTextEditors.find((e) => e.document === document);
      editor?.setDecorations(attendersHighlight, ranges);
      if (attenders.length > 0) {
        const byEffect = { label: '$(beaker) Sort by causal effect instead', detail: `Hide the ${definition.kind} from the rest of the file and measure how each token's prediction changes`, range: undefined };
        const pick = await vscode.window.showQuickPick(
          [byEffect, ...attenders.map((a, i) => ({ label: `${percent(a.weight)}  ${a.identifier.name}`, description: `line ${ranges[i].start.line + 1}`, detail: `${a.tokenDistance} tokens after the ${definition.kind}`, range: ranges[i] }))],
          { title: `Attention Lens: tokens attending to ${definition.kind} ${definition.name}` },
        );
        if (pick === byEffect) void vscode.commands.executeCommand(COMMANDS.showCausalDependents, uri, index);
        else if (pick?.range) await reveal(uri, pick.range);
      } else {
        void vscode.window.showInformationMessage(`Attention Lens: no distant token gives ${definition.kind} ${definition.name} at least ${percent(config().threshold)} of its attention.`);
      }
      editor?.setDecorations(attendersHighlight, []);
      return attenders.map((a, i) => ({ name: a.identifier.name, line: ranges[i].start.line, weight: a.weight }));
    }),
    vscode.commands.registerCommand(COMMANDS.showCausalDependents, async (uri: string, index: number, options?: { pick?: boolean }) => {
      const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
      const result = document && controller.resultFor(document);
      if (!document || !result || !result.doc.definitions[index]) {
        void vscode.window.showInformationMessage('Attention Lens: that analysis is no longer current. Analyse the file again.');
        return [];
      }
      const definition = result.doc.definitions[index];
      let effect;
      try {
        effect = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Attention Lens: hiding ${definition.kind} ${definition.name} from the file` }, () => controller.spanEffect(document, index));
      } catch (error) {
        void vscode.window.showErrorMessage(`Attention Lens: ${error instanceof Error ? error.message : String(error)}`);
        return [];
      }
      // Per identifier (not keywords): the strongest effect over its tokens.
      const rows = result.doc.identifiers
        .filter((g) => !isKeyword(g.name))
        .map((g) => {
          let best = -1;
          for (const t of g.tokens) if (Number.isFinite(effect.kl[t]) && (best < 0 || effect.kl[t] > effect.kl[best])) best = t;
          return best < 0 ? undefined : { identifier: g, kl: effect.kl[best], deltaLogProb: effect.deltaLogProb[best] };
        })
        .filter((r): r is NonNullable<typeof r> => r !== undefined && r.kl >= 1e-4)
        .sort((a, b) => b.kl - a.kl);
      const ranges = rows.map((r) => new vscode.Range(document.positionAt(result.baseOffset + r.identifier.start), document.positionAt(result.baseOffset + r.identifier.end)));
      const editor = vscode.window.visibleTextEditors.find((e) => e.document === document);
      // The tokens whose prediction changes most stay highlighted while the list is open.
      editor?.setDecorations(attendersHighlight, ranges.slice(0, 20));
      if (options?.pick !== false && rows.length > 0) {
        const pick = await vscode.window.showQuickPick(
          rows.slice(0, 200).map((r, i) => ({ label: `KL ${r.kl.toFixed(3)}  ${r.identifier.name}`, description: `line ${ranges[i].start.line + 1}`, detail: Number.isFinite(r.deltaLogProb) ? `Δ log p(next) ${r.deltaLogProb >= 0 ? '+' : ''}${r.deltaLogProb.toFixed(2)}` : 'Δ log p(next): the next token is outside its analysis window', range: ranges[i] })),
          { title: `Attention Lens: tokens whose prediction changes without ${definition.kind} ${definition.name} (${Math.round(effect.elapsedMs)} ms)` },
        );
        if (pick) await reveal(uri, pick.range);
        editor?.setDecorations(attendersHighlight, []);
      } else if (rows.length === 0) {
        void vscode.window.showInformationMessage(`Attention Lens: hiding ${definition.kind} ${definition.name} changes no later prediction measurably.`);
      }
      return rows.map((r, i) => ({ name: r.identifier.name, line: ranges[i].start.line, kl: r.kl, deltaLogProb: Number.isFinite(r.deltaLogProb) ? r.deltaLogProb : null }));
    }),
    vscode.commands.registerCommand(COMMANDS.revealRange, async (uri: string, startLine: number, startCharacter: number, endLine: number, endCharacter: number) => {
      await reveal(uri, new vscode.Range(startLine, startCharacter, endLine, endCharacter));
    }),
    vscode.commands.registerCommand(COMMANDS.exportAnalysis, async (options?: { format?: 'json' | 'html'; target?: vscode.Uri }) => {
      const editor = activeEditorOrSay();
      const result = editor && resultOrSay(editor);
      if (!editor || !result) return undefined;
      const format = options?.format ?? (await vscode.window.showQuickPick([{ label: 'JSON', value: 'json' as const }, { label: 'HTML page with heatmap', value: 'html' as const }], { title: 'Attention Lens: export format' }))?.value;
      if (!format) return undefined;
      const base = path.basename(editor.document.fileName || 'untitled').replace(/\.[^.]+$/, '');
      const defaultUri = vscode.Uri.joinPath(vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(path.dirname(editor.document.fileName)), `${base}.attention.${format}`);
      const target = options?.target ?? (await vscode.window.showSaveDialog({ defaultUri, filters: format === 'json' ? { JSON: ['json'] } : { HTML: ['html'] } }));
      if (!target) return undefined;
      const exported = exportJson(result, viewState.view, distanceRule(config()), config().threshold, controller.checksFor(result));
      const content = format === 'json' ? `${JSON.stringify(exported, null, 1)}\n` : exportHtml(result, exported, path.basename(editor.document.fileName));
      await vscode.workspace.fs.writeFile(target, new TextEncoder().encode(content));
      // Said in the status bar as well: a toast can end up in the notification centre unseen.
      const where = target.scheme === 'file' ? target.fsPath : target.toString();
      vscode.window.setStatusBarMessage(`$(check) Attention Lens: exported to ${path.basename(where)}`, 8000);
      void vscode.window.showInformationMessage(`Attention Lens: exported to ${where}.`, 'Open').then((choice) => {
        if (choice !== 'Open') return;
        if (format === 'json') void vscode.window.showTextDocument(target);
        else void vscode.env.openExternal(target);
      });
      return target;
    }),
  );
}
