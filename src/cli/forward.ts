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
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import type { LoadedModel } from '../../engine/model/modelTypes';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { loadTokenizerFile } from '../node/tokenizer';
import { createNodeGpuEngine } from '../../engine/hosts/nodeWebGpu';
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
  --backend KIND        webgpu (default; falls back to cpu when no adapter exists) or cpu
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
  const backend = values.backend ?? 'auto';
  if (!['auto', 'webgpu', 'cpu'].includes(backend)) {
    throw new CliError(`--backend must be webgpu or cpu, not "${backend}".`);
  }
  const queries = (values.attention ?? []).map(parseAttentionQuery);
  const explicitIds = values['token-ids'] !== undefined ? parseTokenIds(values['token-ids']) : undefined;

  const modelFolder = await resolveModelArgument(values.model, values.cache);
  const model = await loadModelFolder(modelFolder);
  const tokenIds = explicitIds ?? (await tokenizeFile(values['text-file']!, modelFolder));
  checkAgainstModel(model, tokenIds, queries);

  const engine = await createEngine(model, backend as 'auto' | 'webgpu' | 'cpu', log);
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

/** The engine the CLI runs: WebGPU, or the CPU reference when asked or when no adapter exists (said on stderr). */
export async function createEngine(model: LoadedModel, backend: 'auto' | 'webgpu' | 'cpu', log: (line: string) => void): Promise<AttentionEngine> {
  if (backend === 'cpu') return new ReferenceEngine(model, 'requested with --backend cpu');
  try {
    return await createNodeGpuEngine(model);
  } catch (error) {
    if (!(error instanceof Error) || error.name !== 'NoWebGpuAdapterError') throw error;
    const detail = error.message.replace(/^no webgpu adapter:?\s*/i, '');
    if (backend === 'webgpu') throw new CliError(`--backend webgpu: no WebGPU adapter: ${detail}`, 1);
    log(`attention-lens: no WebGPU adapter (${detail}); running the CPU reference engine instead.`);
    return new ReferenceEngine(model, `no WebGPU adapter: ${detail}`);
  }
}

function parseAttentionQuery(text: string): AttentionQuery {
  const match = /^(\d+):(\d+):(\d+)$/.exec(text.trim());
  if (!match) throw new CliError(`--attention expects LAYER:HEAD:QUERY (three 0-based integers, e.g. 1:2:5), not "${text}".`);
  return { layer: Number(match[1]), head: Number(match[2]), query: Number(match[3]) };
}

function parseTokenIds(text: string): number[] {
  const parts = text.split(',').map((part) => part.trim());
  if (parts.length === 0 || parts.some((part) => !/^\d+$/.test(part))) {
    throw new CliError(`--token-ids expects comma-separated non-negative integers, e.g. 1,2,3, not "${text}".`);
  }
  return parts.map(Number);
}

async function tokenizeFile(file: string, modelDir: string): Promise<number[]> {
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
