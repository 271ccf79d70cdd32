/**
 * The Attention Lens webview panel: one instance (createOrShow), strict CSP, resources only from
 * the built webview and media folders, restored after a window reload by a serializer.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { COMMANDS, PANEL_VIEW_TYPE } from '../commandIds';
import type { HostToWebviewMessage, MapRenderedMessage, ModelLocation, PanelTab, ViewRenderedMessage, WebGpuProbeResult, WebviewToHostMessage } from '../shared/protocol';
import { WebviewChannel } from './webviewChannel';
import { isUnderRoots, PANEL_RESOURCE_FOLDERS, panelContentSecurityPolicy } from './panelSecurity';

/** How long the host waits for the webview to answer a WebGPU probe (SwiftShader can be slow to start). */
const PROBE_TIMEOUT_MS = 60_000;
/** What a run that needed the panel says when the user closed it meanwhile. */
export const PANEL_CLOSED_DURING_RUN = 'The Attention Lens panel was closed during the analysis. Run the analysis again: the panel opens again.';

/** How long a new panel may take to say `ready` before requests to it fail with a message. */
const PANEL_START_TIMEOUT_MS = 45_000;

export interface PanelHost {
  readonly extensionUri: vscode.Uri;
  readonly log: vscode.LogOutputChannel;
  /** attentionLens.panel.width: the share of the editor area a new panel beside the editor takes. */
  panelWidth(): number;
  /** Called with every probe result the webview reports. */
  onProbe(result: WebGpuProbeResult): void;
  /** The user picked a token in the panel. */
  onSelectToken(uri: string, token: number): void;
  /** The user changed the view in the panel. */
  onSetView(layer: number | 'all', head: number | 'mean' | 'max' | 'definition', threshold: number): void;
  /** A new panel said ready: it has nothing to show until the host sends it the current analysis. */
  onPanelReady(): void;
  /** The panel drew a query view. */
  onViewRendered(message: ViewRenderedMessage): void;
  /** The panel drew the dependency map or the heads table. */
  onMapRendered(message: MapRenderedMessage): void;
  /** The user brought a tab of the panel to the front. */
  onTabShown(tab: PanelTab): void;
}

export class AttentionPanel implements vscode.Disposable {
  private static current: AttentionPanel | undefined;

  private readonly channel: WebviewChannel;
  private readonly disposables: vscode.Disposable[] = [];

