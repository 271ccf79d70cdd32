// Entry point VS Code loads as --extensionTestsPath for the packaged-extension check
// (runVsixTests.ts): runs out/test/integration/vsix/suite/*.test.js with mocha inside the extension
// host, where Attention Lens is the copy installed from the .vsix. The counts go to
// <test output>/vsix-suite-summary.json for runVsixTests to report.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

export async function run(): Promise<void> {
  // Slow on purpose: WebGPU in the offline test browser runs on the CPU (SwiftShader).
  const mocha = new Mocha({ ui: 'tdd', timeout: 120_000, color: true });
  const suiteDir = path.join(__dirname, 'suite');
  const files = fs.existsSync(suiteDir) ? fs.readdirSync(suiteDir).filter((name) => name.endsWith('.test.js')).sort() : [];
  if (files.length === 0) throw new Error(`no packaged-extension suites (*.test.js) in ${suiteDir}; run node esbuild.js first`);
  for (const name of files) mocha.addFile(path.join(suiteDir, name));

  const stats = await new Promise<Mocha.Stats>((resolve) => {
    const runner = mocha.run(() => resolve(runner.stats ?? ({ suites: 0, tests: 0, passes: 0, pending: 0, failures: 1 } as Mocha.Stats)));
  });
  const outputDir = process.env.ATTENTION_LENS_TEST_OUTPUT;
  if (outputDir) {
    fs.mkdirSync(outputDir, { recursive: true });
    const summary = { passes: stats.passes, failures: stats.failures, pending: stats.pending };
    fs.writeFileSync(path.join(outputDir, 'vsix-suite-summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  }
  if (stats.failures > 0) throw new Error(`${stats.failures} packaged-extension test${stats.failures === 1 ? '' : 's'} failed`);
}
