/**
 * `attention-lens analyze FILE`: for each identifier in a source file, the distant definitions and
 * imports the model attends to most. A readable table by default, the summaries as JSON with --json.
 * Uses the same analysis code as the extension: tokens mapped to ranges, tree-sitter definitions,
 * overlapping windows for files longer than the model's context.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DefinitionExtractor, type SourceDefinition } from '../analysis/definitions';
import { describeReading, resolveReading } from '../analysis/reading';
import { attendedSources, prepareDocument, type AttentionView, type PreparedDocument } from '../analysis/documentAnalysis';
import { isKeyword } from '../analysis/keywords';
import { relationOf } from '../analysis/sourceRelations';
import { languageIdForFile } from '../analysis/languages';
import { mergeWindowSummaries, planWindows, type AnalysisWindow, prefixCandidates } from '../analysis/windows';
import type { AttentionSummary, BackendInfo } from '../../engine/attention';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { loadTokenizerFile } from '../node/tokenizer';
import { CliError } from './cliError';
import { resolveModelArgument } from './pull';
import { createEngine, parseBackend, parseThreads } from './forward';
import { describeBackend, windowTokens, type BackendSetting } from '../../engine/backendPolicy';

export const ANALYZE_USAGE = `Usage: attention-lens analyze FILE [options]

For each identifier in FILE, prints the distant definitions and imports the model attends to most.

Options:
  --model DIR|REPO      Hugging Face model folder, or a repo id (org/name[@revision]) downloaded
                        with "attention-lens pull" (default: the embedded default model)
  --cache DIR           the model cache for --model REPO (default: as for pull)
  --json                print the analysis as JSON instead of a table
  --backend KIND        auto (default): WebGPU on a hardware adapter, else the CPU engine;
                        webgpu; cpu (ONNX Runtime, native); reference (the TypeScript oracle)
  --threads N           CPU engine threads (default: every core)
  --weighting W         attention (default) or valueWeighted: attention times the size of what each
                        key writes (Kobayashi et al. 2020); every engine computes it
  --language ID         VS Code language id (default: from the file extension)
  --min-distance N      a source is distant when it ends at least N tokens before (default 64)
  --layer L             one layer (0-based) or "all" (default: all, strongest layer per source)
  --head H              one head (0-based), "mean" or "max" over heads, or "definition": the heads that,
                        measured on this file, most often attend to the definition or import a name
                        refers to (default, as in the editor; every head when the file has too few
                        such uses)
  --show-sinks          list attention sinks as sources too (by default attention on a head's sinks,
                        e.g. the first token of each window, is left out of every span)
  --threshold W         ignore attention mass below W (default 0.05)
  --top N               sources per identifier (default 3)
  --context N           tokens per window (default 0: automatic, as the extension's
                        attentionLens.contextWindow: the model's full context on ONNX Runtime or a
                        hardware GPU, 1024 on the reference engine or a software adapter)
  --no-prefix           for files longer than the window: do not start each window with the
                        file's imports and top-level signatures (attentionLens.windowPrefix)
  -h, --help            show this help`;

/** The embedded default model, next to the built CLI (out/cli.js -> default-model/). */
export function defaultModelFolder(): string {
  return path.resolve(__dirname, '..', 'default-model');
}

interface AnalyzeOptions {
  readonly file: string;
  readonly model: string;
  readonly cache?: string;
  readonly json: boolean;
  readonly backend: BackendSetting;
  readonly threads?: number;
  readonly weighting: 'attention' | 'valueWeighted';
  readonly language?: string;
  readonly minDistance: number;
  readonly view: AttentionView;
  readonly showSinks: boolean;
  readonly threshold: number;
  readonly top: number;
  readonly context?: number;
  readonly prefix: boolean;
}

