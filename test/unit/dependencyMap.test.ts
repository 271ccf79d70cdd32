import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import type { AttentionSummary } from '../../engine/attention';
import { DefinitionExtractor } from '../../src/analysis/definitions';
import { addHeadTables, definitionHeads, precisionOf, recallOf } from '../../src/analysis/definitionHeads';
import { buildDependencyMap, edgeAgreement } from '../../src/analysis/dependencyMap';
import { prepareDocument, type DocumentTokenizer, type PreparedDocument } from '../../src/analysis/documentAnalysis';
import { attendersByDefinition, queryAt, type DocumentAnalysisResult } from '../../src/analysis/documentResult';
import { identifierIndexOfToken, relationLabel, relationOf } from '../../src/analysis/sourceRelations';

const root = join(__dirname, '..', '..', '..');
const wasmDir = join(root, 'node_modules', '@vscode', 'tree-sitter-wasm', 'wasm');
let extractor: DefinitionExtractor;
let text: string;

before(async () => {
  extractor = await DefinitionExtractor.create((name) => readFile(join(wasmDir, name)));
  text = await readFile(join(root, 'test', 'fixtures', 'code', 'defuse.ts'), 'utf8');
});

/** A word-level tokenizer: identifiers, whitespace runs and single other characters. */
const tokenizer: DocumentTokenizer = {
  spelling: 'byteLevel',
  specialTokens: new Set(),
  encodeWithTokens(source: string) {
    const tokens = (source.match(/ ?[A-Za-z_]+|\s+|[^\sA-Za-z_]/g) ?? []).map((t) => t.replace(/ /g, 'Ġ').replace(/\n/g, 'Ċ'));
    return { ids: tokens.map((_, i) => i), tokens };
  },
};

async function prepared(): Promise<PreparedDocument> {
  const { definitions, references } = await extractor.extractWithReferences('typescript', text);
  return prepareDocument(text, tokenizer, definitions, references);
}

/**
 * A summary from chosen rows: `choose(head, query)` names the position each head attends to (with
 * 0.8; the query itself gets the rest), so masses and top-k follow exactly.
 */
function summaryFrom(doc: PreparedDocument, heads: number, choose: (head: number, query: number) => number): AttentionSummary {
  const n = doc.tokenIds.length;
  const S = doc.spans.length;
  const k = 2;
  const topIndices = new Int32Array(heads * n * k).fill(-1);
  const topWeights = new Float32Array(heads * n * k);
  const spanMass = new Float32Array(heads * n * S);
  const spanMassMean = new Float32Array(n * S);
  const spanMassMax = new Float32Array(n * S);
  for (let h = 0; h < heads; h++) {
    for (let q = 0; q < n; q++) {
      const p = Math.min(q, Math.max(0, choose(h, q)));
      const row: Array<[number, number]> = p === q ? [[q, 1]] : [[p, 0.8], [q, 0.2]];
      row.forEach(([position, weight], j) => {
        topIndices[(h * n + q) * k + j] = position;
        topWeights[(h * n + q) * k + j] = weight;
        doc.spans.forEach((span, s) => {
          if (position >= span.start && position < span.end) spanMass[(h * n + q) * S + s] += weight;
        });
      });
    }
  }
  for (let q = 0; q < n; q++) {
    for (let s = 0; s < S; s++) {
      let total = 0;
      let max = 0;
      for (let h = 0; h < heads; h++) {
        total += spanMass[(h * n + q) * S + s];
        max = Math.max(max, spanMass[(h * n + q) * S + s]);
      }
      spanMassMean[q * S + s] = total / heads;
      spanMassMax[q * S + s] = max;
    }
  }
  return { numTokens: n, layers: [0], numHeads: heads, topK: k, topIndices, topWeights, numSpans: S, spanMass, spanMassMean, spanMassMax };
}

