/**
 * The on-disk cache of downloaded models, laid out like huggingface_hub's:
 *
 *   <root>/models--{org}--{name}/
 *     refs/{revision}              the commit sha the revision resolved to (written last)
 *     snapshots/{sha}/{file}       complete, verified files only (each renamed into place)
 *     incomplete/{sha}/{file}.incomplete   partial downloads, resumed with HTTP range requests
 *
 * A snapshot counts as usable only once its ref is written, which happens after every file of the
 * model is in place: a cancelled or failed download is never mistaken for a complete model.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { isCommitSha, type RepoRef } from './repoRef';

/** The CLI's cache (and the extension's fallback): `$ATTENTION_LENS_CACHE` or `~/.cache/attention-lens/hub`. */
export function defaultCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.ATTENTION_LENS_CACHE?.trim() || path.join(os.homedir(), '.cache', 'attention-lens', 'hub');
}

export interface CachedModel {
  readonly repo: string;
  /** revision -> commit sha, from refs/. */
  readonly refs: Readonly<Record<string, string>>;
  /** Folders of the snapshots some ref points to. */
  readonly snapshots: readonly string[];
  /** Bytes on disk for the repo, partial downloads included. */
  readonly bytes: number;
  /** Bytes of partial downloads (kept to resume). */
  readonly partialBytes: number;
}

/** Refuses names that could leave their folder; hub file names we fetch are plain root-level names. */
export function checkPlainFileName(name: string): string {
  if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) throw new Error(`refusing the file name "${name}": only plain file names at the root of a repo are downloaded`);
  return name;
}

export class ModelCache {
  constructor(readonly root: string) {}

  repoFolder(repo: string): string {
    return path.join(this.root, `models--${repo.replace('/', '--')}`);
  }

  snapshotFolder(repo: string, sha: string): string {
    return path.join(this.repoFolder(repo), 'snapshots', sha);
  }

  incompleteFile(repo: string, sha: string, file: string): string {
    return path.join(this.repoFolder(repo), 'incomplete', sha, `${checkPlainFileName(file)}.incomplete`);
  }

  private refFile(repo: string, revision: string): string {
    // Branch names may contain '/' (refs/pr/1): keep the ref one file.
    return path.join(this.repoFolder(repo), 'refs', encodeURIComponent(revision));
  }

  /** The folder of a complete snapshot for `ref`, or undefined when it is not cached. */
  async find(ref: RepoRef): Promise<string | undefined> {
    const sha = await this.resolve(ref);
    if (!sha) return undefined;
    const folder = this.snapshotFolder(ref.repo, sha);
    return (await isDirectory(folder)) ? folder : undefined;
  }

  /** The commit sha a cached revision resolved to when it was downloaded. */
  async resolve(ref: RepoRef): Promise<string | undefined> {
    let sha: string;
    try {
      sha = (await fs.readFile(this.refFile(ref.repo, ref.revision), 'utf8')).trim();
    } catch {
      return undefined;
    }
    return isCommitSha(sha) ? sha : undefined;
  }

  /** Records that `ref` resolved to `sha` and that the snapshot is complete. Atomic. */
  async writeRef(ref: RepoRef, sha: string): Promise<void> {
    const file = this.refFile(ref.repo, ref.revision);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, sha);
    // A commit sha is also a revision: later lookups by sha need no network.
    if (ref.revision !== sha) await writeFileAtomic(this.refFile(ref.repo, sha), sha);
  }

  /** Every cached repo, with its refs and sizes. */
  async list(): Promise<CachedModel[]> {
    let entries: string[];
    try {
      entries = (await fs.readdir(this.root)).filter((name) => name.startsWith('models--')).sort();
    } catch {
      return [];
    }
    const models: CachedModel[] = [];
    for (const entry of entries) {
      const parts = entry.slice('models--'.length).split('--');
      if (parts.length !== 2) continue;
      const repo = `${parts[0]}/${parts[1]}`;
      const folder = path.join(this.root, entry);
      const refs: Record<string, string> = {};
      for (const name of await readdirOrEmpty(path.join(folder, 'refs'))) {
        const sha = (await fs.readFile(path.join(folder, 'refs', name), 'utf8').catch(() => '')).trim();
        if (isCommitSha(sha)) refs[decodeURIComponent(name)] = sha;
      }
      const snapshots = [...new Set(Object.values(refs))].map((sha) => this.snapshotFolder(repo, sha));
      models.push({ repo, refs, snapshots, bytes: await folderBytes(folder), partialBytes: await folderBytes(path.join(folder, 'incomplete')) });
    }
    return models;
  }

  /** Deletes one repo's files, partial downloads included. */
  async delete(repo: string): Promise<void> {
    await fs.rm(this.repoFolder(repo), { recursive: true, force: true });
  }

  /** Deletes every cached model (only `models--*` folders: the root may be shared). */
  async deleteAll(): Promise<void> {
    for (const model of await this.list()) await this.delete(model.repo);
  }
}

/** Writes through a temporary file and a rename, so readers never see half a file. */
export async function writeFileAtomic(file: string, content: string | Uint8Array): Promise<void> {
  const temporary = `${file}.${process.pid}.${Date.now()}.tmp`;
  await fs.writeFile(temporary, content);
  await fs.rename(temporary, file);
}

async function isDirectory(folder: string): Promise<boolean> {
  try {
    return (await fs.stat(folder)).isDirectory();
  } catch {
    return false;
  }
}

async function readdirOrEmpty(folder: string): Promise<string[]> {
  try {
    return await fs.readdir(folder);
  } catch {
    return [];
  }
}

async function folderBytes(folder: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await fs.readdir(folder, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) total += await folderBytes(full);
    else if (entry.isFile()) total += (await fs.stat(full)).size;
  }
  return total;
}
