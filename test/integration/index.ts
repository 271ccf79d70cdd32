// Entry point VS Code loads as --extensionTestsPath: runs every out/test/integration/suite/*.test.js
// with mocha inside the extension host. A rejected promise is how VS Code learns the run failed,
// so the exit code of the test command follows the tests. The counts also go to
// <test output>/integration-summary.json for scripts/test.mjs's summary line.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

// This file runs as out/test/integration/index.js.
const repoRoot = path.resolve(__dirname, '..', '..', '..');

export async function run(): Promise<void> {
  // Slow on purpose: WebGPU in the offline test browser runs on the CPU (SwiftShader).
  const mocha = new Mocha({ ui: 'tdd', timeout: 120_000, color: true });
  const suiteDir = path.join(__dirname, 'suite');
  const files = fs
    .readdirSync(suiteDir)
    .filter((name) => name.endsWith('.test.js'))
    // ATTENTION_LENS_SUITES=defaultModel,analysis runs only those suites (for local work; CI runs all).
    .filter((name) => !process.env.ATTENTION_LENS_SUITES || process.env.ATTENTION_LENS_SUITES.split(',').some((part) => part && name.includes(part)))
    .sort();
  if (files.length === 0) throw new Error(`no integration suites (*.test.js) in ${suiteDir}; run node esbuild.js first`);
  for (const name of files) mocha.addFile(path.join(suiteDir, name));

  const stats = await new Promise<Mocha.Stats>((resolve) => {
    const runner = mocha.run(() => resolve(runner.stats ?? { suites: 0, tests: 0, passes: 0, pending: 0, failures: 1 } as Mocha.Stats));
  });
  const outputDir = process.env.ATTENTION_LENS_TEST_OUTPUT || path.join(repoRoot, 'test-output');
  fs.mkdirSync(outputDir, { recursive: true });
  const summary = { passes: stats.passes, failures: stats.failures, pending: stats.pending };
  fs.writeFileSync(path.join(outputDir, 'integration-summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  if (stats.failures > 0) throw new Error(`${stats.failures} integration test${stats.failures === 1 ? '' : 's'} failed`);
}
