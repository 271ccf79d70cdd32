/**
 * The panel's dependency map and definition-heads table.
 *
 * Map: the file's imports and definitions listed in file order (top to bottom); an arc from each
 * definition to each earlier definition or import it attends to, thickness by the share of its
 * attention, coloured by how it compares with the code's references (attended and referenced,
 * attended without a reference, referenced but not attended: dashed). A threshold slider filters
 * arcs in the panel. Keyboard: Up/Down move between nodes, Enter reveals a node in the editor; arcs
 * are focusable and Enter reveals the use that attends most. Hovering or focusing a node or an arc
 * highlights it; an arc's details (share, references, strongest tokens) float beside the pointer,
 * or beside the arc when the keyboard focuses it. Below the diagram, a table lists the arcs drawn.
 * Heads: per layer and head, precision@1 and recall@k on the file's def-use edges, beside the
 * nearest-occurrence and uniform baselines; "View" switches the panel and the editor to that head.
 * Every table of numbers says, in its footnotes, what each column means.
 */
import type { DependencyMapMessage, HeadsTableMessage, MapRenderedMessage, WebviewToHostMessage } from '../src/shared/protocol';
import { tableNotes } from './tableNotes';

const SVG = 'http://www.w3.org/2000/svg';
const ROW = 22;
/** Pixels between the pointer (or the arc) and its details box, and kept free at the viewport's edges. */
const TOOLTIP_GAP = 12;
const VIEWPORT_MARGIN = 8;

type Agreement = MapRenderedMessage['edges'][number]['agreement'];
type MapEdge = DependencyMapMessage['edges'][number] & { agreement: Agreement };

/** A point in viewport (client) pixels. */
interface Point {
  readonly x: number;
  readonly y: number;
}

export interface MapViewHost {
  post(message: WebviewToHostMessage): void;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string | number>): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

const pct = (x: number) => `${(x * 100).toFixed(x >= 0.0995 || x === 0 ? 0 : 1)}%`;

export function agreementOf(edge: { weight: number; references: number }, threshold: number): Agreement | undefined {
  const attended = edge.weight >= threshold;
  if (attended && edge.references > 0) return 'both';
  if (attended) return 'attentionOnly';
  if (edge.references > 0) return 'referenceOnly';
  return undefined;
}

const AGREEMENT_TEXT: Record<Agreement, string> = {
  both: 'attended and referenced in the code',
  attentionOnly: 'attended, but the code has no reference',
  referenceOnly: 'the code refers to it, the model barely attends',
};

/** An arc in words: a heading and its facts, drawn in its details box and, joined, its accessible name. */
interface ArcDescription {
  readonly heading: string;
  readonly share: string;
  readonly references: string;
  readonly effect?: string;
  readonly strongest?: string;
  /** What Enter or a click shows in the editor (the box's hint; the accessible name has the button role). */
  readonly reveals: string;
}

function describeArc(map: DependencyMapMessage, edge: MapEdge): ArcDescription {
  const from = map.nodes[edge.from];
  const to = map.nodes[edge.to];
  return {
    heading: `${from.kind} ${from.name} → ${to.kind} ${to.name}`,
    share: `${pct(edge.weight)} of its attention on definitions`,
    references: `${edge.references} reference${edge.references === 1 ? '' : 's'} in the code (${AGREEMENT_TEXT[edge.agreement]})`,
    ...(edge.effect !== undefined ? { effect: `knockout KL ${edge.effect.toFixed(3)}` } : {}),
    ...(edge.tokens.length ? { strongest: `strongest: ${edge.tokens.map((t) => `${t.name} (line ${t.line + 1}) ${pct(t.weight)}`).join(', ')}` } : {}),
    reveals: edge.tokens[0] ? `${edge.tokens[0].name} (line ${edge.tokens[0].line + 1})` : `${from.kind} ${from.name} (line ${from.line + 1})`,
  };
}

function arcLabel(arc: ArcDescription): string {
  return `${arc.heading}: ${[arc.share, arc.references, arc.effect, arc.strongest].filter((fact) => fact !== undefined).join('; ')}`;
}

/** Where an arc's details go when the keyboard focuses it: beside its apex, the point furthest right. */
function apexOf(arc: SVGPathElement): Point {
  const box = arc.getBoundingClientRect();
  return { x: box.right, y: box.top + box.height / 2 };
}

