/**
 * The process that owns the ONNX Runtime engine (bundled as out/onnxProcess.js, started by
 * engine/hosts/nodeOnnx.ts with child_process.fork). It loads one model (from its folder, by
 * positional reads, so the caller never ships the weights), then answers run, row and causal-check
 * requests in order. It exits when its parent disconnects (the editor or CLI closed it, or died).
 *
 * Its command line is short on purpose: ONNX Runtime 1.30 recurses over the process's command line
 * when it creates its first session (a 16 KB command line overflows a worker thread's stack, 60 KB
 * the main thread's), so it must never run in a process started with thousands of token ids as
 * arguments, as the CLI's `forward --token-ids` may be.
 */
import * as fs from 'node:fs';
import type { ForwardResult } from '../attention';
import { loadModelFolder } from '../hosts/nodeModelFolder';
import { OnnxRuntimeEngine } from './onnxEngine';
import { distinctWeights } from './onnxGraph';
import { findWeightsFile, withoutBytes, writeWeightsFile, type WeightsFile } from './weightsFile';
import { toProcessError, type FromOnnxProcess, type ToOnnxProcess } from './onnxProcessProtocol';

if (!process.send) throw new Error('onnxProcess.js runs as a child process with an IPC channel; start it with child_process.fork()');

let engine: OnnxRuntimeEngine | undefined;
let crashOnNextRun = false;
let queue: Promise<void> = Promise.resolve();
/** The requests queued or running, by id, so that a cancel stops them between blocks. */
const controllers = new Map<number, AbortController>();

function signalOf(id: number): AbortSignal | undefined {
  return controllers.get(id)?.signal;
}

function post(message: FromOnnxProcess): void {
  // A parent that went away takes the channel with it; the 'disconnect' handler ends this process.
  if (process.connected) process.send!(message);
}

async function handle(message: ToOnnxProcess): Promise<void> {
  switch (message.type) {
    case 'load':
      try {
        const started = performance.now();
        engine?.dispose();
        const source = message.source;
        const notes: string[] = [];
        let model = 'folder' in source ? await loadModelFolder(source.folder) : source.model;
        // From a folder: the float32 weights file the graphs map (made once per model), else the
        // weights read again when a graph variant needs them; either way this process holds one copy.
        let weightsFile: WeightsFile | undefined;
        if ('folder' in source && message.weightsCacheDir) {
          try {
            weightsFile = findWeightsFile(message.weightsCacheDir, source.folder);
            const needed = distinctWeights(model);
            // A copy made by a version that used fewer of the model's tensors (before Qwen3's q/k norms,
            // say) is written again: the graphs would otherwise reach for bytes let go below.
            if (weightsFile && [...needed].some((tensor) => !weightsFile!.locate(tensor))) {
              notes.push(`the float32 weights file ${weightsFile.dir} lacks some of the model's tensors; writing it again`);
              weightsFile = undefined;
            }
            if (!weightsFile) {
              const t0 = performance.now();
              weightsFile = writeWeightsFile(message.weightsCacheDir, source.folder, model, needed);
              notes.push(`wrote the float32 weights file ${weightsFile.dir} (${(weightsFile.bytes / 2 ** 20).toFixed(0)} MiB) in ${Math.round(performance.now() - t0)} ms`);
            }
          } catch (error) {
            notes.push(`could not write the float32 weights file under ${message.weightsCacheDir} (${(error as Error).message}); the weights stay in memory (about twice as much)`);
          }
        }
        if (weightsFile) {
          // The graphs map the file: let go of the loaded bytes before ONNX Runtime maps the float32
          // pages, so the two never sit in memory together.
          model = withoutBytes(model);
          await collectGarbage();
        }
        const reloadWeights = 'folder' in source ? () => loadModelFolder(source.folder) : undefined;
        engine = await OnnxRuntimeEngine.create(model, { threads: message.threads, reason: message.reason, cacheBytes: message.cacheBytes, blockBytes: message.blockBytes, memoryBudgetBytes: message.memoryBudgetBytes, reloadWeights, weightsFile });
        post({ type: 'loaded', backend: engine.backend, loadMs: performance.now() - started, notes });
      } catch (error) {
        post({ type: 'loaded', error: toProcessError(error) });
      }
      return;
    case 'run':
      if (crashOnNextRun) process.kill(process.pid, 'SIGSEGV');
      try {
        const result: ForwardResult = await loaded().run(message.request, signalOf(message.id));
        post({ type: 'result', id: message.id, result });
      } catch (error) {
        post({ type: 'result', id: message.id, error: toProcessError(error) });
      }
      return;
    case 'row':
      try {
        post({ type: 'row', id: message.id, row: await loaded().attentionRow(message.layer, message.head, message.query) });
      } catch (error) {
        post({ type: 'row', id: message.id, error: toProcessError(error) });
      }
      return;
    case 'releaseCache':
      engine?.releaseCache(message.cacheKey);
      return;
    case 'memory':
      post({ type: 'memory', id: message.id, rssBytes: process.memoryUsage.rss(), peakRssBytes: peakRss() });
      return;
    case 'knockout':
      try {
        post({ type: 'knockout', id: message.id, knockout: await loaded().knockout(message.request, signalOf(message.id)) });
      } catch (error) {
        post({ type: 'knockout', id: message.id, error: toProcessError(error) });
      }
      return;
    case 'effect':
      try {
        post({ type: 'effect', id: message.id, effect: await loaded().spanEffect(message.span, signalOf(message.id)) });
      } catch (error) {
        post({ type: 'effect', id: message.id, error: toProcessError(error) });
      }
      return;
    case 'cancel':
    case 'crashOnNextRun':
      return;
  }
}

/**
 * Frees what nothing refers to any more, now (the process runs with --expose-gc): a collection
 * after the current task has unwound, twice, so the loaded weights' buffers are gone before ONNX
 * Runtime's pages come in.
 */
async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 2; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc?.();
  }
}

/**
 * This process's peak resident memory. On Linux the high-water mark of its own memory map
 * (/proc/self/status VmHWM): getrusage's maxrss survives exec, so a child forked from a process
 * that once held gigabytes would report the parent's peak.
 */
function peakRss(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // Not Linux: getrusage is all there is.
  }
  return process.resourceUsage().maxRSS * 1024;
}

function loaded(): OnnxRuntimeEngine {
  if (!engine) throw new Error('no model is loaded in the CPU engine process');
  return engine;
}

process.on('message', (message: ToOnnxProcess) => {
  if (message.type === 'crashOnNextRun') {
    crashOnNextRun = true;
    return;
  }
  if (message.type === 'cancel') {
    // A request that has finished has no controller left: nothing to stop.
    controllers.get(message.id)?.abort();
    return;
  }
  const id = 'id' in message ? message.id : undefined;
  if (id !== undefined) controllers.set(id, new AbortController());
  queue = queue.then(() => handle(message)).finally(() => {
    if (id !== undefined) controllers.delete(id);
  });
});

// The parent closed the channel (dispose, or it exited): release the sessions and leave cleanly.
process.on('disconnect', () => {
  engine?.dispose();
  engine = undefined;
  process.exit(0);
});
