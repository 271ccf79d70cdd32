/**
 * The CPU engine's process (engine/hosts/nodeOnnx.ts): it never takes its caller down. A caller
 * that exits without disposing it exits cleanly (no abort from ONNX Runtime, the engine process
 * gone with it); a process killed mid-run fails that run with a message naming the signal, and a
 * new engine works; a cancel stops a long run at its next block; a command line that once crashed
 * ONNX Runtime (thousands of token ids as arguments) is harmless.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { EngineProcessExitedError, NodeOnnxEngine } from '../../engine/hosts/nodeOnnx';
import { fixtureDir, readGolden, repoRoot } from './fixtureModels';
import { writeSyntheticLlama } from '../gpu/syntheticModel';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  return !alive(pid);
}

test('a caller that exits without disposing the engine exits cleanly, and the engine process goes with it', async () => {
  const probe = path.join(repoRoot, 'out', 'test', 'support', 'engineExitProbe.js');
  const result = spawnSync(process.execPath, [probe], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.status, 0, `exit ${result.status} signal ${result.signal}: ${result.stderr}`);
  assert.doesNotMatch(result.stderr, /terminate called|Napi::Error|Aborted/);
  const pid = Number(/engine process (\d+)/.exec(result.stdout)?.[1]);
  assert.ok(pid > 0, result.stdout);
  assert.ok(await gone(pid), `the engine process ${pid} outlived its caller`);
});

test('a killed engine process fails the pending run with the signal, and a new engine works', async () => {
  const model = await loadModelFolder(fixtureDir('llama-f32'));
  const ids = readGolden('llama-f32').tokenIds;
  const engine = await NodeOnnxEngine.create(model, { threads: 1, reason: 'test' });
  engine.crashOnNextRunForTest();
  await assert.rejects(engine.run({ tokenIds: ids, spans: [], topK: 2 }), (error: unknown) => {
    assert.ok(error instanceof EngineProcessExitedError);
    assert.equal(error.signal, 'SIGSEGV');
    assert.match(error.message, /^the CPU engine stopped \(signal SIGSEGV\).*the next analysis starts a new one$/);
    return true;
  });
  assert.ok(engine.stopped);
  await assert.rejects(engine.attentionRow(0, 0, 0), EngineProcessExitedError, 'later requests say so at once');
  engine.dispose();
  const next = await NodeOnnxEngine.create(model, { threads: 1, reason: 'test' });
  try {
    assert.equal((await next.run({ tokenIds: ids, spans: [], topK: 2 })).summary.numTokens, ids.length);
  } finally {
    next.dispose();
  }
});

test('a cancel stops a long run at its next block, and the engine answers the next request at once', async () => {
  const folder = writeSyntheticLlama({ vocabSize: 512, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 128, maxPositions: 8192, ropeTheta: 10000 }, 2);
  const model = await loadModelFolder(folder);
  const engine = await NodeOnnxEngine.create(model, { threads: 1, reason: 'test', blockBytes: 4 * 8192 * 4 * 64 });
  try {
    const tokenIds = Array.from({ length: 8192 }, (_, i) => (i * 7) % 512);
    const controller = new AbortController();
    const started = performance.now();
    const run = engine.run({ tokenIds, spans: [], topK: 2 }, controller.signal);
    setTimeout(() => controller.abort(), 300);
    await assert.rejects(run, { name: 'AbortError' });
    // The engine process stopped between blocks: a short run right after comes back quickly.
    const short = await engine.run({ tokenIds: tokenIds.slice(0, 16), spans: [], topK: 2 });
    const elapsed = performance.now() - started;
    assert.equal(short.summary.numTokens, 16);
    console.log(`cancelled an 8,192-token run of 128 blocks after 300 ms; the next run answered ${elapsed.toFixed(0)} ms after the start`);
  } finally {
    engine.dispose();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

test('a caller with a long command line (over 16 KB, which once overflowed ONNX Runtime\'s stack in a worker thread) runs the CPU engine', () => {
  const ids = Array.from({ length: 100 }, (_, i) => (i * 7) % 300).join(',');
  // The fixture's context is 128 tokens: the ids are the first 100, and the rest of the command
  // line (over 16 KB, what crashed ONNX Runtime in a worker thread) is 1,200 attention queries.
  const attention = Array.from({ length: 1200 }, (_, i) => `--attention=0:0:${i % 100}`);
  const args = [path.join(repoRoot, 'out', 'cli.js'), 'forward', '--model', fixtureDir('llama-f32'), '--token-ids', ids, '--backend', 'cpu', ...attention];
  assert.ok(args.join(' ').length > 16_000);
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 256 * 2 ** 20 });
  assert.equal(result.status, 0, `exit ${result.status} signal ${result.signal}: ${result.stderr.slice(-500)}`);
  const output = JSON.parse(result.stdout) as { logits: number[]; attention: unknown[] };
  assert.ok(output.logits.length > 0);
  assert.equal(output.attention.length, 1200);
});

