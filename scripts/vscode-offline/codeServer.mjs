// Starts code-server (a real VS Code workbench served over http) for the integration tests and for
// `npm start`, isolated in a temporary folder and stoppable as a whole process group.
// Facts behind each flag: /work/shared/notes/vscode-offline-tests.md.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const HOST = '127.0.0.1';

/** Resolves to `preferred` when it is free on HOST, else to a port the kernel picks. */
export function freePort(preferred = 0) {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (error) => {
      if (preferred !== 0 && error.code === 'EADDRINUSE') resolve(freePort(0));
      else reject(error);
    });
    server.listen(preferred, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The vscode-remote URI under which the workbench's extension host sees a local path. */
export function remoteUri(port, absolutePath) {
  return `vscode-remote://${HOST}:${port}${path.resolve(absolutePath).split(path.sep).map(encodeURIComponent).join('/')}`;
}

/**
 * The address that opens `folder` (or a .code-workspace file) in the workbench with the given
 * development extensions loaded and, when `extensionTestsPath` is set, runs those tests.
 */
export function workbenchUrl({ port, folder, extensionDevelopmentPaths = [], extensionTestsPath, openFile }) {
  const payload = extensionDevelopmentPaths.map((extensionPath) => ['extensionDevelopmentPath', remoteUri(port, extensionPath)]);
  if (extensionTestsPath) payload.push(['extensionTestsPath', remoteUri(port, extensionTestsPath)]);
  // The workbench opens this file in an editor once it starts (VS Code web's "openFile" payload).
  if (openFile) payload.push(['openFile', remoteUri(port, openFile)]);
  const query = new URLSearchParams();
  if (folder) query.set(folder.endsWith('.code-workspace') ? 'workspace' : 'folder', path.resolve(folder));
  if (payload.length > 0) query.set('payload', JSON.stringify(payload));
  return `http://${HOST}:${port}/?${query}`;
}

function healthy(port) {
  return new Promise((resolve) => {
    const request = http.get({ host: HOST, port, path: '/healthz', timeout: 1000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on('error', () => resolve(false));
    request.on('timeout', () => request.destroy());
  });
}

/**
 * Starts code-server and resolves once /healthz answers.
 * @param {object} options
 * @param {{node24: string, codeServerEntry: string}} options.tools from scripts/tools.mjs
 * @param {string} options.stateDir a private folder for XDG_*, TMPDIR and the config file
 * @param {string} options.userDataDir
 * @param {string} options.extensionsDir
 * @param {number} [options.port] 0 or absent: any free port
 * @param {string} [options.folder] folder or .code-workspace opened by default
 * @param {Record<string, string>} [options.env] added to the environment, which the extension host inherits
 * @param {(chunk: Buffer) => void} [options.onOutput] receives code-server's stdout and stderr
 */
export async function startCodeServer({ tools, stateDir, userDataDir, extensionsDir, port = 0, folder, env = {}, onOutput = () => {} }) {
  port = await freePort(port);
  for (const dir of ['config', 'data', 'cache', 'tmp']) fs.mkdirSync(path.join(stateDir, dir), { recursive: true });
  fs.mkdirSync(userDataDir, { recursive: true });
  fs.mkdirSync(extensionsDir, { recursive: true });
  seedUserSettings(userDataDir);
  const configFile = path.join(stateDir, 'config', 'code-server.yaml');
  fs.writeFileSync(configFile, 'auth: none\n');

  const childEnv = { ...process.env };
  // A caller started from a VS Code terminal must not make the extension host talk to that VS Code.
  for (const key of Object.keys(childEnv)) if (key.startsWith('VSCODE_') || key === 'ELECTRON_RUN_AS_NODE') delete childEnv[key];
  Object.assign(childEnv, {
    XDG_CONFIG_HOME: path.join(stateDir, 'config'),
    XDG_DATA_HOME: path.join(stateDir, 'data'),
    XDG_CACHE_HOME: path.join(stateDir, 'cache'),
    TMPDIR: path.join(stateDir, 'tmp'),
    ...env,
  });
  const args = [
    tools.codeServerEntry,
    '--auth', 'none',
    '--bind-addr', `${HOST}:${port}`,
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--reconnection-grace-time', '5',
    '--user-data-dir', userDataDir,
    '--extensions-dir', extensionsDir,
    '--config', configFile,
    // Makes the workbench call window.codeAutomationExit/Log, which is how test results come back.
    '--vscode-option', 'enable-smoke-test-driver',
    ...(folder ? [path.resolve(folder)] : []),
  ];
  // Its own process group: code-server spawns a file watcher, pty host, extension host and agent
  // host, and stop() must end all of them.
  const child = spawn(tools.node24, args, { env: childEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  let stopping;
  const stop = () => {
    stopping ??= (async () => {
      const signalGroup = (signal) => {
        try {
          process.kill(-child.pid, signal);
        } catch {}
      };
      signalGroup('SIGTERM');
      const timer = new Promise((resolve) => setTimeout(resolve, 5000).unref());
      await Promise.race([exited, timer]);
      // Children of the group may outlive code-server itself; SIGKILL whatever remains.
      signalGroup('SIGKILL');
    })();
    return stopping;
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    const early = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve(undefined), 250))]);
    if (early) throw new Error(`code-server exited before it was ready (${early.signal ?? `exit ${early.code}`}); its output is above`);
    if (await healthy(port)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`code-server did not answer http://${HOST}:${port}/healthz within 60 s`);
    }
  }
  return { port, process: child, exited, stop };
}

// Settings for a quiet workbench on a closed network, written only where the user data folder has
// none yet: no AI chat side bar, no welcome page, no update or gallery checks.
const quietSettings = {
  'chat.disableAIFeatures': true,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'update.mode': 'none',
  'telemetry.telemetryLevel': 'off',
};

function seedUserSettings(userDataDir) {
  const settingsFile = path.join(userDataDir, 'User', 'settings.json');
  if (fs.existsSync(settingsFile)) return;
  fs.mkdirSync(path.dirname(settingsFile), { recursive: true });
  fs.writeFileSync(settingsFile, `${JSON.stringify(quietSettings, null, 2)}\n`);
}

/** A fresh private folder for one code-server run. */
export function makeStateDir(prefix = 'attention-lens-vscode-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
