/**
 * The causal checks (knockout, span effect) and value-weighted summaries of the CPU engines against
 * golden values from an independent float64 PyTorch implementation
 * (training/fixtures/make_causal_golden.py), on every fixture architecture and dtype; and the
 * properties any correct knockout has.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AttentionEngine } from '../../engine/engine';
import { NodeOnnxEngine } from '../../engine/hosts/nodeOnnx';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import type { LoadedModel } from '../../engine/model/modelTypes';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import { FIXTURE_MODELS, fixtureDir } from './fixtureModels';

/** Issue tolerance for the CPU engines: KL and deltaLogProb within 1e-4. */
const TOLERANCE = 1e-4;

interface CausalGolden {
  readonly tokenIds: number[];
  readonly knockout: { query: number; layers: [number, number] | null; nextToken: number | null; spans: { start: number; end: number; kl: number; deltaLogProb: number | null }[] }[];
  readonly effect: { span: [number, number]; tokens: { position: number; kl: number; deltaLogProb: number | null }[] }[];
  /** valueWeighted[layer][head][query]: the query + 1 value-weighted weights. */
  readonly valueWeighted: number[][][][];
}

function readCausalGolden(name: string): CausalGolden {
  return JSON.parse(fs.readFileSync(path.join(fixtureDir(name), 'causal-golden.json'), 'utf8')) as CausalGolden;
}

const ENGINES: Record<'reference' | 'onnxruntime', (model: LoadedModel) => Promise<AttentionEngine>> = {
  reference: async (model) => new ReferenceEngine(model, 'test'),
  onnxruntime: (model) => NodeOnnxEngine.create(model, { threads: 2, reason: 'test' }),
};

function close(actual: number | null, expected: number | null, what: string): number {
  if (expected === null || actual === null) {
    assert.equal(actual, expected, what);
    return 0;
  }
  const diff = Math.abs(actual - expected);
  assert.ok(diff <= TOLERANCE, `${what}: ${actual} vs golden ${expected} (diff ${diff.toExponential(2)})`);
  return diff;
}

