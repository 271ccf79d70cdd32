/**
 * Attention sinks and the default view (src/analysis/sinks.ts, src/analysis/reading.ts): a head
 * that parks attention on a window's first token whatever the token is has a sink there; the
 * attention on it is not counted for the import that holds that token, and the share parked there
 * is reported; a head that attends to what names refer to is chosen as this file's definition head
 * when the file has enough uses, and the view says which heads it reads.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { AttentionSummary } from '../../engine/attention';
import { attendedSources, sinkShareFor, spanMassFor, type PreparedDocument } from '../../src/analysis/documentAnalysis';
import type { DocumentAnalysisResult } from '../../src/analysis/documentResult';
import { describeReading, MIN_MEASURED_USES, resolveReading, sinkContext } from '../../src/analysis/reading';
import { analyseSinks, MIN_QUERIES } from '../../src/analysis/sinks';

const n = 400;
const H = 2;
const k = 3;

/**
 * One layer, two heads, two spans: span 0 = tokens [0, 4) (the first line, an import), span 1 =
 * tokens [10, 14) (a definition). Head 0 is a sink head: 0.7 on token 0 for every query, 0.3 on the
 * query itself. Head 1 attends 0.6 to span 1 (token 11) from the uses of its name (tokens 100, 109,
 * 118, ...: what a definition head does), and to itself from every other token.
 */
function sinkSummary(uses = 40): AttentionSummary {
  const useTokens = new Set(Array.from({ length: uses }, (_, i) => 100 + i * 9));
  const topIndices = new Int32Array(H * n * k).fill(-1);
  const topWeights = new Float32Array(H * n * k);
  const S = 2;
  const spanMass = new Float32Array(H * n * S);
  for (let q = 0; q < n; q++) {
    const at0 = (0 * n + q) * k;
    topIndices[at0] = 0;
    topWeights[at0] = q === 0 ? 1 : 0.7;
    if (q > 0) {
      topIndices[at0 + 1] = q;
      topWeights[at0 + 1] = 0.3;
    }
    spanMass[(0 * n + q) * S + 0] = q === 0 ? 1 : 0.7 + (q < 4 ? 0.3 : 0);
    const at1 = (1 * n + q) * k;
    if (useTokens.has(q)) {
      topIndices[at1] = 11;
      topWeights[at1] = 0.6;
      topIndices[at1 + 1] = q;
      topWeights[at1 + 1] = 0.4;
      spanMass[(1 * n + q) * S + 1] = 0.6;
    } else {
      topIndices[at1] = q;
      topWeights[at1] = 1;
      spanMass[(1 * n + q) * S + (q < 4 ? 0 : q >= 10 ? 1 : 0)] = q < 4 || q >= 10 ? 1 : 0;
    }
  }
  const spanMassMean = new Float32Array(n * S);
  const spanMassMax = new Float32Array(n * S);
  for (let q = 0; q < n; q++) {
    for (let s = 0; s < S; s++) {
      const a = spanMass[(0 * n + q) * S + s];
      const b = spanMass[(1 * n + q) * S + s];
      spanMassMean[q * S + s] = (a + b) / 2;
      spanMassMax[q * S + s] = Math.max(a, b);
    }
  }
  return { numTokens: n, layers: [0], numHeads: H, topK: k, topIndices, topWeights, numSpans: S, spanMass, spanMassMean, spanMassMax };
}

/** A document of n tokens whose spans are the two above and whose identifiers at 100, 200, ... refer to span 1. */
function documentFor(uses: number): PreparedDocument {
  const identifiers = Array.from({ length: uses }, (_, i) => ({ name: 'thing', tokens: [100 + i * 9], start: 0, end: 0 }));
  return {
    text: 'x'.repeat(n),
    tokenIds: new Int32Array(n),
    tokens: Array.from({ length: n }, () => 'x'),
    ranges: Array.from({ length: n }, (_, i) => ({ start: i, end: i + 1 })),
    definitions: [
      { kind: 'import', name: 'first', names: ['first'], start: 0, end: 4, nodeStart: 0, nodeEnd: 4 },
      { kind: 'function', name: 'thing', names: ['thing'], start: 10, end: 14, nodeStart: 10, nodeEnd: 14 },
    ],
    spans: [{ start: 0, end: 4 }, { start: 10, end: 14 }],
    identifiers,
    references: [{ targets: [1], resolution: 'scope' }],
    identifierReference: Int32Array.from(identifiers, () => 0),
  } as unknown as PreparedDocument;
}

