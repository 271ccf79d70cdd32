/**
 * `attention-lens map FILE` (the dependency map of one file, as the panel draws it) and
 * `attention-lens heads FILE...` (which heads track the code's real references, aggregated over
 * many files). Both analyse files exactly as `analyze` and the extension do.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { describeReading, sinkContext } from '../analysis/reading';
import { addHeadTables, definitionHeads, precisionOf, recallOf, type HeadsTable, type Score } from '../analysis/definitionHeads';
import { buildDependencyMap, edgeAgreement } from '../analysis/dependencyMap';
import type { AttentionView } from '../analysis/documentAnalysis';
import type { DocumentAnalysisResult } from '../analysis/documentResult';
import { describeBackend } from '../../engine/backendPolicy';
import { CliError } from './cliError';
import { defaultModelFolder, openFileAnalyzer, type AnalysedFile, type FileAnalyzer } from './analyze';
import { parseBackend, parseThreads } from './forward';

const COMMON_OPTIONS = `  --model DIR|REPO      Hugging Face model folder or downloaded repo id (default: the embedded model)
  --cache DIR           the model cache for --model REPO
  --json                print JSON instead of a table
  --backend KIND        auto (default), webgpu, cpu (ONNX Runtime) or reference
  --threads N           CPU engine threads (default: every core)
  --language ID         VS Code language id (default: from each file's extension)
  --context N           tokens per window (default 0: automatic, as analyze)`;

export const MAP_USAGE = `Usage: attention-lens map FILE [options]

The dependency map of FILE: its imports and definitions, and for each definition the share of its
identifiers' attention that goes to each earlier definition or import, beside the code's own
references. Edges: "both" (attended and referenced), "attention only" (attended, no reference in the
code), "reference only" (the code refers to it, the model does not attend).

Options:
${COMMON_OPTIONS}
  --layer L             one layer (0-based) or "all" (default: all)
  --head H              one head, "mean" or "max" over heads, or "definition": the heads measured on
                        the file to follow its references (default, as in the editor)
  --threshold W         an edge counts as attended from this share on (default 0.1)
  -h, --help            show this help`;

export const HEADS_USAGE = `Usage: attention-lens heads FILE... [options]

Which heads follow the code's references: for every distant use of a name the code resolves to a
definition or import of the same file, per layer and head, precision@1 (the head's top distant
position lies in that definition or import) and recall@k (any of its top-k positions does), next to
two position-only baselines (the nearest earlier occurrence of the name; a uniform choice), summed
over all FILEs.

Options:
${COMMON_OPTIONS}
  --min-distance N      a use is distant when its definition ends >= N tokens before it (default 64)
  --top N               heads to print in the table (default 10; JSON has all)
  -h, --help            show this help`;

interface CommonOptions {
  readonly files: string[];
  readonly model: string;
  readonly cache?: string;
  readonly json: boolean;
  readonly backend: ReturnType<typeof parseBackend>;
  readonly threads?: number;
  readonly language?: string;
  readonly context?: number;
  readonly values: Record<string, string | boolean | undefined>;
}

function parseCommon(command: 'map' | 'heads', args: string[], extra: Record<string, { type: 'string' }>, usage: string): CommonOptions | undefined {
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
        language: { type: 'string' },
        context: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        ...extra,
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new CliError(`${(error as Error).message}. Run "attention-lens ${command} --help" for usage.`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return undefined;
  }
  if (positionals.length === 0) throw new CliError(`${command} needs ${command === 'map' ? 'a FILE' : 'at least one FILE'}. Run "attention-lens ${command} --help" for usage.`);
  if (command === 'map' && positionals.length > 1) throw new CliError('map takes exactly one FILE.');
  const context = values.context === undefined || values.context === '0' ? 0 : integer('context', values.context as string, 16);
  return {
    files: positionals,
    model: (values.model as string | undefined) ?? defaultModelFolder(),
    cache: values.cache as string | undefined,
    json: values.json === true,
    backend: parseBackend(values.backend as string | undefined),
    threads: parseThreads(values.threads as string | undefined),
    language: values.language as string | undefined,
    context,
    values: values as Record<string, string | boolean | undefined>,
  };
}

function integer(name: string, text: string, min: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min) throw new CliError(`--${name} expects an integer >= ${min}, not "${text}".`);
  return Number(text);
}

/** The result shape the shared map builder takes, from a CLI analysis. */
function asResult(analysed: AnalysedFile, analyzer: FileAnalyzer): DocumentAnalysisResult {
  const { spec } = analyzer;
  return {
    uri: path.resolve(analysed.file),
    version: 0,
    languageId: analysed.languageId,
    baseOffset: 0,
    doc: analysed.doc,
    summary: analysed.summary,
    windows: analysed.windows,
    backend: analyzer.backend,
    model: { label: analyzer.modelFolder, shortName: path.basename(analyzer.modelFolder), architecture: spec.architecture, numLayers: spec.numLayers, numHeads: spec.numHeads, context: analyzer.context },
    stats: { forwardMs: 0, summaryMs: 0, readbackBytes: analysed.readbackBytes, elapsedMs: analysed.elapsedMs },
    windowPlan: analysed.windowPlan,
  };
}

