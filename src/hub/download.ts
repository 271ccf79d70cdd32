/**
 * Downloads a model from the hub into the ModelCache: resolve the revision, pick the files
 * (config, tokenizer, safetensors or their index and shards; never pickles), check the architecture
 * before any weights, check free disk space, then stream each file to a `.incomplete` file, resuming
 * with HTTP range requests, verify its sha256 and rename it into the snapshot. The ref is written
 * last, so only complete snapshots are ever used.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseModelConfig, SUPPORTED_ARCHITECTURES } from '../../engine/model/modelConfig';
import type { ModelSpec } from '../../engine/model/modelTypes';
import { cancelled, HubClient, type FileMetadata } from './hubClient';
import { HubError, isHubError } from './hubError';
import { checkPlainFileName, ModelCache } from './modelCache';
import type { RepoRef } from './repoRef';

export interface DownloadProgress {
  /** The file being downloaded now. */
  readonly file: string;
  /** Bytes of the whole model on disk so far (resumed bytes included). */
  readonly bytes: number;
  /** Bytes of the whole model. */
  readonly total: number;
  /** Bytes per second over the last few seconds of this download. */
  readonly bytesPerSecond: number;
}

export interface DownloadOptions {
  readonly client: HubClient;
  readonly cache: ModelCache;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: DownloadProgress) => void;
  /** Notes for a log (never the token). */
  readonly log?: (line: string) => void;
  /** Free bytes at `folder` (tests replace it); default fs.statfs. */
  readonly freeBytes?: (folder: string) => Promise<number>;
  /** Attempts per file after a dropped connection, each resuming where the last stopped (default 4). */
  readonly attempts?: number;
}

export interface DownloadedModel {
  readonly ref: RepoRef;
  readonly sha: string;
  /** The snapshot folder: a Hugging Face model folder. */
  readonly folder: string;
  readonly spec: ModelSpec;
  /** Files fetched over the network in this run (the rest were already cached). */
  readonly fetched: readonly string[];
  /** True when the hub could not be reached and an earlier download of the revision was used. */
  readonly offline: boolean;
}

const CONFIG = 'config.json';
const TOKENIZER = 'tokenizer.json';
const SINGLE_WEIGHTS = 'model.safetensors';
const SHARD_INDEX = 'model.safetensors.index.json';
/** Bytes a download may hold in memory on their way to the disk (see streamTo). */
const WRITE_BUFFER_BYTES = 4 << 20;
/** Free space kept in reserve beyond the download itself. */
const DISK_MARGIN_BYTES = 64 << 20;

