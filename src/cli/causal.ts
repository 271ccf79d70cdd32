/**
 * `attention-lens knockout` and `attention-lens effect`: the causal checks of engine/causal.ts on
 * a token sequence, as JSON. Positions count from 0 in the given token ids; spans are half-open
 * `A:B` (tokens A..B-1).
 */
import { parseArgs } from 'node:util';
import type { TokenSpan } from '../../engine/attention';
import type { BackendSetting } from '../../engine/backendPolicy';
import type { AttentionEngine } from '../../engine/engine';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { CliError } from './cliError';
import { createEngine, parseBackend, parseThreads, parseTokenIds, tokenizeFile } from './forward';
import { resolveModelArgument } from './pull';

const COMMON = `  --model DIR|REPO      Hugging Face model folder, or a pulled repo id (org/name[@revision])
  --cache DIR           the model cache for --model REPO (default: as for pull)
  --text-file FILE      text to tokenize with the model's tokenizer.json
  --token-ids IDS       comma-separated token ids, e.g. 1,2,3
  --backend KIND        auto (default), webgpu, cpu (ONNX Runtime) or reference; where the engine
                        has no causal checks (WebGPU) they run on the CPU engine, as stderr says
  --threads N           CPU engine threads (default: every core)
  -h, --help            show this help`;

export const KNOCKOUT_USAGE = `Usage: attention-lens knockout --model DIR (--text-file F | --token-ids IDS) --query Q --span A:B [--span A:B ...] [--layers L0:L1]

The next-token distribution at query Q when Q's attention to each span's tokens is removed (set to
-inf before the softmax) in every layer, or in layers L0..L1-1. Prints JSON:
  {"query": Q, "nextToken": id or null, "top": [...], "spans": [{"start": A, "end": B, "kl": x,
   "deltaLogProb": y, "top": [...]}]}
kl is KL(p_full || p_knocked) in nats; deltaLogProb = log p_knocked(next) - log p_full(next), null
at the last position. The query itself is never knocked out (a span reaching Q is cut at Q).

Options:
  --query Q             the query position (0-based)
  --span A:B            tokens A..B-1; repeatable (A:A is an empty span: no effect)
  --layers L0:L1        knock out in layers L0..L1-1 only
${COMMON}`;

export const EFFECT_USAGE = `Usage: attention-lens effect --model DIR (--text-file F | --token-ids IDS) --span A:B

One forward pass in which no token outside tokens A..B-1 may attend to them. Prints JSON:
  {"span": [A, B], "tokens": [{"position": i, "kl": x, "deltaLogProb": y}]} for every position i >= B
(deltaLogProb null at the last position).

Options:
  --span A:B            the hidden span
${COMMON}`;

interface CausalArgs {
  readonly model: string;
  readonly cache?: string;
  readonly textFile?: string;
  readonly tokenIds?: string;
  readonly backend: BackendSetting;
  readonly threads?: number;
}

function parseCommon(command: string, args: string[], extra: Record<string, { type: 'string'; multiple?: boolean }>) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        model: { type: 'string' },
        cache: { type: 'string' },
        'text-file': { type: 'string' },
        'token-ids': { type: 'string' },
        backend: { type: 'string' },
        threads: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        ...extra,
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new CliError(`${(error as Error).message}. Run "attention-lens ${command} --help" for usage.`);
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (values.help) return { help: true as const, values };
  if (typeof values.model !== 'string') throw new CliError(`${command} needs --model DIR (the model folder) or --model REPO (a pulled repo id).`);
  if ((values['text-file'] === undefined) === (values['token-ids'] === undefined)) throw new CliError(`${command} needs exactly one of --text-file FILE or --token-ids IDS.`);
  const common: CausalArgs = {
    model: values.model,
    cache: values.cache as string | undefined,
    textFile: values['text-file'] as string | undefined,
    tokenIds: values['token-ids'] as string | undefined,
    backend: parseBackend(values.backend as string | undefined),
    threads: parseThreads(values.threads as string | undefined),
  };
  return { help: false as const, values, common };
}

/** Parses A:B (0 <= A <= B); `allowEmpty` admits A:A. */
export function parseSpan(text: string, allowEmpty: boolean): TokenSpan {
  const match = /^(\d+):(\d+)$/.exec(text.trim());
  if (!match || Number(match[2]) < Number(match[1]) || (!allowEmpty && match[1] === match[2])) {
    throw new CliError(`--span expects A:B with 0 <= A ${allowEmpty ? '<=' : '<'} B (tokens A..B-1), not "${text}".`);
  }
  return { start: Number(match[1]), end: Number(match[2]) };
}

