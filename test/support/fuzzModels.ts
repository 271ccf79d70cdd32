/**
 * Fuzzing of the model files a user may point the extension at (downloaded from anywhere):
 * mutated model.safetensors (header length, offsets, dtypes, shapes, truncation, random bytes),
 * sharded indexes (missing and duplicate shards, path tricks), config.json (missing, wrong-typed,
 * huge and negative values) and tokenizer.json, each loaded and, when it loads, run by the CPU
 * engines (the TypeScript reference and ONNX Runtime) and, when given one, the WebGPU engine.
 * Also the host's validation of webview
 * messages, with random and truncated messages.
 *
 * Every case must end in a result or one clear error that names the file (ModelFormatError,
 * TokenizerFormatError, or an engine's RangeError about the request): no other exception, no
 * hang (each case has a deadline), and no memory growth out of proportion to the files (a number
 * read from a file must be checked against the file's size before anything is allocated for it).
 * The seed and case count make a run reproducible: `npm run fuzz -- --cases N --seed S`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelFormatError } from '../../engine/model/modelFormatError';
import { loadModel, type ModelFileSource } from '../../engine/model/modelLoader';
import type { LoadedModel } from '../../engine/model/modelTypes';
import { bytesAsFile, type RandomAccessFile } from '../../engine/model/randomAccessFile';
import type { AttentionEngine } from '../../engine/engine';
import { OnnxRuntimeEngine } from '../../engine/onnx/onnxEngine';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import { parseWebviewMessage } from '../../src/shared/protocol';
import { TokenizerFormatError, tokenizerFromJson } from '../../src/node/tokenizer';

export type CaseOutcome = 'ran' | 'clearError' | 'crash' | 'hang' | 'memory';

export interface FuzzSummary {
  readonly cases: number;
  readonly byOutcome: Record<CaseOutcome, number>;
  /** Which file kinds were mutated, and how often. */
  readonly byTarget: Record<string, number>;
  /** The first failures (crashes, hangs, memory), with what reproduces them. */
  readonly failures: readonly string[];
  readonly messages: { readonly cases: number; readonly accepted: number; readonly rejected: number; readonly threw: number };
  readonly elapsedMs: number;
}

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class FuzzSource implements ModelFileSource {
  constructor(
    readonly label: string,
    readonly files: Map<string, Uint8Array>,
  ) {}
  async exists(name: string): Promise<boolean> {
    return this.files.has(name);
  }
  async readText(name: string): Promise<string> {
    return new TextDecoder().decode(this.bytesOf(name));
  }
  async openBinary(name: string): Promise<RandomAccessFile> {
    return bytesAsFile(this.bytesOf(name));
  }
  private bytesOf(name: string): Uint8Array {
    const bytes = this.files.get(name);
    if (!bytes) throw new ModelFormatError(`${this.label}/${name}`, `${this.label}/${name} does not exist.`);
    return bytes;
  }
  totalBytes(): number {
    let total = 0;
    for (const bytes of this.files.values()) total += bytes.byteLength;
    return total;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Values that break parsers: wrong types, huge, negative, fractional, special. */
function nastyValue(random: () => number): unknown {
  const values: unknown[] = [-1, 0, 1.5, 2 ** 31, 2 ** 53, 1e308, -1e9, Number.MAX_SAFE_INTEGER, 'x', '12', null, true, [], {}, [1, 2], NaN, 'F64', ''];
  return values[Math.floor(random() * values.length)];
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

/** The safetensors header of `bytes` as JSON and where its data starts, or undefined when unreadable. */
function readHeader(bytes: Uint8Array): { header: Record<string, unknown>; dataStart: number } | undefined {
  if (bytes.byteLength < 8) return undefined;
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (length > bytes.byteLength - 8) return undefined;
  try {
    return { header: JSON.parse(decoder.decode(bytes.subarray(8, 8 + length))) as Record<string, unknown>, dataStart: 8 + length };
  } catch {
    return undefined;
  }
}

function writeHeader(header: Record<string, unknown>, data: Uint8Array): Uint8Array {
  const json = encoder.encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

/** One mutation of a weights file. */
function mutateSafetensors(bytes: Uint8Array, random: () => number): { bytes: Uint8Array; what: string } {
  const parsed = readHeader(bytes);
  const kind = Math.floor(random() * 8);
  if (kind === 0 || !parsed) {
    const cut = Math.floor(random() * bytes.byteLength);
    return { bytes: bytes.slice(0, cut), what: `truncated at ${cut}` };
  }
  if (kind === 1) {
    const out = bytes.slice();
    const value = pick(random, [0n, 1n, 7n, BigInt(bytes.byteLength), 2n ** 40n, 2n ** 63n, BigInt(Math.floor(random() * 2 ** 32))]);
    new DataView(out.buffer).setBigUint64(0, value, true);
    return { bytes: out, what: `header length ${value}` };
  }
  if (kind === 2) {
    const out = bytes.slice();
    const flips = 1 + Math.floor(random() * 8);
    for (let i = 0; i < flips; i++) out[8 + Math.floor(random() * (parsed.dataStart - 8))] = Math.floor(random() * 256);
    return { bytes: out, what: `${flips} random bytes in the header` };
  }
  if (kind === 3) {
    const out = bytes.slice();
    for (let i = parsed.dataStart; i < out.byteLength; i += 1 + Math.floor(random() * 64)) out[i] = Math.floor(random() * 256);
    return { bytes: out, what: 'random bytes in the data' };
  }
  const header = structuredClone(parsed.header);
  const names = Object.keys(header).filter((n) => n !== '__metadata__');
  const name = pick(random, names);
  const entry = header[name] as Record<string, unknown>;
  const data = bytes.subarray(parsed.dataStart);
  if (kind === 4) {
    const offsets = entry.data_offsets as number[];
    const choice = Math.floor(random() * 5);
    entry.data_offsets = choice === 0 ? [offsets[1], offsets[0]] : choice === 1 ? [offsets[0], data.byteLength + 1 + Math.floor(random() * 1e6)] : choice === 2 ? [-4, offsets[1]] : choice === 3 ? [0, 2 ** 53] : nastyValue(random);
    return { bytes: writeHeader(header, data), what: `${name} data_offsets ${JSON.stringify(entry.data_offsets)}` };
  }
  if (kind === 5) {
    entry.dtype = pick(random, ['F64', 'I64', 'U8', 'BOOL', 'f32', 'F16 ', '', 7, null]);
    return { bytes: writeHeader(header, data), what: `${name} dtype ${JSON.stringify(entry.dtype)}` };
  }
  if (kind === 6) {
    const shape = [...(entry.shape as number[])];
    const choice = Math.floor(random() * 5);
    entry.shape = choice === 0 ? shape.map((d) => d * 2) : choice === 1 ? [2 ** 40, 2 ** 40] : choice === 2 ? [-1, ...shape.slice(1)] : choice === 3 ? [...shape, 0] : nastyValue(random);
    return { bytes: writeHeader(header, data), what: `${name} shape ${JSON.stringify(entry.shape)}` };
  }
  // Append garbage, or a second copy of a tensor name under another name.
  if (random() < 0.5) {
    const extra = new Uint8Array(1 + Math.floor(random() * 4096)).map(() => Math.floor(random() * 256));
    const out = new Uint8Array(bytes.byteLength + extra.byteLength);
    out.set(bytes);
    out.set(extra, bytes.byteLength);
    return { bytes: out, what: `${extra.byteLength} bytes appended` };
  }
  delete header[name];
  return { bytes: writeHeader(header, data), what: `tensor ${name} removed` };
}

function mutateConfig(text: string, random: () => number): { text: string; what: string } {
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { text, what: 'unchanged' };
  }
  const keys = Object.keys(config);
  const kind = Math.floor(random() * 4);
  if (kind === 0) {
    const cut = Math.floor(random() * text.length);
    return { text: text.slice(0, cut), what: `truncated at ${cut}` };
  }
  const key = pick(random, keys);
  if (kind === 1) {
    delete config[key];
    return { text: JSON.stringify(config), what: `${key} removed` };
  }
  config[key] = nastyValue(random);
  if (kind === 3) config[pick(random, keys)] = nastyValue(random);
  return { text: JSON.stringify(config), what: `${key} = ${JSON.stringify(config[key])}` };
}

function mutateIndex(source: FuzzSource, random: () => number): string {
  const name = 'model.safetensors.index.json';
  const index = JSON.parse(decoder.decode(source.files.get(name)!)) as { weight_map: Record<string, string> };
  const tensors = Object.keys(index.weight_map);
  const shards = [...new Set(Object.values(index.weight_map))];
  const kind = Math.floor(random() * 6);
  if (kind === 0) {
    source.files.delete(pick(random, shards));
    return 'a shard is missing';
  }
  if (kind === 1) {
    // The same tensor claimed by the other shard too.
    const tensor = pick(random, tensors);
    index.weight_map[tensor] = shards.find((s) => s !== index.weight_map[tensor]) ?? shards[0];
  } else if (kind === 2) {
    index.weight_map[pick(random, tensors)] = pick(random, ['../model.safetensors', '/etc/passwd', 'sub/dir.safetensors', '..\\\\x.safetensors', 'config.json', '']);
  } else if (kind === 3) {
    (index as Record<string, unknown>).weight_map = nastyValue(random);
  } else if (kind === 4) {
    delete index.weight_map[pick(random, tensors)];
  } else {
    source.files.set(name, encoder.encode(JSON.stringify(index).slice(0, Math.floor(random() * 200))));
    return 'index truncated';
  }
  source.files.set(name, encoder.encode(JSON.stringify(index)));
  return `index mutation ${kind}`;
}

/** Runs `work` with a deadline; `hang` when it does not settle in time. */
async function withDeadline<T>(work: () => Promise<T>, ms: number): Promise<{ value?: T; error?: unknown; hang?: true }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<{ hang: true }>((resolve) => (timer = setTimeout(() => resolve({ hang: true }), ms)));
  try {
    return await Promise.race([work().then((value) => ({ value }), (error: unknown) => ({ error })), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A clear error: the loader's or tokenizer's typed error naming the file, or an engine's refusal of a request. */
function isClear(error: unknown, fileNames: readonly string[]): boolean {
  if (error instanceof ModelFormatError || error instanceof TokenizerFormatError) return fileNames.some((name) => error.message.includes(name));
  return error instanceof RangeError && /token id|sequence|vocabulary|positions|out of range/.test(error.message);
}

async function runEngines(model: LoadedModel, gpuEngine?: (model: LoadedModel) => Promise<AttentionEngine>): Promise<void> {
  const request = { tokenIds: [0, 1, 2, 3].map((id) => Math.min(id, model.spec.vocabSize - 1)), spans: [{ start: 0, end: 2 }], topK: 2 };
  const reference = new ReferenceEngine(model, 'fuzz');
  await reference.run(request);
  reference.dispose();
  const onnx = await OnnxRuntimeEngine.create(model, { threads: 1, reason: 'fuzz' });
  try {
    await onnx.run(request);
  } finally {
    onnx.dispose();
  }
  if (gpuEngine) {
    const gpu = await gpuEngine(model);
    try {
      await gpu.run(request);
    } finally {
      gpu.dispose();
    }
  }
}

export interface FuzzOptions {
  readonly cases: number;
  readonly seed: number;
  /** Fixture model folders to start from. */
  readonly fixtures: readonly string[];
  /** Per-case deadline, ms. */
  readonly deadlineMs?: number;
  readonly messageCases?: number;
  readonly onProgress?: (done: number) => void;
  /**
   * Also load and run every model that loads on the WebGPU engine (the GPU tier and `npm run fuzz --
   * --webgpu` pass one: a GpuEngine on a shared device).
   */
  readonly gpuEngine?: (model: LoadedModel) => Promise<AttentionEngine>;
}

export async function fuzzModels(options: FuzzOptions): Promise<FuzzSummary> {
  const started = performance.now();
  const random = prng(options.seed);
  const bases = options.fixtures.map((dir) => {
    const files = new Map<string, Uint8Array>();
    for (const name of fs.readdirSync(dir)) if (!name.endsWith('golden.json')) files.set(name, new Uint8Array(fs.readFileSync(path.join(dir, name))));
    return { dir, files };
  });
  const byOutcome: Record<CaseOutcome, number> = { ran: 0, clearError: 0, crash: 0, hang: 0, memory: 0 };
  const byTarget: Record<string, number> = {};
  const failures: string[] = [];
  for (let c = 0; c < options.cases; c++) {
    const base = pick(random, bases);
    const source = new FuzzSource(`fuzz/${path.basename(base.dir)}`, new Map([...base.files].map(([n, b]) => [n, b.slice()])));
    const weightFiles = [...source.files.keys()].filter((n) => n.endsWith('.safetensors'));
    const targets = ['weights', 'weights', 'config', ...(source.files.has('model.safetensors.index.json') ? ['index'] : []), ...(source.files.has('tokenizer.json') ? ['tokenizer'] : [])];
    const target = pick(random, targets);
    byTarget[target] = (byTarget[target] ?? 0) + 1;
    let what: string;
    if (target === 'weights') {
      const file = pick(random, weightFiles);
      const mutated = mutateSafetensors(source.files.get(file)!, random);
      source.files.set(file, mutated.bytes);
      what = `${file}: ${mutated.what}`;
    } else if (target === 'config') {
      const mutated = mutateConfig(decoder.decode(source.files.get('config.json')!), random);
      source.files.set('config.json', encoder.encode(mutated.text));
      what = `config.json: ${mutated.what}`;
    } else if (target === 'index') {
      what = mutateIndex(source, random);
    } else {
      const text = decoder.decode(source.files.get('tokenizer.json')!);
      const cut = Math.floor(random() * text.length);
      const mutated = random() < 0.5 ? text.slice(0, cut) : text.replace(/"type":\s*"BPE"/, `"type": ${JSON.stringify(nastyValue(random))}`).replace(/"vocab"/, random() < 0.5 ? '"vocab"' : '"vocabulary"');
      source.files.set('tokenizer.json', encoder.encode(mutated));
      what = `tokenizer.json mutated (${mutated.length} of ${text.length} chars)`;
    }
    const repro = `case ${c} (seed ${options.seed}) on ${path.basename(base.dir)}: ${what}`;
    const before = process.memoryUsage().arrayBuffers;
    const fileNames = [...base.files.keys(), 'model.safetensors.index.json', 'config.json'];
    const outcome = await withDeadline(async () => {
      if (target === 'tokenizer') {
        let json: unknown;
        try {
          json = JSON.parse(decoder.decode(source.files.get('tokenizer.json')!));
        } catch (error) {
          throw new TokenizerFormatError('tokenizer.json', `tokenizer.json is not valid JSON (${error instanceof Error ? error.message : String(error)})`);
        }
        tokenizerFromJson(json, 'tokenizer.json').encode('def f(x):\n    return x\n');
        return;
      }
      await runEngines(await loadModel(source), options.gpuEngine);
    }, options.deadlineMs ?? 20_000);
    const grown = process.memoryUsage().arrayBuffers - before;
    let result: CaseOutcome;
    if (outcome.hang) result = 'hang';
    else if (grown > 64 * 1024 * 1024 + 8 * source.totalBytes()) result = 'memory';
    else if (outcome.error === undefined) result = 'ran';
    else result = isClear(outcome.error, fileNames) ? 'clearError' : 'crash';
    byOutcome[result]++;
    if (result === 'crash' || result === 'hang' || result === 'memory') {
      const detail = result === 'crash' ? `${(outcome.error as Error)?.name}: ${(outcome.error as Error)?.message ?? String(outcome.error)}` : result === 'memory' ? `array buffers grew by ${(grown / 1048576).toFixed(0)} MiB` : 'no result within the deadline';
      if (failures.length < 20) failures.push(`${result}: ${repro}: ${detail}`);
    }
    options.onProgress?.(c + 1);
  }

  // Host <-> webview messages: random values and truncated valid ones never make validation throw.
  const messages = { cases: options.messageCases ?? Math.max(200, options.cases), accepted: 0, rejected: 0, threw: 0 };
  const valid: Record<string, unknown>[] = [
    { type: 'ready', protocolVersion: 1 },
    { type: 'viewRendered', uri: 'file:///a.ts', queryName: 'x', sources: [{ name: 'a', weight: 0.5 }], heatedTokens: 3, heatSource: 'topK', gridCells: 8, dependencies: [{ name: 'a', attention: 0.5, kl: 0.1 }] },
    { type: 'selectToken', uri: 'file:///a.ts', token: 3 },
    { type: 'analysisResult', requestId: 1, error: 'x' },
    { type: 'attentionRowResult', requestId: 2, probs: new Float32Array([0.5, 0.5]) },
    { type: 'knockoutResult', requestId: 3, result: { query: 4, nextToken: 1, top: [{ token: 1, prob: 0.5 }], spans: [{ start: 0, end: 2, kl: 0.1, deltaLogProb: -0.3, top: [{ token: 2, prob: 0.4 }] }] } },
    { type: 'spanEffectResult', requestId: 4, result: { span: { start: 0, end: 2 }, tokens: [{ position: 2, kl: 0.2, deltaLogProb: null }] } },
    { type: 'mapRendered', uri: 'file:///a.ts', threshold: 0.1, nodes: ['import fs'], edges: [{ from: 1, to: 0, weight: 0.4, agreement: 'both' }], heads: ['L1 H7'] },
    { type: 'memoryReport', requestId: 5, jsHeapBytes: 1e6, gpuBufferBytes: null, collected: true },
    { type: 'tabShown', tab: 'map' },
  ];
  for (let m = 0; m < messages.cases; m++) {
    let message: unknown;
    if (random() < 0.5) {
      const copy = { ...pick(random, valid) };
      for (const key of Object.keys(copy)) if (key !== 'type' && random() < 0.4) (copy as Record<string, unknown>)[key] = random() < 0.5 ? undefined : nastyValue(random);
      message = copy;
    } else {
      message = random() < 0.3 ? nastyValue(random) : { type: pick(random, ['ready', 'viewRendered', 'selectToken', 'analysisResult', 'probeResult', 'modelLoaded', 'attentionRowResult', 'knockoutResult', 'spanEffectResult', 'mapRendered', 'memoryReport', 'tabShown', 'nope', 7]), ...Object.fromEntries(Array.from({ length: Math.floor(random() * 5) }, () => [pick(random, ['uri', 'requestId', 'result', 'probe', 'model', 'token', 'sources', 'edges', 'nodes', 'tab', 'threshold']), nastyValue(random)])) };
    }
    try {
      const parsed = parseWebviewMessage(message);
      if ('invalid' in parsed) messages.rejected++;
      else messages.accepted++;
    } catch (error) {
      messages.threw++;
      if (failures.length < 20) failures.push(`message validation threw on ${JSON.stringify(message)}: ${String(error)}`);
    }
  }
  return { cases: options.cases, byOutcome, byTarget, failures, messages, elapsedMs: performance.now() - started };
}

export function formatFuzzSummary(summary: FuzzSummary): string {
  const o = summary.byOutcome;
  return [
    `fuzz: ${summary.cases} model-file cases in ${(summary.elapsedMs / 1000).toFixed(1)} s (${Object.entries(summary.byTarget).map(([t, n]) => `${t} ${n}`).join(', ')}): ` +
      `loaded and ran ${o.ran}, clear errors ${o.clearError}, crashes ${o.crash}, hangs ${o.hang}, memory blow-ups ${o.memory}`,
    `fuzz: ${summary.messages.cases} webview messages: accepted ${summary.messages.accepted}, rejected ${summary.messages.rejected}, validation threw ${summary.messages.threw}`,
    ...summary.failures.map((f) => `  ${f}`),
  ].join('\n');
}
