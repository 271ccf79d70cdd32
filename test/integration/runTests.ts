// Runs the integration suites (out/test/integration/suite/*.test.js) inside a real VS Code.
//
// Which VS Code:
//   1. $ATTENTION_LENS_VSCODE, the path of a desktop VS Code executable, when set;
//   2. else a desktop VS Code downloaded by @vscode/test-electron (needs the internet and, on Linux,
//      a display);
//   3. else code-server in headless Chromium through scripts/vscode-offline/code-server-as-vscode,
//      which works with no internet (see scripts/tools.mjs for the one-time install).
// The same suites run in all three; only screenshots need the third (ATTENTION_LENS_SCREENSHOT_URL).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { downloadAndUnzipVSCode, runTests } from '@vscode/test-electron';

// This file runs as out/test/integration/runTests.js.
const repoRoot = path.resolve(__dirname, '..', '..', '..');
const codeServerWrapper = path.join(repoRoot, 'scripts', 'vscode-offline', 'code-server-as-vscode');

interface ChosenVsCode {
  executable: string;
  description: string;
}

async function chooseVsCode(): Promise<ChosenVsCode> {
  const explicit = process.env.ATTENTION_LENS_VSCODE;
  if (explicit) {
    if (!fs.existsSync(explicit)) throw new Error(`ATTENTION_LENS_VSCODE is ${explicit}, which does not exist; unset it or point it at a VS Code executable`);
    return { executable: explicit, description: `desktop VS Code ${desktopVersion(explicit)} (ATTENTION_LENS_VSCODE)` };
  }
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    console.log('[integration] no display for a desktop VS Code; using code-server in headless Chromium');
    return { executable: codeServerWrapper, description: 'code-server in headless Chromium' };
  }
  try {
    const executable = await downloadAndUnzipVSCode({ timeout: 15_000 });
    return { executable, description: `desktop VS Code ${desktopVersion(executable)} (downloaded by @vscode/test-electron)` };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    console.log(`[integration] no desktop VS Code (${reason.split('\n')[0]}); using code-server in headless Chromium`);
    return { executable: codeServerWrapper, description: 'code-server in headless Chromium' };
  }
}

function desktopVersion(executable: string): string {
  const result = spawnSync(executable, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return result.status === 0 ? result.stdout.split('\n')[0] : '(version unknown)';
}

async function main(): Promise<number> {
  const chosen = await chooseVsCode();
  console.log(`[integration] running the suites in ${chosen.description}`);

  // Every run gets a fresh copy of the sample workspace and fresh VS Code state, so no run sees
  // another's edits, open editors or settings.
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-integration-'));
  const workspace = path.join(scratch, 'sample-workspace');
  fs.cpSync(path.join(repoRoot, 'sample-workspace'), workspace, { recursive: true });
  const started = Date.now();
  try {
    await runTests({
      vscodeExecutablePath: chosen.executable,
      extensionDevelopmentPath: repoRoot,
      extensionTestsPath: path.join(repoRoot, 'out', 'test', 'integration', 'index.js'),
      launchArgs: [
        workspace,
        '--disable-extensions',
        '--skip-welcome',
        '--skip-release-notes',
        `--user-data-dir=${path.join(scratch, 'user-data')}`,
        `--extensions-dir=${path.join(scratch, 'extensions')}`,
      ],
    });
    console.log(`[integration] passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  } catch (error) {
    // runTests rejects with the exit code of a failed run; anything else is a harness problem.
    const code = typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1;
    console.error(`[integration] failed after ${((Date.now() - started) / 1000).toFixed(1)} s: ${error instanceof Error ? error.message : error}`);
    return code === 0 ? 1 : code;
  } finally {
    keepExtensionLogs(path.join(scratch, 'user-data', 'logs'), path.join(repoRoot, 'test-output', 'extension-logs'));
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** Copies the extension's own output channel logs (Attention Lens.log) out of the scratch profile. */
function keepExtensionLogs(logs: string, target: string): void {
  try {
    fs.rmSync(target, { recursive: true, force: true });
    const found = fs.readdirSync(logs, { recursive: true, encoding: 'utf8' }).filter((file) => /Attention Lens\.log$/.test(file));
    if (found.length === 0) return;
    fs.mkdirSync(target, { recursive: true });
    found.forEach((file, i) => fs.copyFileSync(path.join(logs, file), path.join(target, `${i}-${path.basename(file)}`)));
    console.log(`[integration] the extension's log: ${found.length} file(s) in ${path.relative(repoRoot, target)}`);
  } catch {
    // No logs written (the run did not start): nothing to keep.
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`[integration] ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  },
);
