/**
 * llama.cpp as the benchmark's peer: the prefill of the same model on the same cores, through
 * node-llama-cpp (a devDependency, pinned; npm ships its prebuilt CPU binaries, nothing is built
 * or downloaded at run time). llama.cpp computes no attention weights, so its prefill is the floor
 * our engines are measured against; and as an independent implementation its last-position
 * log-probabilities check ours.
 *
 * For the benchmark (bench/bench.ts, bench/realShapes.ts):
 *
 *   const peer = await llamaCppPrefill(folder, tokenIds, { threads: 2 });
 *   peer.prefillMs                              // median over `repeats` runs after a warm-up
 *   compareLogProbs(ours.lastLogits, peer.lastLogProbs).maxAbsDiff
 *   ourMs / peer.prefillMs                      // our time as a multiple of the floor
 *
 * What runs: the folder is written as a GGUF (bench/gguf.ts; F32 matrices unless `weights:
 * 'source'`) into a temporary folder that is deleted afterwards, loaded on the CPU (gpu: false), and
 * the token ids are evaluated as one batch of n tokens (batch and micro-batch n) into an empty
 * context, asking for the output of the last position only. Each timed run starts from an empty
 * KV cache.
 *
 * By default llama.cpp computes as our engines do: an F32 KV cache and no flash attention. Its own
 * defaults are an F16 KV cache and flash attention chosen automatically (on for the CPU), which is
 * faster and rounds queries, keys and values to F16: log-probabilities then differ from ours by
 * about 1e-2 where the exact setting agrees to about 1e-5 (test/unit/llamaCpp.test.ts).
 * `kvCache: 'F16', flashAttention: 'auto'` times llama.cpp as its users run it.
 *
 * node-llama-cpp 3.21.1 hands out probabilities, not raw logits (its sampler softmaxes the last
 * position's logits in float32), so the result carries log-probabilities: the logits less their
 * log-sum-exp. compareLogProbs() compares them with our logits the same way. Tokens whose
 * probability underflows float32 come back as -Infinity and are left out of the comparison.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Llama, LlamaModel } from 'node-llama-cpp';
import { writeGgufFromFolder, type GgufConversion, type GgufWeights } from './gguf';

export interface LlamaCppPrefillOptions {
  /** CPU threads llama.cpp computes with (the same as our engine's, for a fair comparison). */
  readonly threads: number;
  /** Timed runs after the warm-up (default 5); prefillMs is their median. */
  readonly repeats?: number;
  /** GGUF matrix storage (default F32, our engines' arithmetic). */
  readonly weights?: GgufWeights;
  /** KV cache type (default F32; llama.cpp's own default is F16). */
  readonly kvCache?: 'F32' | 'F16';
  /** llama.cpp's flash attention (default off; 'auto' is llama.cpp's own default, on for the CPU). */
  readonly flashAttention?: boolean | 'auto';
  /**
   * Tokens per decode call (default n: one call). Smaller batches bound llama.cpp's compute buffers
   * (its attention scores are [keys, batch, heads] without flash attention).
   */
  readonly batchSize?: number;
  /** llama.cpp's log lines (warnings and errors) as they come. */
  readonly log?: (line: string) => void;
}

export interface LlamaCppPrefill {
  /** Median wall time of one prefill of all the tokens, in milliseconds. */
  readonly prefillMs: number;
  /** Every timed run, in milliseconds, in order. */
  readonly runsMs: readonly number[];
  /** The warm-up run (first use of the weights and buffers), in milliseconds. */
  readonly warmUpMs: number;
  /** log softmax of the last position's logits, [vocab]; -Infinity where float32 underflowed. */
  readonly lastLogProbs: Float32Array;
  /** e.g. "node-llama-cpp 3.21.1, llama.cpp v0.4.0 (prebuilt, cpu)". */
  readonly version: string;
  /** llama.cpp's system info line: the CPU features its kernels use. */
  readonly systemInfo: string;
  /** Size of the GGUF file llama.cpp loaded. */
  readonly ggufBytes: number;
  readonly gguf: Omit<GgufConversion, 'file' | 'spec'>;
  readonly threads: number;
  readonly kvCache: 'F32' | 'F16';
  /** The flash attention setting asked for (llama.cpp logs what 'auto' chose). */
  readonly flashAttention: boolean | 'auto';
}