/** Downloads (or finds in the cache) the model `ref`; see the module comment for the steps. */
export async function downloadModel(ref: RepoRef, options: DownloadOptions): Promise<DownloadedModel> {
  const { client, cache, signal } = options;
  const log = options.log ?? (() => undefined);
  let revision;
  try {
    revision = await client.revision(ref.repo, ref.revision, signal);
  } catch (error) {
    // Offline with an earlier download of this revision: use it, and say so.
    const cached = isHubError(error, 'offline') ? await cache.find(ref) : undefined;
    if (!cached) throw error;
    log(`${client.endpoint} is unreachable; using the cached ${ref.repo}@${ref.revision} in ${cached}.`);
    const spec = parseModelConfig(JSON.parse(await fs.readFile(path.join(cached, CONFIG), 'utf8')), path.join(cached, CONFIG));
    return { ref, sha: path.basename(cached), folder: cached, spec, fetched: [], offline: true };
  }
  const { sha } = revision;
  const files = new Set(revision.files);
  log(`${ref.repo}@${ref.revision} is commit ${sha} (${files.size} files).`);
  const folder = cache.snapshotFolder(ref.repo, sha);
  await fs.mkdir(folder, { recursive: true });
  const fetched: string[] = [];
  const fetchSmall = async (file: string) => {
    if (await downloadFile(file, await client.metadata(ref.repo, sha, file, signal), { ...options, ref, sha, done: 0, total: 0, log })) fetched.push(file);
    return fs.readFile(path.join(folder, file), 'utf8');
  };

  // 1. The architecture, before any weights.
  if (!files.has(CONFIG)) throw new HubError('unusableModel', `${ref.repo} has no ${CONFIG} at the root, so it is not a Hugging Face transformers model Attention Lens can load.`);
  const spec = checkConfig(ref.repo, await fetchSmall(CONFIG), path.join(folder, CONFIG));

  // 2. Which weights: one safetensors file, or an index and its shards. Pickles are never fetched.
  let weightFiles: string[];
  if (files.has(SHARD_INDEX)) {
    weightFiles = [SHARD_INDEX, ...shardsOf(ref.repo, await fetchSmall(SHARD_INDEX), files)];
  } else if (files.has(SINGLE_WEIGHTS)) {
    weightFiles = [SINGLE_WEIGHTS];
  } else {
    const pickles = [...files].filter((f) => /\.(bin|pt|pth|ckpt|pkl)$/.test(f));
    throw new HubError('unusableModel', `${ref.repo}@${ref.revision} has no ${SINGLE_WEIGHTS} (nor ${SHARD_INDEX})${pickles.length ? `, only PyTorch pickles (${pickles.slice(0, 3).join(', ')}), which are never loaded because they can run code` : ''}. Choose a revision or another repo with safetensors weights.`);
  }
  const wanted = [...(files.has(TOKENIZER) ? [TOKENIZER] : []), ...weightFiles.filter((f) => f !== SHARD_INDEX)];
  if (!files.has(TOKENIZER)) log(`${ref.repo} has no ${TOKENIZER}; the CLI can still run it on --token-ids, the editor needs a tokenizer.`);

  // 3. Sizes and hashes, then free space for what is still missing.
  const metadata = new Map<string, FileMetadata>();
  for (const file of wanted) metadata.set(file, await client.metadata(ref.repo, sha, file, signal));
  let total = 0;
  let present = 0;
  for (const file of wanted) {
    const size = metadata.get(file)?.size ?? 0;
    total += size;
    present += (await sizeOf(path.join(folder, file))) ?? (await sizeOf(cache.incompleteFile(ref.repo, sha, file))) ?? 0;
  }
  const needed = total - present;
  const free = await (options.freeBytes ?? statfsFree)(cache.root);
  if (needed + DISK_MARGIN_BYTES > free) {
    throw new HubError('diskFull', `${ref.repo} needs ${formatMB(needed)} more in ${cache.root} but only ${formatMB(free)} is free. Free some space (or delete cached models with "Attention Lens: Manage Model Cache"), or choose a smaller model.`);
  }

  // 4. The files, one after another, with progress over the whole model.
  let done = 0;
  for (const file of wanted) {
    if (await downloadFile(file, metadata.get(file)!, { ...options, ref, sha, done, total, log })) fetched.push(file);
    done += (await sizeOf(path.join(folder, file))) ?? 0;
  }
  await cache.writeRef(ref, sha);
  await fs.rm(path.join(cache.repoFolder(ref.repo), 'incomplete', sha), { recursive: true, force: true });
  await fs.rmdir(path.join(cache.repoFolder(ref.repo), 'incomplete')).catch(() => undefined);
  log(`${ref.repo}@${ref.revision}: ${fetched.length ? `downloaded ${fetched.join(', ')}` : 'all files were already cached'}; model folder ${folder}.`);
  return { ref, sha, folder, spec, fetched, offline: false };
}

function checkConfig(repo: string, text: string, file: string): ModelSpec {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HubError('unusableModel', `${repo}: config.json is not valid JSON.`);
  }
  try {
    return parseModelConfig(json, file);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const architecture = (json as { architectures?: unknown }).architectures;
    const name = Array.isArray(architecture) && typeof architecture[0] === 'string' ? architecture[0] : undefined;
    if (/is not supported/.test(message) && (!name || !(name in SUPPORTED_ARCHITECTURES) || /architecture|model_type/.test(message))) {
      throw new HubError('unsupportedArchitecture', `${repo} is a ${name ?? 'model'} model: ${message.replace(/^.*?: /, '')} No weights were downloaded.`);
    }
    throw new HubError('unusableModel', `${repo}: ${message} No weights were downloaded.`);
  }
}

function shardsOf(repo: string, indexText: string, files: ReadonlySet<string>): string[] {
  let index: { weight_map?: unknown };
  try {
    index = JSON.parse(indexText);
  } catch {
    throw new HubError('unusableModel', `${repo}: ${SHARD_INDEX} is not valid JSON.`);
  }
  if (!index.weight_map || typeof index.weight_map !== 'object') throw new HubError('unusableModel', `${repo}: ${SHARD_INDEX} has no weight_map.`);
  const shards = [...new Set(Object.values(index.weight_map as Record<string, unknown>))];
  for (const shard of shards) {
    if (typeof shard !== 'string' || !shard.endsWith('.safetensors')) throw new HubError('unusableModel', `${repo}: ${SHARD_INDEX} names a shard "${String(shard)}" that is not a .safetensors file.`);
    try {
      checkPlainFileName(shard);
    } catch (error) {
      throw new HubError('unusableModel', `${repo}: ${SHARD_INDEX}: ${(error as Error).message}.`);
    }
    if (!files.has(shard)) throw new HubError('unusableModel', `${repo}: ${SHARD_INDEX} names ${shard}, which the repo does not have.`);
  }
  return (shards as string[]).sort();
}

