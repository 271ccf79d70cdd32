// Builds every bundle the project runs:
//   out/extension.js        extension host (node, cjs, `vscode` external)
//   out/webview/main.js     webview: panel UI + WebGPU engine (browser, esm, .wgsl as text)
//   out/cli.js              the `attention-lens` command line (node, cjs)
//   out/onnxProcess.js      the ONNX Runtime engine's own process (node, cjs)
//   out/test/**.js          unit, gpu and integration tests (node, cjs)
//   out/bench/*.js          benchmarks (node, cjs)
// Usage: node esbuild.js [--watch] [--production]
const esbuild = require('esbuild');
const fs = require('node:fs');
const path = require('node:path');

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

/** Lists `dir`'s files (recursively) whose names end with `suffix`, as repo-relative paths. */
function filesUnder(dir, suffix) {
  if (!fs.existsSync(dir)) return [];
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...filesUnder(full, suffix));
    else if (entry.name.endsWith(suffix)) found.push(full);
  }
  return found.sort();
}

const common = {
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'warning',
  loader: { '.wgsl': 'text' },
  target: 'es2022',
};

// Native or runtime-resolved packages stay outside the Node bundles.
const nodeExternals = ['vscode', 'webgpu', 'onnxruntime-node', 'mocha', 'playwright-core', '@vscode/test-electron', 'node-llama-cpp'];

const builds = [
  {
    ...common,
    entryPoints: { extension: 'src/extension.ts' },
    outdir: 'out',
    platform: 'node',
    format: 'cjs',
    external: nodeExternals,
  },
  {
    ...common,
    entryPoints: { cli: 'src/cli/main.ts' },
    outdir: 'out',
    platform: 'node',
    format: 'cjs',
    external: nodeExternals,
    banner: { js: '#!/usr/bin/env node' },
  },
  {
    // Tree-sitter and the tokenizer on a worker thread of the extension host (src/node/prepareWorkerClient.ts).
    ...common,
    entryPoints: { prepareWorker: 'src/node/prepareWorker.ts' },
    outdir: 'out',
    platform: 'node',
    format: 'cjs',
    external: nodeExternals,
  },
  {
    // The ONNX Runtime engine's process (engine/hosts/nodeOnnx.ts forks it).
    ...common,
    entryPoints: { onnxProcess: 'engine/onnx/onnxProcess.ts' },
    outdir: 'out',
    platform: 'node',
    format: 'cjs',
    external: nodeExternals,
  },
  {
    ...common,
    entryPoints: { main: 'webview/main.ts' },
    outdir: 'out/webview',
    platform: 'browser',
    format: 'esm',
  },
  {
    ...common,
    entryPoints: [
      ...filesUnder('test/unit', '.test.ts'),
      ...filesUnder('test/gpu', '.test.ts'),
      ...filesUnder('test/integration', '.ts'),
      ...filesUnder('bench', '.ts'),
      ...filesUnder('test/fuzz', '.ts'),
      'test/support/engineExitProbe.ts',
    ],
    outbase: '.',
    outdir: 'out',
    platform: 'node',
    format: 'cjs',
    external: nodeExternals,
  },
].filter((options) => {
  const entries = Array.isArray(options.entryPoints) ? options.entryPoints : Object.values(options.entryPoints);
  return entries.length > 0 && entries.every((entry) => fs.existsSync(entry));
});

/** Grammars the extension parses definitions and imports with (see src/analysis/definitionQueries.ts). */
const GRAMMARS = ['tree-sitter', 'tree-sitter-typescript', 'tree-sitter-tsx', 'tree-sitter-python', 'tree-sitter-go', 'tree-sitter-rust', 'tree-sitter-java', 'tree-sitter-cpp', 'tree-sitter-c-sharp'];

/**
 * Files loaded at run time rather than bundled (node_modules is not in the .vsix): codicons for the
 * webview, and the tree-sitter runtime and grammar .wasm files for the extension host.
 */
function copyStaticAssets() {
  const copy = (from, toDir, name) => {
    fs.mkdirSync(toDir, { recursive: true });
    fs.copyFileSync(path.join(from, name), path.join(toDir, name));
  };
  for (const file of ['codicon.css', 'codicon.ttf']) copy(path.join(__dirname, 'node_modules', '@vscode', 'codicons', 'dist'), path.join(__dirname, 'out', 'webview'), file);
  for (const grammar of GRAMMARS) copy(path.join(__dirname, 'node_modules', '@vscode', 'tree-sitter-wasm', 'wasm'), path.join(__dirname, 'out', 'tree-sitter'), `${grammar}.wasm`);
}

async function main() {
  if (watch) {
    const contexts = await Promise.all(builds.map((options) => esbuild.context(options)));
    copyStaticAssets();
    await Promise.all(contexts.map((context) => context.watch()));
    console.log(`[esbuild] watching ${contexts.length} bundles`);
    return;
  }
  const started = Date.now();
  await Promise.all(builds.map((options) => esbuild.build(options)));
  copyStaticAssets();
  const cli = path.join(__dirname, 'out', 'cli.js');
  if (fs.existsSync(cli)) fs.chmodSync(cli, 0o755);
  console.log(`[esbuild] built ${builds.length} bundles in ${Date.now() - started} ms`);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
