// `npm start` (after the build): opens sample-workspace/ in a VS Code with this extension loaded
// from the repository as a development extension.
//   - With a desktop `code` on PATH: runs `code --extensionDevelopmentPath=<repo> sample-workspace`.
//   - Otherwise (or with --web): serves the VS Code workbench with code-server on 127.0.0.1 and prints
//     the address to open in a browser with WebGPU (Chrome, Edge). The address carries the
//     extensionDevelopmentPath, so open it exactly as printed. Runs until Ctrl-C.
// Environment: ATTENTION_LENS_PORT (default 8080; another free port when it is taken).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureTools } from './tools.mjs';
import { HOST, makeStateDir, startCodeServer, workbenchUrl } from './vscode-offline/codeServer.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sampleWorkspace = path.join(repoRoot, 'sample-workspace');
// The file a new user sees first: the long sample whose imports are used far below them.
const sampleFile = path.join(sampleWorkspace, 'src', 'inventory.ts');

function hasDesktopCode() {
  const probe = spawnSync('code', ['--version'], { encoding: 'utf8', timeout: 20_000 });
  return probe.status === 0;
}

function startDesktop() {
  console.log('[start] opening sample-workspace in desktop VS Code with the extension in development mode');
  const child = spawn('code', [`--extensionDevelopmentPath=${repoRoot}`, sampleWorkspace, sampleFile], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 1));
}

async function startWeb() {
  const tools = await ensureTools({ log: (line) => console.log(line) });
  // Settings and extensions persist between runs under .vscode-test/ (gitignored); the rest of
  // code-server's state lives in a temporary folder removed on exit.
  const profileDir = path.join(repoRoot, '.vscode-test', 'start');
  const stateDir = makeStateDir('attention-lens-start-');
  fs.mkdirSync(profileDir, { recursive: true });
  const logFile = path.join(profileDir, 'code-server.log');
  const log = fs.createWriteStream(logFile);
  const preferredPort = Number(process.env.ATTENTION_LENS_PORT || 8080);

  const server = await startCodeServer({
    tools,
    stateDir,
    userDataDir: path.join(profileDir, 'user-data'),
    extensionsDir: path.join(profileDir, 'extensions'),
    port: preferredPort,
    folder: sampleWorkspace,
    onOutput: (chunk) => log.write(chunk),
  });

  let stopping = false;
  const stop = async (exitCode) => {
    if (stopping) return;
    stopping = true;
    console.log('\n[start] stopping code-server');
    await server.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
    log.end();
    process.exit(exitCode);
  };
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  server.exited.then(({ code, signal }) => {
    if (stopping) return;
    console.error(`[start] code-server exited (${signal ?? `exit ${code}`}); see ${logFile}`);
    stop(1);
  });

  if (server.port !== preferredPort) console.log(`[start] port ${preferredPort} is taken; using ${server.port}`);
  const url = workbenchUrl({ port: server.port, folder: sampleWorkspace, extensionDevelopmentPaths: [repoRoot], openFile: sampleFile });
  console.log(
    [
      '',
      '[start] VS Code (code-server) is serving sample-workspace/ with Attention Lens loaded from this repository.',
      '[start] Open this address in Chrome or Edge (WebGPU); use it exactly as printed, the extension path is in it:',
      '',
      `  ${url}`,
      '',
      `[start] From another machine, forward the port first (ssh -L ${server.port}:${HOST}:${server.port} ...) and open the same address.`,
      '[start] After `npm run build` (or with `npm run watch` running), reload the page to pick up changes.',
      `[start] code-server's log: ${logFile}. Press Ctrl-C to stop.`,
    ].join('\n'),
  );
}

const forceWeb = process.argv.includes('--web');
if (!forceWeb && hasDesktopCode()) startDesktop();
else
  startWeb().catch((error) => {
    console.error(`[start] ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  });