/** node-llama-cpp's module (ESM only, so loaded with import() from this CommonJS bundle). */
type NodeLlamaCpp = typeof import('node-llama-cpp');

let loaded: Promise<{ module: NodeLlamaCpp; llama: Llama; logs: string[] }> | undefined;
let logSink: ((line: string) => void) | undefined;

/**
 * The llama.cpp CPU backend, loaded once per process. Throws an Error saying what to do when
 * node-llama-cpp or its prebuilt binaries are missing.
 */
async function llamaCpp(): Promise<{ module: NodeLlamaCpp; llama: Llama; logs: string[] }> {
  loaded ??= (async () => {
    let module: NodeLlamaCpp;
    try {
      module = await import('node-llama-cpp');
    } catch (error) {
      throw new Error(`node-llama-cpp is not installed (${(error as Error).message}). It is a devDependency: run npm install in the repository (NODE_LLAMA_CPP_SKIP_DOWNLOAD=true keeps its postinstall from looking for a build).`);
    }
    const logs: string[] = [];
    const llama = await module
      .getLlama({
        gpu: false,
        // Only the prebuilt binaries from npm: never a source download or a build.
        build: 'never',
        usePrebuiltBinaries: true,
        skipDownload: true,
        progressLogs: false,
        logLevel: module.LlamaLogLevel.warn,
        logger: (level, message) => {
          const line = `llama.cpp ${level}: ${message.trimEnd()}`;
          logs.push(line);
          logSink?.(line);
        },
      })
      .catch((error: unknown) => {
        throw new Error(`llama.cpp's prebuilt CPU binary did not load (${(error as Error).message}). npm installs it as @node-llama-cpp/${process.platform}-${process.arch}; check it is in node_modules.`);
      });
    return { module, llama, logs };
  })();
  return loaded;
}

/**
 * Runs llama.cpp's prefill of `tokenIds` on the model in `folder` (Llama or Qwen2, a Hugging Face
 * folder); see the module comment. The temporary GGUF is deleted before this returns.
 */
