#!/usr/bin/env node
// Builds the .vsix packages. ONNX Runtime (the CPU engine) is a native library, so each platform
// gets its own package carrying only its binary (VS Code installs the one that matches), and a
// universal package without it runs the reference engine on every other platform and says so.
//
//   node scripts/package.mjs                 this machine's platform -> attention-lens.vsix
//   node scripts/package.mjs --target T      one target (linux-x64, ..., or universal) -> attention-lens-T.vsix
//   node scripts/package.mjs --all           every target ONNX Runtime ships, plus universal; prints sizes
//
// The package holds out/node_modules/onnxruntime-{node,common} staged from node_modules (only the
// target's binary); out/extension.js finds them there with Node's ordinary module resolution.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** VS Code targets for which onnxruntime-node ships a binary: target -> [platform, arch]. */
const ONNX_TARGETS = {
  'linux-x64': ['linux', 'x64'],
  'linux-arm64': ['linux', 'arm64'],
  'darwin-arm64': ['darwin', 'arm64'],
  'win32-x64': ['win32', 'x64'],
  'win32-arm64': ['win32', 'arm64'],
};

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${result.status ?? result.error}`);
}

/** Only what runs: no type declarations or source maps. */
const runtimeOnly = (source) => !/\.(d\.ts|map)$/.test(source);

/** Copies onnxruntime-node (JS + one platform's binary) and onnxruntime-common into out/node_modules. */
function stageOnnxRuntime(target) {
  const staged = join(root, 'out', 'node_modules');
  rmSync(staged, { recursive: true, force: true });
  if (target === 'universal') return;
  const [platform, arch] = ONNX_TARGETS[target];
  const from = join(root, 'node_modules', 'onnxruntime-node');
  const to = join(staged, 'onnxruntime-node');
  const binaries = join('bin', 'napi-v6', platform, arch);
  if (!existsSync(join(from, binaries))) throw new Error(`node_modules/onnxruntime-node has no ${binaries}; run npm ci`);
  for (const part of ['package.json', 'LICENSE', 'dist', binaries]) if (existsSync(join(from, part))) cpSync(join(from, part), join(to, part), { recursive: true, filter: runtimeOnly });
  const common = join(root, 'node_modules', 'onnxruntime-common');
  for (const part of ['package.json', 'LICENSE', join('dist', 'cjs')]) if (existsSync(join(common, part))) cpSync(join(common, part), join(staged, 'onnxruntime-common', part), { recursive: true, filter: runtimeOnly });
  mkdirSync(staged, { recursive: true });
}

function packageTarget(target, out) {
  stageOnnxRuntime(target);
  const args = ['vsce', 'package', '--no-dependencies', '--no-rewrite-relative-links', '--out', out];
  if (target !== 'universal') args.push('--target', target);
  run('npx', args);
  const size = statSync(join(root, out)).size;
  console.log(`[package] ${out}: ${(size / 1048576).toFixed(1)} MB (${target === 'universal' ? 'no ONNX Runtime: the reference engine runs' : `ONNX Runtime for ${target}`})`);
  return { target, out, size };
}

const args = process.argv.slice(2);
const hostTarget = `${process.platform}-${process.arch}`;
run('node', ['esbuild.js', '--production']);
const built = [];
try {
  if (args.includes('--all')) {
    for (const target of [...Object.keys(ONNX_TARGETS), 'universal']) built.push(packageTarget(target, `attention-lens-${target}.vsix`));
  } else {
    const index = args.indexOf('--target');
    const target = index >= 0 ? args[index + 1] : ONNX_TARGETS[hostTarget] ? hostTarget : 'universal';
    if (target !== 'universal' && !ONNX_TARGETS[target]) throw new Error(`--target must be one of ${[...Object.keys(ONNX_TARGETS), 'universal'].join(', ')}, not "${target}"`);
    built.push(packageTarget(target, index >= 0 ? `attention-lens-${target}.vsix` : 'attention-lens.vsix'));
  }
} finally {
  // The development build resolves onnxruntime-node from the repository's node_modules.
  rmSync(join(root, 'out', 'node_modules'), { recursive: true, force: true });
}
if (built.length > 1) {
  console.log('\n| package | size |\n|---|---|');
  for (const b of built) console.log(`| ${b.out} | ${(b.size / 1048576).toFixed(1)} MB |`);
}

