/**
 * Attention Lens extension entry point. Reads top-down: logging and status bar, the panel and its
 * serializer, then the commands. Everything disposable goes to `context.subscriptions`.
 */
import * as vscode from 'vscode';
import { COMMANDS, PANEL_VIEW_TYPE } from './commandIds';
import { readConfig } from './config';
import { AttentionPanel, type PanelHost } from './panel/attentionPanel';
import type { WebGpuProbeResult } from './shared/protocol';
import { AttentionStatusBar } from './statusBar';

/** What `activate` returns: used by the integration tests and by other extensions. */
export interface AttentionLensApi {
  /** Resolves with the panel's next (or latest) WebGPU probe; rejects after `timeoutMs`. */
  whenProbed(timeoutMs: number): Promise<WebGpuProbeResult>;
}

export function activate(context: vscode.ExtensionContext): AttentionLensApi {
  const log = vscode.window.createOutputChannel('Attention Lens', { log: true });
  context.subscriptions.push(log);
  try {
    return activateWith(context, log);
  } catch (error) {
    // VS Code shows nothing for a failed activation: tell the user, then let VS Code record it.
    const message = error instanceof Error ? error.message : String(error);
    log.error(`Activation failed: ${message}`);
    void vscode.window.showErrorMessage(`Attention Lens could not start: ${message}`, 'Show Log').then((choice) => {
      if (choice) log.show();
    });
    throw error;
  }
}

function activateWith(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): AttentionLensApi {
  const config = () => readConfig((key) => vscode.workspace.getConfiguration('attentionLens').get(key));
  log.info(`Attention Lens ${context.extension.packageJSON.version} activated in ${vscode.env.appName} ${vscode.version} (${vscode.env.uiKind === vscode.UIKind.Web ? 'web' : 'desktop'} UI${vscode.env.remoteName ? `, remote ${vscode.env.remoteName}` : ''}).`);

  const statusBar = new AttentionStatusBar();
  context.subscriptions.push(statusBar);

  let latestProbe: WebGpuProbeResult | undefined;
  const probeWaiters = new Set<(probe: WebGpuProbeResult) => void>();
  const panelHost: PanelHost = {
    extensionUri: context.extensionUri,
    log,
    onProbe(probe) {
      latestProbe = probe;
      statusBar.showProbe(probe);
      if (probe.ok) {
        const a = probe.adapter;
        log.info(`WebGPU adapter: vendor=${a.vendor || '?'} architecture=${a.architecture || '?'} device=${a.device || '?'} description=${a.description || '?'} fallback=${a.isFallbackAdapter}`);
        log.info(`WebGPU features: ${a.features.join(', ') || 'none'}`);
        log.info(`WebGPU limits: ${Object.entries(a.limits).map(([k, v]) => `${k}=${v}`).join(' ')}`);
      } else {
        log.warn(`No WebGPU adapter in the panel: ${probe.error}. The CPU reference implementation will be used.`);
      }
      for (const waiter of probeWaiters) waiter(probe);
      probeWaiters.clear();
    },
  };

  context.subscriptions.push(
    vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel) {
        AttentionPanel.revive(panel, panelHost);
      },
    }),
    { dispose: () => AttentionPanel.instance?.dispose() },
  );

  const notBuiltYet = (title: string) => () => {
    void vscode.window.showInformationMessage(`Attention Lens: "${title}" is not available in this version yet. The panel (Attention Lens: Show Attention Panel) and the WebGPU probe work today.`);
  };

  context.subscriptions.push(
    vscode.commands.registerCommand(COMMANDS.showPanel, () => {
      AttentionPanel.createOrShow(panelHost);
    }),
    vscode.commands.registerCommand(COMMANDS.showLog, () => log.show()),
    vscode.commands.registerCommand(COMMANDS.toggleOverlay, async () => {
      const settings = vscode.workspace.getConfiguration('attentionLens');
      const enabled = !config().overlayEnabled;
      await settings.update('overlay.enabled', enabled, vscode.ConfigurationTarget.Global);
      void vscode.window.showInformationMessage(`Attention Lens overlay ${enabled ? 'on' : 'off'}.`);
    }),
    vscode.commands.registerCommand(COMMANDS.analyzeFile, notBuiltYet('Analyze Current File')),
    vscode.commands.registerCommand(COMMANDS.selectLayerHead, notBuiltYet('Select Layer/Head')),
    vscode.commands.registerCommand(COMMANDS.selectAggregation, notBuiltYet('Select Aggregation')),
    vscode.commands.registerCommand(COMMANDS.chooseModel, notBuiltYet('Choose Model')),
    vscode.commands.registerCommand(COMMANDS.showSourcesAtCursor, notBuiltYet('Show Attention Sources at Cursor')),
    vscode.commands.registerCommand(COMMANDS.exportAnalysis, notBuiltYet('Export Analysis')),
    vscode.commands.registerCommand(COMMANDS.clear, notBuiltYet('Clear')),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('attentionLens')) log.info(`Settings changed: ${JSON.stringify(config())}`);
    }),
  );

  return {
    whenProbed(timeoutMs: number) {
      if (latestProbe) return Promise.resolve(latestProbe);
      return new Promise<WebGpuProbeResult>((resolve, reject) => {
        const timer = setTimeout(() => {
          probeWaiters.delete(done);
          reject(new Error(`No WebGPU probe result within ${timeoutMs} ms. Is the Attention Lens panel open?`));
        }, timeoutMs);
        const done = (probe: WebGpuProbeResult) => {
          clearTimeout(timer);
          resolve(probe);
        };
        probeWaiters.add(done);
      });
    },
  };
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
