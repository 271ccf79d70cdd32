/** The typed handle to VS Code's webview API (acquireVsCodeApi may be called only once). */
import type { HostToWebviewMessage, WebviewToHostMessage } from '../src/shared/protocol';

interface VsCodeApi {
  postMessage(message: WebviewToHostMessage): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

const api = acquireVsCodeApi();

export function postToHost(message: WebviewToHostMessage): void {
  api.postMessage(message);
}

export function onHostMessage(handler: (message: HostToWebviewMessage) => void): void {
  window.addEventListener('message', (event: MessageEvent<HostToWebviewMessage>) => handler(event.data));
}