  /**
   * Shows the panel, creating it if needed. `modelFolder` must be readable by the webview; a panel
   * created for another folder is replaced (changing resource roots would reload it mid-request).
   */
  /**
   * The panel, created beside the editor when there is none (narrow: attentionLens.panel.width of
   * the editor area), or the current one: brought to the front only when `reveal` (the user asked
   * for it); an analysis runs in the panel where it is, behind other tabs if the user put it there.
   */
  static createOrShow(host: PanelHost, modelFolder?: string, reveal = true): AttentionPanel {
    const column = vscode.window.activeTextEditor ? vscode.ViewColumn.Beside : vscode.ViewColumn.One;
    if (AttentionPanel.current?.isClosed) AttentionPanel.current.dispose();
    if (AttentionPanel.current && (!modelFolder || AttentionPanel.current.canRead(modelFolder))) {
      if (reveal) AttentionPanel.current.panel.reveal(undefined, true);
      return AttentionPanel.current;
    }
    const replaced = AttentionPanel.current;
    const groupsBefore = vscode.window.tabGroups.all.length;
    const extraRoots = modelFolder ? [vscode.Uri.file(modelFolder)] : [];
    // A replaced panel (another model folder) gives its place to the new one.
    const viewColumn = replaced ? (replaced.panel.viewColumn ?? column) : column;
    replaced?.dispose();
    const panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, 'Attention Lens', { viewColumn, preserveFocus: true }, AttentionPanel.webviewOptions(host.extensionUri, extraRoots));
    AttentionPanel.current = new AttentionPanel(panel, host);
    if (!replaced && viewColumn === vscode.ViewColumn.Beside && groupsBefore === 1) void narrow(host.panelWidth(), host.log);
    return AttentionPanel.current;
  }

  /** Re-attaches a panel VS Code restored after a reload. */
  static revive(panel: vscode.WebviewPanel, host: PanelHost): AttentionPanel {
    AttentionPanel.current?.dispose();
    panel.webview.options = AttentionPanel.webviewOptions(host.extensionUri);
    AttentionPanel.current = new AttentionPanel(panel, host);
    return AttentionPanel.current;
  }

  static get instance(): AttentionPanel | undefined {
    return AttentionPanel.current;
  }

  private static webviewOptions(extensionUri: vscode.Uri, extraRoots: readonly vscode.Uri[] = []): vscode.WebviewOptions & vscode.WebviewPanelOptions {
    return {
      enableScripts: true,
      retainContextWhenHidden: true,
      localResourceRoots: [...PANEL_RESOURCE_FOLDERS.map((parts) => vscode.Uri.joinPath(extensionUri, ...parts)), ...extraRoots],
    };
  }

  /** True when the webview may fetch files from `folder`. */
  canRead(folder: string): boolean {
    if (this.isClosed) return false;
    return isUnderRoots(folder, (this.panel.webview.options.localResourceRoots ?? []).map((root) => root.fsPath));
  }

  private closed = false;

  /** True once the user closed the panel (VS Code may report it a moment after the webview is gone). */
  get isClosed(): boolean {
    if (this.closed) return true;
    try {
      void this.panel.webview.options;
      return false;
    } catch {
      return true;
    }
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly host: PanelHost,
  ) {
    this.channel = new WebviewChannel((message) => panel.webview.postMessage(message), {
      onMessage: (message) => this.handle(message),
      onProblem: (problem) => host.log.warn(problem),
    });
    panel.iconPath = vscode.Uri.joinPath(host.extensionUri, 'media', 'icon.png');
    panel.webview.html = this.html(panel.webview);
    this.channel.expectReadyWithin(PANEL_START_TIMEOUT_MS, `The Attention Lens panel did not start within ${PANEL_START_TIMEOUT_MS / 1000} s (its script did not load; see "Developer: Open Webview Developer Tools"). Close the panel and try again, or reinstall the extension.`);
    this.disposables.push(
      panel.webview.onDidReceiveMessage((raw: unknown) => this.channel.receive(raw)),
      panel.onDidDispose(() => this.dispose()),
    );
    // The probe request is queued and goes out as soon as the webview says it is ready.
    this.firstProbe = this.probe();
  }

  private firstProbe: Promise<WebGpuProbeResult>;

  /** The panel's first WebGPU probe (the adapter and limits the engine will get). */
  whenProbed(): Promise<WebGpuProbeResult> {
    return this.firstProbe;
  }

  /** Asks the webview to probe WebGPU; the result also reaches `host.onProbe`. */
  async probe(): Promise<WebGpuProbeResult> {
    try {
      const response = await this.channel.request({ type: 'probeWebGpu' }, PROBE_TIMEOUT_MS);
      const result: WebGpuProbeResult = response.error ? { ok: false, error: response.error } : response.probe;
      this.host.onProbe(result);
      return result;
    } catch (error) {
      const result: WebGpuProbeResult = { ok: false, error: error instanceof Error ? error.message : String(error) };
      this.host.onProbe(result);
      return result;
    }
  }

  post(message: HostToWebviewMessage): void {
    this.channel.send(message);
  }

  /** Sends a request to the webview; see WebviewChannel.request. */
  readonly request: WebviewChannel['request'] = (message, timeoutMs, onId) => this.channel.request(message, timeoutMs, onId);

  /** Where the webview fetches a model folder's files (the panel must have been created for it). */
  modelLocation(label: string, folder: string, files: readonly string[]): ModelLocation {
    if (this.isClosed) throw new Error(PANEL_CLOSED_DURING_RUN);
    if (!this.canRead(folder)) throw new Error(`The Attention Lens panel cannot read ${folder}; run the analysis again.`);
    const base = this.panel.webview.asWebviewUri(vscode.Uri.file(folder)).toString();
    return { label, baseUri: base.endsWith('/') ? base : `${base}/`, files };
  }

  private handle(message: WebviewToHostMessage): void {
    switch (message.type) {
      case 'ready':
        this.host.log.info('Panel ready (protocol accepted).');
        this.host.onPanelReady();
        break;
      case 'viewRendered':
        this.host.onViewRendered(message);
        break;
      case 'mapRendered':
        this.host.onMapRendered(message);
        break;
      case 'tabShown':
        this.host.onTabShown(message.tab);
        break;
      case 'selectToken':
        this.host.onSelectToken(message.uri, message.token);
        break;
      case 'setView':
        this.host.onSetView(message.layer, message.head, message.threshold);
        break;
      case 'webviewError':
        this.host.log.error(`Panel: ${message.message}`);
        break;
      case 'runCommand':
        void vscode.commands.executeCommand(message.command === 'analyzeFile' ? COMMANDS.analyzeFile : COMMANDS.chooseModel);
        break;
      case 'probeResult':
      case 'modelLoaded':
      case 'analysisResult':
      case 'attentionRowResult':
      case 'knockoutResult':
      case 'spanEffectResult':
      case 'memoryReport':
        // Responses are paired with their requests by the channel and never arrive here.
        break;
    }
  }

  private html(webview: vscode.Webview): string {
    const nonce = makeNonce();
    const root = vscode.Uri.joinPath(this.host.extensionUri, 'out', 'webview');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(root, 'main.js'));
    const styles = webview.asWebviewUri(vscode.Uri.joinPath(this.host.extensionUri, 'media', 'panel.css'));
    const codicons = webview.asWebviewUri(vscode.Uri.joinPath(root, 'codicon.css'));
    const csp = panelContentSecurityPolicy(webview.cspSource, nonce);
    return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${csp}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <link href="${codicons}" rel="stylesheet" id="vscode-codicon-stylesheet">
  <link href="${styles}" rel="stylesheet">
  <title>Attention Lens</title>