export async function runMap(args: string[], log: (line: string) => void): Promise<void> {
  const options = parseCommon('map', args, { layer: { type: 'string' }, head: { type: 'string' }, threshold: { type: 'string' } }, MAP_USAGE);
  if (!options) return;
  const layerText = (options.values.layer as string | undefined) ?? 'all';
  const headText = (options.values.head as string | undefined) ?? 'definition';
  const view: AttentionView = {
    layer: layerText === 'all' ? 'all' : integer('layer', layerText, 0),
    head: headText === 'mean' || headText === 'max' || headText === 'definition' ? headText : integer('head', headText, 0),
  };
  const threshold = options.values.threshold === undefined ? 0.1 : Number(options.values.threshold);
  if (!Number.isFinite(threshold) || threshold < 0 || threshold > 1) throw new CliError(`--threshold expects a number between 0 and 1, not "${options.values.threshold}".`);
  const analyzer = await openFileAnalyzer({ ...options, weighting: 'attention' }, log);
  let analysed: AnalysedFile;
  try {
    if (typeof view.layer === 'number' && view.layer >= analyzer.spec.numLayers) throw new CliError(`--layer ${view.layer}: the model has ${analyzer.spec.numLayers} layers.`);
    if (typeof view.head === 'number' && view.head >= analyzer.spec.numHeads) throw new CliError(`--head ${view.head}: the model has ${analyzer.spec.numHeads} heads per layer.`);
    analysed = await analyzer.analyze(options.files[0], options.language);
  } finally {
    analyzer.dispose();
  }
  const result = asResult(analysed, analyzer);
  const map = buildDependencyMap(result, view);
  const drawn = map.edges.map((edge) => ({ edge, agreement: edgeAgreement(edge, threshold) })).filter((e) => e.agreement !== undefined);
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({
        file: result.uri,
        model: { folder: analyzer.modelFolder, architecture: analyzer.spec.architecture },
        backend: analyzer.backend,
        tokens: analysed.doc.tokenIds.length,
        windows: analysed.windows,
        view,
        threshold,
        nodes: map.nodes.map((n) => ({ kind: n.kind, name: n.name, line: n.line + 1, tokenSpan: [n.tokenStart, n.tokenEnd], identifiers: n.identifiers })),
        edges: drawn.map(({ edge, agreement }) => ({
          from: edge.from,
          to: edge.to,
          weight: Number(edge.weight.toFixed(4)),
          meanMass: Number(edge.meanMass.toFixed(4)),
          references: edge.references,
          agreement,
          tokens: edge.tokens.map((t) => ({ name: t.name, line: t.line + 1, token: t.token, weight: Number(t.weight.toFixed(4)) })),
        })),
      })}\n`,
    );
    return;
  }
  const label = (i: number) => `${map.nodes[i].kind} ${map.nodes[i].name} (line ${map.nodes[i].line + 1})`;
  const counts = { both: 0, attentionOnly: 0, referenceOnly: 0 };
  for (const { agreement } of drawn) counts[agreement!]++;
  const out = [
    `${result.uri}: ${map.nodes.length} imports and definitions, ${analysed.doc.tokenIds.length} tokens, ${analysed.windows} window${analysed.windows === 1 ? '' : 's'}; ${describeBackend(analyzer.backend)}`,
    `view: ${describeReading(result, view, {})}; an edge is attended from ${Math.round(threshold * 100)}% of its definition's attention on earlier definitions`,
    `edges: ${counts.both} attended and referenced, ${counts.attentionOnly} attended without a reference, ${counts.referenceOnly} referenced but not attended`,
    '',
  ];
  const mark = { both: '==', attentionOnly: '~~', referenceOnly: '..' } as const;
  for (const { edge, agreement } of drawn) {
    const share = `${(edge.weight * 100).toFixed(0)}%`.padStart(4);
    const refs = edge.references > 0 ? `${edge.references} ref${edge.references === 1 ? '' : 's'}` : 'no ref';
    const tokens = edge.tokens.map((t) => `${t.name}:${t.line + 1}`).join(', ');
    out.push(`${share} ${mark[agreement!]} ${label(edge.from)} -> ${label(edge.to)}  [${refs}]${tokens ? `  via ${tokens}` : ''}`);
  }
  out.push('', '== attended and referenced   ~~ attended, no reference in the code   .. referenced, not attended');
  process.stdout.write(`${out.join('\n')}\n`);
}

