// "The VS Code executable" for @vscode/test-electron's runTests({ vscodeExecutablePath }) on a
// machine where no desktop VS Code can be had: runs the extension tests in code-server (a real
// VS Code workbench) shown in headless Chromium, and exits with the tests' exit code.
//
// Invoked through ./code-server-as-vscode with the arguments runTests passes to VS Code:
//   --extensionDevelopmentPath=DIR (repeatable) --extensionTestsPath=FILE
//   --user-data-dir=DIR --extensions-dir=DIR [other VS Code flags, ignored] [FOLDER]
//
// It also serves screenshots: the extension host inherits ATTENTION_LENS_SCREENSHOT_URL, and a GET
// of `${ATTENTION_LENS_SCREENSHOT_URL}?name=foo.png` saves the whole workbench window to
// `${ATTENTION_LENS_TEST_OUTPUT or <repo>/test-output}/screenshots/foo.png` and answers its path.
//
// Environment: ATTENTION_LENS_TEST_TIMEOUT_MS (default 600000), ATTENTION_LENS_VERBOSE=1 prints
// code-server's and the browser's own logs as they come (they are always kept in the output folder).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { format } from 'node:util';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { ensureTools } from '../tools.mjs';
import { HOST, freePort, makeStateDir, startCodeServer, workbenchUrl } from './codeServer.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const outputDir = path.resolve(process.env.ATTENTION_LENS_TEST_OUTPUT || path.join(repoRoot, 'test-output'));
const timeoutMs = Number(process.env.ATTENTION_LENS_TEST_TIMEOUT_MS || 600_000);
const verbose = process.env.ATTENTION_LENS_VERBOSE === '1';
const chromiumPath = process.env.ATTENTION_LENS_CHROMIUM || '/usr/bin/chromium';

// Flags for a headless Chromium on a closed network. --enable-unsafe-webgpu is what gives webviews
// a WebGPU adapter at all (SwiftShader, on the CPU); without it requestAdapter() returns null.
const chromiumArgs = [
  '--no-sandbox',
  '--no-first-run',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--enable-unsafe-webgpu',
  // The endurance tests measure the webview's live heap: a collection first, and exact numbers.
  '--js-flags=--expose-gc',
  '--enable-precise-memory-info',
];

/** "code-server 4.x (VS Code 1.y)", read from the installed packages. */
function describeTools(tools) {
  const codeServerHome = path.resolve(path.dirname(tools.codeServerEntry), '..', '..');
  const read = (file) => {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')).version;
    } catch {
      return '?';
    }
  };
  return `code-server ${read(path.join(codeServerHome, 'package.json'))} (VS Code ${read(path.join(codeServerHome, 'lib', 'vscode', 'package.json'))})`;
}

// codeAutomationLog carries everything the workbench logs, the extension host's console (and so the
// mocha reporter) included. These are the workbench's own lines on a machine with no internet and no
// accounts; they stay in test-output/workbench.log and are kept off the terminal.
const workbenchNoise = [
  /^\[(AgentHost|ChatModelSelection|AccountPolicyGate|reconnection-grace-time|Service Worker)/,
  /^(Resolving|Resolved) connection token/,
  /^Creating a socket/,
  /^Updating additional builtin extensions cache/,
  /ENOTFOUND open-vsx\.org/,
  /^Timed out waiting for authentication provider/,
];
function isWorkbenchNoise(line) {
  return workbenchNoise.some((pattern) => pattern.test(line));
}

/**
 * The browser's environment without display variables: with DISPLAY set (even to a display that
 * does not exist) headless Chromium's WebGPU finds no adapter at all.
 */
function headlessBrowserEnv() {
  const env = { ...process.env };
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  return env;
}

/** Splits VS Code's command line into the parts this driver uses; everything else is ignored. */
function parseArgs(argv) {
  const parsed = { extensionDevelopmentPaths: [], extensionTestsPath: undefined, userDataDir: undefined, extensionsDir: undefined, folder: undefined };
  const valued = new Set(['extensionDevelopmentPath', 'extensionTestsPath', 'user-data-dir', 'extensions-dir']);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let name;
    let value;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      if (!valued.has(name)) continue;
      value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    } else {
      parsed.folder = path.resolve(arg);
      continue;
    }
    if (name === 'extensionDevelopmentPath') parsed.extensionDevelopmentPaths.push(path.resolve(value));
    else if (name === 'extensionTestsPath') parsed.extensionTestsPath = path.resolve(value);
    else if (name === 'user-data-dir') parsed.userDataDir = path.resolve(value);
    else if (name === 'extensions-dir') parsed.extensionsDir = path.resolve(value);
  }
  return parsed;
}

