/**
 * The worker thread that owns the ONNX Runtime engine (bundled as out/onnxWorker.js). It loads one
 * model, then answers run and attention-row requests in order. Results travel back with their
 * typed arrays transferred, not copied.
 */
import { parentPort } from 'node:worker_threads';
import type { ForwardResult } from '../attention';
import { OnnxRuntimeEngine } from './onnxEngine';
import { toWorkerError, type FromOnnxWorker, type ToOnnxWorker } from './onnxWorkerProtocol';

const port = parentPort;
if (!port) throw new Error('onnxWorker.js runs as a worker thread; start it with new Worker()');

let engine: OnnxRuntimeEngine | undefined;
let queue: Promise<void> = Promise.resolve();

function post(message: FromOnnxWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

async function handle(message: ToOnnxWorker): Promise<void> {
  switch (message.type) {
    case 'load':
      try {
        engine?.dispose();
        engine = await OnnxRuntimeEngine.create(message.model, { threads: message.threads, reason: message.reason, cacheBytes: message.cacheBytes });
        post({ type: 'loaded', backend: engine.backend });
      } catch (error) {
        post({ type: 'loaded', error: toWorkerError(error) });
      }
      return;
    case 'run':
      try {
        if (!engine) throw new Error('no model is loaded in the ONNX Runtime worker');
        const result = await engine.run(message.request);
        post({ type: 'result', id: message.id, result }, transferables(result));
      } catch (error) {
        post({ type: 'result', id: message.id, error: toWorkerError(error) });
      }
      return;
    case 'row':
      try {
        if (!engine) throw new Error('no model is loaded in the ONNX Runtime worker');
        const row = await engine.attentionRow(message.layer, message.head, message.query);
        post({ type: 'row', id: message.id, row }, [row.buffer as ArrayBuffer]);
      } catch (error) {
        post({ type: 'row', id: message.id, error: toWorkerError(error) });
      }
      return;
    case 'releaseCache':
      engine?.releaseCache(message.cacheKey);
      return;
    case 'knockout':
      try {
        if (!engine) throw new Error('no model is loaded in the ONNX Runtime worker');
        post({ type: 'knockout', id: message.id, knockout: await engine.knockout(message.request) });
      } catch (error) {
        post({ type: 'knockout', id: message.id, error: toWorkerError(error) });
      }
      return;
    case 'effect':
      try {
        if (!engine) throw new Error('no model is loaded in the ONNX Runtime worker');
        post({ type: 'effect', id: message.id, effect: await engine.spanEffect(message.span) });
      } catch (error) {
        post({ type: 'effect', id: message.id, error: toWorkerError(error) });
      }
      return;
  }
}

/** The result's arrays own their buffers (fresh outputs of this run), so they can move. */
function transferables(result: ForwardResult): ArrayBuffer[] {
  const s = result.summary;
  const buffers = new Set<ArrayBuffer>();
  for (const array of [result.lastLogits, s.topIndices, s.topWeights, s.spanMass, s.spanMassMean, s.spanMassMax]) {
    if (array.byteOffset === 0 && array.byteLength === array.buffer.byteLength) buffers.add(array.buffer as ArrayBuffer);
  }
  return [...buffers];
}

port.on('message', (message: ToOnnxWorker) => {
  queue = queue.then(() => handle(message));
});
