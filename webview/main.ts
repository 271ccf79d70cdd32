/**
 * Webview entry: says `ready`, answers the host's requests, and renders the panel.
 * The host queues everything until `ready`, so nothing sent before this script ran is lost.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-icon/index.js';
import { PROTOCOL_VERSION, type HostToWebviewMessage, type WebGpuProbeResult } from '../src/shared/protocol';
import { describeAdapter, formatBytes } from '../src/shared/format';
import { EngineHost } from './engineHost';
import { PanelView } from './panelView';
import { probeWebGpu } from './probe';
import { onHostMessage, postToHost } from './vscodeApi';

const app = document.getElementById('app') as HTMLElement;

interface PanelState {
  handshakeError?: string;
  probe?: WebGpuProbeResult;
  documentName?: string;
  status: string;
}

const view: PanelState = { status: 'Waiting for the extension…' };

const engineHost = new EngineHost((message) => postToHost({ type: 'webviewError', message }));
const panelView = new PanelView({ post: postToHost });

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render(): void {
  const root = element('div', 'panel');
  const header = element('header', 'panel-header');
  header.append(element('h1', undefined, 'Attention Lens'));
  root.append(header);

  if (view.handshakeError) {
    const error = element('p', 'error', view.handshakeError);
    error.setAttribute('role', 'alert');
    root.append(error);
    app.replaceChildren(root);
    return;
  }

  const adapterSection = element('section', 'adapter');
  adapterSection.setAttribute('aria-label', 'WebGPU adapter');
  adapterSection.append(element('h2', undefined, 'WebGPU'));
  if (!view.probe) {
    adapterSection.append(element('p', 'muted', 'Probing WebGPU…'));
  } else if (view.probe.ok) {
    const a = view.probe.adapter;
    const list = element('dl', 'facts');
    const fact = (term: string, value: string) => list.append(element('dt', undefined, term), element('dd', undefined, value));
    fact('Adapter', describeAdapter(a.vendor, a.architecture, a.description) + (a.isFallbackAdapter ? ' (software fallback)' : ''));
    if (a.description) fact('Description', a.description);
    fact('Features', a.features.join(', ') || 'none');
    fact('Max storage binding', formatBytes(a.limits.maxStorageBufferBindingSize));
    fact('Max buffer', formatBytes(a.limits.maxBufferSize));
    fact('Workgroup invocations', String(a.limits.maxComputeInvocationsPerWorkgroup));
    adapterSection.append(list);
  } else {
    const warning = element('p', 'warning', `No WebGPU adapter: ${view.probe.error}. Analyses fall back to the CPU reference implementation (slower).`);
    warning.setAttribute('role', 'status');
    adapterSection.append(warning);
  }
  root.append(adapterSection);

  const statusSection = element('section', 'status');
  statusSection.append(element('h2', undefined, view.documentName ?? 'No analysis yet'));
  statusSection.append(element('p', 'muted', view.status));
  const analyze = document.createElement('vscode-button');
  analyze.setAttribute('icon', 'eye');
  analyze.textContent = 'Analyze Current File';
  analyze.addEventListener('click', () => postToHost({ type: 'runCommand', command: 'analyzeFile' }));
  statusSection.append(analyze);
  // The analysis view first, the adapter facts below it.
  root.replaceChildren(header, statusSection, panelView.root, adapterSection);

  app.replaceChildren(root);
}

async function handle(message: HostToWebviewMessage): Promise<void> {
  switch (message.type) {
    case 'handshake':
      view.handshakeError = message.accepted ? undefined : (message.error ?? 'The extension refused this panel.');
      if (message.accepted) view.status = 'Connected. Run "Analyze Current File" on an editor.';
      break;
    case 'probeWebGpu': {
      const probe = await probeWebGpu();
      view.probe = probe;
      postToHost({ type: 'probeResult', requestId: message.requestId, probe });
      break;
    }
    case 'loadModel':
      try {
        const model = await engineHost.load(message);
        view.status = `Model: ${model.label} (${model.architecture}, ${model.numLayers} layers x ${model.numHeads} heads) on ${model.backend.kind === 'webgpu' ? 'WebGPU' : 'the TypeScript reference engine'}.`;
        postToHost({ type: 'modelLoaded', requestId: message.requestId, model });
      } catch (error) {
        postToHost({ type: 'modelLoaded', requestId: message.requestId, error: errorText(error) });
      }
      break;
    case 'analyze':
      try {
        const result = await engineHost.analyze(message);
        postToHost({ type: 'analysisResult', requestId: message.requestId, result });
      } catch (error) {
        const cancelled = error instanceof Error && error.name === 'AbortError';
        postToHost({ type: 'analysisResult', requestId: message.requestId, error: cancelled ? 'The analysis was cancelled.' : errorText(error), cancelled });
      }
      return;
    case 'attentionRow':
      try {
        const probs = await engineHost.attentionRow(message.layer, message.head, message.query, message.afterRun);
        postToHost({ type: 'attentionRowResult', requestId: message.requestId, probs });
      } catch (error) {
        postToHost({ type: 'attentionRowResult', requestId: message.requestId, error: errorText(error) });
      }
      return;
    case 'knockout':
      try {
        postToHost({ type: 'knockoutResult', requestId: message.requestId, result: await engineHost.knockout(message) });
      } catch (error) {
        postToHost({ type: 'knockoutResult', requestId: message.requestId, error: errorText(error) });
      }
      return;
    case 'spanEffect':
      try {
        postToHost({ type: 'spanEffectResult', requestId: message.requestId, result: await engineHost.spanEffect(message) });
      } catch (error) {
        postToHost({ type: 'spanEffectResult', requestId: message.requestId, error: errorText(error) });
      }
      return;
    case 'cancel':
      engineHost.cancel(message.target);
      return;
    case 'releaseCache':
      engineHost.releaseCache(message.keys);
      return;
    case 'reportMemory': {
      // A collection first where the browser allows it (the test harness starts Chromium with
      // --expose-gc), so the number is what stays alive.
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      const memory = (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory;
      postToHost({ type: 'memoryReport', requestId: message.requestId, jsHeapBytes: memory ? memory.usedJSHeapSize : null, gpuBufferBytes: engineHost.gpuBufferBytes(), collected: gc !== undefined });
      return;
    }
    case 'simulateDeviceLoss':
      engineHost.simulateDeviceLoss(message.when);
      return;
    case 'panelState':
      view.documentName = message.documentName;
      view.status = message.status;
      break;
    case 'documentView':
      panelView.showDocument(message);
      break;
    case 'queryView':
      panelView.showQuery(message);
      return;
    case 'dependencyMap':
      panelView.showMap(message);
      return;
    case 'headsTable':
      panelView.showHeads(message);
      return;
    case 'showTab':
      panelView.showTab(message.tab);
      return;
  }
  render();
}

window.addEventListener('error', (event) => postToHost({ type: 'webviewError', message: event.message || 'Unknown error in the panel' }));
window.addEventListener('unhandledrejection', (event) =>
  postToHost({ type: 'webviewError', message: event.reason instanceof Error ? event.reason.message : String(event.reason) }),
);

onHostMessage((message) => {
  handle(message).catch((error: unknown) => postToHost({ type: 'webviewError', message: error instanceof Error ? error.message : String(error) }));
});
render();
postToHost({ type: 'ready', protocolVersion: PROTOCOL_VERSION });
