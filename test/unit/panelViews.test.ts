import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prepareDocument, type DocumentTokenizer } from '../../src/analysis/documentAnalysis';
import type { DocumentAnalysisResult } from '../../src/analysis/documentResult';
import type { SourceDefinition } from '../../src/analysis/definitions';
import { documentView, queryView } from '../../src/panel/panelViews';

const tokenizer: DocumentTokenizer = {
  spelling: 'byteLevel',
  specialTokens: new Set(),
  encodeWithTokens(text: string) {
    const tokens = (text.match(/ ?[A-Za-z_]+|\s+|[^\sA-Za-z_]/g) ?? []).map((t) => t.replace(/ /g, 'Ġ').replace(/\n/g, 'Ċ'));
    return { ids: tokens.map((_, i) => i), tokens };
  },
};

const text = 'import fs\nconst x = fs\n';
const definitions: SourceDefinition[] = [{ kind: 'import', name: 'fs', names: ['fs'], start: 0, end: 9, nodeStart: 0, nodeEnd: 9 }];

function result(): DocumentAnalysisResult {
  const doc = prepareDocument(text, tokenizer, definitions);
  const n = doc.tokenIds.length;
  const L = 1;
  const H = 2;
  const k = 2;
  const topIndices = new Int32Array(L * H * n * k).fill(-1);
  const topWeights = new Float32Array(L * H * n * k);
  const spanMass = new Float32Array(L * H * n);
  const last = n - 2; // the final "fs" (before the newline)
  // head 0 looks at token 1 (" fs" in the import) with 0.7, head 1 at token 0 with 0.4.
  topIndices.set([1, last], (0 * n + last) * k);
  topWeights.set([0.7, 0.3], (0 * n + last) * k);
  topIndices.set([0, last], (1 * n + last) * k);
  topWeights.set([0.4, 0.6], (1 * n + last) * k);
  spanMass[0 * n + last] = 0.7;
  spanMass[1 * n + last] = 0.4;
  const spanMassMax = new Float32Array(n);
  spanMassMax[last] = 0.7;
  const spanMassMean = new Float32Array(n);
  spanMassMean[last] = 0.55;
  return {
    uri: 'file:///a.ts', version: 1, languageId: 'typescript', baseOffset: 0, doc,
    summary: { numTokens: n, layers: [0], numHeads: H, topK: k, topIndices, topWeights, numSpans: 1, spanMass, spanMassMean, spanMassMax },
    windows: 1, backend: { kind: 'reference', reason: 'test' },
    model: { label: 'm', shortName: 'm', architecture: 'LlamaForCausalLM', numLayers: 1, numHeads: H, context: 64 },
    stats: { forwardMs: 1, summaryMs: 1, readbackBytes: 0, elapsedMs: 2 },
  };
}

test('the document view gives every token its text, so the panel shows the file exactly', () => {
  const r = result();
  const view = documentView(r, 'a.ts');
  assert.equal(view.tokens.join(''), text);
  assert.deepEqual(view.definitions, [{ kind: 'import', name: 'fs', tokenStart: 0, tokenEnd: 2 }]);
  const identifierTokens = [...view.identifierOf].map((g, t) => (g >= 0 ? view.tokens[t].trim() : null)).filter(Boolean);
  assert.deepEqual(identifierTokens, ['fs', 'x', 'fs'], 'keywords (import, const) are not queryable');
});

test('the query view paints the heads chosen and fills one grid cell per layer and head', () => {
  const r = result();
  const last = r.doc.tokenIds.length - 2;
  const query = { tokens: [last], start: 0, end: 0, name: 'fs' };
  const rule = { minDistance: 2, otherLineCounts: false };
  const max = queryView(r, query, { layer: 'all', head: 'max' }, rule, 0.05);
  assert.ok(Math.abs(max.heat[1] - 0.7) < 1e-6 && Math.abs(max.heat[0] - 0.4) < 1e-6, 'max over heads');
  assert.deepEqual([...max.cellMass].map((v) => Number(v.toFixed(2))), [0.7, 0.4]);
  assert.deepEqual(max.sources.map((s) => [s.definition, Number(s.weight.toFixed(2))]), [[0, 0.7]]);
  const head1 = queryView(r, query, { layer: 0, head: 1 }, rule, 0.05);
  assert.equal(head1.heat[1], 0, 'head 1 does not look at token 1');
  assert.ok(Math.abs(head1.heat[0] - 0.4) < 1e-6);
  const mean = queryView(r, query, { layer: 0, head: 'mean' }, rule, 0.05);
  assert.ok(Math.abs(mean.heat[1] - 0.35) < 1e-6, 'mean of 0.7 and 0');
  const none = queryView(r, undefined, { layer: 'all', head: 'max' }, rule, 0.05);
  assert.equal(none.query, null);
  assert.equal(none.heat.reduce((a, b) => a + b, 0), 0);
});
