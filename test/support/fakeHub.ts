/**
 * A Hugging Face Hub imitation on 127.0.0.1 for the download tests (unit and integration). It
 * answers like the real hub: `GET /api/models/{repo}/revision/{rev}` with the commit sha and file
 * list; `HEAD|GET /{repo}/resolve/{rev}/{file}` with a plain ETag (git blob sha1) for small files
 * and, for LFS files (*.safetensors), a 302 to a separate "CDN" server carrying x-linked-etag (the
 * sha256) and x-linked-size; range requests; 401/403/404 with X-Error-Code. Faults are switched
 * on per file: a connection dropped after N bytes, corrupted bytes, throttling.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

export interface FakeRepo {
  /** file name -> content. */
  readonly files: Readonly<Record<string, Buffer>>;
  /** 'private': 401 without the token; 'gated': 401 without a token, 403 with one (license not accepted). */
  readonly access?: 'public' | 'private' | 'gated';
  /** Commit sha (default: derived from the repo name). */
  readonly sha?: string;
}

export interface RecordedRequest {
  readonly server: 'hub' | 'cdn';
  readonly method: string;
  readonly path: string;
  readonly range?: string;
  readonly authorized: boolean;
}

/** The files of a fixture model folder (golden outputs of the engine tests left out), plus extras. */
export function repoFromFolder(folder: string, extra: Record<string, Buffer> = {}): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  for (const name of fs.readdirSync(folder)) if (!name.includes('golden')) files[name] = fs.readFileSync(path.join(folder, name));
  return { ...files, ...extra };
}

export class FakeHub {
  readonly requests: RecordedRequest[] = [];
  /**
   * file -> bytes after which the next GET of it is cut off (once). The connection is cut only
   * after those bytes are flushed to the socket, so the client surely receives all of them.
   */
  readonly dropAfter = new Map<string, number>();
  /** Connections cut so far: the file, and the body bytes the client was sent before the cut. */
  readonly cuts: { readonly file: string; readonly sentBytes: number }[] = [];
  /** file -> how many more GETs serve corrupted bytes. */
  readonly corrupt = new Map<string, number>();
  /** Bytes per second for file bodies (undefined: as fast as possible). */
  bytesPerSecond: number | undefined;
  /** Called when the body of a file starts streaming. */
  onTransfer: ((file: string) => void) | undefined;
  /** Called after each chunk of a file body is written. */
  onChunk: ((file: string, sent: number, total: number) => void) | undefined;
  private readonly servers: http.Server[] = [];
  private hubUrl = '';
  private cdnUrl = '';

  private constructor(
    private readonly repos: Record<string, FakeRepo>,
    private readonly token: string,
  ) {}

  static async start(repos: Record<string, FakeRepo>, token = 'hf_test_token_123'): Promise<FakeHub> {
    const hub = new FakeHub(repos, token);
    hub.hubUrl = await hub.listen((req, res) => hub.handleHub(req, res));
    hub.cdnUrl = await hub.listen((req, res) => hub.handleCdn(req, res));
    return hub;
  }

  get url(): string {
    return this.hubUrl;
  }

  shaOf(repo: string): string {
    return this.repos[repo].sha ?? createHash('sha1').update(`commit of ${repo}`).digest('hex');
  }

