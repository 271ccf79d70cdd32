/**
 * The Node host for the ONNX Runtime engine: the engine lives in a worker thread (out/onnxWorker.js)
 * so that a forward pass never blocks the caller's event loop (the extension host stays responsive,
 * cancellation and progress keep working). This proxy implements the same AttentionEngine interface.
 *
 * An abort rejects at once with an AbortError; the worker finishes the pass it is in (ONNX Runtime
 * cannot be interrupted from another thread) and its result is dropped. Requests run in order.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { AttentionRequest, BackendInfo, ForwardResult, TokenSpan } from '../attention';
import type { KnockoutRequest, KnockoutResult, SpanEffectResult } from '../causal';
import type { AttentionEngine } from '../engine';
import type { LoadedModel, ModelSpec } from '../model/modelTypes';
import type { FromOnnxWorker, ToOnnxWorker, WorkerError } from '../onnx/onnxWorkerProtocol';
import { abortError } from '../requestChecks';

export const ONNX_WORKER_FILE = 'onnxWorker.js';

/** Thrown when ONNX Runtime cannot run here (no native binary for this platform, a load failure). */
export class OnnxRuntimeUnavailableError extends Error {
  override readonly name = 'OnnxRuntimeUnavailableError';
}

export interface NodeOnnxOptions {
  /** Intra-op threads; 0 or undefined: every core (os.availableParallelism()). Capped at the core count. */
  readonly threads?: number;
  /** Why this engine runs, shown to users. */
  readonly reason: string;
  /** Byte budget of the run cache for incremental re-analysis (default 256 MiB). */
  readonly cacheBytes?: number;
}

/** Threads ONNX Runtime gets: the setting (0 = all), never more than the machine's cores. */
export function onnxThreadCount(setting: number | undefined): number {
  const cores = Math.max(1, os.availableParallelism());
  return !setting || setting < 1 ? cores : Math.min(Math.floor(setting), cores);
}

/**
 * Says why ONNX Runtime cannot load on this machine, or undefined when its native binding is there.
 * Cheap: looks for the package and this platform's binary without loading them.
 */
export function onnxRuntimeProblem(): string | undefined {
  let packageJson: string;
  try {
    packageJson = require.resolve('onnxruntime-node/package.json');
  } catch {
    return 'the onnxruntime-node package is not installed (the universal .vsix does not carry it)';
  }
  const binding = path.join(path.dirname(packageJson), 'bin', 'napi-v6', process.platform, process.arch, 'onnxruntime_binding.node');
  if (!fs.existsSync(binding)) return `onnxruntime-node has no native binary for ${process.platform}-${process.arch}`;
  return undefined;
}

