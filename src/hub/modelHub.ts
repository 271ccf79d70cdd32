/**
 * The editor side of model choice and download: the Choose Model quick pick, the cancellable
 * download notification (bytes, total, speed), the access token in SecretStorage, the cache
 * manager, and a status bar item naming the active model. Downloads themselves are done by the
 * vscode-free hub modules (download.ts), which the CLI shares.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { COMMANDS } from '../commandIds';
import type { AttentionLensConfig } from '../config';
import type { ActiveModel } from '../model/activeModel';
import { describeProgress, downloadModel, formatMB, type DownloadedModel } from './download';
import { HubClient } from './hubClient';
import { isHubError } from './hubError';
import { defaultCacheRoot, ModelCache } from './modelCache';
import { RECOMMENDED_MODELS } from './recommendedModels';
import { classifyModelSetting, formatRepoRef, parseRepoRef, type RepoRef } from './repoRef';

const TOKEN_SECRET = 'attentionLens.huggingFaceToken';

/** What Choose Model may be given instead of asking (tests, other extensions, the panel). */
export interface ChooseModelArgs {
  /** A repo id `org/name[@revision]`: downloaded when needed, then used. */
  readonly repo?: string;
  /** An absolute model folder. */
  readonly folder?: string;
  /** The embedded default model. */
  readonly useDefault?: boolean;
}

export interface ChooseModelResult {
  /** The new value of attentionLens.model. */
  readonly setting: string;
  /** The model folder used. */
  readonly folder: string;
  /** Files fetched from the hub (empty when cached or local). */
  readonly fetched: readonly string[];
  /** Every message the download notification showed, in order. */
  readonly progressMessages: readonly string[];
}

export interface ModelHubHost {
  readonly context: vscode.ExtensionContext;
  readonly log: vscode.LogOutputChannel;
  readonly config: () => AttentionLensConfig;
  /** The analysis side: forget the loaded model, drop results, load the new one. */
  readonly models: { reloadModel(): void; clear(): void; activeModel(): Promise<ActiveModel> };
}

export class ModelHub implements vscode.Disposable {
  private readonly statusItem = vscode.window.createStatusBarItem('attentionLens.model', vscode.StatusBarAlignment.Right, 99);
  private readonly disposables: vscode.Disposable[] = [this.statusItem];

