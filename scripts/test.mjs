#!/usr/bin/env node
// Runs the test tiers: `node scripts/test.mjs [unit] [gpu] [integration]` (default: all three, in
// that order). Builds first. Prints each tier's result and a closing "N passed, N failed" line.
//   unit         node --test on pure logic (no GPU, no VS Code)
//   gpu          node --test on WGSL kernels through the npm `webgpu` package (Dawn); a software
//                Vulkan adapter (SwiftShader from Debian's chromium) is used when no GPU is present.
//                With CI=true a missing adapter fails the run; elsewhere the tier skips with a reason.
//   integration  mocha suites inside a real VS Code (desktop when it can be had, else code-server
//                driven by headless Chromium; see test/integration/runTests.ts), then the packaged
//                .vsix built, installed and run there (test/integration/vsix/runVsixTests.ts)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSystemPackages } from './tools.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const requested = process.argv.slice(2);
const tiers = requested.length ? requested : ['unit', 'gpu', 'integration'];
for (const tier of tiers) {
  if (!['unit', 'gpu', 'integration'].includes(tier)) {
    console.error(`Unknown test tier "${tier}". Use unit, gpu or integration.`);
    process.exit(2);
  }
}

const outputDir = process.env.ATTENTION_LENS_TEST_OUTPUT ?? join(root, 'test-output');
mkdirSync(outputDir, { recursive: true });

function run(command, args, env = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

/**
 * Environment for the GPU tiers. The Node host finds an adapter itself (a real GPU's Vulkan driver,
 * else SwiftShader from Debian's chromium; see engine/hosts/nodeWebGpu.ts); the Vulkan loader only
 * needs a private runtime directory so it does not log an error line.
 */
function gpuEnv() {
  const env = {};
  if (!process.env.XDG_RUNTIME_DIR) {
    const runtime = join(outputDir, 'xdg-runtime');
    mkdirSync(runtime, { recursive: true, mode: 0o700 });
    env.XDG_RUNTIME_DIR = runtime;
  }
  return env;
}

/** Runs node's test runner on every *.test.js under `dir`; returns {status, pass, fail, skipped}. */
function nodeTests(dir, env) {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.test.js')).sort().map((f) => join(dir, f)) : [];
  if (files.length === 0) return { status: 1, pass: 0, fail: 0, skipped: 0, note: `no test files in ${dir}` };
  const tap = join(outputDir, `${dir.split('/').pop()}.tap`);
  rmSync(tap, { force: true });
  const status = run(process.execPath, ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files], env);
  const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
  const count = (name) => Number((text.match(new RegExp(`^# ${name} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
  return { status, pass: count('pass'), fail: count('fail') + count('cancelled'), skipped: count('skipped') + count('todo') };
}

if (tiers.includes('gpu') || tiers.includes('integration')) {
  // Chromium (SwiftShader for WebGPU without a GPU, the browser of the offline VS Code) and friends.
  try {
    await ensureSystemPackages({ log: (line) => console.log(line) });
  } catch (error) {
    console.error(`[test] ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  }
}

console.log('[test] building');
if (run('node', ['esbuild.js']) !== 0) process.exit(1);

const results = [];
for (const tier of tiers) {
  console.log(`\n[test] ===== ${tier} tier =====`);
  let result;
  if (tier === 'unit') result = nodeTests(join(root, 'out', 'test', 'unit'), {});
  else if (tier === 'gpu') result = nodeTests(join(root, 'out', 'test', 'gpu'), gpuEnv());
  else {
    const summaryFile = join(outputDir, 'integration-summary.json');
    rmSync(summaryFile, { force: true });
    const status = run(process.execPath, [join(root, 'out', 'test', 'integration', 'runTests.js')], { ...gpuEnv(), ATTENTION_LENS_TEST_OUTPUT: outputDir });
    const summary = existsSync(summaryFile) ? JSON.parse(readFileSync(summaryFile, 'utf8')) : { passes: 0, failures: status === 0 ? 0 : 1, pending: 0 };
    result = { status, pass: summary.passes, fail: summary.failures, skipped: summary.pending };
  }
  results.push({ tier, ...result });
  // --- The packaged extension (part of the integration tier): npm run package, the .vsix's
  // contents, --install-extension, and the installed copy activating and analysing in VS Code.
  // See test/integration/vsix/runVsixTests.ts.
  if (tier === 'integration') {
    const summaryFile = join(outputDir, 'vsix-summary.json');
    rmSync(summaryFile, { force: true });
    const status = run(process.execPath, [join(root, 'out', 'test', 'integration', 'vsix', 'runVsixTests.js')], { ...gpuEnv(), ATTENTION_LENS_TEST_OUTPUT: outputDir });
    const summary = existsSync(summaryFile) ? JSON.parse(readFileSync(summaryFile, 'utf8')) : { passes: 0, failures: status === 0 ? 0 : 1, pending: 0 };
    results.push({ tier: '  .vsix', status, pass: summary.passes, fail: summary.failures, skipped: summary.pending });
  }
  // --- end of the packaged-extension check.
}

console.log('\n[test] ===== summary =====');
let pass = 0;
let fail = 0;
let skipped = 0;
for (const r of results) {
  console.log(`[test] ${r.tier.padEnd(12)} ${r.status === 0 ? 'ok    ' : 'FAILED'} ${r.pass} passed, ${r.fail} failed, ${r.skipped} skipped${r.note ? ` (${r.note})` : ''}`);
  pass += r.pass;
  fail += r.fail + (r.status !== 0 && r.fail === 0 ? 1 : 0);
  skipped += r.skipped;
}
console.log(`${pass} passed, ${fail} failed, ${skipped} skipped`);
process.exit(results.every((r) => r.status === 0) ? 0 : 1);
