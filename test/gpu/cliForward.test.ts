/**
 * The built CLI on the WebGPU path, as a user runs it: `attention-lens forward --backend webgpu`
 * on every fixture model (Llama, Qwen2, Qwen3, GPT-2; every rotary scaling; F32, F16, BF16, sharded) matches the independent
 * PyTorch golden outputs: logits within 1e-3, attention probabilities within 1e-4.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { FIXTURE_MODELS, fixtureDir, maxAbsDiff, readGolden, repoRoot, withAdapter } from './gpuTestSupport';

const CLI = path.join(repoRoot, 'out', 'cli.js');

function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: repoRoot });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

interface ForwardOutput {
  tokenIds: number[];
  logits: number[];
  attention: { layer: number; head: number; query: number; probs: number[] }[];
  backend: { kind: string; adapter?: { vendor: string; architecture: string } };
}

for (const name of FIXTURE_MODELS) {
  test(`forward --backend webgpu on ${name} matches the PyTorch golden logits and attention`, async (t) => {
    await withAdapter(t, async () => {
      const golden = readGolden(name);
      const n = golden.tokenIds.length;
      const layers = golden.attention.length;
      const heads = golden.attention[0].length;
      const queries = [[0, 0, n - 1], [layers - 1, heads - 1, n - 1], [layers - 1, 0, Math.floor(n / 2)]];
      const run = await runCli(['forward', '--backend', 'webgpu', '--model', fixtureDir(name), '--token-ids', golden.tokenIds.join(','), ...queries.flatMap(([l, h, q]) => ['--attention', `${l}:${h}:${q}`])]);
      assert.equal(run.status, 0, run.stderr);
      const output = JSON.parse(run.stdout) as ForwardOutput;
      assert.equal(output.backend.kind, 'webgpu');
      assert.deepEqual(output.tokenIds, golden.tokenIds);
      const logitDiff = maxAbsDiff(output.logits, golden.lastLogits);
      let probDiff = 0;
      for (const row of output.attention) {
        assert.equal(row.probs.length, row.query + 1);
        probDiff = Math.max(probDiff, maxAbsDiff(row.probs, golden.attention[row.layer][row.head][row.query]));
      }
      console.log(`cli forward ${name} on ${output.backend.adapter?.vendor} ${output.backend.adapter?.architecture}: max |logit diff| ${logitDiff.toExponential(2)}, max |prob diff| ${probDiff.toExponential(2)}`);
      assert.ok(logitDiff <= 1e-3, `logits differ by ${logitDiff}`);
      assert.ok(probDiff <= 1e-4, `probabilities differ by ${probDiff}`);
    });
  });
}

test('forward --backend webgpu on the embedded default model matches the PyTorch model within 1e-3', async (t) => {
  await withAdapter(t, async () => {
    const folder = path.join(repoRoot, 'default-model');
    const golden = JSON.parse(await import('node:fs').then((fs) => fs.promises.readFile(path.join(folder, 'golden.json'), 'utf8'))) as { tokenIds: number[]; lastLogits: number[]; attention: number[][][][] };
    const n = golden.tokenIds.length;
    const rows = [[0, 0, n - 1], [1, 7, n - 1], [1, 3, Math.floor(n / 2)]];
    const run = await runCli(['forward', '--backend', 'webgpu', '--model', folder, '--token-ids', golden.tokenIds.join(','), ...rows.flatMap(([l, h, q]) => ['--attention', `${l}:${h}:${q}`])]);
    assert.equal(run.status, 0, run.stderr);
    const output = JSON.parse(run.stdout) as ForwardOutput;
    const logitDiff = maxAbsDiff(output.logits, golden.lastLogits);
    const probDiff = Math.max(...output.attention.map((row) => maxAbsDiff(row.probs, golden.attention[row.layer][row.head][row.query])));
    console.log(`cli forward default-model on WebGPU: max |logit diff| vs PyTorch ${logitDiff.toExponential(2)}, max |prob diff| ${probDiff.toExponential(2)}`);
    assert.ok(logitDiff <= 1e-3, `logits differ by ${logitDiff}`);
    assert.ok(probDiff <= 1e-4, `probabilities differ by ${probDiff}`);
  });
});
