// Screenshots of the whole VS Code window, for the suites to record what a user would see.
// Only the offline harness (scripts/vscode-offline) can take them: it sets
// ATTENTION_LENS_SCREENSHOT_URL in the extension host's environment and saves the picture under
// test-output/screenshots/. In a desktop VS Code this is a no-op that says so once.
import * as http from 'node:http';
import * as vscode from 'vscode';

let reportedMissing = false;

/** Saves the current window as `name` (e.g. "workbench.png"); resolves to the file, or undefined. */
export async function takeScreenshot(name: string): Promise<string | undefined> {
  const service = process.env.ATTENTION_LENS_SCREENSHOT_URL;
  if (!service) {
    if (!reportedMissing) console.log('[screenshots] no screenshot service in this VS Code (ATTENTION_LENS_SCREENSHOT_URL is unset); skipping screenshots');
    reportedMissing = true;
    return undefined;
  }
  const url = new URL(service);
  url.searchParams.set('name', name);
  return new Promise((resolve, reject) => {
    http
      .get(url, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => (response.statusCode === 200 ? resolve(body) : reject(new Error(`screenshot ${name} failed: ${response.statusCode} ${body}`))));
      })
      .on('error', reject);
  });
}

/** True when the offline harness can act in the workbench page (press keys, type, wait for what shows). */
export function canDriveWorkbench(): boolean {
  return Boolean(process.env.ATTENTION_LENS_SCREENSHOT_URL);
}

function callDriver(pathname: string, params: Record<string, string>): Promise<string> {
  const service = process.env.ATTENTION_LENS_SCREENSHOT_URL;
  if (!service) return Promise.reject(new Error('no workbench driver in this VS Code (ATTENTION_LENS_SCREENSHOT_URL is unset)'));
  const url = new URL(pathname, service);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return new Promise((resolve, reject) => {
    http
      .get(url, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => (response.statusCode === 200 ? resolve(body) : reject(new Error(`${pathname} failed: ${response.statusCode} ${body}`))));
      })
      .on('error', reject);
  });
}

/** Presses keys in the workbench page, in order (Playwright key names, e.g. 'F1', 'Control+K', 'Enter'). */
export async function pressKeys(...keys: string[]): Promise<void> {
  await callDriver('/press', { keys: keys.join(',') });
}

/** Types text into the focused element of the workbench page. */
export async function typeText(text: string): Promise<void> {
  await callDriver('/type', { text });
}

/** Waits until an element matching `selector` (containing `text`) is visible in the workbench; resolves to the ms waited. */
export async function waitForVisible(selector: string, options: { text?: string; timeoutMs?: number } = {}): Promise<number> {
  return Number(await callDriver('/wait', { selector, ...(options.text ? { text: options.text } : {}), timeout: String(options.timeoutMs ?? 10_000) }));
}

/** Moves the pointer onto the first visible element matching `selector` in any frame of the workbench (a webview's included). */
export async function hoverInWebview(selector: string, timeoutMs = 10_000): Promise<string> {
  return callDriver('/hover', { selector, timeout: String(timeoutMs) });
}

/**
 * The keyboard hover (Ctrl+K Ctrl+I) at the cursor, on screen with `text`: the editor takes the focus
 * first (a notification or the panel may hold it), and the hover is asked again if VS Code dropped it.
 */
export async function hoverOnScreen(document: vscode.TextDocument, at: vscode.Position, text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.One, preserveFocus: false, selection: new vscode.Range(at, at) });
    await vscode.commands.executeCommand('workbench.action.focusActiveEditorGroup');
    await vscode.commands.executeCommand('editor.action.showHover');
    try {
      await waitForVisible('.monaco-hover', { text, timeoutMs: Math.max(1000, Math.min(8000, deadline - Date.now())) });
      return;
    } catch (error) {
      if (Date.now() >= deadline) {
        await takeScreenshot(`no-hover-${attempt}.png`);
        throw error;
      }
    }
  }
}