export class MapView {
  readonly mapRoot = el('section', 'map');
  readonly headsRoot = el('section', 'heads');
  private map: DependencyMapMessage | undefined;
  private heads: HeadsTableMessage | undefined;
  private threshold = 0.1;
  private focusNode = -1;
  private drawnHeads: string[] = [];
  /**
   * The floating details of the arc under the pointer or the keyboard focus. Screen readers skip it:
   * the arc's accessible name says the same.
   */
  private readonly tooltip = el('div', 'map-tooltip');
  /** The arc whose details the box shows; undefined while it is hidden. */
  private tooltipArc: SVGPathElement | undefined;
  /** The arc the keyboard focuses, and how to show its details again when the pointer leaves another. */
  private focusedArc: { readonly path: SVGPathElement; readonly show: () => void } | undefined;

  constructor(private readonly host: MapViewHost) {
    this.tooltip.hidden = true;
    this.tooltip.setAttribute('aria-hidden', 'true');
    window.addEventListener('scroll', () => this.scrolled(), { passive: true });
  }

  clear(): void {
    this.map = undefined;
    this.heads = undefined;
    this.mapRoot.replaceChildren();
    this.headsRoot.replaceChildren();
  }

  showMap(message: DependencyMapMessage): void {
    this.map = message;
    this.renderMap();
  }

  showHeads(message: HeadsTableMessage): void {
    this.heads = message;
    this.renderHeads();
    if (this.map && this.map.uri === message.uri) this.report();
  }

  private renderMap(): void {
    const map = this.map;
    this.mapRoot.replaceChildren();
    if (!map) return;
    const header = el('div', 'controls');
    const label = el('label', 'control', 'Show arcs from');
    const slider = el('input');
    slider.type = 'range';
    slider.min = '0';
    slider.max = '100';
    slider.step = '1';
    slider.value = String(Math.round(this.threshold * 100));
    slider.id = 'map-threshold';
    slider.setAttribute('aria-label', 'Arc threshold: share of a definition\'s attention on earlier definitions');
    const value = el('span', 'weight', pct(this.threshold));
    slider.addEventListener('input', () => {
      this.threshold = Number(slider.value) / 100;
      value.textContent = pct(this.threshold);
      this.drawArcs();
    });
    label.append(slider, value);
    header.append(label);
    const view = `${map.view.layer === 'all' ? 'all layers' : `layer ${map.view.layer}`}, ${typeof map.view.head === 'number' ? `head ${map.view.head}` : `${map.view.head} of heads`}`;
    this.mapRoot.append(
      el('h2', undefined, 'Dependency map'),
      el('p', 'muted', `Each arc: the share of a definition's attention (its identifiers' mass on earlier definitions and imports, ${view}) that goes to an earlier one. References: ${map.referenceSource}.${map.layerNote ? ` Note: ${map.layerNote}.` : ''}`),
      header,
      this.legend(),
    );
    const figure = el('div', 'map-figure');
    const list = el('ol', 'map-nodes');
    list.setAttribute('aria-label', 'Imports and definitions in file order');
    map.nodes.forEach((node, i) => {
      const item = el('li');
      const button = el('button', `map-node kind-${node.kind}`);
      button.dataset.n = String(i);
      button.tabIndex = i === 0 ? 0 : -1;
      button.append(el('span', 'map-kind', node.kind), el('span', 'map-name', node.name), el('span', 'map-line', `${node.line + 1}`));
      button.title = `${node.kind} ${node.name}, line ${node.line + 1}: ${node.identifiers} identifier${node.identifiers === 1 ? '' : 's'} inside. Enter: reveal in the editor.`;
      button.addEventListener('click', () => this.host.post({ type: 'selectToken', uri: map.uri, token: node.tokenStart }));
      button.addEventListener('mouseenter', () => this.highlight(i));
      button.addEventListener('focus', () => {
        this.focusNode = i;
        this.highlight(i);
      });
      button.addEventListener('keydown', (event) => {
        if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
        event.preventDefault();
        const next = Math.max(0, Math.min(map.nodes.length - 1, i + (event.key === 'ArrowDown' ? 1 : -1)));
        const target = list.querySelector(`[data-n="${next}"]`) as HTMLButtonElement | null;
        button.tabIndex = -1;
        if (target) {
          target.tabIndex = 0;
          target.focus();
        }
      });
      item.append(button);
      list.append(item);
    });
    list.addEventListener('mouseleave', () => this.highlight(this.focusNode));
    const canvas = svg('svg', { class: 'map-arcs', width: 360, height: Math.max(ROW, map.nodes.length * ROW), role: 'group', 'aria-label': 'Arcs between definitions' });
    figure.append(list, canvas);
    figure.addEventListener('scroll', () => this.scrolled(), { passive: true });
    this.mapRoot.append(figure, el('div', 'map-edges'), this.tooltip);
    this.drawArcs();
  }