interface FileContext extends DownloadOptions {
  readonly ref: RepoRef;
  readonly sha: string;
  /** Bytes of the model done before this file, and the model's total, for progress. */
  readonly done: number;
  readonly total: number;
  readonly log: (line: string) => void;
}

/**
 * Puts one file into the snapshot; returns false when it was already there. A dropped connection
 * resumes from the partial file; a sha256 mismatch deletes the file and downloads it once more.
 */
export async function downloadFile(file: string, meta: FileMetadata, context: FileContext): Promise<boolean> {
  const { cache, ref, sha } = context;
  const target = path.join(cache.snapshotFolder(ref.repo, sha), checkPlainFileName(file));
  if ((await sizeOf(target)) !== undefined) return false;
  const partial = cache.incompleteFile(ref.repo, sha, file);
  await fs.mkdir(path.dirname(partial), { recursive: true });
  for (let round = 1; ; round++) {
    const digest = await fetchToPartial(file, partial, meta, context);
    if (meta.sha256 === undefined || digest === meta.sha256) break;
    await fs.rm(partial, { force: true });
    context.log(`${file}: sha256 ${digest} differs from the hub's ${meta.sha256}; deleted${round === 1 ? ', downloading it again' : ''}.`);
    if (round >= 2) {
      throw new HubError('hashMismatch', `${file} of ${ref.repo} was downloaded twice and both times its sha256 differed from the hub's (${meta.sha256.slice(0, 12)}...). The file was deleted. A proxy or the endpoint may be altering downloads; try again later or another network.`);
    }
  }
  await fs.mkdir(path.dirname(target), { recursive: true });
  await fs.rename(partial, target);
  return true;
}

/** Streams the file into `partial`, resuming and retrying on dropped connections. Returns its sha256. */
async function fetchToPartial(file: string, partial: string, meta: FileMetadata, context: FileContext): Promise<string> {
  const { client, ref, sha, signal } = context;
  const attempts = context.attempts ?? 4;
  for (let attempt = 1; ; attempt++) {
    let start = (await sizeOf(partial)) ?? 0;
    if (meta.size !== undefined && start > meta.size) {
      await fs.rm(partial, { force: true });
      start = 0;
    }
    const hash = createHash('sha256');
    try {
      if (meta.size !== undefined && start === meta.size) {
        await hashFile(partial, hash);
        return hash.digest('hex');
      }
      const response = await client.download(ref.repo, sha, file, start, signal);
      if (response.statusCode === 416) {
        // The server will not serve from there: the partial file is unusable.
        response.resume();
        await fs.rm(partial, { force: true });
        continue;
      }
      const resumed = response.statusCode === 206 && start > 0 && contentRangeStart(response.headers['content-range']) === start;
      if (!resumed) start = 0;
      else await hashFile(partial, hash);
      if (resumed) context.log(`${file}: resuming at byte ${start}.`);
      await streamTo(response, partial, resumed, hash, start, file, context, meta.size);
      const written = (await sizeOf(partial)) ?? 0;
      if (meta.size !== undefined && written !== meta.size) throw Object.assign(new Error(`got ${written} of ${meta.size} bytes`), { code: 'ECONNRESET' });
      return hash.digest('hex');
    } catch (error) {
      if (signal?.aborted) throw cancelled();
      if (isHubError(error) && error.kind !== 'offline') throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        throw new HubError('diskFull', `The disk holding ${context.cache.root} is full: ${file} of ${ref.repo} could not be written. Free some space and download again; the part downloaded so far is kept.`);
      }
      if (attempt >= attempts) {
        if (isHubError(error)) throw error;
        throw new HubError('offline', `The connection broke while downloading ${file} of ${ref.repo} (${code ?? (error as Error).message}), ${attempts} times. The part downloaded so far is kept; download again to resume.`);
      }
      context.log(`${file}: ${code ?? (error as Error).message}; resuming (attempt ${attempt + 1} of ${attempts}).`);
    }
  }
}