function resultOf(doc: PreparedDocument, summary: AttentionSummary): DocumentAnalysisResult {
  return {
    uri: 'file:///defuse.ts', version: 1, languageId: 'typescript', baseOffset: 0, doc, summary, windows: 1,
    backend: { kind: 'reference', reason: 'test' },
    model: { label: 'synthetic', shortName: 's', architecture: 'LlamaForCausalLM', numLayers: 1, numHeads: summary.numHeads, context: 4096 },
    stats: { forwardMs: 0, summaryMs: 0, readbackBytes: 0, elapsedMs: 0 },
  };
}

/** Where the code says each token's identifier points: the first token of its referenced span. */
function definitionTarget(doc: PreparedDocument, q: number): number | undefined {
  const g = identifierIndexOfToken(doc, q);
  const r = g >= 0 ? doc.identifierReference[g] : -1;
  return r >= 0 ? doc.spans[doc.references[r].targets[0]].start : undefined;
}

/** The nearest earlier occurrence of the same identifier at least `minDistance` tokens back. */
function nearestOccurrence(doc: PreparedDocument, q: number, minDistance: number): number | undefined {
  const g = identifierIndexOfToken(doc, q);
  if (g < 0) return undefined;
  for (let e = g - 1; e >= 0; e--) if (doc.identifiers[e].name === doc.identifiers[g].name && q - doc.identifiers[e].tokens[0] >= minDistance) return doc.identifiers[e].tokens[0];
  return undefined;
}

test('the fixture file resolves to the def-use edges it was written with (parseCsv shadowed in report)', async () => {
  const doc = await prepared();
  const name = (i: number) => doc.definitions[i].names.join('/');
  const edges = doc.references.map((r) => `${r.enclosing >= 0 ? name(r.enclosing) : 'file'} -> ${r.name}`);
  assert.deepEqual(edges, [
    'Item -> Money',
    'loadItems -> Item',
    'loadItems -> parseCsv',
    'loadItems -> CURRENCY',
    'total -> Item',
    'total -> Money',
    'total -> Money',
    'total -> CURRENCY',
    'total -> addMoney',
    'report -> loadItems',
    'report -> total',
  ]);
});

test('the map sums each definition\'s attention on earlier spans, normalised per definition, with its references', async () => {
  const doc = await prepared();
  // Head 0 attends from every identifier to its referenced definition (else to token 0).
  const summary = summaryFrom(doc, 1, (_h, q) => definitionTarget(doc, q) ?? q);
  const map = buildDependencyMap(resultOf(doc, summary), { layer: 0, head: 0 });
  const index = (name: string) => map.nodes.findIndex((node) => doc.definitions[node.definition].names.includes(name) && doc.definitions[node.definition].kind !== 'import') ;
  const importIndex = (name: string) => map.nodes.findIndex((node) => doc.definitions[node.definition].kind === 'import' && doc.definitions[node.definition].names.includes(name));
  const edge = (from: number, to: number) => map.edges.find((e) => e.from === from && e.to === to);
  assert.equal(map.nodes.length, doc.definitions.length, 'every import and definition is a node, in file order');
  // total: Item (1), Money (2), CURRENCY (1), addMoney (1) references; attention follows them exactly.
  const total = index('total');
  const shares = map.edges.filter((e) => e.from === total).map((e) => [map.nodes[e.to].name, Number(e.weight.toFixed(3)), e.references]);
  assert.deepEqual(shares, [
    ['Money, addMoney', 0.6, 3], // Money twice and addMoney once: one import
    ['CURRENCY', 0.2, 1], // ties in file order
    ['Item', 0.2, 1],
  ]);
  const sumOfShares = map.edges.filter((e) => e.from === total).reduce((s, e) => s + e.weight, 0);
  assert.ok(Math.abs(sumOfShares - 1) < 1e-9, 'a definition\'s edges share 1');
  const report = index('report');
  const toLoad = edge(report, index('loadItems'))!;
  assert.equal(toLoad.tokens[0].name, 'loadItems', 'the strongest tokens of an edge are the uses');
  assert.ok(Math.abs(toLoad.tokens[0].weight - 0.8) < 1e-6);
  // report's local parseCsv is not a reference to the import, and head 0 does not attend there.
  assert.equal(edge(report, importIndex('parseCsv')), undefined);
  assert.equal(edgeAgreement(toLoad, 0.1), 'both');
});