for (const kind of Object.keys(ENGINES) as (keyof typeof ENGINES)[]) {
  for (const name of FIXTURE_MODELS) {
    test(`${name}: ${kind} knockout and span effect match the independent PyTorch values`, async () => {
      const golden = readCausalGolden(name);
      const engine = await ENGINES[kind](await loadModelFolder(fixtureDir(name)));
      try {
        await engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 1 });
        let maxDiff = 0;
        let spans = 0;
        for (const expected of golden.knockout) {
          const result = await engine.knockout!({ query: expected.query, spans: expected.spans, layers: expected.layers ? { start: expected.layers[0], end: expected.layers[1] } : undefined });
          assert.equal(result.nextToken, expected.nextToken);
          result.spans.forEach((span, i) => {
            const want = expected.spans[i];
            const where = `query ${expected.query} span ${want.start}:${want.end}${expected.layers ? ` layers ${expected.layers.join(':')}` : ''}`;
            maxDiff = Math.max(maxDiff, close(span.kl, want.kl, `${where} KL`), close(span.deltaLogProb, want.deltaLogProb, `${where} deltaLogProb`));
            spans++;
          });
        }
        for (const expected of golden.effect) {
          const result = await engine.spanEffect!({ start: expected.span[0], end: expected.span[1] });
          assert.deepEqual(result.tokens.map((t) => t.position), expected.tokens.map((t) => t.position));
          result.tokens.forEach((token, i) => {
            const where = `span ${expected.span.join(':')} position ${token.position}`;
            maxDiff = Math.max(maxDiff, close(token.kl, expected.tokens[i].kl, `${where} KL`), close(token.deltaLogProb, expected.tokens[i].deltaLogProb, `${where} deltaLogProb`));
          });
        }
        console.log(`${kind} ${name}: ${spans} knockouts and ${golden.effect.length} span effects, max |diff| ${maxDiff.toExponential(2)}`);
      } finally {
        engine.dispose();
      }
    });

    test(`${name}: ${kind} value-weighted summaries match the independent PyTorch rows`, async () => {
      const golden = readCausalGolden(name);
      const engine = await ENGINES[kind](await loadModelFolder(fixtureDir(name)));
      try {
        const n = golden.tokenIds.length;
        const { summary } = await engine.run({ tokenIds: golden.tokenIds, spans: [{ start: 10, end: 20 }], topK: 1, weighting: 'valueWeighted' });
        const H = engine.spec.numHeads;
        let maxDiff = 0;
        let compared = 0;
        for (let layer = 0; layer < engine.spec.numLayers; layer++) {
          for (let head = 0; head < H; head++) {
            for (let query = 0; query < n; query++) {
              const row = golden.valueWeighted[layer][head][query];
              const mass = row.slice(10, Math.min(20, query + 1)).reduce((a, b) => a + b, 0);
              const at = (layer * H + head) * n + query;
              maxDiff = Math.max(maxDiff, Math.abs(summary.spanMass[at] - mass), Math.abs(summary.topWeights[at] - Math.max(...row)));
              const sorted = [...row].sort((a, b) => b - a);
              if (sorted.length < 2 || sorted[0] - sorted[1] > 1e-6) {
                assert.equal(summary.topIndices[at], row.indexOf(sorted[0]), `top source of layer ${layer} head ${head} query ${query}`);
                compared++;
              }
            }
          }
        }
        console.log(`${kind} ${name}: value-weighted span mass and top weight max |diff| ${maxDiff.toExponential(2)}, top-1 identical on ${compared} rows`);
        assert.ok(maxDiff <= TOLERANCE, `max difference ${maxDiff}`);
      } finally {
        engine.dispose();
      }
    });
  }

  test(`${kind}: an empty span changes nothing; knocking out all but the query equals the token alone`, async () => {
    for (const name of ['llama-f32', 'qwen2-f16'] as const) {
      const golden = readCausalGolden(name);
      const engine = await ENGINES[kind](await loadModelFolder(fixtureDir(name)));
      try {
        const q = 30;
        await engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 1 });
        const result = await engine.knockout!({ query: q, spans: [{ start: 7, end: 7 }, { start: 0, end: q }] });
        assert.equal(result.spans[0].kl, 0);
        assert.equal(result.spans[0].deltaLogProb, 0);
        // With rotary positions a query that sees only itself computes what the token computes alone.
        const alone = await engine.run({ tokenIds: [golden.tokenIds[q]], spans: [], topK: 1 });
        const logits = Array.from(alone.lastLogits);
        const max = Math.max(...logits);
        const total = logits.reduce((sum, v) => sum + Math.exp(v - max), 0);
        for (const choice of result.spans[1].top) {
          const prob = Math.exp(logits[choice.token] - max) / total;
          assert.ok(Math.abs(prob - choice.prob) <= 1e-5, `${name}: p(${choice.token}) ${choice.prob} knocked vs ${prob} alone`);
        }
      } finally {
        engine.dispose();
      }
    }
  });

  test(`${kind}: causal checks refuse bad requests with a clear message`, async () => {
    const golden = readCausalGolden('gpt2-f32');
    const engine = await ENGINES[kind](await loadModelFolder(fixtureDir('gpt2-f32')));
    try {
      await assert.rejects(engine.knockout!({ query: 1, spans: [] }), /knockout needs a completed run/);
      await engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 1 });
      const n = golden.tokenIds.length;
      await assert.rejects(engine.knockout!({ query: n, spans: [] }), new RegExp(`query ${n} is out of range`));
      await assert.rejects(engine.knockout!({ query: 3, spans: [{ start: 2, end: 1 }] }), /span 2:1 is not a range/);
      await assert.rejects(engine.knockout!({ query: 3, spans: [], layers: { start: 1, end: 1 } }), /layers 1:1 is not a non-empty range/);
      await assert.rejects(engine.spanEffect!({ start: 4, end: 4 }), /span 4:4 is not a non-empty range/);
    } finally {
      engine.dispose();
    }
  });
}
