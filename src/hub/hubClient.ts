/**
 * A small Hugging Face Hub client on node:http/https (no vscode import: the CLI, the extension and
 * the unit tests share it). It knows three requests:
 *   GET  {endpoint}/api/models/{repo}/revision/{revision}   -> commit sha and the repo's file list
 *   HEAD {endpoint}/{repo}/resolve/{sha}/{file}              -> size and hash (LFS files answer 302
 *        with x-linked-etag = sha256 and x-linked-size; other files a plain ETag, the git blob sha1)
 *   GET  the same URL, following redirects, optionally from a byte offset (Range)
 * The token goes only to the endpoint's own host, never to a CDN it redirects to, and never to logs.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { HubError } from './hubError';

export interface HubClientOptions {
  /** e.g. https://huggingface.co (no trailing slash needed). */
  readonly endpoint: string;
  /** Access token for private or gated repos. */
  readonly token?: string;
  /** Milliseconds without a byte before a request is given up (default 30 s). */
  readonly idleTimeoutMs?: number;
  readonly userAgent?: string;
}

export interface RepoRevision {
  /** The commit sha the revision resolved to. */
  readonly sha: string;
  /** Every file in the repo at that commit (paths relative to the repo root). */
  readonly files: readonly string[];
}

export interface FileMetadata {
  /** Bytes, when the hub said. */
  readonly size?: number;
  /** sha256 in hex, for LFS files (the hub's x-linked-etag / ETag); undefined when the hub gave none. */
  readonly sha256?: string;
}

const MAX_REDIRECTS = 10;

export class HubClient {
  readonly endpoint: string;
  private readonly endpointHost: string;