test('the map marks references the model ignores and attention without a reference', async () => {
  const doc = await prepared();
  const csvImport = doc.spans[doc.definitions.findIndex((d) => d.kind === 'import' && d.names.includes('parseCsv'))].start;
  // A head that attends from everything in report to the csv import, and nowhere else.
  const reportDef = doc.definitions.findIndex((d) => d.name === 'report');
  const inReport = (q: number) => q >= doc.spans[reportDef].start;
  const summary = summaryFrom(doc, 1, (_h, q) => (inReport(q) ? csvImport : q));
  const map = buildDependencyMap(resultOf(doc, summary), { layer: 0, head: 0 });
  const from = map.nodes.findIndex((n) => n.definition === reportDef);
  const toCsv = map.edges.find((e) => e.from === from && doc.definitions[map.nodes[e.to].definition].names.includes('parseCsv'))!;
  assert.equal(toCsv.weight, 1);
  assert.equal(toCsv.references, 0);
  assert.equal(edgeAgreement(toCsv, 0.1), 'attentionOnly', 'attention where the code has no reference (parseCsv is shadowed)');
  const toTotal = map.edges.find((e) => e.from === from && map.nodes[e.to].name === 'total')!;
  assert.equal(toTotal.weight, 0);
  assert.equal(edgeAgreement(toTotal, 0.1), 'referenceOnly', 'a reference the model ignores');
});

test('knockout effects of checked tokens attach to the map\'s edges', async () => {
  const doc = await prepared();
  const summary = summaryFrom(doc, 1, (_h, q) => definitionTarget(doc, q) ?? q);
  const result = resultOf(doc, summary);
  const total = doc.definitions.findIndex((d) => d.name === 'total');
  const moneyImport = doc.definitions.findIndex((d) => d.kind === 'import' && d.names.includes('Money'));
  const useOffset = text.indexOf('addMoney(sum');
  const check = { uri: result.uri, version: 1, start: useOffset, end: useOffset + 8, name: 'addMoney', backend: result.backend, elapsedMs: 1, spans: [{ definition: moneyImport, attention: 0.8, valueWeighted: 0.7, kl: 0.42, deltaLogProb: -1, verdict: 'agrees' as const }] };
  const map = buildDependencyMap(result, { layer: 0, head: 0 }, [check]);
  const edge = map.edges.find((e) => map.nodes[e.from].definition === total && map.nodes[e.to].definition === moneyImport)!;
  assert.equal(edge.effect, 0.42);
  const stale = buildDependencyMap(result, { layer: 0, head: 0 }, [{ ...check, version: 2 }]);
  assert.equal(stale.edges.find((e) => e.from === edge.from && e.to === edge.to)!.effect, undefined, 'a check of another document version is not shown');
});

test('definition heads: a head that follows references scores 100%, a copy head matches the nearest-occurrence baseline', async () => {
  const doc = await prepared();
  const summary = summaryFrom(doc, 3, (h, q) => (h === 0 ? (definitionTarget(doc, q) ?? q) : h === 1 ? (nearestOccurrence(doc, q, 8) ?? q) : 0));
  const table = definitionHeads(doc, summary, 8);
  assert.ok(table.uses >= 8, `distant def-use edges scored: ${table.uses}`);
  assert.deepEqual(table.heads.map((s) => s.head), [0, 1, 2], 'best heads first');
  assert.equal(precisionOf(table.heads[0]), 1);
  assert.equal(recallOf(table.heads[0]), 1);
  const copy = table.heads[1];
  assert.equal(copy.hits, table.baselines.nearestOccurrence.hits, 'a copy head is exactly the nearest-occurrence baseline');
  assert.ok(copy.hits < table.uses, 'some uses have an earlier use nearer than the definition');
  assert.equal(table.heads[2].hits, 0, 'a sink head (position 0: a comment) never hits');
  assert.ok(table.baselines.uniform.hits > 0 && table.baselines.uniform.hits < table.uses * 0.5);
  const twice = addHeadTables([table, table]);
  assert.equal(twice.uses, table.uses * 2);
  assert.equal(twice.heads[0].hits, table.heads[0].hits * 2);
  assert.equal(precisionOf(twice.heads[0]), 1);
});