async function streamTo(
  response: NodeJS.ReadableStream & { destroy(error?: Error): void },
  partial: string,
  append: boolean,
  hash: ReturnType<typeof createHash>,
  start: number,
  file: string,
  context: FileContext,
  size: number | undefined,
): Promise<void> {
  // A large buffer keeps the response flowing while the disk catches up: a paused response holds
  // bytes already received that Node discards when the connection breaks, so they would be fetched
  // again. Past this much, the response is paused as usual.
  const out = createWriteStream(partial, { flags: append ? 'a' : 'w', highWaterMark: WRITE_BUFFER_BYTES });
  const onAbort = () => response.destroy(cancelled());
  context.signal?.addEventListener('abort', onAbort);
  let bytes = start;
  const window: { time: number; bytes: number }[] = [{ time: Date.now(), bytes }];
  let lastReport = 0;
  const total = context.total || size || 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      // Settles only once the file is flushed and closed, whether the transfer ended or failed: the
      // next attempt resumes from the partial file's size, and destroying the stream instead would
      // drop the bytes still buffered in it (the retry would then start too early, even at byte 0).
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        // A write error wins over a broken connection: a full disk is what the user must fix.
        void closeFile(out).then((writeError) => {
          const failure = writeError ?? error;
          if (failure) reject(failure);
          else resolve();
        });
      };
      response.on('error', (error: Error) => finish(error));
      response.on('aborted', () => finish(Object.assign(new Error('the connection closed mid-file'), { code: 'ECONNRESET' })));
      out.on('error', (error: Error) => {
        response.destroy();
        finish(error);
      });
      response.on('data', (chunk: Buffer) => {
        if (settled) return;
        hash.update(chunk);
        bytes += chunk.length;
        if (!out.write(chunk)) {
          response.pause();
          out.once('drain', () => response.resume());
        }
        const now = Date.now();
        if (now - lastReport >= 100) {
          lastReport = now;
          window.push({ time: now, bytes });
          while (window.length > 2 && now - window[0].time > 3000) window.shift();
          const seconds = (now - window[0].time) / 1000;
          context.onProgress?.({ file, bytes: context.done + bytes, total, bytesPerSecond: seconds > 0 ? (bytes - window[0].bytes) / seconds : 0 });
        }
      });
      response.on('end', () => finish());
    });
  } finally {
    context.signal?.removeEventListener('abort', onAbort);
  }
  context.onProgress?.({ file, bytes: context.done + bytes, total, bytesPerSecond: 0 });
}

/**
 * Writes out what `out` still buffers and closes it; resolves when the file descriptor is closed,
 * with the stream's write error if it had one (then the buffered bytes are lost, and the caller
 * reports that error).
 */
function closeFile(out: WriteStream): Promise<Error | undefined> {
  return new Promise((resolve) => {
    let writeError: Error | undefined;
    out.on('error', (error: Error) => (writeError ??= error));
    if (out.closed) return resolve(writeError ?? out.errored ?? undefined);
    out.once('close', () => resolve(writeError ?? out.errored ?? undefined));
    // After a write error the stream destroys itself (autoDestroy); end() would only add an error.
    if (!out.destroyed) out.end();
  });
}

function contentRangeStart(header: string | undefined): number | undefined {
  const match = /^bytes (\d+)-/.exec(header ?? '');
  return match ? Number(match[1]) : undefined;
}

async function hashFile(file: string, hash: ReturnType<typeof createHash>): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    const stat = await fs.stat(file);
    return stat.isFile() ? stat.size : undefined;
  } catch {
    return undefined;
  }
}

async function statfsFree(folder: string): Promise<number> {
  // The cache root may not exist yet: ask about its nearest existing ancestor.
  for (let current = path.resolve(folder); ; current = path.dirname(current)) {
    try {
      const stats = await fs.statfs(current);
      return stats.bavail * stats.bsize;
    } catch {
      if (path.dirname(current) === current) return Number.POSITIVE_INFINITY;
    }
  }
}

/** "12.3 MB" (decimal megabytes, as download dialogs show). */
export function formatMB(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'unknown';
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/** "12.3 MB of 40.0 MB, 5.1 MB/s" for progress messages. */
export function describeProgress(progress: DownloadProgress): string {
  const speed = progress.bytesPerSecond > 0 ? `, ${formatMB(progress.bytesPerSecond)}/s` : '';
  return `${progress.file}: ${formatMB(progress.bytes)} of ${formatMB(progress.total)}${speed}`;
}