export async function runHeads(args: string[], log: (line: string) => void): Promise<void> {
  const options = parseCommon('heads', args, { 'min-distance': { type: 'string' }, top: { type: 'string' } }, HEADS_USAGE);
  if (!options) return;
  const minDistance = options.values['min-distance'] === undefined ? 64 : integer('min-distance', options.values['min-distance'] as string, 1);
  const top = options.values.top === undefined ? 10 : integer('top', options.values.top as string, 1);
  const analyzer = await openFileAnalyzer({ ...options, weighting: 'attention' }, log);
  const tables: HeadsTable[] = [];
  const perFile: Array<{ file: string; tokens: number; uses: number }> = [];
  let tokens = 0;
  const started = performance.now();
  try {
    for (const file of options.files) {
      const analysed = await analyzer.analyze(file, options.language);
      // Sinks apart, as the editor's table and its definition view.
      const table = definitionHeads(analysed.doc, analysed.summary, minDistance, sinkContext(analysed).analysis);
      tables.push(table);
      tokens += analysed.doc.tokenIds.length;
      perFile.push({ file: path.resolve(file), tokens: analysed.doc.tokenIds.length, uses: table.uses });
    }
  } finally {
    analyzer.dispose();
  }
  const table = addHeadTables(tables);
  const scoreJson = (s: Score) => ({ precision: Number(precisionOf(s).toFixed(4)), recall: Number(recallOf(s).toFixed(4)), hits: Number(s.hits.toFixed(3)), recallHits: Number(s.recallHits.toFixed(3)), count: s.count });
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({
        model: { folder: analyzer.modelFolder, architecture: analyzer.spec.architecture, layers: analyzer.spec.numLayers, heads: analyzer.spec.numHeads },
        backend: analyzer.backend,
        files: perFile,
        tokens,
        uses: table.uses,
        minDistance,
        topK: table.topK,
        heads: table.heads.map((h) => ({ layer: h.layer, head: h.head, ...scoreJson(h) })),
        baselines: { nearestOccurrence: scoreJson(table.baselines.nearestOccurrence), uniform: scoreJson(table.baselines.uniform) },
      })}\n`,
    );
    return;
  }
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(7);
  const out = [
    `${options.files.length} file${options.files.length === 1 ? '' : 's'}, ${tokens} tokens, ${table.uses} distant def-use edges (>= ${minDistance} tokens); model ${analyzer.spec.architecture} ${analyzer.spec.numLayers}x${analyzer.spec.numHeads} on ${describeBackend(analyzer.backend)}, ${((performance.now() - started) / 1000).toFixed(1)} s`,
    '',
    `${'head'.padEnd(26)}${'precision@1'.padStart(12)}${`recall@${table.topK}`.padStart(10)}`,
  ];
  for (const h of table.heads.slice(0, top)) out.push(`${`layer ${h.layer} head ${h.head}`.padEnd(26)}${pct(precisionOf(h)).padStart(12)}${pct(recallOf(h)).padStart(10)}`);
  out.push(`${'baseline: nearest earlier'.padEnd(26)}${pct(precisionOf(table.baselines.nearestOccurrence)).padStart(12)}${pct(recallOf(table.baselines.nearestOccurrence)).padStart(10)}`);
  out.push(`${'baseline: uniform'.padEnd(26)}${pct(precisionOf(table.baselines.uniform)).padStart(12)}${pct(recallOf(table.baselines.uniform)).padStart(10)}`);
  if (table.uses === 0) out.push('', `No distant use of a name defined in these files (>= ${minDistance} tokens from its definition); try --min-distance with a smaller N.`);
  process.stdout.write(`${out.join('\n')}\n`);
}
