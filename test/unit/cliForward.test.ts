/**
 * The built command line (out/cli.js) as a user runs it: JSON on stdout checked against the
 * PyTorch golden outputs, and bad input answered with exit code 2 and one line on stderr.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fixtureDir, readGolden, repoRoot } from './fixtureModels';

const CLI = path.join(repoRoot, 'out', 'cli.js');

function cli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Our own stderr lines (Dawn may add warnings of its own when it probes for adapters). */
function ownLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('attention-lens:'));
}

for (const [backend, kind, engineLine] of [
  ['cpu', 'onnxruntime', /^attention-lens: engine: ONNX Runtime \d+\.\d+\.\d+ on the CPU, \d+ threads? \(requested \(backend "cpu"\)\)$/],
  ['reference', 'reference', /^attention-lens: engine: the TypeScript reference engine \(requested \(backend "reference"\)\)$/],
] as const) test(`forward --backend ${backend} prints the golden logits and attention row and names the engine`, () => {
  const golden = readGolden('llama-f32');
  const run = cli(['forward', '--backend', backend, '--model', fixtureDir('llama-f32'), '--token-ids', golden.tokenIds.join(','), '--attention', '1:2:5', '--attention', '0:3:39']);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(ownLines(run.stderr).length, 1, run.stderr);
  assert.match(ownLines(run.stderr)[0], engineLine);
  const output = JSON.parse(run.stdout) as {
    tokenIds: number[];
    logits: number[];
    attention: { layer: number; head: number; query: number; probs: number[] }[];
    backend: { kind: string; reason: string };
  };
  assert.deepEqual(output.tokenIds, golden.tokenIds);
  assert.equal(output.logits.length, 300);
  const maxLogitDiff = Math.max(...output.logits.map((value, i) => Math.abs(value - golden.lastLogits[i])));
  assert.ok(maxLogitDiff <= 1e-3, `max logit difference ${maxLogitDiff}`);
  assert.deepEqual(output.attention.map(({ layer, head, query }) => [layer, head, query]), [[1, 2, 5], [0, 3, 39]]);
  for (const row of output.attention) {
    const expected = golden.attention[row.layer][row.head][row.query];
    assert.equal(row.probs.length, row.query + 1);
    row.probs.forEach((value, i) => assert.ok(Math.abs(value - expected[i]) <= 1e-4, `${row.layer}:${row.head}:${row.query}[${i}]`));
  }
  assert.equal(output.backend.kind, kind);
  assert.equal(output.backend.reason, `requested (backend "${backend}")`);
});

