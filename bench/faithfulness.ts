/**
 * `npm run bench -- --faithfulness`: does attention point at what the model depends on? Over
 * held-out files of the default model's validation split (the Python standard library files that
 * training/corpus.py puts in "valid", chosen by the same path hash), for distant identifier uses,
 * how often the definition or import that attention ranks first is also the one whose knockout
 * changes the next-token prediction most (agreement@1), raw and value-weighted, and the Spearman
 * rank correlation over all candidate spans; beside two baselines (the nearest candidate, and
 * chance). Runs on the ONNX Runtime engine.
 *
 * A query: the first token of an identifier whose previous occurrence of the same name is at least
 * MIN_DISTANCE tokens back, with at least two definitions or imports ending MIN_DISTANCE tokens or
 * more before it (the candidates). Attention to a candidate: its span mass, max over heads, mean over
 * layers (as in ../shared/notes/faithfulness.md); knockout: every layer and head.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AttentionSummary } from '../engine/attention';
import { NodeOnnxEngine } from '../engine/hosts/nodeOnnx';
import { loadModelFolder } from '../engine/hosts/nodeModelFolder';
import { DefinitionExtractor } from '../src/analysis/definitions';
import { prepareDocument } from '../src/analysis/documentAnalysis';
import { isKeyword } from '../src/analysis/keywords';
import { loadTokenizerFile } from '../src/node/tokenizer';

const MIN_DISTANCE = 64;
const CORPUS_SEED = 'attention-lens-corpus-v1';
const PY_STDLIB = '/usr/lib/python3.11';

export interface FaithfulnessOptions {
  readonly repoRoot: string;
  readonly threads: number;
  /** Files to use at most, and queries per file at most. */
  readonly maxFiles: number;
  readonly maxQueriesPerFile: number;
}

/** training/corpus.py's split_of: the first 8 hex digits of sha256(seed + path), mod 100, below 3. */
export function isValidationPath(corpusPath: string): boolean {
  return parseInt(createHash('sha256').update(CORPUS_SEED + corpusPath).digest('hex').slice(0, 8), 16) % 100 < 3;
}

/** Held-out Python files of the corpus on this machine, as (corpus path, file). */
export function validationFiles(): { corpusPath: string; file: string }[] {
  const out: { corpusPath: string; file: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!['site-packages', 'dist-packages', '__pycache__', 'lib2to3', 'idlelib'].includes(entry.name)) walk(full);
      } else if (entry.name.endsWith('.py')) {
        const corpusPath = `cpython/${path.relative(PY_STDLIB, full)}`;
        if (isValidationPath(corpusPath)) out.push({ corpusPath, file: full });
      }
    }
  };
  if (fs.existsSync(PY_STDLIB)) walk(PY_STDLIB);
  return out;
}

