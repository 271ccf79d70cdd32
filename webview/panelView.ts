/**
 * The panel's analysis view: the file as tokens with a heatmap for the selected token, a
 * layers x heads grid of small attention views for that token, and the view controls. Keyboard:
 * Tab to a control or the code; in the code, Left/Right move between identifiers and Enter selects
 * one in the editor; grid cells are buttons.
 */
import type { DependencyMapMessage, DocumentViewMessage, HeadsTableMessage, PanelTab, QueryViewMessage, WebviewToHostMessage } from '../src/shared/protocol';
import { formatSigned } from './format';
import { MapView } from './mapView';
import { tableNotes } from './tableNotes';

export interface PanelViewHost {
  post(message: WebviewToHostMessage): void;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class PanelView {
  private documentView: DocumentViewMessage | undefined;
  private queryView: QueryViewMessage | undefined;
  private tokenElements: HTMLSpanElement[] = [];
  private focusToken = -1;
  private tab: PanelTab = 'token';
  private readonly mapView: MapView;
  readonly root = el('section', 'analysis');

  constructor(private readonly host: PanelViewHost) {
    this.mapView = new MapView(host);
  }

  showMap(message: DependencyMapMessage): void {
    if (!this.documentView || message.uri !== this.documentView.uri) return;
    this.mapView.showMap(message);
  }

  showHeads(message: HeadsTableMessage): void {
    if (!this.documentView || message.uri !== this.documentView.uri) return;
    this.mapView.showHeads(message);
  }

  /** Brings a tab to the front (from the host, or the tab bar). */
  showTab(tab: PanelTab, tell = false): void {
    this.tab = tab;
    for (const button of Array.from(this.root.querySelectorAll('[role="tab"]'))) {
      const selected = (button as HTMLElement).dataset.tab === tab;
      button.setAttribute('aria-selected', String(selected));
      (button as HTMLElement).tabIndex = selected ? 0 : -1;
    }
    for (const panel of Array.from(this.root.querySelectorAll('[role="tabpanel"]'))) (panel as HTMLElement).hidden = (panel as HTMLElement).dataset.tab !== tab;
    if (tell) this.host.post({ type: 'tabShown', tab });
  }

  showDocument(message: DocumentViewMessage): void {
    this.documentView = message;
    this.queryView = undefined;
    this.render();
  }

  showQuery(message: QueryViewMessage): void {
    if (!this.documentView || message.uri !== this.documentView.uri) return;
    this.queryView = withoutWhitespaceQuery(message);
    this.paint();
  }

  clear(): void {
    this.documentView = undefined;
    this.queryView = undefined;
    this.mapView.clear();
    this.root.replaceChildren();
  }

  private render(): void {
    const doc = this.documentView;
    this.root.replaceChildren();
    if (!doc) return;
    this.mapView.clear();
    const tokenPanel = el('div', 'tab-panel');
    tokenPanel.append(el('div', 'query-summary'), el('div', 'grid'), this.code(doc));
    const panels: Array<[PanelTab, string, HTMLElement]> = [
      ['token', 'Token', tokenPanel],
      ['map', 'Dependency map', this.mapView.mapRoot],
      ['heads', 'Definition heads', this.mapView.headsRoot],
    ];
    const bar = el('div', 'tabs');
    bar.setAttribute('role', 'tablist');
    bar.setAttribute('aria-label', 'Views');
    panels.forEach(([tab, title, panel], i) => {
      const button = el('button', 'tab', title);
      button.id = `tab-${tab}`;
      button.dataset.tab = tab;
      button.setAttribute('role', 'tab');
      button.setAttribute('aria-controls', `panel-${tab}`);
      button.addEventListener('click', () => this.showTab(tab, true));
      button.addEventListener('keydown', (event) => {
        if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
        event.preventDefault();
        const next = panels[(i + (event.key === 'ArrowRight' ? 1 : panels.length - 1)) % panels.length][0];
        this.showTab(next, true);
        (this.root.querySelector(`#tab-${next}`) as HTMLElement | null)?.focus();
      });
      bar.append(button);
      panel.id = `panel-${tab}`;
      panel.dataset.tab = tab;
      panel.setAttribute('role', 'tabpanel');
      panel.setAttribute('aria-labelledby', `tab-${tab}`);
    });
    this.root.append(this.controls(doc), bar, ...panels.map(([, , panel]) => panel));
    this.showTab(this.tab);
    this.paint();
  }

  private controls(doc: DocumentViewMessage): HTMLElement {
    const bar = el('div', 'controls');
    bar.setAttribute('role', 'toolbar');
    bar.setAttribute('aria-label', 'Attention view');
    const select = (label: string, id: string, options: Array<[string, string]>) => {
      const wrap = el('label', 'control', label);
      const input = el('select');
      input.id = id;
      for (const [value, text] of options) {
        const option = el('option', undefined, text);
        option.value = value;
        input.append(option);
      }
      input.addEventListener('change', () => this.sendView());
      wrap.append(input);
      return wrap;
    };
    bar.append(
      select('Layer', 'layer', [['all', 'All (strongest)'], ...doc.layers.map((l, i): [string, string] => [String(l), doc.layerScopes?.[i] ? `Layer ${l} (${doc.layerScopes[i]})` : `Layer ${l}`])]),
      select('Head', 'head', [['definition', 'Definition heads of this file'], ['max', 'Max of heads'], ['mean', 'Mean of heads'], ...Array.from({ length: doc.numHeads }, (_, h): [string, string] => [String(h), `Head ${h}`])]),
    );
    const thresholdWrap = el('label', 'control', 'Threshold %');
    const threshold = el('input');
    threshold.id = 'threshold';
    threshold.type = 'number';
    threshold.min = '0';
    threshold.max = '100';
    threshold.step = '1';
    threshold.addEventListener('change', () => this.sendView());
    thresholdWrap.append(threshold);
    bar.append(thresholdWrap);
    return bar;
  }

  private sendView(): void {
    const layer = (this.root.querySelector('#layer') as HTMLSelectElement).value;
    const head = (this.root.querySelector('#head') as HTMLSelectElement).value;
    const threshold = Number((this.root.querySelector('#threshold') as HTMLInputElement).value);
    this.host.post({
      type: 'setView',
      layer: layer === 'all' ? 'all' : Number(layer),
      head: head === 'max' || head === 'mean' || head === 'definition' ? head : Number(head),
      threshold: Number.isFinite(threshold) ? Math.min(1, Math.max(0, threshold / 100)) : 0.05,
    });
  }

  private code(doc: DocumentViewMessage): HTMLElement {
    const pre = el('pre', 'code');
    pre.tabIndex = 0;
    pre.setAttribute('aria-label', `${doc.documentName} as tokens. Left and Right move between identifiers, Enter selects one in the editor.`);
    const definitionOf = new Int32Array(doc.tokens.length).fill(-1);
    doc.definitions.forEach((d, i) => {
      for (let t = d.tokenStart; t < d.tokenEnd; t++) if (definitionOf[t] < 0) definitionOf[t] = i;
    });
    this.tokenElements = doc.tokens.map((text, i) => {
      const span = el('span', doc.identifierOf[i] >= 0 ? 'tok q' : 'tok', text);
      span.dataset.t = String(i);
      if (definitionOf[i] >= 0) {
        span.classList.add('def');
        const d = doc.definitions[definitionOf[i]];
        span.title = `${d.kind} ${d.name}`;
      }
      return span;
    });
    pre.append(...this.tokenElements);
    pre.addEventListener('click', (event) => {
      const target = (event.target as HTMLElement).closest('.tok') as HTMLElement | null;
      if (target) this.select(Number(target.dataset.t));
    });
    pre.addEventListener('keydown', (event) => {
      if (event.key === 'ArrowRight' || event.key === 'ArrowLeft') {
        event.preventDefault();
        this.moveFocus(event.key === 'ArrowRight' ? 1 : -1);
      } else if (event.key === 'Enter' && this.focusToken >= 0) {
        event.preventDefault();
        this.select(this.focusToken);
      }
    });
    return pre;
  }

  /** Moves the keyboard focus to the first token of the next (or previous) identifier. */
  private moveFocus(direction: 1 | -1): void {
    const doc = this.documentView;
    if (!doc) return;
    const starts = identifierStarts(doc);
    if (starts.length === 0) return;
    const from = this.focusToken < 0 ? (this.queryView?.query?.tokens[0] ?? -1) : this.focusToken;
    const next = direction > 0 ? starts.find((t) => t > from) : [...starts].reverse().find((t) => t < from);
    if (next === undefined) return;
    this.tokenElements[this.focusToken]?.classList.remove('focus');
    this.focusToken = next;
    this.tokenElements[next].classList.add('focus');
    this.tokenElements[next].scrollIntoView({ block: 'nearest' });
  }

  private select(token: number): void {
    const doc = this.documentView;
    if (!doc) return;
    this.host.post({ type: 'selectToken', uri: doc.uri, token });
  }

  /** Applies the query view: heat, sources, grid, controls. */
  private paint(): void {
    const doc = this.documentView;
    const query = this.queryView;
    if (!doc) return;
    const layer = this.root.querySelector('#layer') as HTMLSelectElement | null;
    const head = this.root.querySelector('#head') as HTMLSelectElement | null;
    const threshold = this.root.querySelector('#threshold') as HTMLInputElement | null;
    if (query && layer && head && threshold) {
      layer.value = String(query.view.layer);
      head.value = String(query.view.head);
      threshold.value = String(Math.round(query.threshold * 100));
    }
    const queryTokens = new Set(query?.query?.tokens ?? []);
    this.tokenElements.forEach((span, i) => {
      const weight = query ? query.heat[i] : 0;
      span.style.setProperty('--heat', `${Math.round(Math.min(1, weight) * 85)}%`);
      span.classList.toggle('hot', weight > 0.001);
      span.classList.toggle('query', queryTokens.has(i));
    });
    const summary = this.root.querySelector('.query-summary') as HTMLElement;
    summary.replaceChildren();
    if (!query?.query) {
      summary.append(el('p', 'muted', 'Move the cursor onto an identifier in the editor, or click one below, to see what it attends to.'));
    } else {
      summary.append(el('h2', undefined, `\u201c${query.query.name}\u201d attends to`));
      if (query.sources.length === 0) summary.append(el('p', 'muted', `no distant definition or import above ${Math.round(query.threshold * 100)}%.`));
      const list = el('ol', 'sources');
      for (const source of query.sources) {
        const d = doc.definitions[source.definition];
        const item = el('li');
        const button = el('button', 'link', `${d.kind} ${d.name}`);
        button.addEventListener('click', () => this.select(d.tokenStart));
        const bar = el('span', 'bar');
        bar.style.setProperty('--w', `${Math.round(source.weight * 100)}%`);
        item.append(el('span', 'weight', `${(source.weight * 100).toFixed(source.weight >= 0.1 ? 0 : 1)}%`), bar, button);
        if (source.relation) {
          const text = source.relation === 'definition' ? `its definition` : source.relation === 'earlierUse' ? `earlier use of ${query.query.name}` : 'unrelated';
          item.append(el('span', `relation ${source.relation}`, text));
        }
        list.append(item);
      }
      summary.append(list);
      if (query.sources.length > 0) {
        summary.append(el('p', 'muted legend', `Each percentage: the share of \u201c${query.query.name}\u201d's attention (its strongest token, under the view) that lands on that distant definition or import; listed from ${Math.round(query.threshold * 100)}% up.`));
      }
      if (query.dependencies) summary.append(this.dependencyTable(doc, query));
      const layerText = query.view.layer === 'all' ? 'all layers' : `layer ${query.view.layer}`;
      const headText = typeof query.view.head === 'number' ? `head ${query.view.head}` : `${query.view.head} of heads`;
      summary.append(
        el('p', 'muted legend', query.heatSource === 'exact' ? `Heatmap: the exact attention row of ${layerText}, ${headText}.` : `Heatmap: the top ${doc.topK} positions of each viewed head (${layerText}, ${headText}).`),
      );
      const first = this.tokenElements[query.query.tokens[0]];
      first?.scrollIntoView({ block: 'nearest' });
    }
    this.paintGrid(doc, query);
    if (query) {
      this.host.post({
        type: 'viewRendered',
        uri: query.uri,
        heatSource: query.heatSource,
        queryName: query.query?.name ?? null,
        sources: query.sources.map((s) => ({ name: doc.definitions[s.definition].name, weight: s.weight })),
        heatedTokens: this.tokenElements.filter((t) => t.classList.contains('hot')).length,
        gridCells: this.root.querySelectorAll('.cell').length,
        dependencies: query.dependencies?.map((d) => ({ name: doc.definitions[d.definition].name, attention: d.attention, kl: d.kl })),
      });
    }
  }

  /**
   * Spans x (attention, value-weighted, knockout effect) for the selected token, after "Check
   * dependencies": where attention and the model's causal dependence agree, and where not.
   */
  private dependencyTable(doc: DocumentViewMessage, query: QueryViewMessage): HTMLElement {
    const section = el('section', 'dependencies');
    section.append(el('h2', undefined, 'Does the prediction depend on them? (knockout)'));
    const table = el('table');
    const head = el('tr');
    const columns = ['definition or import', 'attention', 'value-weighted', 'knockout KL', 'Δ log p'];
    for (const title of columns) head.append(el('th', undefined, title));
    table.append(head);
    const percentText = (w: number) => `${(w * 100).toFixed(w >= 0.0995 ? 0 : 1)}%`;
    for (const row of (query.dependencies ?? []).slice(0, 12)) {
      const d = doc.definitions[row.definition];
      const tr = el('tr', row.verdict);
      const name = el('td');
      const button = el('button', 'link', `${d.kind} ${d.name}`);
      button.addEventListener('click', () => this.select(d.tokenStart));
      name.append(button);
      if (row.verdict === 'attendedNoEffect') name.append(el('span', 'flag', ' attended, no effect'));
      if (row.verdict === 'effectWithoutAttention') name.append(el('span', 'flag', ' effect without attention'));
      tr.append(name, el('td', 'num', percentText(row.attention)), el('td', 'num', percentText(row.valueWeighted)), el('td', 'num', row.kl.toFixed(3)), el('td', 'num', row.deltaLogProb === null ? '–' : formatSigned(row.deltaLogProb)));
      table.append(tr);
    }
    table.append(
      tableNotes(columns.length, [
        ['attention', 'the share of this token\'s attention on the span (its strongest token, under the view), as the hover shows it'],
        ['value-weighted', 'the same share with each key\'s attention times the size of what it writes (the norm of its value through the output projection), renormalised'],
        ['knockout KL', 'how far the next-token distribution moves (KL, nats) when this token may not attend to the span in any layer; 0: not at all'],
        ['Δ log p', 'the change in the log-probability of the next token in the file when the span is knocked out: negative, the prediction depended on the span; positive, removing the span made it more likely (the span competed or distracted); near 0, no effect; –: the file ends here'],
      ]),
    );
    section.append(table);
    return section;
  }

  private paintGrid(doc: DocumentViewMessage, query: QueryViewMessage | undefined): void {
    const grid = this.root.querySelector('.grid') as HTMLElement;
    grid.replaceChildren();
    if (!query?.query) return;
    const H = doc.numHeads;
    const k = doc.topK;
    const n = doc.tokens.length;
    grid.append(el('h2', undefined, 'Layers x heads'));
    const table = el('div', 'cells');
    table.style.setProperty('--heads', String(H));
    table.setAttribute('role', 'grid');
    table.append(el('span', 'axis'));
    for (let h = 0; h < H; h++) table.append(el('span', 'axis', `H${h}`));
    doc.layers.forEach((layer, li) => {
      // A layer that sees only part of the window (sliding window) or no positions is marked on its axis label.
      const scope = doc.layerScopes?.[li];
      const axis = el('span', scope ? 'axis limited' : 'axis', scope ? `L${layer}*` : `L${layer}`);
      if (scope) axis.title = `Layer ${layer} ${scope}`;
      table.append(axis);
      for (let h = 0; h < H; h++) {
        const cell = li * H + h;
        const mass = query.cellMass[cell];
        const button = el('button', 'cell');
        const selected = query.cellRead ? query.cellRead[cell] === 1 && query.view.head !== 'max' && query.view.head !== 'mean' : (query.view.layer === layer || query.view.layer === 'all') && query.view.head === h;
        button.classList.toggle('selected', selected);
        const sinkShare = query.cellSinkShare?.[cell] ?? 0;
        // A head that parks most of its attention on sinks (the window's first token) says little.
        const sinky = sinkShare >= SINK_HEAD_SHARE;
        button.classList.toggle('sink', sinky);
        button.style.setProperty('--mass', `${Math.round(Math.min(1, mass) * 85)}%`);
        button.title = `Layer ${layer}${scope ? ` (${scope})` : ''}, head ${h}: ${Math.round(mass * 100)}% on its strongest distant definition or import${sinky ? `; a sink head: ${Math.round(sinkShare * 100)}% of its attention, over the file, is parked on attention sinks` : ''}${selected ? '; read by the current view' : ''}`;
        button.setAttribute('aria-label', button.title);
        const canvas = el('canvas');
        canvas.width = 64;
        canvas.height = 14;
        const context = canvas.getContext('2d');
        if (context) {
          // Where in the file this head looks: one mark per top position, opacity by weight.
          context.fillStyle = getComputedStyle(document.body).getPropertyValue('--vscode-charts-blue') || '#4fc1ff';
          for (let j = 0; j < k; j++) {
            const position = query.cellTop[cell * k + j];
            if (position < 0) continue;
            context.globalAlpha = Math.max(0.15, query.cellTopWeights[cell * k + j]);
            context.fillRect(Math.floor((position / Math.max(1, n - 1)) * 62), 1, 2, 12);
          }
        }
        button.append(canvas);
        button.addEventListener('click', () => {
          const threshold = query.threshold;
          this.host.post({ type: 'setView', layer, head: h, threshold });
        });
        table.append(button);
      }
    });
    grid.append(table);
    const limited = doc.layers.map((layer, li) => [layer, doc.layerScopes?.[li]] as const).filter(([, scope]) => scope);
    if (limited.length) grid.append(el('p', 'muted', `*: ${limited.map(([layer, scope]) => `layer ${layer} ${scope}`).join('; ')}.`));
    grid.append(el('p', 'muted', `Each cell: where that head looks from the selected token (marks along the file, top positions) and, as its background, its largest mass on a distant definition or import (attention sinks apart). Outlined: the heads the view reads${query.reading ? ` (${query.reading})` : ''}. Dashed: sink heads, which park most of their attention on a window's first token. Click a cell to view that head.`));
  }
}

/** What a host that asks about whitespace tokens names such a query (src/analysis/documentResult.ts, queryAt, once did). */
const WHITESPACE_QUERY_NAME = '(whitespace)';

/**
 * What whitespace attends to says nothing about the code, so the panel shows such a query as none
 * (and asks for an identifier), whatever name the host gives it.
 */
function withoutWhitespaceQuery(message: QueryViewMessage): QueryViewMessage {
  const name = message.query?.name;
  if (name === undefined || (name.trim() !== '' && name !== WHITESPACE_QUERY_NAME)) return message;
  return { ...message, query: null, heat: new Float32Array(message.heat.length), sources: [], dependencies: undefined };
}

/** Cells whose heads park at least this share of their attention on sinks are marked. */
const SINK_HEAD_SHARE = 0.5;

/** The first token of each identifier, in order. */
function identifierStarts(doc: DocumentViewMessage): number[] {
  const starts: number[] = [];
  for (let t = 0; t < doc.identifierOf.length; t++) {
    if (doc.identifierOf[t] >= 0 && (t === 0 || doc.identifierOf[t - 1] !== doc.identifierOf[t])) starts.push(t);
  }
  return starts;
}
