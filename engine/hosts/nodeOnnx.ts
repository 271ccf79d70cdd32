/**
 * The Node host for the ONNX Runtime engine: the engine lives in a child process of its own
 * (out/onnxProcess.js, started with child_process.fork), so that a forward pass never blocks the
 * caller's event loop (the extension host stays responsive, cancellation and progress keep working)
 * and a native crash in ONNX Runtime (a segfault, an abort, an out-of-memory kill) ends that process
 * only: the pending requests fail with EngineProcessExitedError ("the CPU engine stopped (signal
 * SIGSEGV) ..."), the engine reports `stopped`, and the caller starts a new one for the next
 * analysis. The extension host and every other extension stay up.
 *
 * The process reads the model from its folder itself (the weights never cross the channel);
 * results come back over the IPC channel with structured-clone serialization (typed arrays copied
 * once). A cancel stops the process's current request at its next block boundary. Requests run in
 * order. Disposing (or the caller exiting) disconnects the channel and the process exits cleanly.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AttentionRequest, BackendInfo, ForwardResult, TokenSpan } from '../attention';
import type { KnockoutRequest, KnockoutResult, SpanEffectResult } from '../causal';
import type { AttentionEngine } from '../engine';
import type { LoadedModel, ModelSpec } from '../model/modelTypes';
import type { FromOnnxProcess, ProcessError, ToOnnxProcess } from '../onnx/onnxProcessProtocol';
import { abortError } from '../requestChecks';
import { WindowTooLongError } from '../webgpu/memoryPlan';

export const ONNX_PROCESS_FILE = 'onnxProcess.js';

/** Thrown when ONNX Runtime cannot run here (no native binary for this platform, a load failure). */
export class OnnxRuntimeUnavailableError extends Error {
  override readonly name = 'OnnxRuntimeUnavailableError';
}

/** A model the engine process reads from its folder: the caller needs only its spec (no weights in the caller's memory). */
export interface ModelOnDisk {
  readonly spec: ModelSpec;
  /** The Hugging Face model folder (config.json, safetensors). */
  readonly folder: string;
}

/** The engine's process ended while requests were pending or the engine was in use (a crash, a kill). */
export class EngineProcessExitedError extends Error {
  override readonly name = 'EngineProcessExitedError';
  constructor(
    message: string,
    /** The signal that ended it (SIGSEGV, SIGKILL for an out-of-memory kill, SIGABRT), if any. */
    readonly signal: NodeJS.Signals | null,
    readonly exitCode: number | null,
  ) {
    super(message);
  }
}

export interface NodeOnnxOptions {
  /** Intra-op threads; 0 or undefined: every core (os.availableParallelism()). Capped at the core count. */
  readonly threads?: number;
  /** Why this engine runs, shown to users. */
  readonly reason: string;
  /** Byte budget of the run cache for incremental re-analysis (default 256 MiB). */
  readonly cacheBytes?: number;
  /** Rows-per-block budget of the engine (engine/onnx/cpuMemoryPlan.ts); tests set it small. */
  readonly blockBytes?: number;
  /** Memory a run may use; default: what this machine has available when the engine starts. */
  readonly memoryBudgetBytes?: number;
  /**
   * Where the engine keeps float32 weights files (engine/onnx/weightsFile.ts, the two most recently
   * used models); null keeps the weights in memory. Default: defaultWeightsCacheDir().
   */
  readonly weightsCacheDir?: string | null;
}

/** $ATTENTION_LENS_WEIGHTS_CACHE, else ~/.cache/attention-lens/cpu-weights ($XDG_CACHE_HOME respected). */
export function defaultWeightsCacheDir(): string {
  if (process.env.ATTENTION_LENS_WEIGHTS_CACHE) return process.env.ATTENTION_LENS_WEIGHTS_CACHE;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'attention-lens', 'cpu-weights');
}

/**
 * Memory the engine process may plan a run for: what the machine has available now (MemAvailable
 * on Linux), less a margin for the editor and everything else that grows meanwhile.
 */
