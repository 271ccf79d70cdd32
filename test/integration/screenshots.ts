// Screenshots of the whole VS Code window, for the suites to record what a user would see.
// Only the offline harness (scripts/vscode-offline) can take them: it sets
// ATTENTION_LENS_SCREENSHOT_URL in the extension host's environment and saves the picture under
// test-output/screenshots/. In a desktop VS Code this is a no-op that says so once.
import * as http from 'node:http';

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
