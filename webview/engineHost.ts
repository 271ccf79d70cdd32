/**
 * Runs the engine inside the webview: fetches a model's files from the folder the host names,
 * creates the WebGPU engine on navigator.gpu (or the CPU reference when there is no adapter and the
 * user allows it), and answers analysis and attention-row requests.
 */
import type { AnalysisPayload, AnalyzeRequest, KnockoutRequestMessage, LoadModelRequest, LoadedModelInfo, ModelLocation, SpanEffectRequestMessage } from '../src/shared/protocol';
import type { KnockoutResult, SpanEffectResult } from '../engine/causal';
import { ReferenceEngine } from '../engine/reference/referenceEngine';
import type { AttentionEngine } from '../engine/engine';
import { createBrowserGpuEngine } from '../engine/hosts/browserWebGpu';
import { loadModel, type ModelFileSource } from '../engine/model/modelLoader';
import type { LoadedModel } from '../engine/model/modelTypes';
import { bytesAsFile, type RandomAccessFile } from '../engine/model/randomAccessFile';

/** Reads model files over HTTP(S) from a webview resource URL. */
class FetchedModelFiles implements ModelFileSource {
  constructor(private readonly location: ModelLocation) {}

  get label(): string {
    return this.location.label;
  }

  async exists(name: string): Promise<boolean> {
    return this.location.files.includes(name);
  }

  private async fetch(name: string): Promise<Response> {
    if (!this.location.files.includes(name)) throw new Error(`${this.location.label}: ${name} is missing from the model folder.`);
    let response: Response;
    try {
      response = await fetch(new URL(name, this.location.baseUri));
    } catch (error) {
      throw new Error(`${this.location.label}: the panel could not read ${name} (${error instanceof Error ? error.message : String(error)}).`);
    }
    if (!response.ok) throw new Error(`${this.location.label}: reading ${name} failed (HTTP ${response.status}).`);
    return response;
  }

  async readText(name: string): Promise<string> {
    return (await this.fetch(name)).text();
  }

  /**
   * The whole file, fetched in one response: the loader's reads are views on it, so the panel holds
   * each weights file once, in one ArrayBuffer. Fetching each tensor by byte range (as the Node host
   * reads it) is not done yet: it depends on how VS Code's webview resource loader serves ranges.
   */
  async openBinary(name: string): Promise<RandomAccessFile> {
    return bytesAsFile(new Uint8Array(await (await this.fetch(name)).arrayBuffer()));
  }
}

/** Called when the GPU device is lost, so the host can say so and re-load on the next request. */
export type DeviceLostHandler = (message: string) => void;

export class EngineHost {
  private engine: AttentionEngine | undefined;
  private loadedKey: string | undefined;
  private readonly running = new Map<number, AbortController>();
  /** Engine work runs one request at a time: the engine reuses its device buffers across runs. */
  private tail: Promise<unknown> = Promise.resolve();
  /** The `analyze` request the engine's buffers hold the run of (attention rows come from it). */
  private lastRunId: number | undefined;
  /** The WebGPU device of the engine, when it runs on one. */
  private device: GPUDevice | undefined;
  /** Why the device was lost, when it was lost since the current request began. */
  private lostMessage: string | undefined;