/**
 * Serves the extension host's tests what a person does in the workbench page:
 *   GET /?name=foo.png                 saves a screenshot of the workbench, answers its path
 *   GET /press?keys=F1,Enter           presses keys in order (Playwright names: Control+K, F1, ...)
 *   GET /type?text=...                 types text into whatever has focus
 *   GET /wait?selector=...&text=...&timeout=ms
 *                                      waits until an element matching the CSS selector (and
 *                                      containing the text, when given) is visible; answers the ms
 *   GET /hover?selector=...&timeout=ms moves the pointer onto the first visible element matching the
 *                                      selector in any frame (webviews are nested iframes)
 * Each answers 200 with a short text, or 4xx/5xx with the reason.
 */
function startScreenshotServer(getPage) {
  const screenshotDir = path.join(outputDir, 'screenshots');
  const server = http.createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', `http://${HOST}`);
    const answer = (status, text) => {
      response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(text);
    };
    const page = getPage();
    if (!page) return answer(503, 'the workbench page is not open yet');
    try {
      if (url.pathname === '/press') {
        for (const key of (url.searchParams.get('keys') ?? '').split(',').filter(Boolean)) await page.keyboard.press(key);
        return answer(200, 'pressed');
      }
      if (url.pathname === '/type') {
        await page.keyboard.type(url.searchParams.get('text') ?? '', { delay: 5 });
        return answer(200, 'typed');
      }
      if (url.pathname === '/wait') {
        const selector = url.searchParams.get('selector') ?? '';
        const text = url.searchParams.get('text');
        const timeout = Number(url.searchParams.get('timeout') ?? 10000);
        const started = Date.now();
        let locator = page.locator(selector);
        if (text) locator = locator.filter({ hasText: text });
        await locator.first().waitFor({ state: 'visible', timeout });
        return answer(200, String(Date.now() - started));
      }
      if (url.pathname === '/hover') {
        const selector = url.searchParams.get('selector') ?? '';
        const deadline = Date.now() + Number(url.searchParams.get('timeout') ?? 10000);
        for (;;) {
          for (const frame of page.frames()) {
            const found = frame.locator(selector);
            const count = await found.count().catch(() => 0);
            for (let i = 0; i < count; i++) {
              const element = found.nth(i);
              if (!(await element.isVisible().catch(() => false))) continue;
              // Scrolled into view first and left to settle: a page that scrolls under the pointer
              // may close what the hover opened. Inside nested iframes Playwright moves the pointer
              // for us. An SVG path is
              // hit only on its stroke, not at its box's centre: the pointer goes to its midpoint.
              await element.scrollIntoViewIfNeeded({ timeout: 5000 }).catch(() => undefined);
              await new Promise((resolve) => setTimeout(resolve, 300));
              const position = await element
                .evaluate((node) => {
                  if (typeof node.getPointAtLength !== 'function' || typeof node.getScreenCTM !== 'function') return undefined;
                  const point = node.getPointAtLength(node.getTotalLength() / 2).matrixTransform(node.getScreenCTM());
                  const box = node.getBoundingClientRect();
                  return { x: point.x - box.left, y: point.y - box.top };
                })
                .catch(() => undefined);
              await element.hover({ timeout: 5000, force: true, ...(position ? { position } : {}) });
              return answer(200, `hovered ${selector} #${i} in ${frame.url().slice(0, 80)}`);
            }
          }
          if (Date.now() > deadline) return answer(404, `no visible ${selector} in any frame`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      const name = url.searchParams.get('name') ?? '';
      if (!/^[\w.-]+\.png$/.test(name)) return answer(400, `expected ?name=<file>.png (letters, digits, . _ -), got ${JSON.stringify(name)}`);
      fs.mkdirSync(screenshotDir, { recursive: true });
      const file = path.join(screenshotDir, name);
      await page.screenshot({ path: file });
      console.log(`[vscode-offline] screenshot saved: ${file}`);
      answer(200, file);
    } catch (error) {
      answer(500, `${url.pathname} failed: ${error instanceof Error ? error.message : error}`);
    }
  });
  return new Promise((resolve) => server.listen(0, HOST, () => resolve(server)));
}

async function main() {
  const started = Date.now();
  const args = parseArgs(process.argv.slice(2));
  if (args.extensionDevelopmentPaths.length === 0 || !args.extensionTestsPath) {
    throw new Error('expected --extensionDevelopmentPath=DIR and --extensionTestsPath=FILE (this script stands in for VS Code under @vscode/test-electron runTests)');
  }
  const tools = await ensureTools({ log: (line) => console.log(line) });
  const stateDir = makeStateDir();
  fs.mkdirSync(outputDir, { recursive: true });
  const serverLog = fs.createWriteStream(path.join(outputDir, 'code-server.log'));
  const browserLog = fs.createWriteStream(path.join(outputDir, 'browser-console.log'));
  const workbenchLog = fs.createWriteStream(path.join(outputDir, 'workbench.log'));

  const cleanups = [];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await step().catch(() => {});
    cleanups.length = 0;
    fs.rmSync(stateDir, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      console.log(`[vscode-offline] ${signal}: stopping code-server and the browser`);
      cleanup().finally(() => process.exit(130));
    });
  }

  try {
    let page;
    const screenshotServer = await startScreenshotServer(() => page);
    cleanups.push(() => new Promise((resolve) => screenshotServer.close(() => resolve())));
    const screenshotUrl = `http://${HOST}:${screenshotServer.address().port}/`;

    const codeServer = await startCodeServer({
      tools,
      stateDir,
      userDataDir: args.userDataDir ?? path.join(stateDir, 'user-data'),
      extensionsDir: args.extensionsDir ?? path.join(stateDir, 'extensions'),
      port: await freePort(),
      folder: args.folder,
      env: { ATTENTION_LENS_SCREENSHOT_URL: screenshotUrl },
      onOutput: (chunk) => {
        serverLog.write(chunk);
        if (verbose) process.stdout.write(chunk);
      },
    });
    cleanups.push(() => codeServer.stop());

    const context = await chromium.launchPersistentContext(path.join(stateDir, 'chromium'), {
      executablePath: chromiumPath,
      headless: true,
      args: chromiumArgs,
      env: headlessBrowserEnv(),
      viewport: { width: 1600, height: 1000 },
    });
    cleanups.push(() => context.close());
    page = context.pages()[0] ?? (await context.newPage());

    let settle;
    const outcome = new Promise((resolve) => (settle = resolve));
    await page.exposeFunction('codeAutomationExit', (code) => settle({ code: Number(code) }));
    await page.exposeFunction('codeAutomationLog', (type, logArgs) => {
      // The workbench passes console-style arguments: a format string first (mocha's reporter uses %s, %d).
      const line = format(...(Array.isArray(logArgs) ? logArgs : [logArgs]));
      workbenchLog.write(`[${type}] ${line}\n`);
      if (verbose || !isWorkbenchNoise(line)) (type === 'error' ? process.stderr : process.stdout).write(`${line}\n`);
    });
    page.on('console', (message) => {
      const line = `[${message.type()}] ${message.text()}\n`;
      browserLog.write(line);
      if (verbose) process.stdout.write(`[browser] ${line}`);
    });
    page.on('crash', () => settle({ error: 'the workbench page crashed' }));
    codeServer.exited.then(({ code, signal }) => settle({ error: `code-server exited during the tests (${signal ?? `exit ${code}`})` }));
    const timer = setTimeout(() => settle({ error: `no result after ${timeoutMs / 1000} s (ATTENTION_LENS_TEST_TIMEOUT_MS); see code-server.log, workbench.log and browser-console.log in ${outputDir}` }), timeoutMs);

    const url = workbenchUrl({ port: codeServer.port, folder: args.folder, extensionDevelopmentPaths: args.extensionDevelopmentPaths, extensionTestsPath: args.extensionTestsPath });
    console.log(`[vscode-offline] ${describeTools(tools)} on ${HOST}:${codeServer.port}; opening ${url}`);
    await page.goto(url);
    const result = await outcome;
    clearTimeout(timer);
    if (result.error) {
      console.error(`[vscode-offline] ${result.error}`);
      await page.screenshot({ path: path.join(outputDir, 'screenshots', 'failure.png') }).catch(() => {});
      return 1;
    }
    console.log(`[vscode-offline] tests finished with exit code ${result.code} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return result.code;
  } finally {
    await cleanup();
    // process.exit() follows: wait until the logs are on disk.
    await Promise.all([serverLog, browserLog, workbenchLog].map((stream) => new Promise((resolve) => stream.end(resolve))));
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`[vscode-offline] ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  },
);
