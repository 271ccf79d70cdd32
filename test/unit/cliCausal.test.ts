/**
 * `attention-lens knockout` and `attention-lens effect` as a user runs them: JSON on stdout against
 * the independent PyTorch values (causal-golden.json) on every architecture, and clear errors.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fixtureDir, repoRoot } from './fixtureModels';

const CLI = path.join(repoRoot, 'out', 'cli.js');

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: repoRoot, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface Golden {
  tokenIds: number[];
  knockout: { query: number; layers: [number, number] | null; nextToken: number | null; spans: { start: number; end: number; kl: number; deltaLogProb: number | null }[] }[];
  effect: { span: [number, number]; tokens: { position: number; kl: number; deltaLogProb: number | null }[] }[];
}

const golden = (name: string) => JSON.parse(fs.readFileSync(path.join(fixtureDir(name), 'causal-golden.json'), 'utf8')) as Golden;

for (const [name, backend] of [['llama-f32', 'cpu'], ['qwen2-sharded', 'cpu'], ['gpt2-f16', 'cpu'], ['llama-bf16', 'reference']] as const) {
  test(`${name}: knockout and effect --backend ${backend} print the golden values`, () => {
    const g = golden(name);
    const ids = g.tokenIds.join(',');
    const knock = g.knockout.find((k) => k.layers !== null)!;
    const args = ['knockout', '--backend', backend, '--model', fixtureDir(name), '--token-ids', ids, '--query', String(knock.query), ...knock.spans.flatMap((s) => ['--span', `${s.start}:${s.end}`]), '--layers', knock.layers!.join(':')];
    const run = cli(args);
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { query: number; nextToken: number | null; spans: { start: number; end: number; kl: number; deltaLogProb: number | null }[]; backend: { kind: string } };
    assert.equal(out.query, knock.query);
    assert.equal(out.nextToken, knock.nextToken);
    assert.equal(out.backend.kind, backend === 'cpu' ? 'onnxruntime' : 'reference');
    out.spans.forEach((span, i) => {
      assert.deepEqual([span.start, span.end], [knock.spans[i].start, knock.spans[i].end]);
      assert.ok(Math.abs(span.kl - knock.spans[i].kl) <= 1e-4, `KL of ${span.start}:${span.end}: ${span.kl} vs ${knock.spans[i].kl}`);
      if (knock.spans[i].deltaLogProb === null) assert.equal(span.deltaLogProb, null);
      else assert.ok(Math.abs(span.deltaLogProb! - knock.spans[i].deltaLogProb!) <= 1e-4);
    });

    const effect = g.effect[0];
    const effectRun = cli(['effect', '--backend', backend, '--model', fixtureDir(name), '--token-ids', ids, '--span', effect.span.join(':')]);
    assert.equal(effectRun.status, 0, effectRun.stderr);
    const effectOut = JSON.parse(effectRun.stdout) as { span: [number, number]; tokens: { position: number; kl: number; deltaLogProb: number | null }[] };
    assert.deepEqual(effectOut.span, effect.span);
    assert.equal(effectOut.tokens.length, g.tokenIds.length - effect.span[1]);
    effectOut.tokens.forEach((token, i) => {
      assert.equal(token.position, effect.tokens[i].position);
      assert.ok(Math.abs(token.kl - effect.tokens[i].kl) <= 1e-4, `KL at ${token.position}`);
    });
    assert.equal(effectOut.tokens[effectOut.tokens.length - 1].deltaLogProb, null, 'the last position has no next token');
  });
}

test('analyze --weighting valueWeighted --backend cpu weighs the sources differently', () => {
  const file = path.join(repoRoot, 'sample-workspace', 'src', 'money.ts');
  const run = (weighting: string) => {
    const result = cli(['analyze', file, '--model', fixtureDir('llama-f32'), '--backend', 'cpu', '--json', '--min-distance', '8', '--threshold', '0', '--weighting', weighting]);
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout) as { weighting: string; backend: { kind: string }; identifiers: { name: string; line: number; column: number; sources: { definition: number; weight: number }[] }[] };
  };
  const plain = run('attention');
  const weighted = run('valueWeighted');
  assert.equal(weighted.weighting, 'valueWeighted');
  assert.equal(weighted.backend.kind, 'onnxruntime');
  const key = (i: { line: number; column: number }) => `${i.line}:${i.column}`;
  const plainBy = new Map(plain.identifiers.map((i) => [key(i), i]));
  let differing = 0;
  for (const identifier of weighted.identifiers) {
    const other = plainBy.get(key(identifier));
    if (other && other.sources[0] && identifier.sources[0] && Math.abs(other.sources[0].weight - identifier.sources[0].weight) > 1e-3) differing++;
  }
  assert.ok(differing > 0, 'value weighting changes some weights');
  const bad = cli(['analyze', file, '--weighting', 'values']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--weighting must be attention or valueWeighted, not "values"/);
});

test('knockout and effect refuse bad arguments with one line on stderr', () => {
  const model = fixtureDir('llama-f32');
  const cases: [string[], RegExp][] = [
    [['knockout', '--model', model, '--token-ids', '1,2,3', '--span', '0:1'], /knockout needs --query Q/],
    [['knockout', '--model', model, '--token-ids', '1,2,3', '--query', '2'], /at least one --span A:B/],
    [['knockout', '--model', model, '--token-ids', '1,2,3', '--query', '2', '--span', '2:1'], /--span expects A:B with 0 <= A <= B/],
    [['knockout', '--model', model, '--token-ids', '1,2,3', '--query', '3', '--span', '0:1'], /--query 3 is outside the 3 tokens/],
    [['knockout', '--model', model, '--token-ids', '1,2,3', '--query', '2', '--span', '0:4'], /--span 0:4 reaches past the 3 tokens/],
    [['knockout', '--model', model, '--token-ids', '1,2,3', '--query', '2', '--span', '0:1', '--layers', '1:1'], /--layers expects L0:L1 with L0 < L1/],
    [['knockout', '--model', model, '--token-ids', '1,2,3', '--query', '2', '--span', '0:1', '--layers', '0:9'], /--layers 0:9: the model has 2 layers/],
    [['effect', '--model', model, '--token-ids', '1,2,3'], /effect needs --span A:B/],
    [['effect', '--model', model, '--token-ids', '1,2,3', '--span', '1:1'], /--span expects A:B with 0 <= A < B/],
  ];
  for (const [args, pattern] of cases) {
    const run = cli([...args, '--backend', 'cpu']);
    assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    const lines = run.stderr.trimEnd().split('\n').filter((line) => line.startsWith('attention-lens:') && !line.includes('engine:'));
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0], pattern);
  }
});
