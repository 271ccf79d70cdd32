/**
 * `attention-lens pull REPO`: downloads a model from the Hugging Face Hub into the model cache (the
 * same code and layout as the extension), with a progress bar on a terminal, and prints the model
 * folder. `forward` and `analyze` then accept `--model REPO`. Lets a machine be prepared for
 * offline use.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { describeProgress, downloadModel, formatMB, type DownloadProgress } from '../hub/download';
import { HubClient } from '../hub/hubClient';
import { HubError } from '../hub/hubError';
import { defaultCacheRoot, ModelCache } from '../hub/modelCache';
import { classifyModelSetting, formatRepoRef, parseRepoRef } from '../hub/repoRef';
import { CliError } from './cliError';

export const PULL_USAGE = `Usage: attention-lens pull REPO [options]

Downloads the Hugging Face model REPO (org/name) into the model cache and prints its folder.
Only config.json, tokenizer.json and safetensors weights are fetched; files are verified (sha256)
and interrupted downloads resume. Afterwards "forward" and "analyze" accept --model REPO.

Options:
  --revision R          branch, tag or commit (default: main; REPO@R works too)
  --endpoint URL        hub endpoint (default: $HF_ENDPOINT or https://huggingface.co)
  --cache DIR           cache folder (default: $ATTENTION_LENS_CACHE or ~/.cache/attention-lens/hub)
  -h, --help            show this help

Private or gated repos: set HF_TOKEN to an access token (it is sent only to the endpoint).`;

export async function runPull(args: string[], log: (line: string) => void): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { revision: { type: 'string' }, endpoint: { type: 'string' }, cache: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new CliError(`${(error as Error).message}. Run "attention-lens pull --help" for usage.`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${PULL_USAGE}\n`);
    return;
  }
  if (positionals.length !== 1) throw new CliError('pull needs exactly one REPO (org/name). Run "attention-lens pull --help" for usage.');
  const ref = parseRepoRef(positionals[0]);
  if (!ref) throw new CliError(`"${positionals[0]}" is not a Hugging Face repo id; write org/name or org/name@revision.`);
  const revision = values.revision ?? ref.revision;
  const endpoint = values.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co';
  if (!/^https?:\/\/\S+$/.test(endpoint)) throw new CliError(`--endpoint must be an http(s) URL, not "${endpoint}".`);
  const cache = new ModelCache(values.cache ?? defaultCacheRoot());
  const client = new HubClient({ endpoint, token: process.env.HF_TOKEN?.trim() || undefined, userAgent: 'attention-lens-cli' });

  const abort = new AbortController();
  const onInterrupt = () => abort.abort();
  process.once('SIGINT', onInterrupt);
  const bar = progressBar(process.stderr);
  try {
    const model = await downloadModel({ repo: ref.repo, revision }, { client, cache, signal: abort.signal, onProgress: bar.update, log: (line) => { bar.clear(); log(line); } });
    bar.clear();
    if (model.offline) log(`attention-lens: ${endpoint} is unreachable; using the copy downloaded earlier.`);
    log(`${formatRepoRef(model.ref)}: ${model.spec.architecture}, ${model.spec.numLayers} layers x ${model.spec.numHeads} heads (commit ${model.sha}).`);
    process.stdout.write(`${model.folder}\n`);
  } catch (error) {
    bar.clear();
    if (error instanceof HubError) throw new CliError(error.message, error.kind === 'cancelled' || error.kind === 'offline' || error.kind === 'diskFull' || error.kind === 'hashMismatch' || error.kind === 'badResponse' ? 1 : 2);
    throw error;
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}

/** A one-line progress bar redrawn in place on a terminal; plain lines every 10% otherwise. */
function progressBar(stream: NodeJS.WriteStream): { update: (p: DownloadProgress) => void; clear: () => void } {
  let drawn = false;
  let lastTenth = -1;
  return {
    update(p) {
      const fraction = p.total > 0 ? Math.min(1, p.bytes / p.total) : 0;
      if (stream.isTTY) {
        const width = 24;
        const filled = Math.round(fraction * width);
        const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${describeProgress(p)}`;
        stream.write(`\r${line.slice(0, (stream.columns || 100) - 1)}\x1b[K`);
        drawn = true;
      } else if (Math.floor(fraction * 10) > lastTenth) {
        lastTenth = Math.floor(fraction * 10);
        stream.write(`${(fraction * 100).toFixed(0)}% ${formatMB(p.bytes)} of ${formatMB(p.total)}${os.EOL}`);
      }
    },
    clear() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}

/**
 * The folder a `--model` argument names: a local folder as given, or a repo id (org/name[@revision])
 * looked up in the cache `pull` fills.
 */
export async function resolveModelArgument(value: string, cacheDir: string | undefined): Promise<string> {
  const choice = classifyModelSetting(value, os.homedir());
  if (choice.kind !== 'repo') return choice.kind === 'folder' ? choice.folder : value;
  // A relative folder that happens to look like org/name wins when it exists.
  const local = await fs.stat(value).then((stat) => stat.isDirectory(), () => false);
  if (local) return value;
  const cache = new ModelCache(cacheDir ?? defaultCacheRoot());
  const folder = await cache.find(choice.ref);
  if (!folder) throw new CliError(`${formatRepoRef(choice.ref)} is not in the model cache ${cache.root}. Download it first: attention-lens pull ${formatRepoRef(choice.ref)}${cacheDir ? ` --cache ${cacheDir}` : ''}`);
  return folder;
}