export async function llamaCppPrefill(folder: string, tokenIds: ArrayLike<number>, options: LlamaCppPrefillOptions): Promise<LlamaCppPrefill> {
  const n = tokenIds.length;
  if (n < 1) throw new Error('llamaCppPrefill needs at least one token id');
  const repeats = options.repeats ?? 5;
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`repeats must be a whole number of at least 1, not ${repeats}`);
  const kvCache = options.kvCache ?? 'F32';
  const flashAttention = options.flashAttention ?? false;
  const { module, llama } = await llamaCpp();
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-gguf-'));
  let model: LlamaModel | undefined;
  logSink = options.log;
  try {
    const { file, spec, ...gguf } = writeGgufFromFolder(folder, path.join(temp, 'model.gguf'), { weights: options.weights });
    if (n > spec.maxPositions) throw new Error(`${n} tokens are more than ${folder}'s ${spec.maxPositions} positions.`);
    for (let i = 0; i < n; i++) {
      const id = tokenIds[i];
      if (!Number.isInteger(id) || id < 0 || id >= spec.vocabSize) throw new Error(`token id ${id} at position ${i} is outside the vocabulary [0, ${spec.vocabSize}).`);
    }
    model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
    const context = await model.createContext({
      contextSize: n,
      // One decode of all n tokens by default: node-llama-cpp sets llama.cpp's micro-batch to the batch size.
      batchSize: Math.min(n, options.batchSize ?? n),
      sequences: 1,
      threads: { ideal: options.threads, min: options.threads },
      flashAttention,
      experimentalKvCacheKeyType: kvCache,
      experimentalKvCacheValueType: kvCache,
    });
    const sequence = context.getSequence();
    const ids = Array.from(tokenIds, Number);
    const run = async (probabilities: boolean) => {
      await sequence.clearHistory();
      // Only the last position's output is computed; `confidence` asks for it at the least cost.
      const input = ids.map((id, i) => (i === n - 1 ? ([id, { generateNext: probabilities ? { probabilities: true } : { confidence: true } }] as const) : id));
      const started = performance.now();
      const output = await sequence.controlledEvaluate(input as Parameters<typeof sequence.controlledEvaluate>[0]);
      return { ms: performance.now() - started, output: output[n - 1] };
    };
    const warmUp = await run(true);
    const probabilities = warmUp.output?.next.probabilities;
    if (!probabilities) throw new Error('llama.cpp returned no probabilities for the last position');
    const lastLogProbs = new Float32Array(spec.vocabSize).fill(Number.NEGATIVE_INFINITY);
    for (const [token, probability] of probabilities) lastLogProbs[token] = Math.log(probability);
    const runsMs: number[] = [];
    for (let i = 0; i < repeats; i++) runsMs.push((await run(false)).ms);
    await context.dispose();
    return {
      prefillMs: median(runsMs),
      runsMs,
      warmUpMs: warmUp.ms,
      lastLogProbs,
      version: `node-llama-cpp ${await module.getModuleVersion()}, llama.cpp ${llama.llamaCppRelease.release} (${llama.buildType}, ${llama.gpu === false ? 'cpu' : llama.gpu})`,
      systemInfo: llama.systemInfo,
      ggufBytes: gguf.bytes,
      gguf,
      threads: options.threads,
      kvCache,
      flashAttention,
    };
  } finally {
    await model?.dispose();
    logSink = undefined;
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

export interface LogProbComparison {
  /** Largest |ours - llama.cpp| over the tokens compared, after both are log-softmaxed. */
  readonly maxAbsDiff: number;
  /** Largest |log-probability| among them: the scale maxAbsDiff is small against. */
  readonly scale: number;
  /** The token where the difference is largest. */
  readonly worstToken: number;
  /** Tokens compared: those whose llama.cpp probability is a normal float32 well above underflow. */
  readonly compared: number;
  /** Both put the same token first. */
  readonly sameArgmax: boolean;
}

/**
 * log p below which llama.cpp's float32 probabilities carry no precision: they approach the
 * smallest normal float32 (1.2e-38, log -87.3) and then denormals, so log p there is off by tens
 * of nats although the logits agree. Tokens that unlikely are left out of the comparison.
 */
export const MIN_COMPARED_LOG_PROB = -60;

/** Compares our last-position logits [vocab] with llama.cpp's log-probabilities, shift-free. */
export function compareLogProbs(ourLogits: ArrayLike<number>, llamaLogProbs: Float32Array): LogProbComparison {
  if (ourLogits.length !== llamaLogProbs.length) throw new Error(`our logits have ${ourLogits.length} entries, llama.cpp's ${llamaLogProbs.length}`);
  const ours = logSoftmax(ourLogits);
  let maxAbsDiff = 0;
  let scale = 0;
  let worstToken = -1;
  let compared = 0;
  let ourBest = 0;
  let theirBest = 0;
  for (let i = 0; i < ours.length; i++) {
    if (ours[i] > ours[ourBest]) ourBest = i;
    if (llamaLogProbs[i] > llamaLogProbs[theirBest]) theirBest = i;
    if (!Number.isFinite(llamaLogProbs[i]) || llamaLogProbs[i] < MIN_COMPARED_LOG_PROB) continue;
    compared++;
    const diff = Math.abs(ours[i] - llamaLogProbs[i]);
    if (diff > maxAbsDiff) {
      maxAbsDiff = diff;
      worstToken = i;
    }
    scale = Math.max(scale, Math.abs(ours[i]));
  }
  return { maxAbsDiff, scale, worstToken, compared, sameArgmax: ourBest === theirBest };
}

function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const shift = max + Math.log(sum);
  return Float64Array.from(logits, (x) => x - shift);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