  private legend(): HTMLElement {
    const legend = el('p', 'map-legend');
    for (const agreement of ['both', 'attentionOnly', 'referenceOnly'] as const) {
      const key = el('span', `key ${agreement}`);
      legend.append(key, el('span', undefined, AGREEMENT_TEXT[agreement]));
    }
    return legend;
  }

  private drawnEdges(): MapEdge[] {
    const map = this.map;
    if (!map) return [];
    return map.edges.flatMap((edge) => {
      const agreement = agreementOf(edge, this.threshold);
      return agreement ? [{ ...edge, agreement }] : [];
    });
  }

  private drawArcs(): void {
    const map = this.map;
    const canvas = this.mapRoot.querySelector('svg.map-arcs');
    const table = this.mapRoot.querySelector('.map-edges') as HTMLElement | null;
    if (!map || !canvas || !table) return;
    canvas.replaceChildren();
    this.focusedArc = undefined;
    this.hideTooltip();
    const edges = this.drawnEdges();
    const y = (node: number) => node * ROW + ROW / 2;
    // Weaker arcs first, so strong ones are drawn on top.
    for (const edge of [...edges].reverse()) {
      const y1 = y(edge.from);
      const y2 = y(edge.to);
      const bulge = Math.min(350, 16 + Math.abs(y1 - y2) * 0.45);
      const path = svg('path', {
        d: `M 2 ${y1} C ${bulge} ${y1}, ${bulge} ${y2}, 2 ${y2}`,
        class: `arc ${edge.agreement}`,
        'stroke-width': (edge.agreement === 'referenceOnly' ? 1 : 1 + 7 * edge.weight).toFixed(2),
        'data-from': edge.from,
        'data-to': edge.to,
        tabindex: 0,
        role: 'button',
      });
      // No <title>: the browser's own tooltip would repeat the details box, late and unthemed.
      const arc = describeArc(map, edge);
      path.setAttribute('aria-label', arcLabel(arc));
      const reveal = () => this.host.post({ type: 'selectToken', uri: map.uri, token: edge.tokens[0]?.token ?? map.nodes[edge.from].tokenStart });
      path.addEventListener('click', reveal);
      const show = (at: Point) => {
        this.highlight(-1, edge.from, edge.to);
        this.showTooltip(path, edge, arc, at);
      };
      const pointer = (event: MouseEvent): Point => ({ x: event.clientX, y: event.clientY });
      path.addEventListener('mouseenter', (event) => show(pointer(event)));
      path.addEventListener('mousemove', (event) => this.placeTooltip(pointer(event)));
      path.addEventListener('mouseleave', () => this.pointerLeftArc());
      path.addEventListener('focus', () => {
        const showAtArc = () => show(apexOf(path));
        this.focusedArc = { path, show: showAtArc };
        // A click focuses the arc too; then the box stays by the pointer rather than jump to the arc.
        if (path.matches(':focus-visible')) showAtArc();
      });
      path.addEventListener('blur', () => {
        this.focusedArc = undefined;
        this.hideTooltip();
      });
      path.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') reveal();
        // The box may cover code the user wants to read: Escape dismisses it, focus stays.
        if (event.key === 'Escape') this.hideTooltip();
      });
      canvas.append(path);
    }
    // The accessible list of the arcs, strongest first.
    table.replaceChildren();
    const heading = el('h2', undefined, `${edges.length} arc${edges.length === 1 ? '' : 's'} at ${pct(this.threshold)}`);
    const list = el('table', 'map-edge-table');
    const head = el('tr');
    const columns = ['from', 'to', 'share', 'refs', 'strongest tokens'];
    for (const title of columns) head.append(el('th', undefined, title));
    list.append(head);
    for (const edge of edges.slice(0, 60)) {
      const tr = el('tr', edge.agreement);
      const cell = (node: number) => {
        const td = el('td');
        const button = el('button', 'link', `${map.nodes[node].kind} ${map.nodes[node].name}`);
        button.addEventListener('click', () => this.host.post({ type: 'selectToken', uri: map.uri, token: map.nodes[node].tokenStart }));
        td.append(button);
        return td;
      };
      tr.append(cell(edge.from), cell(edge.to), el('td', 'num', pct(edge.weight)), el('td', 'num', String(edge.references)), el('td', undefined, edge.tokens.map((t) => `${t.name}:${t.line + 1}`).join(', ')));
      list.append(tr);
    }
    list.append(
      tableNotes(columns.length, [
        ['share', "of \u201cfrom\u201d's attention on earlier definitions and imports (its identifiers' mass on them), the part on \u201cto\u201d; one definition's shares add up to 100%, arcs under the threshold included"],
        ['refs', 'uses inside \u201cfrom\u201d that the code resolves to \u201cto\u201d'],
        ['strongest tokens', 'the identifiers in \u201cfrom\u201d that attend to \u201cto\u201d most, as name:line'],
      ]),
    );
    table.append(heading, list);
    this.highlight(this.focusNode);
    this.report();
  }

  /** Emphasises the arcs of `node` (or of the pair), dims the rest; -1 clears. */
  private highlight(node: number, from = -1, to = -1): void {
    const canvas = this.mapRoot.querySelector('svg.map-arcs');
    if (!canvas) return;
    const active = node >= 0 || from >= 0;
    canvas.classList.toggle('focused', active);
    for (const path of Array.from(canvas.querySelectorAll('path.arc'))) {
      const f = Number(path.getAttribute('data-from'));
      const t = Number(path.getAttribute('data-to'));
      path.classList.toggle('lit', node >= 0 ? f === node || t === node : f === from && t === to);
    }
    for (const button of Array.from(this.mapRoot.querySelectorAll('.map-node'))) {
      const n = Number((button as HTMLElement).dataset.n);
      button.classList.toggle('lit', n === node || n === from || n === to);
    }
  }

  /** Fills the details box with an arc's description and places it beside `at`. */
  private showTooltip(path: SVGPathElement, edge: MapEdge, arc: ArcDescription, at: Point): void {
    const tip = this.tooltip;
    this.tooltipArc = path;
    const agreement = el('div', 'map-tooltip-fact');
    agreement.append(el('span', `key ${edge.agreement}`), arc.references);
    tip.replaceChildren(el('div', 'map-tooltip-heading', arc.heading), el('div', 'map-tooltip-fact', arc.share), agreement);
    for (const fact of [arc.effect, arc.strongest]) if (fact !== undefined) tip.append(el('div', 'map-tooltip-fact', fact));
    tip.append(el('div', 'map-tooltip-hint', `Click or Enter: reveal ${arc.reveals} in the editor`));
    tip.hidden = false;
    this.placeTooltip(at);
  }

  /**
   * Puts the details box below and right of `at`, flipping it left or up where it would leave the
   * viewport, and keeping it inside when the viewport is smaller than the box.
   */
  private placeTooltip(at: Point): void {
    const tip = this.tooltip;
    if (tip.hidden) return;
    // Measured at the origin: near the right edge the box would otherwise shrink to fit, and stay narrow.
    tip.style.left = '0px';
    tip.style.top = '0px';
    const width = tip.offsetWidth;
    const height = tip.offsetHeight;
    const viewport = document.documentElement;
    const fits = (start: number, size: number, room: number) => start + size <= room - VIEWPORT_MARGIN;
    const clamp = (start: number, size: number, room: number) => Math.max(VIEWPORT_MARGIN, Math.min(start, room - VIEWPORT_MARGIN - size));
    const right = at.x + TOOLTIP_GAP;
    const below = at.y + TOOLTIP_GAP;
    const left = fits(right, width, viewport.clientWidth) ? right : at.x - TOOLTIP_GAP - width;
    const top = fits(below, height, viewport.clientHeight) ? below : at.y - TOOLTIP_GAP - height;
    tip.style.left = `${clamp(left, width, viewport.clientWidth)}px`;
    tip.style.top = `${clamp(top, height, viewport.clientHeight)}px`;
  }

  private hideTooltip(): void {
    this.tooltip.hidden = true;
    this.tooltipArc = undefined;
  }

  /**
   * The box is placed in viewport pixels, so a scroll leaves it pointing at nothing: it follows the
   * focused arc (focusing one scrolls it into view), and a box by the pointer goes.
   */
  private scrolled(): void {
    if (this.focusedArc && this.tooltipArc === this.focusedArc.path && this.focusedArc.path.matches(':focus-visible')) this.focusedArc.show();
    else this.hideTooltip();
  }

  /** Back to what the keyboard focuses: its arc's details, or none and the focused node's arcs. */
  private pointerLeftArc(): void {
    if (this.focusedArc?.path.matches(':focus-visible')) {
      this.focusedArc.show();
      return;
    }
    this.hideTooltip();
    this.highlight(this.focusNode);
  }

  private renderHeads(): void {
    const heads = this.heads;
    this.headsRoot.replaceChildren();
    this.drawnHeads = [];
    if (!heads) return;
    this.headsRoot.append(
      el('h2', undefined, 'Definition heads'),
      el('p', 'muted', `Which heads look at the definition or import a name refers to: ${heads.uses} distant use${heads.uses === 1 ? '' : 's'} (>= ${heads.minDistance} tokens from the definition) that the code resolves in this file.`),
    );
    if (heads.uses === 0) {
      this.headsRoot.append(el('p', 'muted', 'No distant use of a name defined in this file: nothing to score.'));
      return;
    }
    const table = el('table', 'heads-table');
    const head = el('tr');
    const columns = ['', 'head', 'precision@1', `recall@${heads.topK}`, '', ''];
    for (const title of columns) head.append(el('th', undefined, title));
    table.append(head);
    const bar = (value: number) => {
      const span = el('span', 'bar');
      span.style.setProperty('--w', `${Math.round(value * 100)}%`);
      return span;
    };
    heads.heads.slice(0, 24).forEach((row, i) => {
      const name = `L${row.layer} H${row.head}`;
      this.drawnHeads.push(name);
      const tr = el('tr');
      const view = el('button', 'link', 'View');
      view.title = `Show layer ${row.layer}, head ${row.head} in the panel and the editor`;
      view.addEventListener('click', () => this.host.post({ type: 'setView', layer: row.layer, head: row.head, threshold: this.threshold }));
      const barCell = el('td');
      barCell.append(bar(row.precision));
      tr.append(el('td', 'num', String(i + 1)), el('td', undefined, name), el('td', 'num', pct(row.precision)), el('td', 'num', pct(row.recall)), barCell);
      const viewCell = el('td');
      viewCell.append(view);
      tr.append(viewCell);
      table.append(tr);
    });
    for (const [label, score] of [['baseline: nearest earlier occurrence', heads.baselines.nearestOccurrence], ['baseline: uniform', heads.baselines.uniform]] as const) {
      const tr = el('tr', 'baseline');
      const barCell = el('td');
      barCell.append(bar(score.precision));
      tr.append(el('td'), el('td', undefined, label), el('td', 'num', pct(score.precision)), el('td', 'num', pct(score.recall)), barCell, el('td'));
      table.append(tr);
    }
    // What the numbers and the baselines are, as src/analysis/definitionHeads.ts computes them.
    const uses = `${heads.uses} distant use${heads.uses === 1 ? '' : 's'}`;
    table.append(
      tableNotes(columns.length, [
        ['precision@1', `of the ${uses}, the share where the head's strongest distant position (>= ${heads.minDistance} tokens back, attention sinks apart) lies inside the definition or import the code resolves the name to; the bar shows it`],
        [`recall@${heads.topK}`, `the share where any of the head's top ${heads.topK} distant positions lies inside it`],
        [
          'baseline: nearest earlier occurrence',
          `a rule, no model: point each use at the nearest earlier occurrence of the same name, >= ${heads.minDistance} tokens back (recall: the ${heads.topK} nearest); it is what copying names alone gets right. A head below it is not useless: the comparison says what a head does beyond copying names, and one well above uniform still finds definitions`,
        ],
        ['baseline: uniform', 'a distant position picked at random (expected shares): what chance gets right'],
      ]),
    );
    this.headsRoot.append(table);
  }

  /** Tells the host what is drawn (the integration tests read it). */
  private report(): void {
    const map = this.map;
    if (!map) return;
    this.host.post({
      type: 'mapRendered',
      uri: map.uri,
      version: map.version,
      threshold: this.threshold,
      nodes: map.nodes.map((n) => `${n.kind} ${n.name}`),
      edges: this.drawnEdges().map((e) => ({ from: e.from, to: e.to, weight: e.weight, agreement: e.agreement })),
      heads: this.heads && this.heads.uri === map.uri ? this.drawnHeads : [],
    });
  }
}