</head>
<body>
  <main id="app" aria-live="polite"><p class="muted">Starting…</p></main>
  <script type="module" nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
  }

  dispose(): void {
    this.closed = true;
    if (AttentionPanel.current === this) AttentionPanel.current = undefined;
    // Requests still waiting for the webview (an analysis, a check) fail with what happened.
    this.channel.dispose(PANEL_CLOSED_DURING_RUN);
    this.panel.dispose();
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }
}

function makeNonce(): string {
  return randomBytes(18).toString('base64url');
}

/** Two editor groups side by side, the panel's (the second) taking `share` of the width. */
async function narrow(share: number, log: vscode.LogOutputChannel): Promise<void> {
  try {
    const layout = (await vscode.commands.executeCommand('vscode.getEditorLayout')) as { orientation: number; groups: { groups?: unknown; size?: number }[] } | undefined;
    if (!layout || layout.orientation !== 0 || layout.groups.length !== 2 || layout.groups.some((g) => g.groups)) {
      log.info(`The panel keeps the width VS Code gave it (editor layout ${JSON.stringify(layout)}).`);
      return;
    }
    await vscode.commands.executeCommand('vscode.setEditorLayout', { orientation: 0, groups: [{ size: 1 - share }, { size: share }] });
    log.info(`The panel opened beside the editor at ${Math.round(share * 100)}% of the width (attentionLens.panel.width).`);
  } catch (error) {
    // A layout VS Code will not change: the panel keeps the width VS Code gave it.
    log.info(`The panel keeps the width VS Code gave it: ${error instanceof Error ? error.message : String(error)}`);
  }
}