  constructor(private readonly onDeviceLost: DeviceLostHandler) {}

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.tail.then(work, work);
    this.tail = next.catch(() => undefined);
    return next;
  }

  load(request: LoadModelRequest): Promise<LoadedModelInfo> {
    return this.exclusive(() => this.loadNow(request));
  }

  private async loadNow(request: LoadModelRequest): Promise<LoadedModelInfo> {
    // WebGPU is WebGPU whatever the reason; the reference's reason is shown to the user, so it counts.
    const key = request.backend === 'webgpu' ? `${request.model.baseUri}|webgpu` : `${request.model.baseUri}|reference|${request.reason}`;
    const started = performance.now();
    if (this.engine && this.loadedKey === key) return this.describe(request.model.label, 0);
    this.engine?.dispose();
    this.engine = undefined;
    this.loadedKey = undefined;
    this.lastRunId = undefined;
    const model = await loadModel(new FetchedModelFiles(request.model));
    this.engine = await this.createEngine(model, request);
    this.loadedKey = key;
    return this.describe(request.model.label, performance.now() - started);
  }

  private describe(label: string, loadMs: number): LoadedModelInfo {
    const engine = this.requireEngine();
    const spec = engine.spec;
    return { label, architecture: spec.architecture, numLayers: spec.numLayers, numHeads: spec.numHeads, vocabSize: spec.vocabSize, maxPositions: spec.maxPositions, backend: engine.backend, loadMs };
  }

  private async createEngine(model: LoadedModel, request: LoadModelRequest): Promise<AttentionEngine> {
    if (request.backend === 'reference') return new ReferenceEngine(model, request.reason);
    this.device = undefined;
    return createBrowserGpuEngine(
      model,
      (message) => this.deviceLost(message),
      (device) => (this.device = device),
    );
  }

  /** The GPU device of the engine went away: forget the engine (the next load makes a new device) and say so. */
  private deviceLost(message: string): void {
    this.engine = undefined;
    this.loadedKey = undefined;
    this.device = undefined;
    this.lostMessage = message;
    this.onDeviceLost(`The GPU device was lost (${message}). The next analysis creates a new device and loads the model again.`);
  }

  /**
   * For tests of the lost-device path in the real VS Code: destroys the engine's device as a driver
   * reset would, and reports it the way a real loss is reported.
   */
  simulateDeviceLoss(when: 'now' | 'duringNextAnalysis'): void {
    if (when === 'duringNextAnalysis') {
      this.loseDuringNextRun = true;
      return;
    }
    const device = this.device;
    if (!device) return;
    device.destroy();
    this.deviceLost('simulated by a test: the device was destroyed');
  }

  private loseDuringNextRun = false;

  private requireEngine(): AttentionEngine {
    if (!this.engine) throw new Error('No model is loaded in the panel. Run the analysis again to load it.');
    return this.engine;
  }

  analyze(request: AnalyzeRequest): Promise<AnalysisPayload> {
    // Registered before queueing, so a cancel that arrives while it waits still applies.
    const controller = new AbortController();
    this.running.set(request.requestId, controller);
    return this.exclusive(() => this.analyzeNow(request, controller));
  }

  private async analyzeNow(request: AnalyzeRequest, controller: AbortController): Promise<AnalysisPayload> {
    try {
      if (controller.signal.aborted) throw Object.assign(new Error('The analysis was cancelled.'), { name: 'AbortError' });
      const engine = this.requireEngine();
      this.lastRunId = undefined;
      this.lostMessage = undefined;
      let result;
      if (this.loseDuringNextRun) {
        this.loseDuringNextRun = false;
        // Once the run has submitted its first work (the engine awaits the device from then on).
        setTimeout(() => this.simulateDeviceLoss('now'), 0);
      }
      try {
        result = await engine.run({ tokenIds: request.tokenIds, spans: request.spans, topK: request.topK, layers: request.layers, weighting: request.weighting, cacheKey: request.cacheKey }, controller.signal);
      } catch (error) {
        // A lost device fails the run with whatever the API says; say what happened instead.
        if (this.lostMessage !== undefined || this.engine !== engine) {
          throw new Error(`The GPU device was lost during the analysis (${this.lostMessage ?? (error instanceof Error ? error.message : String(error))}). Run the analysis again: it creates a new device.`);
        }
        throw error;
      }
      if (this.engine !== engine) throw new Error(`The GPU device was lost during the analysis (${this.lostMessage ?? 'lost'}). Run the analysis again: it creates a new device.`);
      this.lastRunId = request.requestId;
      return { summary: result.summary, backend: result.backend, stats: result.stats };
    } finally {
      this.running.delete(request.requestId);
    }
  }

  cancel(requestId: number): void {
    this.running.get(requestId)?.abort();
  }

  attentionRow(layer: number, head: number, query: number, afterRun: number): Promise<Float32Array> {
    return this.exclusive(async () => {
      if (this.lastRunId !== afterRun) throw new Error('The engine has run another analysis since; analyse the file again for exact rows.');
      return this.requireEngine().attentionRow(layer, head, query);
    });
  }

  knockout(request: KnockoutRequestMessage): Promise<KnockoutResult> {
    return this.exclusive(async () => {
      const engine = this.requireEngine();
      if (this.lastRunId !== request.afterRun) throw new Error('The engine has run another analysis since; run the check again.');
      if (!engine.knockout) throw new Error(`${engine.backend.kind} has no knockout`);
      return engine.knockout({ query: request.query, spans: request.spans, layers: request.layers });
    });
  }

  spanEffect(request: SpanEffectRequestMessage): Promise<SpanEffectResult> {
    return this.exclusive(async () => {
      const engine = this.requireEngine();
      if (this.lastRunId !== request.afterRun) throw new Error('The engine has run another analysis since; run the check again.');
      if (!engine.spanEffect) throw new Error(`${engine.backend.kind} has no span effect`);
      return engine.spanEffect(request.span);
    });
  }

  /** Forgets cached runs of closed documents (engines without a cache ignore it). */
  releaseCache(keys: readonly string[]): void {
    void this.exclusive(async () => {
      for (const key of keys) this.engine?.releaseCache?.(key);
    });
  }

  /** Bytes of the engine's device buffers, when it runs on WebGPU. */
  gpuBufferBytes(): number | null {
    const engine = this.engine as (AttentionEngine & { memoryStats?: () => { totalBytes: number } }) | undefined;
    return engine?.memoryStats ? engine.memoryStats().totalBytes : null;
  }
}