/** The worker bundle, next to the bundle that imports this module (out/) or a few folders up (out/test/unit). */
function workerPath(): string {
  let dir = __dirname;
  for (let up = 0; up < 4; up++) {
    const candidate = path.join(dir, ONNX_WORKER_FILE);
    if (fs.existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new OnnxRuntimeUnavailableError(`${ONNX_WORKER_FILE} was not found next to ${__dirname}; run the build (node esbuild.js)`);
}

function fromWorkerError(error: WorkerError): Error {
  const out = new Error(error.message);
  out.name = error.name;
  return out;
}

interface Pending {
  resolve(value: FromOnnxWorker): void;
  reject(error: Error): void;
}

export class NodeOnnxEngine implements AttentionEngine {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure?: Error;
  private disposed = false;

  private constructor(
    readonly spec: ModelSpec,
    readonly backend: BackendInfo,
    private readonly worker: Worker,
  ) {
    worker.on('message', (message: FromOnnxWorker) => {
      if (message.type === 'loaded') return;
      const waiting = this.pending.get(message.id);
      this.pending.delete(message.id);
      this.updateRef();
      waiting?.resolve(message);
    });
    const fail = (error: Error) => {
      this.failure = new Error(`the ONNX Runtime worker stopped: ${error.message}`);
      for (const waiting of this.pending.values()) waiting.reject(this.failure);
      this.pending.clear();
      this.updateRef();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.disposed) fail(new Error(`exit code ${code}`));
    });
    this.updateRef();
  }

  /** Starts the worker, builds the graph and the session there. Throws OnnxRuntimeUnavailableError when ONNX Runtime cannot load. */
  static async create(model: LoadedModel, options: NodeOnnxOptions): Promise<NodeOnnxEngine> {
    const problem = onnxRuntimeProblem();
    if (problem) throw new OnnxRuntimeUnavailableError(problem);
    const worker = new Worker(workerPath());
    const threads = onnxThreadCount(options.threads);
    const loaded = await new Promise<FromOnnxWorker & { type: 'loaded' }>((resolve, reject) => {
      const onError = (error: Error) => reject(new OnnxRuntimeUnavailableError(`ONNX Runtime could not start: ${error.message}`));
      worker.once('error', onError);
      worker.once('message', (message: FromOnnxWorker) => {
        worker.off('error', onError);
        if (message.type === 'loaded') resolve(message);
        else reject(new Error(`the ONNX Runtime worker answered ${message.type} before loading`));
      });
      const load: ToOnnxWorker = { type: 'load', model, threads, reason: options.reason, cacheBytes: options.cacheBytes };
      worker.postMessage(load);
    }).catch(async (error: Error) => {
      await worker.terminate();
      throw error;
    });
    if (loaded.error) {
      await worker.terminate();
      throw fromWorkerError(loaded.error);
    }
    return new NodeOnnxEngine(model.spec, loaded.backend, worker);
  }

  async run(request: AttentionRequest, signal?: AbortSignal): Promise<ForwardResult> {
    if (signal?.aborted) throw abortError();
    const plain: AttentionRequest = { tokenIds: Array.from(request.tokenIds), spans: request.spans.map((s) => ({ start: s.start, end: s.end })), topK: request.topK, layers: request.layers ? [...request.layers] : undefined, weighting: request.weighting, cacheKey: request.cacheKey };
    const reply = await this.request((id) => ({ type: 'run', id, request: plain }), signal);
    if (reply.type !== 'result' || !reply.result) throw fromWorkerError(reply.error ?? { name: 'Error', message: 'the ONNX Runtime worker returned no result' });
    return reply.result;
  }

  async attentionRow(layer: number, head: number, query: number): Promise<Float32Array> {
    const reply = await this.request((id) => ({ type: 'row', id, layer, head, query }));
    if (reply.type !== 'row' || !reply.row) throw fromWorkerError(reply.error ?? { name: 'Error', message: 'the ONNX Runtime worker returned no row' });
    return reply.row;
  }

  async knockout(request: KnockoutRequest, signal?: AbortSignal): Promise<KnockoutResult> {
    const plain: KnockoutRequest = { query: request.query, spans: request.spans.map((s) => ({ start: s.start, end: s.end })), layers: request.layers && { start: request.layers.start, end: request.layers.end } };
    const reply = await this.request((id) => ({ type: 'knockout', id, request: plain }), signal);
    if (reply.type !== 'knockout' || !reply.knockout) throw fromWorkerError(reply.error ?? { name: 'Error', message: 'the ONNX Runtime worker returned no knockout' });
    return reply.knockout;
  }

  async spanEffect(span: TokenSpan, signal?: AbortSignal): Promise<SpanEffectResult> {
    const reply = await this.request((id) => ({ type: 'effect', id, span: { start: span.start, end: span.end } }), signal);
    if (reply.type !== 'effect' || !reply.effect) throw fromWorkerError(reply.error ?? { name: 'Error', message: 'the ONNX Runtime worker returned no span effect' });
    return reply.effect;
  }

  releaseCache(cacheKey: string): void {
    if (!this.disposed && !this.failure) this.worker.postMessage({ type: 'releaseCache', cacheKey } satisfies ToOnnxWorker);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const waiting of this.pending.values()) waiting.reject(new Error('the ONNX Runtime engine was disposed'));
    this.pending.clear();
    void this.worker.terminate();
  }

  private request(make: (id: number) => ToOnnxWorker, signal?: AbortSignal): Promise<FromOnnxWorker> {
    if (this.disposed) return Promise.reject(new Error('the ONNX Runtime engine was disposed'));
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<FromOnnxWorker>((resolve, reject) => {
      const onAbort = () => {
        // The worker's answer to this id, when it comes, finds nobody waiting and is dropped.
        this.pending.delete(id);
        this.updateRef();
        reject(abortError());
      };
      this.pending.set(id, {
        resolve: (value) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(value);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.updateRef();
      this.worker.postMessage(make(id));
    });
  }

  /** The worker keeps the process alive only while an answer is awaited (a CLI exits when done). */
  private updateRef(): void {
    if (this.pending.size > 0) this.worker.ref();
    else this.worker.unref();
  }
}