test('forward --text-file tokenizes with the model folder\'s tokenizer.json', () => {
  const tokenizerGolden = JSON.parse(fs.readFileSync(path.join(fixtureDir('llama-f32'), 'tokenizer-golden.json'), 'utf8')) as {
    samples: { text: string; ids: number[] }[];
  };
  const sample = tokenizerGolden.samples[1];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-cli-'));
  try {
    const file = path.join(dir, 'input.py');
    fs.writeFileSync(file, sample.text);
    const run = cli(['forward', '--backend', 'cpu', '--model', fixtureDir('llama-f32'), '--text-file', file]);
    assert.equal(run.status, 0, run.stderr);
    const output = JSON.parse(run.stdout) as { tokenIds: number[]; attention: unknown[] };
    assert.deepEqual(output.tokenIds, sample.ids);
    assert.deepEqual(output.attention, []);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('bad arguments and bad model folders exit 2 with one line on stderr', () => {
  const model = fixtureDir('llama-f32');
  const cases: [string[], RegExp][] = [
    [[], /give a command/],
    [['analyse'], /unknown command "analyse"/],
    [['forward', '--token-ids', '1,2'], /forward needs --model DIR/],
    [['forward', '--model', model], /exactly one of --text-file FILE or --token-ids IDS/],
    [['forward', '--model', model, '--token-ids', '1,-2'], /--token-ids expects comma-separated non-negative integers/],
    [['forward', '--model', model, '--token-ids', '1,2', '--attention', '1:2'], /--attention expects LAYER:HEAD:QUERY/],
    [['forward', '--model', model, '--token-ids', '1,2', '--attention', '0:4:0'], /--attention 0:4:0 names head 4 \(the model has 4 per layer\)/],
    [['forward', '--model', model, '--token-ids', '1,2', '--attention', '0:0:2'], /names query 2 \(the input has 2 tokens\)/],
    [['forward', '--model', model, '--token-ids', '1,300'], /token id 300 at position 1 is outside the model's vocabulary \(0\.\.299\)/],
    [['forward', '--model', model, '--token-ids', '1', '--backend', 'metal'], /--backend must be one of auto, webgpu, cpu, reference, not "metal"/],
    [['forward', '--model', model, '--token-ids', '1', '--top'], /Unknown option '--top'/],
    [['forward', '--model', path.join(repoRoot, 'no-such-model'), '--token-ids', '1'], /model folder .*no-such-model does not exist/],
    [['forward', '--model', fixtureDir('gpt2-f32'), '--text-file', __filename], /has no tokenizer\.json/],
    [['forward', '--model', path.join(repoRoot, 'test'), '--token-ids', '1'], /has no config\.json/],
  ];
  for (const [args, pattern] of cases) {
    const run = cli(args);
    assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.equal(run.stdout, '');
    const lines = run.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line expected for ${args.join(' ')}: ${run.stderr}`);
    assert.match(lines[0], /^attention-lens: /);
    assert.match(lines[0], pattern);
  }
});

test('--help prints usage and exits 0', () => {
  for (const args of [['--help'], ['forward', '--help']]) {
    const run = cli(args);
    assert.equal(run.status, 0);
    assert.match(run.stdout, /Usage: attention-lens/);
  }
});

test('without a WebGPU adapter the default backend runs the CPU engine (ONNX Runtime) and says why; --backend webgpu fails', { skip: process.platform !== 'linux' && 'hiding adapters via VK_ICD_FILENAMES works on Linux only' }, () => {
  const noAdapter = { VK_ICD_FILENAMES: path.join(repoRoot, 'no-such-icd.json'), ATTENTION_LENS_ADAPTER: '' };
  const args = ['forward', '--model', fixtureDir('llama-f32'), '--token-ids', '1,2,3'];
  const fallback = cli(args, noAdapter);
  assert.equal(fallback.status, 0, fallback.stderr);
  const output = JSON.parse(fallback.stdout) as { backend: { kind: string; reason: string } };
  assert.equal(output.backend.kind, 'onnxruntime');
  assert.match(output.backend.reason, /^no WebGPU adapter \(/);
  assert.deepEqual(ownLines(fallback.stderr).length, 1);
  assert.match(ownLines(fallback.stderr)[0], /^attention-lens: engine: ONNX Runtime .* on the CPU, .*\(no WebGPU adapter \(/);

  const explicit = cli([...args, '--backend', 'webgpu'], noAdapter);
  assert.equal(explicit.status, 1);
  assert.equal(explicit.stdout, '');
  assert.match(ownLines(explicit.stderr).join('\n'), /^attention-lens: --backend webgpu: no WebGPU adapter/);
});

for (const [name, what] of [
  ['qwen3-bf16', 'Qwen3ForCausalLM'],
  ['rope-linear', 'linear rotary scaling'],
  ['rope-dynamic', 'dynamic NTK scaling'],
  ['rope-yarn', 'YaRN in rope_parameters'],
  ['rope-longrope', 'LongRoPE'],
  ['rope-llama3', 'Llama 3 scaling'],
  ['qwen2-sliding', 'a sliding-window layer'],
  ['smollm3-f32', 'SmolLM3 with a NoPE layer'],
  ['starcoder2-bf16', 'StarCoder2'],
  ['phi3-f32', 'Phi-3 with partial rotary'],
  ['granite-bf16', 'Granite multipliers'],
  ['gemma3-bf16', 'Gemma 3 with a local and a global layer'],
  ['gemma2-f32', 'Gemma 2 with soft-capped scores and logits'],
] as const) {
  test(`forward and analyze --backend cpu run ${name} (${what}): the golden logits, and sources on a real file`, () => {
    const golden = readGolden(name);
    const n = golden.tokenIds.length;
    const run = cli(['forward', '--backend', 'cpu', '--model', fixtureDir(name), '--token-ids', golden.tokenIds.join(','), '--attention', `1:1:${n - 1}`]);
    assert.equal(run.status, 0, run.stderr);
    const output = JSON.parse(run.stdout) as { logits: number[]; attention: { probs: number[] }[] };
    const logitDiff = Math.max(...output.logits.map((value, i) => Math.abs(value - golden.lastLogits[i])));
    assert.ok(logitDiff <= 1e-3, `max logit difference ${logitDiff}`);
    output.attention[0].probs.forEach((value, i) => assert.ok(Math.abs(value - golden.attention[1][1][n - 1][i]) <= 1e-4, `attention 1:1:${n - 1}[${i}]`));

    const config = JSON.parse(fs.readFileSync(path.join(fixtureDir(name), 'config.json'), 'utf8')) as { architectures: string[] };
    const file = path.join(repoRoot, 'sample-workspace', 'src', 'money.ts');
    const analysis = cli(['analyze', file, '--model', fixtureDir(name), '--backend', 'cpu', '--json', '--min-distance', '8', '--threshold', '0']);
    assert.equal(analysis.status, 0, analysis.stderr);
    const report = JSON.parse(analysis.stdout) as { model: { architecture: string }; identifiers: { sources: unknown[] }[] };
    assert.equal(report.model.architecture, config.architectures[0]);
    assert.ok(report.identifiers.filter((identifier) => identifier.sources.length > 0).length > 5, 'identifiers with attended sources');
  });
}

test('analyze says which layers see only part of the window, and which have no positional encoding', () => {
  const file = path.join(repoRoot, 'sample-workspace', 'src', 'money.ts');
  const sliding = cli(['analyze', file, '--model', fixtureDir('qwen2-sliding'), '--backend', 'cpu']);
  assert.equal(sliding.status, 0, sliding.stderr);
  assert.match(sliding.stdout, /view: .*layer 1 sees only the last 12 tokens/);
  const json = cli(['analyze', file, '--model', fixtureDir('qwen2-sliding'), '--backend', 'cpu', '--json']);
  assert.deepEqual((JSON.parse(json.stdout) as { model: { slidingWindow: number[] } }).model.slidingWindow, [0, 12]);
  const nope = cli(['analyze', file, '--model', fixtureDir('smollm3-f32'), '--backend', 'cpu', '--layer', '1', '--head', '0']);
  assert.equal(nope.status, 0, nope.stderr);
  assert.match(nope.stdout, /view: layer 1 \(no positional encoding\), head 0/);
});