function resultFor(uses: number): DocumentAnalysisResult {
  return { doc: documentFor(uses), summary: sinkSummary(uses), windowPlan: [{ positions: [0], prefixLength: 0, ownedStart: 0, ownedEnd: n, spans: [], spanIds: [] }] } as unknown as DocumentAnalysisResult;
}

test('a head that parks attention on the first token has a sink there; a head that reads definitions has none', () => {
  const sinks = analyseSinks(sinkSummary());
  assert.deepEqual([...sinks.sinks[0][0]], [0], 'head 0: the first token');
  assert.deepEqual([...sinks.sinks[1][0]], [], 'head 1 attends to token 11 only from the uses of its name: not a sink');
  assert.equal(sinks.sinkRate, 0.5);
  assert.ok(sinks.headSinkShare[0] > 0.69 && sinks.headSinkShare[1] < 0.1);
});

test('attention on sinks is not counted for the import that holds them, and the share parked there is reported', () => {
  const result = resultFor(MIN_MEASURED_USES + 4);
  const rule = { minDistance: 64, otherLineCounts: false };
  const apart = resolveReading(result, { layer: 'all', head: 0 }, rule);
  const shown = resolveReading(result, { layer: 'all', head: 0 }, { ...rule, showSinks: true });
  const q = 100 + 9 * 10;
  assert.ok(Math.abs(spanMassFor(result.summary, q, shown)[0] - 0.7) < 1e-6, 'with sinks shown the import gets the 0.7');
  assert.ok(Math.abs(spanMassFor(result.summary, q, apart)[0]) < 1e-6, 'with sinks apart it gets nothing');
  assert.ok(Math.abs(sinkShareFor(result.summary, q, apart) - 0.7) < 1e-6);
  assert.equal(sinkShareFor(result.summary, q, shown), 0);
  // Under "max of heads", the import is no longer the first source: the definition is.
  const sources = attendedSources(result.doc, result.summary, [q], resolveReading(result, { layer: 'all', head: 'max' }, rule), rule, 3, 0.05);
  assert.deepEqual(sources.map((s) => s.definition), [1]);
  const before = attendedSources(result.doc, result.summary, [q], resolveReading(result, { layer: 'all', head: 'max' }, { ...rule, showSinks: true }), rule, 3, 0.05);
  assert.deepEqual(before.map((s) => s.definition), [0, 1], 'shown, the sink made the import first (0.7 > 0.6)');
});

test('the definition view reads the head that follows the references, and says so; too few uses fall back to every head', () => {
  const result = resultFor(MIN_MEASURED_USES + 4);
  const reading = resolveReading(result, { layer: 'all', head: 'definition' }, {});
  assert.deepEqual(reading.heads, [{ layerIndex: 0, head: 1 }]);
  assert.match(describeReading(result, { layer: 'all', head: 'definition' }, {}), /^this file's definition heads: layer 0 head 1 \(100%\) of its 16 distant uses land first in the name's definition or import; attention sinks apart$/);
  const few = resultFor(3);
  assert.equal(resolveReading(few, { layer: 'all', head: 'definition' }, {}).heads, undefined);
  assert.match(describeReading(few, { layer: 'all', head: 'definition' }, {}), /all heads, strongest \(this file has 3 distant uses/);
  assert.ok(sinkContext(result) === sinkContext(result), 'computed once per result');
  assert.ok(MIN_QUERIES < n);
});
