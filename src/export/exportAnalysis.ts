/**
 * Export of an analysis: JSON (the document's tokens, definitions and, for every identifier, the
 * distant sources it attends to under the current view) and a self-contained HTML page with the
 * file as a heatmap: click an identifier to see the definitions and imports it attends to.
 */
import { describeBackend } from '../../engine/backendPolicy';
import type { AttentionView, DistanceRule } from '../analysis/documentAnalysis';
import { attendedSources } from '../analysis/documentAnalysis';
import type { DocumentAnalysisResult } from '../analysis/documentResult';
import { resolveReading } from '../analysis/reading';
import { relationOf, type SourceRelation } from '../analysis/sourceRelations';
import { isKeyword } from '../analysis/keywords';
import type { DependencyCheck } from '../analysis/dependencyCheck';

export interface ExportedAnalysis {
  readonly format: 'attention-lens-analysis';
  readonly version: 1;
  readonly document: { readonly uri: string; readonly version: number; readonly languageId: string; readonly baseOffset: number };
  readonly model: DocumentAnalysisResult['model'];
  readonly backend: DocumentAnalysisResult['backend'];
  readonly stats: DocumentAnalysisResult['stats'];
  readonly windows: number;
  readonly view: AttentionView;
  readonly distance: DistanceRule;
  readonly threshold: number;
  readonly tokens: readonly { readonly id: number; readonly start: number; readonly end: number }[];
  readonly definitions: readonly { readonly kind: string; readonly name: string; readonly start: number; readonly end: number; readonly tokenStart: number; readonly tokenEnd: number }[];
  readonly identifiers: readonly { readonly name: string; readonly start: number; readonly end: number; readonly tokens: readonly number[]; readonly sources: readonly { readonly definition: number; readonly weight: number; readonly tokenDistance: number; readonly relation: SourceRelation['kind'] }[] }[];
  /**
   * The "Check dependencies" results of this version: per checked identifier, every earlier
   * definition or import with attention, value-weighted attention, knockout KL (nats) and the
   * change in log p of the next token.
   */
  readonly dependencyChecks: readonly {
    readonly name: string;
    readonly start: number;
    readonly end: number;
    readonly backend: string;
    readonly spans: readonly { readonly definition: number; readonly attention: number; readonly valueWeighted: number; readonly kl: number; readonly deltaLogProb: number | null; readonly verdict: string }[];
  }[];
}

export function exportJson(result: DocumentAnalysisResult, view: AttentionView, rule: DistanceRule, threshold: number, checks: readonly DependencyCheck[] = []): ExportedAnalysis {
  const resolved = resolveReading(result, view, rule);
  const { doc } = result;
  return {
    format: 'attention-lens-analysis',
    version: 1,
    document: { uri: result.uri, version: result.version, languageId: result.languageId, baseOffset: result.baseOffset },
    model: result.model,
    backend: result.backend,
    stats: result.stats,
    windows: result.windows,
    view,
    distance: rule,
    threshold,
    tokens: doc.tokenIds.map((id, i) => ({ id, start: doc.ranges[i].start, end: doc.ranges[i].end })),
    definitions: doc.definitions.map((d, i) => ({ kind: d.kind, name: d.name, start: d.start, end: d.end, tokenStart: doc.spans[i].start, tokenEnd: doc.spans[i].end })),
    identifiers: doc.identifiers
      .map((g, index) => ({ g, index }))
      .filter(({ g }) => !isKeyword(g.name))
      .map(({ g, index }) => ({
        name: g.name,
        start: g.start,
        end: g.end,
        tokens: g.tokens,
        sources: attendedSources(doc, result.summary, g.tokens, resolved, rule, 8, threshold).map((s) => ({ definition: s.definition, weight: Number(s.weight.toFixed(4)), tokenDistance: s.tokenDistance, relation: relationOf(doc, index, s.definition).kind })),
      })),
    dependencyChecks: checks
      .filter((c) => c.version === result.version)
      .map((c) => ({
        name: c.name,
        start: c.start - result.baseOffset,
        end: c.end - result.baseOffset,
        backend: describeBackend(c.backend),
        spans: c.spans.map((s) => ({ definition: s.definition, attention: round(s.attention), valueWeighted: round(s.valueWeighted), kl: round(s.kl), deltaLogProb: s.deltaLogProb === null ? null : round(s.deltaLogProb), verdict: s.verdict })),
      })),
  };
}

