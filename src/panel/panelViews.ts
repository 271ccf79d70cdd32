/**
 * Builds what the panel draws from an analysis: the document as tokens, and for the selected
 * token its heatmap and its layers x heads grid. Pure, so the numbers are unit-tested.
 */
import { layerScope } from '../shared/format';
import type { AttentionView, DistanceRule } from '../analysis/documentAnalysis';
import { attendedSources } from '../analysis/documentAnalysis';
import type { DocumentAnalysisResult, QueryAt } from '../analysis/documentResult';
import { describeReading, resolveReading, sinkContext } from '../analysis/reading';
import { isKeyword } from '../analysis/keywords';
import { identifierIndexOfToken, relationOf } from '../analysis/sourceRelations';
import type { DependencyCheck } from '../analysis/dependencyCheck';
import type { DocumentViewMessage, QueryViewMessage } from '../shared/protocol';

export function documentView(result: DocumentAnalysisResult, documentName: string): DocumentViewMessage {
  const { doc } = result;
  const identifierOf = new Int32Array(doc.tokenIds.length).fill(-1);
  doc.identifiers.forEach((group, index) => {
    if (!isKeyword(group.name)) for (const t of group.tokens) identifierOf[t] = index;
  });
  // Token texts must concatenate to the text: gaps (text no token covered) join the next token.
  const tokens: string[] = [];
  let cursor = 0;
  doc.ranges.forEach((range, i) => {
    const end = i === doc.ranges.length - 1 ? doc.text.length : Math.max(range.end, cursor);
    tokens.push(doc.text.slice(cursor, Math.max(cursor, end)));
    cursor = Math.max(cursor, end);
  });
  return {
    type: 'documentView',
    uri: result.uri,
    documentName,
    tokens,
    identifierOf,
    definitions: doc.definitions.map((d, i) => ({ kind: d.kind, name: d.name, tokenStart: doc.spans[i].start, tokenEnd: doc.spans[i].end })),
    numLayers: result.model.numLayers,
    numHeads: result.model.numHeads,
    layers: result.summary.layers,
    ...(result.model.slidingWindow || result.model.ropeLayers ? { layerScopes: result.summary.layers.map((layer) => layerScope(result.model, layer) ?? null) } : {}),
    topK: result.summary.topK,
  };
}

export function queryView(result: DocumentAnalysisResult, query: QueryAt | undefined, view: AttentionView, rule: DistanceRule, threshold: number, check?: DependencyCheck): QueryViewMessage {
  const { summary, doc } = result;
  const n = summary.numTokens;
  const H = summary.numHeads;
  const L = summary.layers.length;
  const k = summary.topK;
  const S = summary.numSpans;
  const heat = new Float32Array(n);
  const cellMass = new Float32Array(L * H);
  const cellTop = new Int32Array(L * H * k).fill(-1);
  const cellTopWeights = new Float32Array(L * H * k);
  if (!query) {
    return { type: 'queryView', uri: result.uri, query: null, view, threshold, heat, heatSource: 'topK', sources: [], cellMass, cellTop, cellTopWeights };
  }
  const first = query.tokens[0];
  // Distant spans: the ones the overlay may show for this query.
  const distant = doc.spans.map((span, s) => span.end <= first && (first - (span.end - 1) >= rule.minDistance || (rule.otherLineCounts && doc.definitions[s].end <= doc.ranges[first].start && doc.text.slice(doc.definitions[s].end, doc.ranges[first].start).includes('\n'))));
  const reading = resolveReading(result, view, rule);
  const layerIndex = reading.layer;
  const inReading = (li: number, h: number) =>
    reading.heads ? reading.heads.some((ref) => ref.layerIndex === li && ref.head === h) : (layerIndex === 'all' || layerIndex === li) && (typeof reading.head !== 'number' || reading.head === h);
  for (let li = 0; li < L; li++) {
    for (let h = 0; h < H; h++) {
      const cell = li * H + h;
      // The query's tokens: each position keeps its largest weight over them.
      const best = new Map<number, number>();
      for (const q of query.tokens) {
        const base = ((li * H + h) * n + q) * k;
        for (let j = 0; j < k; j++) {
          const position = summary.topIndices[base + j];
          if (position >= 0) best.set(position, Math.max(best.get(position) ?? 0, summary.topWeights[base + j]));
        }
        const massBase = ((li * H + h) * n + q) * S;
        for (let s = 0; s < S; s++) if (distant[s]) cellMass[cell] = Math.max(cellMass[cell], summary.spanMass[massBase + s]);
      }
      [...best.entries()].sort((a, b) => b[1] - a[1]).slice(0, k).forEach(([position, weight], j) => {
        cellTop[cell * k + j] = position;
        cellTopWeights[cell * k + j] = weight;
      });
      if (!inReading(li, h)) continue;
      for (const [position, weight] of best) {
        if (reading.head === 'mean' && !reading.heads) heat[position] += weight / H;
        else heat[position] = Math.max(heat[position], weight);
      }
    }
  }
  if (reading.head === 'mean' && !reading.heads && layerIndex === 'all') for (let p = 0; p < n; p++) heat[p] /= L;
  const identifier = query.identifier ? identifierIndexOfToken(doc, first) : -1;
  const sources = attendedSources(doc, summary, query.tokens, reading, rule, 16, threshold).map((s) => ({
    definition: s.definition,
    weight: s.weight,
    ...(identifier >= 0 ? { relation: relationOf(doc, identifier, s.definition).kind } : {}),
  }));
  const dependencies = check && check.start === query.start && check.end === query.end ? check.spans.map(({ definition, attention, valueWeighted, kl, deltaLogProb, verdict }) => ({ definition, attention, valueWeighted, kl, deltaLogProb, verdict })) : undefined;
  const cellRead = new Uint8Array(L * H);
  for (let li = 0; li < L; li++) for (let h = 0; h < H; h++) cellRead[li * H + h] = inReading(li, h) ? 1 : 0;
  const cellSinkShare = sinkContext(result).analysis.headSinkShare.slice();
  return { type: 'queryView', uri: result.uri, query: { name: query.name, tokens: query.tokens }, view, threshold, heat, heatSource: 'topK', sources, cellMass, cellTop, cellTopWeights, cellSinkShare, cellRead, reading: describeReading(result, view, rule), dependencies };
}