function parseOptions(args: string[]): AnalyzeOptions | undefined {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        model: { type: 'string' },
        cache: { type: 'string' },
        json: { type: 'boolean' },
        backend: { type: 'string' },
        threads: { type: 'string' },
        weighting: { type: 'string' },
        language: { type: 'string' },
        'min-distance': { type: 'string' },
        layer: { type: 'string' },
        head: { type: 'string' },
        threshold: { type: 'string' },
        top: { type: 'string' },
        context: { type: 'string' },
        'no-prefix': { type: 'boolean' },
        'show-sinks': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new CliError(`${(error as Error).message}. Run "attention-lens analyze --help" for usage.`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${ANALYZE_USAGE}\n`);
    return undefined;
  }
  if (positionals.length !== 1) throw new CliError('analyze needs exactly one FILE. Run "attention-lens analyze --help" for usage.');
  const integer = (name: string, text: string | undefined, fallback: number, min: number) => {
    if (text === undefined) return fallback;
    if (!/^\d+$/.test(text) || Number(text) < min) throw new CliError(`--${name} expects an integer >= ${min}, not "${text}".`);
    return Number(text);
  };
  const backend = parseBackend(values.backend);
  const threads = parseThreads(values.threads);
  const weighting = values.weighting ?? 'attention';
  if (weighting !== 'attention' && weighting !== 'valueWeighted') throw new CliError(`--weighting must be attention or valueWeighted, not "${weighting}".`);
  const layerText = values.layer ?? 'all';
  const layer = layerText === 'all' ? 'all' : integer('layer', layerText, 0, 0);
  const headText = values.head ?? 'definition';
  const head = headText === 'mean' || headText === 'max' || headText === 'definition' ? headText : integer('head', headText, 0, 0);
  const threshold = values.threshold === undefined ? 0.05 : Number(values.threshold);
  if (!Number.isFinite(threshold) || threshold < 0 || threshold > 1) throw new CliError(`--threshold expects a number between 0 and 1, not "${values.threshold}".`);
  return {
    file: positionals[0],
    model: values.model ?? defaultModelFolder(),
    cache: values.cache,
    json: values.json === true,
    backend,
    threads,
    weighting,
    language: values.language,
    minDistance: integer('min-distance', values['min-distance'], 64, 0),
    view: { layer, head },
    showSinks: values['show-sinks'] === true,
    threshold,
    top: integer('top', values.top, 3, 1),
    context: values.context === undefined || values.context === '0' ? 0 : integer('context', values.context, 0, 16),
    prefix: values['no-prefix'] !== true,
  };
}

/** What analysing files needs once: the model, its tokenizer, the grammars and the engine. */
export interface FileAnalyzer {
  readonly modelFolder: string;
  readonly spec: import('../../engine/model/modelTypes').ModelSpec;
  readonly backend: BackendInfo;
  /** Tokens per window. */
  readonly context: number;
  analyze(file: string, languageId?: string): Promise<AnalysedFile>;
  dispose(): void;
}

export interface AnalysedFile {
  readonly file: string;
  /** The windows the file ran in (sinks are measured per window). */
  readonly windowPlan: readonly AnalysisWindow[];
  readonly text: string;
  readonly languageId: string;
  readonly doc: PreparedDocument;
  readonly summary: AttentionSummary;
  readonly windows: number;
  readonly readbackBytes: number;
  readonly elapsedMs: number;
}

/** Loads the model and an engine for analysing source files the way the extension does. */
export async function openFileAnalyzer(
  options: { readonly model: string; readonly cache?: string; readonly backend: BackendSetting; readonly threads?: number; readonly weighting: 'attention' | 'valueWeighted'; readonly context?: number; readonly prefix?: boolean; readonly treeSitterDir?: string },
  log: (line: string) => void,
): Promise<FileAnalyzer> {
  const modelFolder = path.resolve(await resolveModelArgument(options.model, options.cache));
  const model = await loadModelFolder(modelFolder);
  const tokenizerFile = path.join(modelFolder, 'tokenizer.json');
  try {
    await fs.access(tokenizerFile);
  } catch {
    throw new CliError(`${modelFolder} has no tokenizer.json; the analysis needs the model's tokenizer.`);
  }
  const tokenizer = await loadTokenizerFile(tokenizerFile);
  const grammars = options.treeSitterDir ?? path.join(__dirname, 'tree-sitter');
  const extractor = await DefinitionExtractor.create((name) => fs.readFile(path.join(grammars, name)));
  const { spec } = model;
  const engine = await createEngine(model, options.backend, options.threads, log, { valueWeighting: options.weighting === 'valueWeighted' });
  const context = windowTokens(options.context ?? 0, engine.backend, spec.maxPositions);
  const warned = new Set<string>();
  return {
    modelFolder,
    spec,
    backend: engine.backend,
    context,
    async analyze(file: string, language?: string): Promise<AnalysedFile> {
      const text = await readSourceFile(file);
      const languageId = language ?? languageIdForFile(file);
      if (!DefinitionExtractor.supports(languageId) && !warned.has(languageId)) {
        warned.add(languageId);
        log(`attention-lens: no grammar for language "${languageId}"; no definitions or imports will be found.`);
      }
      const { definitions, references, comments } = await extractor.extractWithReferences(languageId, text);
      const doc = prepareDocument(text, tokenizer, definitions, references, comments);
      if (doc.tokenIds.length === 0) throw new CliError(`${file} has no tokens to analyse.`);
      const badId = doc.tokenIds.find((id) => id >= spec.vocabSize);
      if (badId !== undefined) throw new CliError(`the tokenizer produced id ${badId}, outside the model's vocabulary (${spec.vocabSize}); the tokenizer.json does not belong to this model.`);
      const windows = planWindows({ numTokens: doc.tokenIds.length, context, spans: doc.spans, ...(options.prefix === false ? { prefixCandidates: [], prefixShare: 0 } : { prefixCandidates: prefixCandidates(doc.definitions) }) });
      const started = performance.now();
      let readbackBytes = 0;
      const summaries: AttentionSummary[] = [];
      for (const window of windows) {
        // The editor's default top-k (attentionLens.topK): sinks and definition heads are measured from it.
        const result = await engine.run({ tokenIds: window.positions.map((p) => doc.tokenIds[p]), spans: window.spans, topK: 8, weighting: options.weighting });
        summaries.push(result.summary);
        readbackBytes += result.stats.readbackBytes;
      }
      const summary = mergeWindowSummaries(windows, summaries, doc.tokenIds.length, doc.spans.length);
      return { file, text, languageId, doc, summary, windows: windows.length, windowPlan: windows, readbackBytes, elapsedMs: performance.now() - started };
    },
    dispose: () => engine.dispose(),
  };
}