  constructor(private readonly options: HubClientOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, '');
    let url: URL;
    try {
      url = new URL(this.endpoint);
    } catch {
      throw new HubError('badResponse', `The Hugging Face endpoint "${options.endpoint}" is not a URL. Set attentionLens.huggingFaceEndpoint (or --endpoint) to e.g. https://huggingface.co.`);
    }
    this.endpointHost = url.host;
  }

  resolveUrl(repo: string, revision: string, file: string): string {
    return `${this.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
  }

  /** Resolves `revision` to a commit and lists the repo's files. */
  async revision(repo: string, revision: string, signal?: AbortSignal): Promise<RepoRevision> {
    const url = `${this.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
    const response = await this.send('GET', url, { signal, what: `${repo} at revision "${revision}"` });
    const body = await readBody(response, 16 << 20);
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new HubError('badResponse', `${this.endpoint} answered the model info request for ${repo} with something other than JSON. Is attentionLens.huggingFaceEndpoint a Hugging Face Hub?`);
    }
    const info = json as { sha?: unknown; siblings?: unknown };
    if (typeof info.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha) || !Array.isArray(info.siblings)) {
      throw new HubError('badResponse', `${this.endpoint} answered the model info request for ${repo} without a commit sha and file list.`);
    }
    const files = info.siblings.map((s: unknown) => (s && typeof s === 'object' && typeof (s as { rfilename?: unknown }).rfilename === 'string' ? (s as { rfilename: string }).rfilename : undefined)).filter((f): f is string => f !== undefined);
    return { sha: info.sha, files };
  }

  /** Size and sha256 of one file, from a HEAD request that does not follow redirects to a CDN. */
  async metadata(repo: string, sha: string, file: string, signal?: AbortSignal): Promise<FileMetadata> {
    const response = await this.send('HEAD', this.resolveUrl(repo, sha, file), { signal, what: `${file} in ${repo}`, followCrossHost: false });
    response.resume();
    const header = (name: string) => {
      const value = response.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const etag = (header('x-linked-etag') ?? header('etag') ?? '').replace(/^W\//, '').replace(/"/g, '').trim().toLowerCase();
    const sizeText = header('x-linked-size') ?? (response.statusCode === 200 ? header('content-length') : undefined);
    const size = sizeText !== undefined && /^\d+$/.test(sizeText) ? Number(sizeText) : undefined;
    // Only LFS files carry a sha256; other ETags are git blob sha1s (40 hex digits) and are not checked.
    return { size, sha256: /^[0-9a-f]{64}$/.test(etag) ? etag : undefined };
  }

  /** GET of a file from byte `start`, following redirects. The response is 200 (whole file) or 206. */
  async download(repo: string, sha: string, file: string, start: number, signal?: AbortSignal): Promise<http.IncomingMessage> {
    const headers: Record<string, string> = start > 0 ? { Range: `bytes=${start}-` } : {};
    return this.send('GET', this.resolveUrl(repo, sha, file), { signal, what: `${file} in ${repo}`, headers, allow416: true });
  }

  /**
   * Sends a request and follows redirects. Statuses 2xx (and 416 when allowed) are returned;
   * 401, 403, 404 and network failures become HubErrors that say what to do.
   */
  private async send(
    method: 'GET' | 'HEAD',
    url: string,
    options: { signal?: AbortSignal; what: string; headers?: Record<string, string>; followCrossHost?: boolean; allow416?: boolean },
  ): Promise<http.IncomingMessage> {
    let current = new URL(url);
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const sameHost = current.host === this.endpointHost;
      const headers: Record<string, string> = { 'User-Agent': this.options.userAgent ?? 'attention-lens', ...options.headers };
      if (sameHost && this.options.token) headers.Authorization = `Bearer ${this.options.token}`;
      const response = await this.requestOnce(method, current, headers, options.signal);
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400 && response.headers.location) {
        const next = new URL(response.headers.location, current);
        // A HEAD for metadata stops at the CDN redirect: its headers carry the LFS hash and size.
        if (options.followCrossHost === false && next.host !== current.host) return response;
        response.resume();
        current = next;
        continue;
      }
      if ((status >= 200 && status < 300) || (status === 416 && options.allow416)) return response;
      const errorCode = String(response.headers['x-error-code'] ?? '');
      const body = method === 'GET' ? (await readBody(response, 64 << 10).catch(() => Buffer.alloc(0))).toString('utf8').slice(0, 300) : '';
      if (method === 'HEAD') response.resume();
      throw this.statusError(status, errorCode, options.what, body);
    }
    throw new HubError('badResponse', `Too many redirects fetching ${options.what} from ${this.endpoint}.`);
  }

  private statusError(status: number, errorCode: string, what: string, body: string): HubError {
    const tokenHint = this.options.token
      ? 'The token that was sent does not give access: check it with "Attention Lens: Set Hugging Face Token" (or HF_TOKEN for the CLI).'
      : 'Set an access token with "Attention Lens: Set Hugging Face Token" (or HF_TOKEN for the CLI).';
    if (status === 404) {
      return new HubError('notFound', `${this.endpoint} has no ${what} (HTTP 404${errorCode ? ` ${errorCode}` : ''}). Check the repo id (org/name) and the revision (a branch, tag or commit).`);
    }
    if (status === 401) {
      // The hub answers 401 both for private or gated repos without a token and for ids that do not exist.
      const gated = errorCode === 'GatedRepo' ? ' The model is gated: accept its license on its page with your account, then use a token of that account.' : '';
      return new HubError('unauthorized', `${what} needs authentication (HTTP 401): either the repo id is wrong, or the repo is private or gated.${gated} Check the id (org/name), then: ${tokenHint}`);
    }
    if (status === 403) {
      return new HubError('forbidden', `Access to ${what} is forbidden (HTTP 403${errorCode ? ` ${errorCode}` : ''}). If the model is gated, accept its license on its page on ${this.endpoint} with your account. ${tokenHint}`);
    }
    return new HubError('badResponse', `${this.endpoint} answered HTTP ${status} for ${what}${body ? `: ${body.replace(/\s+/g, ' ')}` : ''}. Try again later.`);
  }

  private requestOnce(method: string, url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<http.IncomingMessage> {
    if (signal?.aborted) return Promise.reject(cancelled());
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const request = transport.request(url, { method, headers, signal }, (response) => {
        response.setTimeout(this.options.idleTimeoutMs ?? 30_000, () => response.destroy(new Error('no data for too long (ETIMEDOUT)')));
        resolve(response);
      });
      request.setTimeout(this.options.idleTimeoutMs ?? 30_000, () => request.destroy(Object.assign(new Error('connection timed out'), { code: 'ETIMEDOUT' })));
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (signal?.aborted) reject(cancelled());
        else reject(new HubError('offline', `Cannot reach ${url.origin} (${error.code ?? error.message}). Check the network connection and the attentionLens.huggingFaceEndpoint setting (or --endpoint); models already downloaded keep working offline.`));
      });
      request.end();
    });
  }
}

export function cancelled(): HubError {
  return new HubError('cancelled', 'The download was cancelled. The files downloaded so far are kept and the next download resumes from them.');
}

async function readBody(response: http.IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of response) {
    length += (chunk as Buffer).length;
    if (length > limit) {
      response.destroy();
      throw new HubError('badResponse', `a response from the hub was larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