test('source relations tell the definition of the name from an earlier use and from an unrelated span', async () => {
  const doc = await prepared();
  const use = doc.identifiers.findIndex((g) => g.name === 'Money' && g.start > text.indexOf('let sum'));
  const moneyImport = doc.definitions.findIndex((d) => d.kind === 'import' && d.names.includes('Money'));
  const totalDef = doc.definitions.findIndex((d) => d.name === 'total'); // its header mentions Money
  const csv = doc.definitions.findIndex((d) => d.kind === 'import' && d.names.includes('parseCsv'));
  assert.equal(relationLabel(relationOf(doc, use, moneyImport), 'Money'), 'definition of Money');
  assert.equal(relationLabel(relationOf(doc, use, totalDef), 'Money'), 'earlier use of Money');
  assert.equal(relationLabel(relationOf(doc, use, csv), 'Money'), 'unrelated');
});

test('the query at the cursor is a token with text: on whitespace it is the word just before the cursor, or none', async () => {
  const doc = await prepared();
  const result = resultOf(doc, summaryFrom(doc, 1, (_h, q) => q));
  const blankLine = text.indexOf('\n\n') + 1;
  assert.ok(blankLine > 0, 'the fixture has an empty line');
  assert.equal(queryAt(result, blankLine), undefined, 'nothing to ask about on an empty line');
  const indent = text.search(/\n {2,}\S/) + 2;
  assert.equal(queryAt(result, indent), undefined, 'nothing in the indentation');
  const word = /[A-Za-z_]{4,}(?= [^A-Za-z_\s])/.exec(text)!;
  const afterWord = word.index + word[0].length;
  assert.equal(queryAt(result, afterWord)?.name, word[0], 'the cursor right after a word asks about the word');
  for (let offset = 0; offset < text.length; offset += 7) {
    const query = queryAt(result, offset);
    if (query) assert.notEqual(query.name.trim(), '', `a query with a name at ${offset}`);
  }
});

test('words in comments are marked and left out of the reverse view and the map; code words are not', async () => {
  const source = ['import { Money } from "./money";', '// Money is summed below: a comment that names Money', 'export function total(a: Money): Money {', '  /* Money again, in a block comment */', '  return a;', '}', ''].join('\n');
  const { definitions, references, comments } = await extractor.extractWithReferences('typescript', source);
  assert.equal(comments.length, 2, 'a line comment and a block comment');
  const doc = prepareDocument(source, tokenizer, definitions, references, comments);
  const named = doc.identifiers.map((g, i) => ({ name: g.name, line: source.slice(0, g.start).split('\n').length, comment: doc.identifierInComment![i] === 1 }));
  assert.deepEqual(named.filter((w) => w.name === 'Money').map((w) => [w.line, w.comment]), [[1, false], [2, true], [2, true], [3, false], [3, false], [4, true]]);
  // Every query attends to the import with weight 0.8: comment words would count as attenders.
  const result = resultOf(doc, summaryFrom(doc, 1, () => 0));
  const attenders = attendersByDefinition(result, { layer: 'all', head: 'max' }, { minDistance: 0, otherLineCounts: false, showSinks: true }, 0.05);
  const importIndex = doc.definitions.findIndex((d) => d.kind === 'import');
  assert.ok(attenders[importIndex].length > 0, 'code words attend to the import');
  for (const a of attenders[importIndex]) assert.ok(!doc.identifierInComment![doc.identifiers.indexOf(a.identifier)], `${a.identifier.name} on line ${source.slice(0, a.identifier.start).split('\n').length} is code`);
});