export async function runAnalyze(args: string[], log: (line: string) => void): Promise<void> {
  const options = parseOptions(args);
  if (!options) return;
  const analyzer = await openFileAnalyzer(options, log);
  const { spec, modelFolder, context } = analyzer;
  if (typeof options.view.layer === 'number' && options.view.layer >= spec.numLayers) {
    analyzer.dispose();
    throw new CliError(`--layer ${options.view.layer}: the model has ${spec.numLayers} layers.`);
  }
  if (typeof options.view.head === 'number' && options.view.head >= spec.numHeads) {
    analyzer.dispose();
    throw new CliError(`--head ${options.view.head}: the model has ${spec.numHeads} heads per layer.`);
  }
  let analysed: AnalysedFile;
  try {
    analysed = await analyzer.analyze(options.file, options.language);
  } finally {
    analyzer.dispose();
  }
  const { text, languageId, doc, summary, readbackBytes, elapsedMs } = analysed;
  const backend = analyzer.backend;
  const windows = { length: analysed.windows };
  const readable = { doc, summary, windowPlan: analysed.windowPlan, model: { slidingWindow: spec.slidingWindow, ropeLayers: spec.ropeLayers } };
  const rule = { minDistance: options.minDistance, otherLineCounts: false, showSinks: options.showSinks };
  const view = resolveReading(readable, options.view, rule);
  const viewText = describeReading(readable, options.view, rule);
  const rows = doc.identifiers
    .map((identifier, index) => ({ identifier, index }))
    .filter(({ identifier }) => !isKeyword(identifier.name))
    .map(({ identifier, index }) => ({ identifier, index, sources: attendedSources(doc, summary, identifier.tokens, view, rule, options.top, options.threshold) }))
    .filter((row) => row.sources.length > 0);

  const lineOf = lineIndex(text);
  const backendText = describeBackend(backend);
  if (options.json) {
    const definitionJson = (d: SourceDefinition, i: number) => ({ kind: d.kind, name: d.name, line: lineOf(d.start).line + 1, tokenSpan: doc.spans[i] });
    process.stdout.write(
      `${JSON.stringify({
        file: path.resolve(options.file),
        languageId,
        model: {
          folder: modelFolder,
          architecture: spec.architecture,
          layers: spec.numLayers,
          heads: spec.numHeads,
          context,
          ...(spec.slidingWindow ? { slidingWindow: spec.slidingWindow } : {}),
          ...(spec.ropeLayers ? { ropeLayers: spec.ropeLayers } : {}),
          ...(spec.ropeScaling ? { ropeScaling: spec.ropeScaling.type } : {}),
        },
        backend,
        weighting: options.weighting,
        tokens: doc.tokenIds.length,
        windows: windows.length,
        elapsedMs: Math.round(elapsedMs),
        readbackBytes,
        view: { ...options.view, showSinks: options.showSinks, reads: viewText, ...(view.heads ? { heads: view.heads.map((h) => ({ layer: summary.layers[h.layerIndex], head: h.head })) } : {}) },
        minDistance: options.minDistance,
        definitions: doc.definitions.map(definitionJson),
        identifiers: rows.map(({ identifier, index, sources }) => {
          const at = lineOf(identifier.start);
          return { name: identifier.name, line: at.line + 1, column: at.column + 1, tokens: identifier.tokens, sources: sources.map((s) => ({ definition: s.definition, weight: Number(s.weight.toFixed(4)), tokenDistance: s.tokenDistance, relation: relationOf(doc, index, s.definition).kind })) };
        }),
      })}\n`,
    );
    return;
  }
  const out: string[] = [];
  out.push(`${path.resolve(options.file)}: ${doc.tokenIds.length} tokens, ${doc.definitions.length} definitions/imports, ${windows.length} window${windows.length === 1 ? '' : 's'} of <= ${context} tokens${windows.length > 1 ? (options.prefix ? ', each starting with the imports and signatures' : ', plain slices of the file (--no-prefix)') : ''}`);
  out.push(`model ${spec.architecture} (${spec.numLayers} layers x ${spec.numHeads} heads) on ${backendText}, ${Math.round(elapsedMs)} ms; view: ${viewText}; distant = >= ${options.minDistance} tokens back`);
  out.push('');
  if (rows.length === 0) out.push(`No identifier attends to a distant definition or import with weight >= ${options.threshold}.`);
  const width = Math.min(32, Math.max(10, ...rows.map((r) => r.identifier.name.length)));
  for (const { identifier, index, sources } of rows) {
    const at = lineOf(identifier.start);
    const targets = sources.map((s) => {
      const d = doc.definitions[s.definition];
      const relation = relationOf(doc, index, s.definition).kind;
      return `${d.kind} ${d.name} (line ${lineOf(d.start).line + 1}) ${(s.weight * 100).toFixed(0)}%${relation === 'definition' ? ' [its definition]' : relation === 'earlierUse' ? ' [earlier use]' : ''}`;
    });
    out.push(`${`${at.line + 1}:${at.column + 1}`.padStart(8)}  ${identifier.name.padEnd(width)}  -> ${targets.join('; ')}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

export async function readSourceFile(file: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`);
  }
  if (bytes.includes(0)) throw new CliError(`${file} looks like a binary file (it contains NUL bytes); analyze reads source text.`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new CliError(`${file} is not valid UTF-8; convert it to UTF-8 first.`);
  }
  if (text.trim().length === 0) throw new CliError(`${file} is empty; there is nothing to analyse.`);
  return text;
}

/** Maps UTF-16 offsets to 0-based line and column. */
export function lineIndex(text: string): (offset: number) => { line: number; column: number } {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo, column: offset - starts[lo] };
  };
}


