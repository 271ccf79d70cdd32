/**
 * `attention-lens map` and `attention-lens heads` as a user runs them on real files with the
 * embedded default model (CPU engine): the map's edges carry the code's references, the heads
 * table covers every head with its baselines and adds up over files, and bad input says why.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { repoRoot } from './fixtureModels';

const CLI = path.join(repoRoot, 'out', 'cli.js');
const inventory = path.join(repoRoot, 'sample-workspace', 'src', 'inventory.ts');
const sales = path.join(repoRoot, 'sample-workspace', 'python', 'sales_report.py');

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: repoRoot, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface MapJson {
  nodes: { kind: string; name: string; line: number }[];
  edges: { from: number; to: number; weight: number; references: number; agreement: string; tokens: { name: string; line: number }[] }[];
  threshold: number;
}

test('map --json: nodes in file order, edges with references and agreement, shares per definition <= 1', () => {
  const run = cli(['map', inventory, '--json', '--backend', 'cpu', '--threshold', '0.1']);
  assert.equal(run.status, 0, run.stderr);
  const map = JSON.parse(run.stdout) as MapJson;
  assert.ok(map.nodes.length >= 25, `${map.nodes.length} nodes`);
  for (let i = 1; i < map.nodes.length; i++) assert.ok(map.nodes[i].line >= map.nodes[i - 1].line, 'file order');
  const index = (name: string) => map.nodes.findIndex((n) => n.name === name);
  // isLowOnStock reads LOW_STOCK_THRESHOLD: the code's reference is on that edge.
  const edge = map.edges.find((e) => e.from === index('isLowOnStock') && e.to === index('LOW_STOCK_THRESHOLD'));
  assert.ok(edge, 'the referenced constant is an edge of isLowOnStock');
  assert.equal(edge.references, 1);
  assert.equal(edge.agreement, edge.weight >= 0.1 ? 'both' : 'referenceOnly');
  for (const e of map.edges) {
    assert.ok(map.nodes[e.to].line <= map.nodes[e.from].line, 'edges go to earlier definitions');
    assert.ok(e.weight >= 0 && e.weight <= 1);
    assert.ok(e.agreement === (e.weight >= 0.1 ? (e.references > 0 ? 'both' : 'attentionOnly') : 'referenceOnly'));
  }
  const sums = new Map<number, number>();
  for (const e of map.edges) sums.set(e.from, (sums.get(e.from) ?? 0) + e.weight);
  for (const [from, sum] of sums) assert.ok(sum <= 1 + 1e-3, `${map.nodes[from].name}: shares sum to ${sum}`);
  assert.ok(map.edges.some((e) => e.agreement === 'attentionOnly') && map.edges.some((e) => e.agreement === 'both'));
});

test('map prints a readable table with the legend', () => {
  const run = cli(['map', inventory, '--backend', 'cpu']);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /imports and definitions, \d+ tokens/);
  assert.match(run.stdout, /== function isLowOnStock \(line 43\) -> function available \(line 39\)|function isLowOnStock \(line 43\) ->/);
  assert.match(run.stdout, /~~ attended, no reference in the code/);
});

test('heads --json: every head scored on the same def-use edges, best first, baselines beside, sums over files', () => {
  const one = cli(['heads', inventory, '--json', '--backend', 'cpu', '--min-distance', '32']);
  assert.equal(one.status, 0, one.stderr);
  const a = JSON.parse(one.stdout) as { uses: number; heads: { layer: number; head: number; precision: number; recall: number; hits: number; count: number }[]; baselines: { nearestOccurrence: { precision: number; count: number }; uniform: { precision: number } }; model: { layers: number; heads: number } };
  assert.equal(a.heads.length, a.model.layers * a.model.heads);
  assert.ok(a.uses >= 20, `${a.uses} distant def-use edges in inventory.ts`);
  for (const h of a.heads) assert.equal(h.count, a.uses);
  for (let i = 1; i < a.heads.length; i++) assert.ok(a.heads[i - 1].precision >= a.heads[i].precision, 'best precision first');
  assert.ok(a.baselines.uniform.precision > 0 && a.baselines.uniform.precision < 0.5);
  assert.ok(a.heads[0].precision > a.baselines.uniform.precision, 'the best head beats a uniform choice');

  const both = cli(['heads', inventory, sales, '--json', '--backend', 'cpu', '--min-distance', '32']);
  assert.equal(both.status, 0, both.stderr);
  const b = JSON.parse(both.stdout) as typeof a & { files: { uses: number }[] };
  assert.equal(b.files.length, 2);
  assert.equal(b.uses, b.files[0].uses + b.files[1].uses);
  assert.equal(b.files[0].uses, a.uses, 'a file scores the same alone or with others');
  const head = (t: typeof a, layer: number, h: number) => t.heads.find((x) => x.layer === layer && x.head === h)!;
  assert.ok(head(b, 1, 0).hits >= head(a, 1, 0).hits);
});

test('heads prints the table with both baselines; bad input says what to do', () => {
  const run = cli(['heads', inventory, '--backend', 'cpu', '--top', '3']);
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.split('\n');
  assert.equal(lines.filter((l) => /^layer \d+ head \d+ /.test(l)).length, 3);
  assert.ok(lines.some((l) => l.startsWith('baseline: nearest earlier')) && lines.some((l) => l.startsWith('baseline: uniform')));
  const missing = cli(['heads', path.join(repoRoot, 'no-such-file.ts'), '--backend', 'cpu']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /cannot read .*no-such-file\.ts/);
  const none = cli(['heads']);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /at least one FILE/);
  const twoMaps = cli(['map', inventory, sales]);
  assert.equal(twoMaps.status, 2);
  assert.match(twoMaps.stderr, /exactly one FILE/);
});