/** Loads the model, the tokens and an engine that offers the causal checks. */
async function prepare(common: CausalArgs, log: (line: string) => void): Promise<{ engine: AttentionEngine; tokenIds: number[] }> {
  const folder = await resolveModelArgument(common.model, common.cache);
  const model = await loadModelFolder(folder);
  const tokenIds = common.tokenIds !== undefined ? parseTokenIds(common.tokenIds) : await tokenizeFile(common.textFile!, folder);
  const badId = tokenIds.findIndex((id) => id >= model.spec.vocabSize);
  if (badId >= 0) throw new CliError(`token id ${tokenIds[badId]} at position ${badId} is outside the model's vocabulary (0..${model.spec.vocabSize - 1}).`);
  if (tokenIds.length > model.spec.maxPositions) throw new CliError(`the input has ${tokenIds.length} tokens but the model accepts at most ${model.spec.maxPositions}.`);
  let engine = await createEngine(model, common.backend, common.threads, log);
  if (!engine.knockout || !engine.spanEffect) {
    engine.dispose();
    log(`attention-lens: the ${engine.backend.kind} engine has no causal checks yet; running them on the CPU engine`);
    engine = await createEngine(model, 'cpu', common.threads, log);
  }
  return { engine, tokenIds };
}

export async function runKnockout(args: string[], log: (line: string) => void): Promise<void> {
  const parsed = parseCommon('knockout', args, { query: { type: 'string' }, span: { type: 'string', multiple: true }, layers: { type: 'string' } });
  if (parsed.help) {
    process.stdout.write(`${KNOCKOUT_USAGE}\n`);
    return;
  }
  const { values, common } = parsed;
  if (typeof values.query !== 'string' || !/^\d+$/.test(values.query)) throw new CliError('knockout needs --query Q, a 0-based token position.');
  const spans = ((values.span as string[] | undefined) ?? []).map((text) => parseSpan(text, true));
  if (spans.length === 0) throw new CliError('knockout needs at least one --span A:B.');
  let layers: { start: number; end: number } | undefined;
  if (values.layers !== undefined) {
    const match = /^(\d+):(\d+)$/.exec(String(values.layers));
    if (!match || Number(match[2]) <= Number(match[1])) throw new CliError(`--layers expects L0:L1 with L0 < L1 (layers L0..L1-1), not "${values.layers}".`);
    layers = { start: Number(match[1]), end: Number(match[2]) };
  }
  const query = Number(values.query);
  const { engine, tokenIds } = await prepare(common, log);
  try {
    if (query >= tokenIds.length) throw new CliError(`--query ${query} is outside the ${tokenIds.length} tokens (0..${tokenIds.length - 1}).`);
    for (const span of spans) if (span.end > tokenIds.length) throw new CliError(`--span ${span.start}:${span.end} reaches past the ${tokenIds.length} tokens.`);
    if (layers && layers.end > engine.spec.numLayers) throw new CliError(`--layers ${layers.start}:${layers.end}: the model has ${engine.spec.numLayers} layers.`);
    await engine.run({ tokenIds, spans: [], topK: 1 });
    const result = await engine.knockout!({ query, spans, layers });
    process.stdout.write(`${JSON.stringify({ ...result, backend: engine.backend })}\n`);
  } finally {
    engine.dispose();
  }
}

export async function runEffect(args: string[], log: (line: string) => void): Promise<void> {
  const parsed = parseCommon('effect', args, { span: { type: 'string' } });
  if (parsed.help) {
    process.stdout.write(`${EFFECT_USAGE}\n`);
    return;
  }
  const { values, common } = parsed;
  if (typeof values.span !== 'string') throw new CliError('effect needs --span A:B.');
  const span = parseSpan(values.span, false);
  const { engine, tokenIds } = await prepare(common, log);
  try {
    if (span.end > tokenIds.length) throw new CliError(`--span ${span.start}:${span.end} reaches past the ${tokenIds.length} tokens.`);
    await engine.run({ tokenIds, spans: [], topK: 1 });
    const result = await engine.spanEffect!(span);
    process.stdout.write(`${JSON.stringify({ span: [result.span.start, result.span.end], tokens: result.tokens, backend: engine.backend })}\n`);
  } finally {
    engine.dispose();
  }
}