function round(value: number): number {
  return Number(value.toFixed(5));
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/** A standalone page (no network, no external files) showing the file as a clickable heatmap. */
export function exportHtml(result: DocumentAnalysisResult, exported: ExportedAnalysis, title: string): string {
  const text = result.doc.text;
  // Spans of text: definitions get ids so the script can paint them; identifiers are clickable.
  const marks: { start: number; end: number; open: string }[] = [];
  exported.definitions.forEach((d, i) => marks.push({ start: d.start, end: d.end, open: `<span class="def" id="def-${i}" title="${escapeHtml(`${d.kind} ${d.name}`)}">` }));
  exported.identifiers.forEach((g, i) => {
    if (g.sources.length > 0) marks.push({ start: g.start, end: g.end, open: `<span class="ident" data-i="${i}" tabindex="0">` });
  });
  marks.sort((a, b) => a.start - b.start || b.end - a.end);
  let html = '';
  let cursor = 0;
  const stack: number[] = [];
  const closeUntil = (offset: number) => {
    while (stack.length && stack[stack.length - 1] <= offset) {
      const end = stack.pop()!;
      html += escapeHtml(text.slice(cursor, end)) + '</span>';
      cursor = end;
    }
  };
  for (const mark of marks) {
    closeUntil(mark.start);
    if (stack.length && mark.end > stack[stack.length - 1]) continue; // never overlap partially
    html += escapeHtml(text.slice(cursor, mark.start)) + mark.open;
    cursor = mark.start;
    stack.push(mark.end);
  }
  closeUntil(text.length);
  html += escapeHtml(text.slice(cursor));
  const data = JSON.stringify({ identifiers: exported.identifiers.map((g) => g.sources), definitions: exported.definitions.map((d) => `${d.kind} ${d.name}`) }).replace(/</g, '\\u003c');
  const backend = describeBackend(result.backend);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Attention Lens: ${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#1e1e1e;color:#d4d4d4}
header{padding:12px 16px;border-bottom:1px solid #333}h1{font-size:16px;margin:0 0 4px}p{margin:2px 0;color:#9d9d9d;font-size:13px}
pre{font:13px/1.5 ui-monospace,Menlo,Consolas,monospace;padding:16px;margin:0;white-space:pre-wrap;word-break:break-all}
.def{border-radius:2px;outline:1px solid #ffb86c40}.ident{cursor:pointer;border-bottom:1px dotted #4fc1ff80}.ident.sel{background:#4fc1ff44}
.w{position:relative}.w::after{content:attr(data-w);font-size:11px;color:#ffb86c;margin-left:4px;font-style:italic}
</style></head><body>
<header><h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(result.model.label)} (${escapeHtml(result.model.architecture)}, ${result.model.numLayers} layers x ${result.model.numHeads} heads) on ${escapeHtml(backend)}; ${result.doc.tokenIds.length} tokens${result.windows > 1 ? `, ${result.windows} windows` : ''}.</p>
<p>View: layer ${escapeHtml(String(exported.view.layer))}, head ${escapeHtml(String(exported.view.head))}; distant = at least ${exported.distance.minDistance} tokens back; threshold ${Math.round(exported.threshold * 100)}%. Click an underlined identifier to see what it attends to.</p>
</header>
<pre id="code">${html}</pre>
<script>
const data=${data};
let selected;
function show(el){
  document.querySelectorAll('.def').forEach(d=>{d.style.background='';d.classList.remove('w');d.removeAttribute('data-w')});
  if(selected)selected.classList.remove('sel');selected=el;el.classList.add('sel');
  for(const s of data.identifiers[+el.dataset.i]){const d=document.getElementById('def-'+s.definition);if(!d)continue;
    d.style.background='rgba(255,184,108,'+(0.15+0.6*s.weight).toFixed(2)+')';d.classList.add('w');d.dataset.w=Math.round(s.weight*100)+'%';}
}
document.getElementById('code').addEventListener('click',e=>{const el=e.target.closest('.ident');if(el)show(el)});
document.getElementById('code').addEventListener('keydown',e=>{if(e.key==='Enter'){const el=e.target.closest('.ident');if(el)show(el)}});
</script></body></html>
`;
}
