/**
 * `attention-lens forward`: one forward pass of a model folder on a token sequence, printed as
 * JSON: the token ids, the last position's full logits row, the exact attention rows asked for
 * with --attention, and which backend ran.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { BackendInfo } from '../../engine/attention';
import type { AttentionEngine } from '../../engine/engine';
import { BACKEND_SETTINGS, describeBackend, type BackendNeeds, type BackendSetting } from '../../engine/backendPolicy';
import type { LoadedModel } from '../../engine/model/modelTypes';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { loadTokenizerFile } from '../node/tokenizer';
import { BackendUnavailableError, createNodeEngine } from '../../engine/hosts/nodeEngines';
import { CliError } from './cliError';
import { resolveModelArgument } from './pull';

export const FORWARD_USAGE = `Usage: attention-lens forward --model DIR|REPO (--text-file FILE | --token-ids IDS) [options]

Runs one forward pass and prints JSON:
  { "tokenIds": [...], "logits": [last position, every vocabulary entry],
    "attention": [{ "layer", "head", "query", "probs": [query + 1 values] }], "backend": {...} }

Options:
  --model DIR|REPO      Hugging Face model folder (config.json, model.safetensors or shards), or a
                        repo id (org/name[@revision]) downloaded with "attention-lens pull"
  --cache DIR           the model cache for --model REPO (default: as for pull)
  --text-file FILE      text to tokenize with DIR/tokenizer.json
  --token-ids IDS       comma-separated token ids, e.g. 1,2,3
  --backend KIND        auto (default): WebGPU on a hardware adapter, else the CPU engine;
                        webgpu; cpu (ONNX Runtime, native); reference (the TypeScript oracle)
  --threads N           CPU engine threads (default: every core)
  --attention L:H:Q     print the attention row of layer L, head H, query Q (0-based); repeatable
  -h, --help            show this help`;

interface AttentionQuery {
  readonly layer: number;
  readonly head: number;
  readonly query: number;
}

export interface ForwardOutput {
  readonly tokenIds: number[];
  readonly logits: number[];
  readonly attention: (AttentionQuery & { readonly probs: number[] })[];
  readonly backend: BackendInfo;
}

/** Runs the subcommand; writes the JSON to stdout and notes to `log` (stderr). */
export async function runForward(args: string[], log: (line: string) => void): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        model: { type: 'string' },
        cache: { type: 'string' },
        'text-file': { type: 'string' },
        'token-ids': { type: 'string' },
        backend: { type: 'string' },
        threads: { type: 'string' },
        attention: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new CliError(`${(error as Error).message}. Run "attention-lens forward --help" for usage.`);
  }
  if (values.help) {
    process.stdout.write(`${FORWARD_USAGE}\n`);
    return;
  }
  if (!values.model) throw new CliError('forward needs --model DIR (the model folder) or --model REPO (a pulled repo id).');
  if ((values['text-file'] === undefined) === (values['token-ids'] === undefined)) {
    throw new CliError('forward needs exactly one of --text-file FILE or --token-ids IDS.');
  }
  const backend = parseBackend(values.backend);
  const threads = parseThreads(values.threads);
  const queries = (values.attention ?? []).map(parseAttentionQuery);
  const explicitIds = values['token-ids'] !== undefined ? parseTokenIds(values['token-ids']) : undefined;

  const modelFolder = await resolveModelArgument(values.model, values.cache);
  const model = await loadModelFolder(modelFolder);
  const tokenIds = explicitIds ?? (await tokenizeFile(values['text-file']!, modelFolder));
  checkAgainstModel(model, tokenIds, queries);

  const engine = await createEngine(model, backend, threads, log);
  try {
    const result = await engine.run({ tokenIds, spans: [], topK: 1 });
    const attention = [];
    for (const q of queries) attention.push({ ...q, probs: Array.from(await engine.attentionRow(q.layer, q.head, q.query)) });
    const output: ForwardOutput = { tokenIds, logits: Array.from(result.lastLogits), attention, backend: engine.backend };
    process.stdout.write(`${JSON.stringify(output)}\n`);
  } finally {
    engine.dispose();
  }
}