export function defaultMemoryBudget(): number {
  return Math.max(256 * 2 ** 20, Math.floor(os.freemem() * 0.9));
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

/** The process bundle, next to the bundle that imports this module (out/) or a few folders up (out/test/unit). */
function processPath(): string {
  let dir = __dirname;
  for (let up = 0; up < 4; up++) {
    const candidate = path.join(dir, ONNX_PROCESS_FILE);
    if (fs.existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new OnnxRuntimeUnavailableError(`${ONNX_PROCESS_FILE} was not found next to ${__dirname}; run the build (node esbuild.js)`);
}

function fromProcessError(error: ProcessError): Error {
  if (error.name === 'WindowTooLongError') return new WindowTooLongError(error.message, error.longestWindow ?? 0);
  const out = new Error(error.message);
  out.name = error.name;
  return out;
}

interface Pending {
  resolve(value: FromOnnxProcess): void;
  reject(error: Error): void;
}

/** Lines of the process's stderr kept for the message when it dies (ONNX Runtime and the C++ runtime write there). */
const STDERR_LINES = 20;

/**
 * Starts the engine process: Node (or Electron as Node, in the editor) with none of the caller's
 * execArgv (no debugger ports, no flags meant for the extension host), a short command line, and
 * stdio captured so a dying process can say why.
 */
function startProcess(): { child: ChildProcess; stderr: string[] } {
  const child = fork(processPath(), [], {
    // --expose-gc: the process frees the loaded weights at once when it has mapped their float32 copy.
    execArgv: ['--expose-gc'],
    serialization: 'advanced',
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
  });
  // Below normal priority: the analysis is background work, and on a machine with few cores the
  // editor (its renderer and extension host) answers first. On Linux the nice value is the main
  // thread's, set before ONNX Runtime starts its thread pool, whose threads inherit it.
  if (child.pid !== undefined) {
    try {
      os.setPriority(child.pid, os.constants.priority.PRIORITY_BELOW_NORMAL);
    } catch {
      // Not allowed here (some sandboxes): it runs at normal priority.
    }
  }
  const stderr: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split(/\r?\n/)) {
      if (!line.trim()) continue;
      stderr.push(line.slice(0, 500));
      if (stderr.length > STDERR_LINES) stderr.shift();
    }
  };
  child.stderr?.on('data', keep);
  child.stdout?.on('data', keep);
  // The pipes never keep the caller alive on their own (the channel does, while answers are awaited).
  for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?(): void } | null)?.unref?.();
  return { child, stderr };
}

/** "the CPU engine stopped (signal SIGSEGV): <what it last said>" */
function exitMessage(code: number | null, signal: NodeJS.Signals | null, stderr: readonly string[]): string {
  const how = signal ? `signal ${signal}${signal === 'SIGKILL' ? ', perhaps killed for lack of memory' : ''}` : `exit code ${code}`;
  const said = stderr.filter((line) => !/^\s*at /.test(line)).slice(-2).join(' | ');
  return `the CPU engine stopped (${how})${said ? `: ${said}` : ''}; the next analysis starts a new one`;
}

export class NodeOnnxEngine implements AttentionEngine {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure?: EngineProcessExitedError;
  private disposed = false;

  private constructor(
    readonly spec: ModelSpec,
    readonly backend: BackendInfo,
    private readonly child: ChildProcess,
    private readonly stderr: string[],
    /** Milliseconds the process took to read the model and build its session. */
    readonly loadMs: number,
    /** What the process said while loading (the weights file it wrote, or why it kept the weights in memory). */
    readonly notes: readonly string[],
  ) {
    child.on('message', (message: FromOnnxProcess) => {
      if (message.type === 'loaded') return;
      const waiting = this.pending.get(message.id);
      this.pending.delete(message.id);
      this.updateRef();
      waiting?.resolve(message);
    });
    child.on('exit', (code, signal) => {
      if (this.disposed) return;
      this.failure = new EngineProcessExitedError(exitMessage(code, signal, this.stderr), signal, code);
      for (const waiting of this.pending.values()) waiting.reject(this.failure);
      this.pending.clear();
    });
    // A channel error (the process died mid-message) is followed by 'exit'.
    child.on('error', () => undefined);
    this.updateRef();
  }

  /** Why the engine's process is gone, once it is: the caller then starts a new engine. */
  get stopped(): EngineProcessExitedError | undefined {
    return this.failure;
  }

  /** Integration tests: the process ends itself with SIGSEGV when its next run starts. */
  crashOnNextRunForTest(): void {
    this.send({ type: 'crashOnNextRun' });
  }