  /** Requests for `file` (any server). */
  requestsFor(file: string): RecordedRequest[] {
    return this.requests.filter((r) => decodeURIComponent(r.path).endsWith(`/${file}`) || decodeURIComponent(r.path).includes(`file=${file}`));
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      ),
    );
  }

  private listen(handler: http.RequestListener): Promise<string> {
    const server = http.createServer(handler);
    this.servers.push(server);
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
  }

  private record(server: 'hub' | 'cdn', req: http.IncomingMessage): void {
    this.requests.push({ server, method: req.method ?? 'GET', path: req.url ?? '', range: req.headers.range, authorized: req.headers.authorization === `Bearer ${this.token}` });
  }

  /** An error answer as the hub gives it. */
  private fail(res: http.ServerResponse, status: number, code: string): void {
    res.writeHead(status, { 'x-error-code': code, 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: code }));
  }

  /** Checks access; answers and returns undefined when refused. */
  private repoFor(req: http.IncomingMessage, res: http.ServerResponse, repo: string): FakeRepo | undefined {
    const found = this.repos[repo];
    const authorized = req.headers.authorization === `Bearer ${this.token}`;
    if (!found) {
      this.fail(res, authorized ? 404 : 401, 'RepoNotFound');
      return undefined;
    }
    if (found.access === 'private' && !authorized) {
      this.fail(res, 401, 'RepoNotFound');
      return undefined;
    }
    if (found.access === 'gated') {
      this.fail(res, authorized ? 403 : 401, 'GatedRepo');
      return undefined;
    }
    return found;
  }

  private handleHub(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.record('hub', req);
    const url = new URL(req.url ?? '/', this.hubUrl);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(url.pathname);
    if (api) {
      const repo = this.repoFor(req, res, api[1]);
      if (!repo) return;
      const sha = this.shaOf(api[1]);
      const revision = decodeURIComponent(api[2]);
      if (revision !== 'main' && revision !== sha) return this.fail(res, 404, 'RevisionNotFound');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: api[1], sha, siblings: Object.keys(repo.files).sort().map((rfilename) => ({ rfilename })) }));
      return;
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!resolve) return this.fail(res, 404, 'EntryNotFound');
    const repoId = resolve[1];
    const repo = this.repoFor(req, res, repoId);
    if (!repo) return;
    const sha = this.shaOf(repoId);
    const revision = decodeURIComponent(resolve[2]);
    if (revision !== 'main' && revision !== sha) return this.fail(res, 404, 'RevisionNotFound');
    const file = decodeURIComponent(resolve[3]);
    const content = repo.files[file];
    if (!content) return this.fail(res, 404, 'EntryNotFound');
    if (file.endsWith('.safetensors')) {
      // LFS: the hub redirects to the CDN and states the sha256 and size in the redirect itself.
      const sha256 = createHash('sha256').update(content).digest('hex');
      res.writeHead(302, {
        location: `${this.cdnUrl}/lfs/${repoId}/${sha}/${encodeURIComponent(file)}?file=${encodeURIComponent(file)}`,
        'x-repo-commit': sha,
        'x-linked-etag': `"${sha256}"`,
        'x-linked-size': String(content.length),
        etag: `"${sha256}"`,
      });
      res.end();
      return;
    }
    const blobSha1 = createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
    this.serveBody(req, res, file, content, { etag: `"${blobSha1}"`, 'x-repo-commit': sha });
  }

  private handleCdn(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.record('cdn', req);
    const match = /^\/lfs\/([^/]+\/[^/]+)\/([0-9a-f]{40})\/([^?]+)/.exec(req.url ?? '');
    const content = match ? this.repos[match[1]]?.files[decodeURIComponent(match[3])] : undefined;
    if (!match || !content) return this.fail(res, 404, 'EntryNotFound');
    this.serveBody(req, res, decodeURIComponent(match[3]), content, { etag: `"${createHash('sha256').update(content).digest('hex')}"` });
  }

  /** 200, or 206 for `Range: bytes=N-`, with the faults set for `file`. */
  private serveBody(req: http.IncomingMessage, res: http.ServerResponse, file: string, original: Buffer, headers: Record<string, string>): void {
    let content = original;
    const corruptions = this.corrupt.get(file) ?? 0;
    if (req.method === 'GET' && corruptions > 0) {
      this.corrupt.set(file, corruptions - 1);
      content = Buffer.from(original);
      content[content.length >> 1] ^= 0xff;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= content.length) {
        res.writeHead(416, { 'content-range': `bytes */${content.length}` });
        res.end();
        return;
      }
      res.writeHead(206, { ...headers, 'accept-ranges': 'bytes', 'content-length': String(content.length - start), 'content-range': `bytes ${start}-${content.length - 1}/${content.length}` });
    } else {
      res.writeHead(200, { ...headers, 'accept-ranges': 'bytes', 'content-length': String(content.length) });
    }
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const body = content.subarray(start);
    const drop = req.method === 'GET' ? this.dropAfter.get(file) : undefined;
    if (drop !== undefined) this.dropAfter.delete(file);
    this.onTransfer?.(file);
    const chunkSize = 16 * 1024;
    let sent = 0;
    const next = () => {
      if (res.destroyed) return;
      if (drop === 0) {
        this.cuts.push({ file, sentBytes: 0 });
        res.socket?.destroy();
        return;
      }
      if (sent >= body.length) {
        res.end();
        return;
      }
      // The part before a cut goes in one burst, as over a fast link: the client then holds many
      // bytes at once when the connection breaks.
      const size = drop !== undefined ? Math.min(drop, body.length) : Math.min(chunkSize, body.length - sent);
      const cut = drop !== undefined && sent + size >= drop;
      // The cut waits for the write to reach the socket: destroying it earlier would discard bytes
      // still queued here, and the test could not know how many the client was sent.
      res.write(body.subarray(sent, sent + size), cut ? () => res.socket?.destroy() : undefined);
      sent += size;
      if (cut) this.cuts.push({ file, sentBytes: sent });
      this.onChunk?.(file, sent, body.length);
      if (cut) return;
      if (this.bytesPerSecond) setTimeout(next, (size / this.bytesPerSecond) * 1000);
      else setImmediate(next);
    };
    next();
  }
}