  constructor(private readonly host: ModelHubHost) {
    this.statusItem.name = 'Attention Lens model';
    this.statusItem.command = COMMANDS.chooseModel;
    this.updateStatus();
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('attentionLens.model')) this.updateStatus();
      }),
    );
  }

  /** The extension's cache: `attentionLens.cacheDirectory`, else its global storage. */
  cacheRoot(): string {
    return this.host.config().cacheDirectory || path.join(this.host.context.globalStorageUri.fsPath, 'hub');
  }

  /** Where repo ids are looked up: the extension's cache, then the CLI's. */
  cacheRoots(): string[] {
    return [...new Set([this.cacheRoot(), defaultCacheRoot()])];
  }

  private updateStatus(): void {
    const setting = this.host.config().model;
    const choice = classifyModelSetting(setting);
    const name = choice.kind === 'default' ? 'default model' : choice.kind === 'folder' ? path.basename(choice.folder) : formatRepoRef(choice.ref);
    this.statusItem.text = `$(package) ${name}`;
    this.statusItem.tooltip = `Attention Lens model: ${choice.kind === 'default' ? 'the embedded default model' : setting}. Click to choose another.`;
    this.statusItem.show();
  }

  /** Choose Model: asks (or takes `args`), downloads a repo when needed, and makes it the active model. */
  async chooseModel(args?: ChooseModelArgs): Promise<ChooseModelResult | undefined> {
    if (args?.repo !== undefined && !parseRepoRef(args.repo)) {
      void vscode.window.showErrorMessage(`Attention Lens: "${args.repo}" is not a Hugging Face repo id; write org/name or org/name@revision.`);
      return undefined;
    }
    const choice = args ? fromArgs(args) : await this.pick();
    if (!choice) return undefined;
    let setting = '';
    let fetched: readonly string[] = [];
    let progressMessages: readonly string[] = [];
    if (choice.kind === 'folder') setting = choice.folder;
    if (choice.kind === 'repo') {
      const downloaded = await this.download(choice.ref);
      if (!downloaded) return undefined;
      setting = formatRepoRef(choice.ref);
      fetched = downloaded.model.fetched;
      progressMessages = downloaded.progressMessages;
    }
    await vscode.workspace.getConfiguration('attentionLens').update('model', setting, vscode.ConfigurationTarget.Global);
    this.host.models.reloadModel();
    this.host.models.clear();
    this.updateStatus();
    try {
      const model = await this.host.models.activeModel();
      void vscode.window.showInformationMessage(`Attention Lens: using ${model.label} (${model.spec.architecture}, ${model.spec.numLayers} layers x ${model.spec.numHeads} heads).`);
      return { setting, folder: model.folder, fetched, progressMessages };
    } catch (error) {
      void vscode.window.showErrorMessage(`Attention Lens: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
  }

  private async pick(): Promise<Choice | undefined> {
    const current = this.host.config().model;
    const cached = new Set<string>();
    for (const root of this.cacheRoots()) for (const model of await new ModelCache(root).list()) if (Object.keys(model.refs).length) cached.add(model.repo);
    const items: ModelChoiceItem[] = [
      { label: '$(package) Embedded default model', description: current === '' ? 'current' : '', detail: 'Small Llama-architecture code model shipped with the extension; works offline.', choice: { kind: 'default' } },
      { label: 'Recommended on the Hugging Face Hub', kind: vscode.QuickPickItemKind.Separator },
      ...RECOMMENDED_MODELS.map((m): ModelChoiceItem => ({
        label: `$(cloud-download) ${m.repo}`,
        description: `${m.size} · ${m.license}${cached.has(m.repo) ? ' · downloaded' : ''}${current === m.repo ? ' · current' : ''}`,
        detail: `${m.architecture}; ${m.note}`,
        choice: { kind: 'repo', ref: { repo: m.repo, revision: 'main' } },
      })),
      { label: 'Other', kind: vscode.QuickPickItemKind.Separator },
      { label: '$(edit) Enter a Hugging Face repo id...', detail: `org/name or org/name@revision, downloaded from ${this.host.config().huggingFaceEndpoint}`, choice: 'enterRepo' },
      { label: '$(folder-opened) Open a local folder...', description: classifyModelSetting(current).kind === 'folder' ? `current: ${current}` : '', detail: 'A Hugging Face model folder: config.json, model.safetensors (or shards), tokenizer.json.', choice: 'openFolder' },
    ];
    const picked = await vscode.window.showQuickPick(items, { title: 'Attention Lens: choose model', matchOnDescription: true, matchOnDetail: true });
    if (!picked?.choice) return undefined;
    if (picked.choice === 'enterRepo') {
      const text = await vscode.window.showInputBox({
        title: 'Attention Lens: Hugging Face repo id',
        prompt: 'A repo with config.json, tokenizer.json and safetensors weights (an architecture the README lists as supported: Llama, Qwen2, Qwen3, Gemma 2/3, Phi-3, StarCoder2, SmolLM3, Granite, GPT-2).',
        placeHolder: 'HuggingFaceTB/SmolLM2-135M or org/name@revision',
        validateInput: (value) => (parseRepoRef(value) ? undefined : 'Write org/name, optionally followed by @revision (a branch, tag or commit).'),
      });
      const ref = text ? parseRepoRef(text) : undefined;
      return ref ? { kind: 'repo', ref } : undefined;
    }
    if (picked.choice === 'openFolder') {
      const folder = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, title: 'Choose a Hugging Face model folder' });
      return folder?.[0] ? { kind: 'folder', folder: folder[0].fsPath } : undefined;
    }
    return picked.choice;
  }

  /** Downloads `ref` with a cancellable progress notification; errors are shown with what to do. */
  async download(ref: RepoRef): Promise<{ model: DownloadedModel; progressMessages: string[] } | undefined> {
    const config = this.host.config();
    const token = await this.host.context.secrets.get(TOKEN_SECRET);
    const client = new HubClient({ endpoint: config.huggingFaceEndpoint, token, userAgent: `attention-lens/${this.host.context.extension.packageJSON.version} vscode/${vscode.version}` });
    const cache = new ModelCache(this.cacheRoot());
    const progressMessages: string[] = [];
    const log = this.host.log;
    log.info(`Downloading ${formatRepoRef(ref)} from ${client.endpoint} into ${cache.root}${token ? ' (with the stored access token)' : ''}.`);
    try {
      const model = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Attention Lens: downloading ${formatRepoRef(ref)}`, cancellable: true },
        async (progress, cancellation) => {
          const abort = new AbortController();
          cancellation.onCancellationRequested(() => abort.abort());
          let reported = 0;
          const first = 'resolving the revision...';
          progressMessages.push(first);
          progress.report({ message: first });
          return downloadModel(ref, {
            client,
            cache,
            signal: abort.signal,
            log: (line) => log.info(line),
            onProgress: (p) => {
              const message = describeProgress(p);
              const fraction = p.total > 0 ? Math.min(1, p.bytes / p.total) : 0;
              progress.report({ message, increment: Math.max(0, fraction * 100 - reported) });
              reported = Math.max(reported, fraction * 100);
              progressMessages.push(message);
            },
          });
        },
      );
      if (model.offline) void vscode.window.showWarningMessage(`Attention Lens: ${client.endpoint} is unreachable; using the copy of ${formatRepoRef(ref)} downloaded earlier.`);
      else if (model.fetched.length) log.info(`Downloaded ${formatRepoRef(ref)} (commit ${model.sha}) into ${model.folder}.`);
      return { model, progressMessages };
    } catch (error) {
      this.showDownloadError(ref, error, client.endpoint);
      return undefined;
    }
  }

  private showDownloadError(ref: RepoRef, error: unknown, endpoint: string): void {
    const message = error instanceof Error ? error.message : String(error);
    this.host.log.error(`Download of ${formatRepoRef(ref)} failed${isHubError(error) ? ` (${error.kind})` : ''}: ${message}`);
    if (isHubError(error, 'cancelled')) {
      void vscode.window.showInformationMessage(`Attention Lens: ${message}`);
      return;
    }
    const actions: string[] = [];
    if (isHubError(error, 'unauthorized') || isHubError(error, 'forbidden')) actions.push('Set Token', 'Open Model Page');
    if (isHubError(error, 'diskFull')) actions.push('Manage Model Cache');
    if (isHubError(error, 'notFound') || isHubError(error, 'unsupportedArchitecture') || isHubError(error, 'unusableModel')) actions.push('Choose Another Model');
    actions.push('Show Log');
    void vscode.window.showErrorMessage(`Attention Lens: ${message}`, ...actions).then((choice) => {
      if (choice === 'Set Token') void vscode.commands.executeCommand(COMMANDS.setHubToken);
      else if (choice === 'Open Model Page') void vscode.env.openExternal(vscode.Uri.parse(`${endpoint}/${ref.repo}`));
      else if (choice === 'Manage Model Cache') void vscode.commands.executeCommand(COMMANDS.manageModelCache);
      else if (choice === 'Choose Another Model') void vscode.commands.executeCommand(COMMANDS.chooseModel);
      else if (choice === 'Show Log') this.host.log.show();
    });
  }

  /** Lists cached models with their sizes; deletes one or all after a confirmation. */
  async manageCache(): Promise<void> {
    const entries: { root: string; model: Awaited<ReturnType<ModelCache['list']>>[number] }[] = [];
    for (const root of this.cacheRoots()) for (const model of await new ModelCache(root).list()) entries.push({ root, model });
    if (entries.length === 0) {
      void vscode.window.showInformationMessage(`Attention Lens: no downloaded models in ${this.cacheRoots().join(' or ')}.`);
      return;
    }
    const total = entries.reduce((sum, e) => sum + e.model.bytes, 0);
    type Item = vscode.QuickPickItem & { entry?: (typeof entries)[number]; all?: boolean };
    const items: Item[] = [
      ...entries.map((entry): Item => ({
        label: `$(trash) ${entry.model.repo}`,
        description: `${formatMB(entry.model.bytes)}${entry.model.partialBytes ? ` (${formatMB(entry.model.partialBytes)} partial)` : ''}${Object.keys(entry.model.refs).length ? ` · ${Object.keys(entry.model.refs).filter((r) => !/^[0-9a-f]{40}$/.test(r)).join(', ')}` : ' · incomplete'}`,
        detail: entry.root,
        entry,
      })),
      { label: '', kind: vscode.QuickPickItemKind.Separator },
      { label: '$(trash) Delete all downloaded models', description: formatMB(total), all: true },
    ];
    const picked = await vscode.window.showQuickPick(items, { title: `Attention Lens: downloaded models (${formatMB(total)}); pick one to delete` });
    if (!picked || (!picked.entry && !picked.all)) return;
    const what = picked.all ? `all ${entries.length} downloaded models (${formatMB(total)})` : `${picked.entry!.model.repo} (${formatMB(picked.entry!.model.bytes)})`;
    const confirmed = await vscode.window.showWarningMessage(`Delete ${what}? They can be downloaded again.`, { modal: true }, 'Delete');
    if (confirmed !== 'Delete') return;
    for (const entry of picked.all ? entries : [picked.entry!]) await new ModelCache(entry.root).delete(entry.model.repo);
    this.host.models.reloadModel();
    this.host.log.info(`Deleted ${what} from the model cache.`);
    void vscode.window.showInformationMessage(`Attention Lens: deleted ${what}.`);
  }

  /** Stores a Hugging Face access token in VS Code's SecretStorage (never in settings or logs). */
  async setToken(): Promise<boolean> {
    const token = await vscode.window.showInputBox({
      title: 'Attention Lens: Hugging Face access token',
      prompt: 'For private or gated repos. Stored in VS Code\'s secret storage, never in settings. Create one at huggingface.co/settings/tokens (read access is enough).',
      password: true,
      ignoreFocusOut: true,
      validateInput: (value) => (/^\S{8,}$/.test(value.trim()) ? undefined : 'Paste the token (it starts with hf_).'),
    });
    if (!token) return false;
    await this.host.context.secrets.store(TOKEN_SECRET, token.trim());
    this.host.log.info('A Hugging Face access token was stored in the secret storage.');
    void vscode.window.showInformationMessage('Attention Lens: Hugging Face token stored. Downloads from the hub now send it.');
    return true;
  }

  async clearToken(): Promise<void> {
    await this.host.context.secrets.delete(TOKEN_SECRET);
    this.host.log.info('The Hugging Face access token was removed from the secret storage.');
    void vscode.window.showInformationMessage('Attention Lens: Hugging Face token removed.');
  }

  dispose(): void {
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }
}

type Choice = { kind: 'default' } | { kind: 'folder'; folder: string } | { kind: 'repo'; ref: RepoRef };

interface ModelChoiceItem extends vscode.QuickPickItem {
  readonly choice?: Choice | 'enterRepo' | 'openFolder';
}

function fromArgs(args: ChooseModelArgs): Choice {
  if (args.repo !== undefined) {
    const ref = parseRepoRef(args.repo);
    if (ref) return { kind: 'repo', ref };
  }
  if (args.folder !== undefined) return { kind: 'folder', folder: path.resolve(args.folder) };
  return { kind: 'default' };
}