/** Parses --backend: auto (default), webgpu, cpu (ONNX Runtime) or reference. */
export function parseBackend(text: string | undefined): BackendSetting {
  const backend = (text ?? 'auto') as BackendSetting;
  if (!BACKEND_SETTINGS.includes(backend)) throw new CliError(`--backend must be one of ${BACKEND_SETTINGS.join(', ')}, not "${text}".`);
  return backend;
}

/** Parses --threads (a positive integer); undefined means every core. */
export function parseThreads(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new CliError(`--threads expects a positive integer, not "${text}".`);
  return Number(text);
}

/** The engine the policy picks for --backend; says on stderr which one runs and why. */
export async function createEngine(model: LoadedModel, backend: BackendSetting, threads: number | undefined, log: (line: string) => void, needs: BackendNeeds = {}): Promise<AttentionEngine> {
  let engine: AttentionEngine;
  try {
    engine = await createNodeEngine(model, backend, { threads, needs });
  } catch (error) {
    if (error instanceof BackendUnavailableError) throw new CliError(`--backend ${backend}: ${error.message}`, 1);
    throw error;
  }
  log(`attention-lens: engine: ${describeBackend(engine.backend)}`);
  return engine;
}

function parseAttentionQuery(text: string): AttentionQuery {
  const match = /^(\d+):(\d+):(\d+)$/.exec(text.trim());
  if (!match) throw new CliError(`--attention expects LAYER:HEAD:QUERY (three 0-based integers, e.g. 1:2:5), not "${text}".`);
  return { layer: Number(match[1]), head: Number(match[2]), query: Number(match[3]) };
}

export function parseTokenIds(text: string): number[] {
  const parts = text.split(',').map((part) => part.trim());
  if (parts.length === 0 || parts.some((part) => !/^\d+$/.test(part))) {
    throw new CliError(`--token-ids expects comma-separated non-negative integers, e.g. 1,2,3, not "${text}".`);
  }
  return parts.map(Number);
}

export async function tokenizeFile(file: string, modelDir: string): Promise<number[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read --text-file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`);
  }
  const tokenizerFile = path.join(path.resolve(modelDir), 'tokenizer.json');
  try {
    await fs.access(tokenizerFile);
  } catch {
    throw new CliError(`${path.resolve(modelDir)} has no tokenizer.json, so --text-file cannot be tokenized; give --token-ids instead.`);
  }
  const ids = (await loadTokenizerFile(tokenizerFile)).encode(text);
  if (ids.length === 0) throw new CliError(`--text-file ${file} is empty; there is nothing to run.`);
  return ids;
}

/** Refuses ids and queries the model cannot take, before any engine is built. */
function checkAgainstModel(model: LoadedModel, tokenIds: number[], queries: readonly AttentionQuery[]): void {
  const { spec } = model;
  if (tokenIds.length > spec.maxPositions) {
    throw new CliError(`the input has ${tokenIds.length} tokens but the model accepts at most ${spec.maxPositions}.`);
  }
  const badId = tokenIds.findIndex((id) => id >= spec.vocabSize);
  if (badId >= 0) {
    throw new CliError(`token id ${tokenIds[badId]} at position ${badId} is outside the model's vocabulary (0..${spec.vocabSize - 1}).`);
  }
  for (const q of queries) {
    const problem =
      q.layer >= spec.numLayers ? `layer ${q.layer} (the model has ${spec.numLayers})`
      : q.head >= spec.numHeads ? `head ${q.head} (the model has ${spec.numHeads} per layer)`
      : q.query >= tokenIds.length ? `query ${q.query} (the input has ${tokenIds.length} tokens)`
      : undefined;
    if (problem) throw new CliError(`--attention ${q.layer}:${q.head}:${q.query} names ${problem}.`);
  }
}