  /** The process id of the engine (tests kill it to check what a crash does). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Starts the engine process and loads the model there: from its folder when it came from one
   * (the process reads it itself), else from the weights in `model`. Throws
   * OnnxRuntimeUnavailableError when ONNX Runtime cannot load.
   */
  static async create(model: LoadedModel | ModelOnDisk, options: NodeOnnxOptions): Promise<NodeOnnxEngine> {
    const problem = onnxRuntimeProblem();
    if (problem) throw new OnnxRuntimeUnavailableError(problem);
    const folder = 'folder' in model ? model.folder : fs.existsSync(path.join(model.origin, 'config.json')) ? model.origin : undefined;
    if (!folder && !('weights' in model)) throw new Error('the CPU engine needs a model folder or loaded weights');
    const { child, stderr } = startProcess();
    const threads = onnxThreadCount(options.threads);
    const loaded = await new Promise<FromOnnxProcess & { type: 'loaded' }>((resolve, reject) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => reject(new OnnxRuntimeUnavailableError(`ONNX Runtime could not start: ${exitMessage(code, signal, stderr)}`));
      const onError = (error: Error) => reject(new OnnxRuntimeUnavailableError(`ONNX Runtime could not start: ${error.message}`));
      child.once('exit', onExit);
      child.once('error', onError);
      child.once('message', (message: FromOnnxProcess) => {
        child.off('exit', onExit);
        child.off('error', onError);
        if (message.type === 'loaded') resolve(message);
        else reject(new Error(`the CPU engine process answered ${message.type} before loading`));
      });
      const load: ToOnnxProcess = {
        type: 'load',
        source: folder ? { folder } : { model: model as LoadedModel },
        threads,
        reason: options.reason,
        cacheBytes: options.cacheBytes,
        blockBytes: options.blockBytes,
        memoryBudgetBytes: options.memoryBudgetBytes ?? defaultMemoryBudget(),
        weightsCacheDir: options.weightsCacheDir === null ? undefined : options.weightsCacheDir ?? defaultWeightsCacheDir(),
      };
      child.send(load);
    }).catch((error: Error) => {
      child.kill();
      throw error;
    });
    if (loaded.error) {
      child.kill();
      throw fromProcessError(loaded.error);
    }
    return new NodeOnnxEngine(model.spec, loaded.backend, child, stderr, loaded.loadMs, loaded.notes);
  }

  async run(request: AttentionRequest, signal?: AbortSignal): Promise<ForwardResult> {
    if (signal?.aborted) throw abortError();
    const plain: AttentionRequest = { tokenIds: Array.from(request.tokenIds), spans: request.spans.map((s) => ({ start: s.start, end: s.end })), topK: request.topK, layers: request.layers ? [...request.layers] : undefined, weighting: request.weighting, cacheKey: request.cacheKey };
    const reply = await this.request((id) => ({ type: 'run', id, request: plain }), signal);
    if (reply.type !== 'result' || !reply.result) throw fromProcessError(reply.error ?? { name: 'Error', message: 'the CPU engine process returned no result' });
    return reply.result;
  }

  async attentionRow(layer: number, head: number, query: number): Promise<Float32Array> {
    const reply = await this.request((id) => ({ type: 'row', id, layer, head, query }));
    if (reply.type !== 'row' || !reply.row) throw fromProcessError(reply.error ?? { name: 'Error', message: 'the CPU engine process returned no row' });
    return reply.row;
  }

  async knockout(request: KnockoutRequest, signal?: AbortSignal): Promise<KnockoutResult> {
    const plain: KnockoutRequest = { query: request.query, spans: request.spans.map((s) => ({ start: s.start, end: s.end })), layers: request.layers && { start: request.layers.start, end: request.layers.end } };
    const reply = await this.request((id) => ({ type: 'knockout', id, request: plain }), signal);
    if (reply.type !== 'knockout' || !reply.knockout) throw fromProcessError(reply.error ?? { name: 'Error', message: 'the CPU engine process returned no knockout' });
    return reply.knockout;
  }

  async spanEffect(span: TokenSpan, signal?: AbortSignal): Promise<SpanEffectResult> {
    const reply = await this.request((id) => ({ type: 'effect', id, span: { start: span.start, end: span.end } }), signal);
    if (reply.type !== 'effect' || !reply.effect) throw fromProcessError(reply.error ?? { name: 'Error', message: 'the CPU engine process returned no span effect' });
    return reply.effect;
  }

  releaseCache(cacheKey: string): void {
    this.send({ type: 'releaseCache', cacheKey });
  }

  /** The engine process's resident memory now and its peak so far, in bytes. */
  async memoryUsage(): Promise<{ rssBytes: number; peakRssBytes: number }> {
    const reply = await this.request((id) => ({ type: 'memory', id }));
    if (reply.type !== 'memory') throw new Error('the CPU engine process did not report its memory');
    return { rssBytes: reply.rssBytes, peakRssBytes: reply.peakRssBytes };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const waiting of this.pending.values()) waiting.reject(new Error('the ONNX Runtime engine was disposed'));
    this.pending.clear();
    // Closing the channel ends the process cleanly (it releases its sessions and exits); one that
    // does not leave within a few seconds is killed.
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    timer.unref();
    this.child.once('exit', () => clearTimeout(timer));
    this.child.unref();
  }

  private send(message: ToOnnxProcess): void {
    if (this.disposed || this.failure || !this.child.connected) return;
    try {
      this.child.send(message);
    } catch {
      // The process is going away; its 'exit' event fails the pending requests.
    }
  }

  private request(make: (id: number) => ToOnnxProcess, signal?: AbortSignal): Promise<FromOnnxProcess> {
    if (this.disposed) return Promise.reject(new Error('the ONNX Runtime engine was disposed'));
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<FromOnnxProcess>((resolve, reject) => {
      const onAbort = () => {
        // The process stops the request at its next block; its answer finds nobody waiting and is dropped.
        this.pending.delete(id);
        this.updateRef();
        this.send({ type: 'cancel', id });
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
      this.send(make(id));
    });
  }

  /** The engine process keeps the caller alive only while an answer is awaited (a CLI exits when done). */
  private updateRef(): void {
    const channel = this.child.channel as { ref(): void; unref(): void } | undefined | null;
    if (this.pending.size > 0) {
      this.child.ref();
      channel?.ref();
    } else {
      this.child.unref();
      channel?.unref();
    }
  }
}
