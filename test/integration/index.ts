// Entry point VS Code loads as --extensionTestsPath: runs every out/test/integration/suite/*.test.js
// with mocha inside the extension host. A rejected promise is how VS Code learns the run failed,
// so the exit code of the test command follows the tests.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

export async function run(): Promise<void> {
  // Slow on purpose: WebGPU in the test browser runs on the CPU (SwiftShader).
  const mocha = new Mocha({ ui: 'tdd', timeout: 120_000, color: true });
  const suiteDir = path.join(__dirname, 'suite');
  const files = fs
    .readdirSync(suiteDir)
    .filter((name) => name.endsWith('.test.js'))
    .sort();
  if (files.length === 0) throw new Error(`no integration suites (*.test.js) in ${suiteDir}; run node esbuild.js first`);
  for (const name of files) mocha.addFile(path.join(suiteDir, name));

  const failures = await new Promise<number>((resolve) => mocha.run(resolve));
  if (failures > 0) throw new Error(`${failures} integration test${failures === 1 ? '' : 's'} failed`);
}
