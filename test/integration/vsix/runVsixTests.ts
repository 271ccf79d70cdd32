// Checks the packaged extension the way a user gets it, as part of the integration tier:
//   1. `npm run package` builds attention-lens.vsix from a clean copy of the sources;
//   2. the .vsix holds what runs (bundles, grammars, codicons, media, the default model) and
//      nothing else (no sources, tests, node_modules, training, source maps);
//   3. `--install-extension attention-lens.vsix` installs it into a fresh extensions folder;
//   4. a real VS Code started with that folder, and an empty stub as its only development extension,
//      loads the installed copy, activates it and analyses a sample file with the default model
//      (suite/*.test.ts).
// Packaging runs in a temporary copy of the files git would commit (node_modules linked), so the
// production build never overwrites the development build in out/ and the repository is untouched.
//
// Which VS Code: $ATTENTION_LENS_VSCODE (a desktop executable) when set, else code-server in
// headless Chromium (scripts/vscode-offline). Prints one line per check; writes the counts to
// <test output>/vsix-summary.json for scripts/test.mjs.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveCliPathFromVSCodeExecutablePath, runTests } from '@vscode/test-electron';
import { readZipEntries, type ZipEntry } from './zipEntries';

// This file runs as out/test/integration/vsix/runVsixTests.js.
const repoRoot = path.resolve(__dirname, '..', '..', '..', '..');
const outputDir = path.resolve(process.env.ATTENTION_LENS_TEST_OUTPUT || path.join(repoRoot, 'test-output'));
const VSIX = 'attention-lens.vsix';

