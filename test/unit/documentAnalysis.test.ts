import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attendedSources, prepareDocument, spanMassFor, tokenSpanOf, type DocumentTokenizer } from '../../src/analysis/documentAnalysis';
import type { SourceDefinition } from '../../src/analysis/definitions';
import type { AttentionSummary } from '../../engine/attention';

/** A whitespace/punctuation tokenizer spelled byte-level, enough to exercise the mapping. */
const tokenizer: DocumentTokenizer = {
  spelling: 'byteLevel',
  specialTokens: new Set(),
  encodeWithTokens(text: string) {
    const tokens = text.match(/ ?[A-Za-z_]+| ?[0-9]+|\s+|[^\sA-Za-z_0-9]/g) ?? [];
    const spelled = tokens.map((t) => t.replace(/ /g, 'Ġ').replace(/\n/g, 'Ċ'));
    return { ids: spelled.map((_, i) => i), tokens: spelled };
  },
};

const text = "import fs from 'fs'\nfunction load() {}\nconst x = load(fs)\n";
const definitions: SourceDefinition[] = [
  { kind: 'import', name: 'fs', names: ['fs'], start: 0, end: 19, nodeStart: 0, nodeEnd: 19 },
  { kind: 'function', name: 'load', names: ['load'], start: 20, end: 35, nodeStart: 20, nodeEnd: 38 },
];

function summaryWith(n: number, masses: Record<number, number[]>, layers = 1, heads = 2): AttentionSummary {
  const S = 2;
  const spanMass = new Float32Array(layers * heads * n * S);
  const spanMassMean = new Float32Array(layers * n * S);
  const spanMassMax = new Float32Array(layers * n * S);
  for (const [query, values] of Object.entries(masses)) {
    const q = Number(query);
    for (let s = 0; s < S; s++) {
      // head 0 carries the mass, head 1 none: mean is half, max is the full value.
      spanMass[((0 * heads + 0) * n + q) * S + s] = values[s];
      spanMassMean[(0 * n + q) * S + s] = values[s] / heads;
      spanMassMax[(0 * n + q) * S + s] = values[s];
    }
  }
  return { numTokens: n, layers: [0], numHeads: heads, topK: 1, topIndices: new Int32Array(0), topWeights: new Float32Array(0), numSpans: S, spanMass, spanMassMean, spanMassMax };
}

test('definitions become token spans covering exactly their tokens', () => {
  const doc = prepareDocument(text, tokenizer, definitions);
  assert.equal(doc.spans.length, 2);
  const importTokens = doc.tokens.slice(doc.spans[0].start, doc.spans[0].end).join('');
  assert.equal(importTokens, "importĠfsĠfromĠ'fs'");
  assert.deepEqual(tokenSpanOf(doc.ranges, 1000, 1001), undefined, 'a range past the end covers no token');
  assert.ok(doc.identifiers.some((g) => g.name === 'load'));
});

test('attended sources respect distance, threshold, order and the chosen head aggregation', () => {
  const doc = prepareDocument(text, tokenizer, definitions);
  const loadUse = doc.identifiers.filter((g) => g.name === 'load').pop()!;
  const q = loadUse.tokens[0];
  const summary = summaryWith(doc.tokenIds.length, { [q]: [0.2, 0.6] });
  const near = { minDistance: 0, otherLineCounts: false };
  const sources = attendedSources(doc, summary, loadUse.tokens, { layer: 0, head: 'max' }, near, 5, 0.01);
  assert.deepEqual(sources.map((s) => [doc.definitions[s.definition].name, Number(s.weight.toFixed(3))]), [['load', 0.6], ['fs', 0.2]]);
  const mean = attendedSources(doc, summary, loadUse.tokens, { layer: 0, head: 'mean' }, near, 5, 0.01);
  assert.deepEqual(mean.map((s) => Number(s.weight.toFixed(3))), [0.3, 0.1]);
  const headOne = attendedSources(doc, summary, loadUse.tokens, { layer: 0, head: 1 }, near, 5, 0.01);
  assert.deepEqual(headOne, [], 'head 1 gives no mass to either span');
  const far = attendedSources(doc, summary, loadUse.tokens, { layer: 'all', head: 'max' }, { minDistance: 1000, otherLineCounts: false }, 5, 0.01);
  assert.deepEqual(far, [], 'nothing is 1000 tokens away');
  const otherLine = attendedSources(doc, summary, loadUse.tokens, { layer: 'all', head: 'max' }, { minDistance: 1000, otherLineCounts: true }, 1, 0.01);
  assert.deepEqual(otherLine.map((s) => doc.definitions[s.definition].name), ['load'], 'spans on earlier lines count when the rule says so; limit 1 keeps the strongest');
  assert.equal(spanMassFor(summary, q, { layer: 0, head: 0 })[1], summary.spanMass[(q * 2) + 1]);
});