/** Spearman's rank correlation (average ranks for ties); NaN when either side is constant. */
export function spearman(a: readonly number[], b: readonly number[]): number {
  const ranks = (values: readonly number[]) => {
    const order = values.map((v, i) => [v, i] as const).sort((x, y) => x[0] - y[0]);
    const r = new Array<number>(values.length);
    for (let i = 0; i < order.length; ) {
      let j = i;
      while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
      for (let k = i; k <= j; k++) r[order[k][1]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const ra = ranks(a);
  const rb = ranks(b);
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const ma = mean(ra);
  const mb = mean(rb);
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < ra.length; i++) {
    num += (ra[i] - ma) * (rb[i] - mb);
    da += (ra[i] - ma) ** 2;
    db += (rb[i] - mb) ** 2;
  }
  return da === 0 || db === 0 ? NaN : num / Math.sqrt(da * db);
}

/** Per span: mass max over heads, mean over layers, for query q. */
function aggregateMass(summary: AttentionSummary, q: number): Float64Array {
  const { numSpans: S, numTokens: n, numHeads: H } = summary;
  const L = summary.layers.length;
  const out = new Float64Array(S);
  for (let l = 0; l < L; l++) {
    for (let s = 0; s < S; s++) {
      let max = 0;
      for (let h = 0; h < H; h++) max = Math.max(max, summary.spanMass[((l * H + h) * n + q) * S + s]);
      out[s] += max / L;
    }
  }
  return out;
}

const argmax = (values: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
};

export interface FaithfulnessReport {
  readonly files: number;
  readonly queries: number;
  readonly candidatesMean: number;
  readonly agreement: { readonly attention: number; readonly valueWeighted: number; readonly nearest: number; readonly chance: number };
  readonly spearman: { readonly attention: number; readonly valueWeighted: number; readonly counted: number };
  readonly fileList: readonly string[];
}

export async function faithfulnessReport(options: FaithfulnessOptions): Promise<FaithfulnessReport> {
  const modelDir = path.join(options.repoRoot, 'default-model');
  const model = await loadModelFolder(modelDir);
  const tokenizer = await loadTokenizerFile(path.join(modelDir, 'tokenizer.json'));
  const extractor = await DefinitionExtractor.create((name) => fs.promises.readFile(path.join(options.repoRoot, 'out', 'tree-sitter', name)));
  const engine = await NodeOnnxEngine.create(model, { threads: options.threads, reason: 'faithfulness report' });
  const context = model.spec.maxPositions;
  let queries = 0;
  let candidatesTotal = 0;
  const hits = { attention: 0, valueWeighted: 0, nearest: 0, chance: 0 };
  const rho = { attention: 0, valueWeighted: 0, counted: 0 };
  const used: string[] = [];
  try {
    for (const { corpusPath, file } of validationFiles()) {
      if (used.length >= options.maxFiles) break;
      const text = fs.readFileSync(file, 'utf8').replace(/\r\n/g, '\n');
      const doc = prepareDocument(text, tokenizer, await extractor.extract('python', text));
      const n = Math.min(context, doc.tokenIds.length);
      const spans = doc.spans.map((span, i) => ({ span, i })).filter(({ span }) => span.end <= n);
      if (n < 4 * MIN_DISTANCE || spans.length < 2) continue;
      // Queries: identifier uses whose previous occurrence is distant, with >= 2 distant candidates.
      const lastSeen = new Map<string, number>();
      const picked: { q: number; candidates: number[] }[] = [];
      for (const group of doc.identifiers) {
        const q = group.tokens[0];
        if (q >= n - 1) break;
        const previous = lastSeen.get(group.name);
        lastSeen.set(group.name, group.tokens[group.tokens.length - 1]);
        if (isKeyword(group.name) || previous === undefined || q - previous < MIN_DISTANCE) continue;
        const candidates = spans.map(({ span }, k) => ({ span, k })).filter(({ span }) => q - span.end >= MIN_DISTANCE).map(({ k }) => k);
        if (candidates.length >= 2) picked.push({ q, candidates });
      }
      if (picked.length === 0) continue;
      // Spread the queries over the file.
      const stride = Math.max(1, Math.floor(picked.length / options.maxQueriesPerFile));
      const chosen = picked.filter((_, i) => i % stride === 0).slice(0, options.maxQueriesPerFile);
      const request = { tokenIds: doc.tokenIds.slice(0, n), spans: spans.map(({ span }) => span), topK: 1 };
      const weighted = (await engine.run({ ...request, weighting: 'valueWeighted' })).summary;
      const plain = (await engine.run(request)).summary;
      used.push(corpusPath);
      for (const { q, candidates } of chosen) {
        const knockout = await engine.knockout({ query: q, spans: candidates.map((k) => spans[k].span) });
        const kl = knockout.spans.map((s) => s.kl);
        const attention = aggregateMass(plain, q);
        const valueWeighted = aggregateMass(weighted, q);
        const a = candidates.map((k) => attention[k]);
        const v = candidates.map((k) => valueWeighted[k]);
        const best = argmax(kl);
        queries++;
        candidatesTotal += candidates.length;
        if (argmax(a) === best) hits.attention++;
        if (argmax(v) === best) hits.valueWeighted++;
        // Nearest candidate: the one ending closest before the query.
        if (argmax(candidates.map((k) => spans[k].span.end)) === best) hits.nearest++;
        hits.chance += 1 / candidates.length;
        const ra = spearman(a, kl);
        const rv = spearman(v, kl);
        if (Number.isFinite(ra) && Number.isFinite(rv)) {
          rho.attention += ra;
          rho.valueWeighted += rv;
          rho.counted++;
        }
      }
      process.stderr.write(`  ${corpusPath}: ${chosen.length} queries\n`);
    }
  } finally {
    engine.dispose();
  }
  const share = (x: number) => (queries ? x / queries : NaN);
  return {
    files: used.length,
    queries,
    candidatesMean: queries ? candidatesTotal / queries : NaN,
    agreement: { attention: share(hits.attention), valueWeighted: share(hits.valueWeighted), nearest: share(hits.nearest), chance: share(hits.chance) },
    spearman: { attention: rho.counted ? rho.attention / rho.counted : NaN, valueWeighted: rho.counted ? rho.valueWeighted / rho.counted : NaN, counted: rho.counted },
    fileList: used,
  };
}

export function formatFaithfulness(report: FaithfulnessReport): string[] {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return [
    `Faithfulness of attention, default model, ${report.files} held-out files (validation split), ${report.queries} distant identifier uses, ${report.candidatesMean.toFixed(1)} candidate spans each on average`,
    '',
    '| ranking of candidate definitions/imports | agreement@1 with the largest knockout effect | mean Spearman vs knockout KL |',
    '|---|---|---|',
    `| raw attention (max over heads, mean over layers) | ${pct(report.agreement.attention)} | ${report.spearman.attention.toFixed(3)} |`,
    `| value-weighted attention | ${pct(report.agreement.valueWeighted)} | ${report.spearman.valueWeighted.toFixed(3)} |`,
    `| nearest candidate (position only) | ${pct(report.agreement.nearest)} | - |`,
    `| chance | ${pct(report.agreement.chance)} | - |`,
    '',
    `(Spearman over ${report.spearman.counted} queries where neither ranking is constant.) Files: ${report.fileList.join(', ')}`,
  ];
}