// What the .vsix may hold (vsce renames README.md, LICENSE and CHANGELOG.md as below).
const ALLOWED: RegExp[] = [
  /^extension\.vsixmanifest$/,
  /^\[Content_Types\]\.xml$/,
  /^extension\/(package\.json|readme\.md|LICENSE\.txt|changelog\.md)$/,
  /^extension\/out\/(extension|onnxProcess|prepareWorker)\.js$/,
  // ONNX Runtime for this package's platform only (scripts/package.mjs stages it).
  /^extension\/out\/node_modules\/onnxruntime-node\/(package\.json|LICENSE|dist\/[\w-]+\.js|bin\/napi-v6\/linux\/x64\/[\w.]+)$/,
  /^extension\/out\/node_modules\/onnxruntime-common\/(package\.json|LICENSE|dist\/cjs\/([\w-]+\.js|package\.json))$/,
  /^extension\/out\/webview\/(main\.js|codicon\.css|codicon\.ttf)$/,
  /^extension\/out\/tree-sitter\/[\w-]+\.wasm$/,
  /^extension\/media\/.+/,
  // The README's screenshots, shown on the extension's page in VS Code.
  /^extension\/docs\/images\/[\w-]+\.png$/,
  /^extension\/default-model\/(config\.json|model\.safetensors|tokenizer\.json|MODEL_CARD\.md)$/,
];
// What it must never hold, with the reason printed when it does.
const FORBIDDEN: { pattern: RegExp; why: string }[] = [
  { pattern: /^extension\/src\//, why: 'extension sources' },
  { pattern: /^extension\/webview\//, why: 'webview sources' },
  { pattern: /^extension\/test\//, why: 'tests and fixtures' },
  { pattern: /^extension\/out\/(test|bench)\//, why: 'built tests or benchmarks' },
  { pattern: /(^|\/)node_modules\/(?!onnxruntime-(node|common)\/)/, why: 'node_modules other than ONNX Runtime (the bundles must be self-contained)' },
  { pattern: /\/bin\/napi-v6\/(?!linux\/x64\/)/, why: "another platform's ONNX Runtime binary (the linux-x64 package carries only its own)" },
  { pattern: /^extension\/training\//, why: 'training scripts' },
  { pattern: /^extension\/sample-workspace\//, why: 'the sample workspace' },
  { pattern: /\.map$/, why: 'a source map' },
];
// Files the package must carry; out/tree-sitter/*.wasm and media/* are added from the build.
const REQUIRED = [
  'extension/package.json',
  'extension/readme.md',
  'extension/LICENSE.txt',
  'extension/out/extension.js',
  'extension/out/onnxProcess.js',
  'extension/out/prepareWorker.js',
  'extension/out/node_modules/onnxruntime-node/package.json',
  'extension/out/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
  'extension/out/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
  'extension/out/node_modules/onnxruntime-common/package.json',
  'extension/out/webview/main.js',
  'extension/out/webview/codicon.css',
  'extension/out/webview/codicon.ttf',
  'extension/default-model/config.json',
  'extension/default-model/model.safetensors',
  'extension/default-model/tokenizer.json',
  'extension/default-model/MODEL_CARD.md',
];

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}
const checks: Check[] = [];
// package, contents, install, requires, installed suites: fewer means a step stopped the run early.
const ALL_CHECKS = 5;

function record(name: string, problems: string[], detail: string): boolean {
  const ok = problems.length === 0;
  checks.push({ name, ok, detail: ok ? detail : problems.join('\n      ') });
  console.log(`[vsix] ${ok ? 'ok    ' : 'FAILED'} ${name}${ok ? ` (${detail})` : `:\n      ${problems.join('\n      ')}`}`);
  return ok;
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

/** The files a fresh clone would have: tracked and untracked-but-not-ignored, as git lists them. */
function sourceFiles(): string[] {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (listed.status !== 0) throw new Error(`git ls-files failed in ${repoRoot} (${listed.stderr || listed.error}); the .vsix check packages a copy of the files git lists`);
  // Regular files only: deleted files are still listed, and a linked node_modules is not a source.
  return listed.stdout.split('\0').filter((file) => file && !file.startsWith('node_modules') && fs.lstatSync(path.join(repoRoot, file), { throwIfNoEntry: false })?.isFile());
}

/** Step 1: `npm run package` in a copy of the sources; returns the .vsix path, or undefined. */
function packageCopy(scratch: string): string | undefined {
  const started = Date.now();
  const copy = path.join(scratch, 'source');
  for (const file of sourceFiles()) {
    fs.mkdirSync(path.dirname(path.join(copy, file)), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, file), path.join(copy, file));
  }
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['run', 'package'], { cwd: copy, encoding: 'utf8', maxBuffer: 64 << 20, shell: process.platform === 'win32' });
  const vsix = path.join(copy, VSIX);
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  const problems: string[] = [];
  if (result.status !== 0) problems.push(`npm run package exited with ${result.status ?? result.error}; its output:\n${output.split('\n').slice(-15).join('\n')}`);
  else if (!fs.existsSync(vsix)) problems.push(`npm run package succeeded but wrote no ${VSIX}`);
  const size = fs.existsSync(vsix) ? `${(fs.statSync(vsix).size / 1048576).toFixed(2)} MB` : '';
  return record(`npm run package produces ${VSIX}`, problems, `${size} in ${seconds(started)}`) ? vsix : undefined;
}

/** Step 2: what the package holds, against what the build produced. */
function checkContents(vsix: string, copy: string): boolean {
  let entries: ZipEntry[];
  try {
    entries = readZipEntries(vsix);
  } catch (error) {
    return record(`${VSIX} holds what runs and nothing else`, [String(error instanceof Error ? error.message : error)], '');
  }
  const names = new Set(entries.map((entry) => entry.name));
  const problems: string[] = [];
  for (const entry of entries) {
    const forbidden = FORBIDDEN.find((rule) => rule.pattern.test(entry.name));
    if (forbidden) problems.push(`${entry.name} must not be packaged: ${forbidden.why} (see .vscodeignore)`);
    else if (!ALLOWED.some((pattern) => pattern.test(entry.name))) problems.push(`${entry.name} is not something the extension runs; exclude it in .vscodeignore or add it to ALLOWED in ${path.relative(repoRoot, __filename)}`);
  }
  const listDir = (dir: string, suffix = '') => (fs.existsSync(path.join(copy, dir)) ? fs.readdirSync(path.join(copy, dir)).filter((name) => name.endsWith(suffix)).map((name) => `${dir}/${name}`) : []);
  const grammars = listDir('out/tree-sitter', '.wasm');
  if (grammars.length === 0) problems.push('the production build wrote no out/tree-sitter/*.wasm (esbuild.js copyStaticAssets)');
  const required = [...REQUIRED, ...grammars.map((file) => `extension/${file}`), ...listDir('media').map((file) => `extension/${file}`)];
  for (const name of required) if (!names.has(name)) problems.push(`${name} is missing (check .vscodeignore and esbuild.js)`);
  // Built files and the model must arrive whole (a Git LFS pointer or truncated copy would not).
  for (const entry of entries) {
    const relative = entry.name.replace(/^extension\//, '');
    if (!/^(out|default-model|media)\//.test(relative) || !fs.existsSync(path.join(copy, relative))) continue;
    const expected = fs.statSync(path.join(copy, relative)).size;
    if (entry.size !== expected) problems.push(`${entry.name} is ${entry.size} bytes in the package but ${expected} bytes in the build`);
  }
  const files = entries.filter((entry) => entry.name.startsWith('extension/'));
  const total = files.reduce((sum, entry) => sum + entry.size, 0);
  return record(`${VSIX} holds what runs and nothing else`, problems, `${files.length} files, ${(total / 1048576).toFixed(1)} MB unpacked (${(fs.statSync(vsix).size / 1048576).toFixed(1)} MB packed): bundles, ONNX Runtime for linux-x64, ${grammars.length} tree-sitter wasm, codicons, media, default model; no sources, tests, other node_modules, training or maps`);
}

/** Node built-ins, `vscode` and the ONNX Runtime the package ships are all the installed extension host bundles may require. */
function checkRequires(installedDir: string): boolean {
  const bundle = path.join(installedDir, 'out', 'extension.js');
  const problems: string[] = [];
  const allowed = new Set(['vscode', 'onnxruntime-node', ...builtinModules, ...builtinModules.map((name) => `node:${name}`)]);
  if (!fs.existsSync(path.join(installedDir, 'out', 'node_modules', 'onnxruntime-node', 'package.json'))) problems.push('the installed copy has no out/node_modules/onnxruntime-node (scripts/package.mjs stages it)');
  const required = fs.existsSync(bundle) ? [...new Set([...fs.readFileSync(bundle, 'utf8').matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)].map((match) => match[1]))] : [];
  if (!fs.existsSync(bundle)) problems.push(`${bundle} is missing`);
  for (const name of required) if (!allowed.has(name)) problems.push(`out/extension.js requires "${name}", which is not in the package (bundle it, or ship it)`);
  return record('the installed out/extension.js needs nothing outside the package', problems, `requires only ${required.sort().join(', ')}`);
}

interface Installer {
  description: string;
  vscodeExecutable: string;
  install(vsix: string, extensionsDir: string, userDataDir: string, stateDir: string): ReturnType<typeof spawnSync>;
}

function chooseInstaller(): Installer {
  const desktop = process.env.ATTENTION_LENS_VSCODE;
  if (desktop) {
    if (!fs.existsSync(desktop)) throw new Error(`ATTENTION_LENS_VSCODE is ${desktop}, which does not exist; unset it or point it at a VS Code executable`);
    return {
      description: `desktop VS Code (${desktop})`,
      vscodeExecutable: desktop,
      install: (vsix, extensionsDir, userDataDir) => spawnSync(resolveCliPathFromVSCodeExecutablePath(desktop), ['--install-extension', vsix, '--extensions-dir', extensionsDir, '--user-data-dir', userDataDir], { encoding: 'utf8' }),
    };
  }
  const tools = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'tools.mjs'), '--print-json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (tools.status !== 0) throw new Error('the offline VS Code toolchain is not available (node scripts/tools.mjs failed; its output is above)');
  const { node24, codeServerEntry } = JSON.parse(tools.stdout) as { node24: string; codeServerEntry: string };
  return {
    description: 'code-server in headless Chromium',
    vscodeExecutable: path.join(repoRoot, 'scripts', 'vscode-offline', 'code-server-as-vscode'),
    install: (vsix, extensionsDir, userDataDir, stateDir) => {
      // Keep code-server's own state in the scratch folder, as scripts/vscode-offline does.
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const dir of ['config', 'data', 'cache', 'tmp']) fs.mkdirSync(path.join(stateDir, dir), { recursive: true });
      Object.assign(env, { XDG_CONFIG_HOME: path.join(stateDir, 'config'), XDG_DATA_HOME: path.join(stateDir, 'data'), XDG_CACHE_HOME: path.join(stateDir, 'cache'), TMPDIR: path.join(stateDir, 'tmp') });
      return spawnSync(node24, [codeServerEntry, '--install-extension', vsix, '--extensions-dir', extensionsDir, '--user-data-dir', userDataDir], { encoding: 'utf8', env });
    },
  };
}

/** Step 3: install the .vsix; returns the installed extension's folder, or undefined. */
function install(installer: Installer, vsix: string, scratch: string): string | undefined {
  const started = Date.now();
  const extensionsDir = path.join(scratch, 'extensions');
  const { publisher, name, version } = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { publisher: string; name: string; version: string };
  const result = installer.install(vsix, extensionsDir, path.join(scratch, 'user-data'), path.join(scratch, 'state'));
  const installedDir = path.join(extensionsDir, `${publisher}.${name}-${version}`);
  const problems: string[] = [];
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  if (result.status !== 0) problems.push(`--install-extension exited with ${result.status ?? result.error}: ${output}`);
  else if (!fs.existsSync(path.join(installedDir, 'package.json'))) problems.push(`--install-extension reported success but ${installedDir} has no package.json: ${output}`);
  return record(`--install-extension ${VSIX} installs ${publisher}.${name} ${version}`, problems, `${installer.description}, into ${path.relative(scratch, installedDir)} of a fresh extensions folder, in ${seconds(started)}`) ? installedDir : undefined;
}

/**
 * An empty extension to stand as the development extension: VS Code (desktop and web) runs
 * --extensionTestsPath only when some --extensionDevelopmentPath is given. Its id differs from
 * Attention Lens's, so it cannot shadow the installed copy.
 */
function testHostStub(scratch: string): string {
  const stub = path.join(scratch, 'vsix-test-host');
  fs.mkdirSync(stub, { recursive: true });
  const manifest = { name: 'vsix-test-host', publisher: 'attention-lens-tests', version: '0.0.0', engines: { vscode: '*' }, description: 'Empty development extension under which the .vsix tests run.' };
  fs.writeFileSync(path.join(stub, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return stub;
}

/** Step 4: the suites in a VS Code with only the installed extension. */
async function runInstalledSuites(installer: Installer, scratch: string): Promise<{ passes: number; failures: number; pending: number }> {
  const started = Date.now();
  const workspace = path.join(scratch, 'sample-workspace');
  fs.cpSync(path.join(repoRoot, 'sample-workspace'), workspace, { recursive: true });
  const suiteOutput = path.join(outputDir, 'vsix');
  const summaryFile = path.join(suiteOutput, 'vsix-suite-summary.json');
  fs.rmSync(summaryFile, { force: true });
  let failure: string | undefined;
  try {
    await runTests({
      vscodeExecutablePath: installer.vscodeExecutable,
      // VS Code runs extension tests only in extension development mode, so a stub with another id
      // is the development extension; the installed copy is the only Attention Lens there is.
      extensionDevelopmentPath: testHostStub(scratch),
      extensionTestsPath: path.join(repoRoot, 'out', 'test', 'integration', 'vsix', 'index.js'),
      extensionTestsEnv: { ATTENTION_LENS_VSIX_EXTENSIONS_DIR: path.join(scratch, 'extensions'), ATTENTION_LENS_TEST_OUTPUT: suiteOutput },
      launchArgs: [workspace, '--skip-welcome', '--skip-release-notes', `--user-data-dir=${path.join(scratch, 'user-data')}`, `--extensions-dir=${path.join(scratch, 'extensions')}`],
    });
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
  }
  const summary = fs.existsSync(summaryFile) ? (JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as { passes: number; failures: number; pending: number }) : undefined;
  const problems = failure ? [`the suites in test/integration/vsix/suite failed (${failure}); logs in ${suiteOutput}`] : [];
  if (!summary && !failure) problems.push(`the suites wrote no ${summaryFile}`);
  record('the installed extension loads from the extensions folder, activates and analyses with the default model', problems, `${summary?.passes ?? 0} tests passed in ${installer.description} in ${seconds(started)}`);
  return summary ?? { passes: 0, failures: 1, pending: 0 };
}

async function main(): Promise<number> {
  const started = Date.now();
  console.log('[vsix] checking the packaged extension: package, contents, install, activation');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-vsix-'));
  let suites = { passes: 0, failures: 0, pending: 0 };
  try {
    const vsix = packageCopy(scratch);
    if (vsix) {
      checkContents(vsix, path.join(scratch, 'source'));
      // Installing and running show whether the package works even when its contents check failed.
      const installer = chooseInstaller();
      const installedDir = install(installer, vsix, scratch);
      if (installedDir) {
        checkRequires(installedDir);
        suites = await runInstalledSuites(installer, scratch);
      }
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  // The in-VS Code suite is counted as its tests; the other checks count one each.
  const staticChecks = checks.filter((check) => !check.name.startsWith('the installed extension loads'));
  const summary = {
    passes: staticChecks.filter((check) => check.ok).length + suites.passes,
    failures: staticChecks.filter((check) => !check.ok).length + suites.failures,
    pending: suites.pending,
  };
  const failed = checks.filter((check) => !check.ok).length + (checks.length < ALL_CHECKS ? 1 : 0);
  if (failed > 0 && summary.failures === 0) summary.failures = 1;
  fs.mkdirSync(outputDir, { recursive: true });
  fs.writeFileSync(path.join(outputDir, 'vsix-summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`[vsix] ${failed === 0 ? 'passed' : 'FAILED'}: ${checks.filter((check) => check.ok).length} of ${checks.length} checks passed${checks.length < ALL_CHECKS ? ' (later checks did not run)' : ''} in ${seconds(started)}`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`[vsix] ${error instanceof Error ? error.stack ?? error.message : error}`);
    process.exit(1);
  },
);
