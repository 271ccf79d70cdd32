/**
 * `npm run bench -- --sources`: is the first source the views list worth reading? Over held-out
 * files (real packages' sources that the default model never trained on, in TypeScript, JavaScript
 * and Python), for every use of a name that is written in an earlier definition or import header at
 * least 64 tokens back (read from the file's text, not from our own resolution of references):
 *  - how often the first source listed (threshold 5%, as `analyze` and the hover) mentions the name,
 *  - how often the first source is an attention sink (most of its mass is attention on a sink),
 * under the old default view (all layers, max of heads, sinks counted) and the new one (this file's
 * definition heads, sinks apart: src/analysis/reading.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { attendedSources, spanMassFor, type AttentionView, type DistanceRule } from '../src/analysis/documentAnalysis';
import { isKeyword } from '../src/analysis/keywords';
import { describeReading, resolveReading } from '../src/analysis/reading';
import { openFileAnalyzer } from '../src/cli/analyze';

/** Held-out files: packages this machine has that are not in the default model's corpus (training/corpus.py). */
export function heldOutSourceFiles(repoRoot: string): { files: string[]; missing: string[] } {
  const candidates = [
    ...['inference-session.ts', 'tensor.ts', 'tensor-impl.ts', 'tensor-factory.ts', 'tensor-factory-impl.ts', 'env.ts', 'backend-impl.ts'].map((f) => path.join(repoRoot, 'node_modules', 'onnxruntime-common', 'lib', f)),
    ...['runner.js', 'runnable.js', 'suite.js', 'mocha.js', 'utils.js'].map((f) => path.join(repoRoot, 'node_modules', 'mocha', 'lib', f)),
    ...['yaml/constructor.py', 'yaml/representer.py', 'requests/sessions.py', 'requests/models.py', 'urllib3/connectionpool.py', 'pygments/lexer.py'].map((f) => path.join('/usr/lib/python3/dist-packages', f)),
  ];
  return { files: candidates.filter((f) => fs.existsSync(f)), missing: candidates.filter((f) => !fs.existsSync(f)) };
}

interface Count {
  uses: number;
  mentions: number;
  sinkFirst: number;
  noSource: number;
}

export interface SourcesRow {
  readonly file: string;
  readonly tokens: number;
  readonly old: Count;
  readonly current: Count;
  /** What the new default read on this file. */
  readonly reading: string;
}

const OLD_VIEW: AttentionView = { layer: 'all', head: 'max' };
const NEW_VIEW: AttentionView = { layer: 'all', head: 'definition' };
const MIN_DISTANCE = 64;
const THRESHOLD = 0.05;

export async function sourcesReport(options: { readonly repoRoot: string; readonly threads?: number; readonly files?: readonly string[] }, log: (line: string) => void): Promise<{ rows: SourcesRow[]; missing: string[] }> {
  const { files, missing } = options.files ? { files: [...options.files], missing: [] } : heldOutSourceFiles(options.repoRoot);
  const analyzer = await openFileAnalyzer({ model: path.join(options.repoRoot, 'default-model'), backend: 'cpu', threads: options.threads, weighting: 'attention', treeSitterDir: path.join(options.repoRoot, 'out', 'tree-sitter') }, log);
  const rows: SourcesRow[] = [];
  try {
    for (const file of files) {
      const analysed = await analyzer.analyze(file);
      const { doc, summary } = analysed;
      const readable = { doc, summary, windowPlan: analysed.windowPlan };
      const oldRule: DistanceRule = { minDistance: MIN_DISTANCE, otherLineCounts: false, showSinks: true };
      const newRule: DistanceRule = { minDistance: MIN_DISTANCE, otherLineCounts: false };
      const oldReading = resolveReading(readable, OLD_VIEW, oldRule);
      const newReading = resolveReading(readable, NEW_VIEW, newRule);
      // Readings with and without sinks, to tell a sink-made first source.
      const sinksApart = (view: AttentionView) => resolveReading(readable, view, newRule);
      const headers = doc.definitions.map((d) => doc.text.slice(d.start, d.end));
      const count = (): Count => ({ uses: 0, mentions: 0, sinkFirst: 0, noSource: 0 });
      const old = count();
      const current = count();
      for (const group of doc.identifiers) {
        if (isKeyword(group.name) || group.name.length < 2) continue;
        const first = group.tokens[0];
        const word = new RegExp(`(^|[^A-Za-z0-9_$])${group.name.replace(/[$]/g, '\\$')}([^A-Za-z0-9_$]|$)`);
        const written = doc.spans.some((span, s) => span.end <= first - MIN_DISTANCE + 1 && word.test(headers[s]));
        if (!written) continue;
        for (const [counts, reading, rule, view] of [[old, oldReading, oldRule, OLD_VIEW], [current, newReading, newRule, NEW_VIEW]] as const) {
          counts.uses++;
          const [top] = attendedSources(doc, summary, group.tokens, reading, rule, 1, THRESHOLD);
          if (!top) {
            counts.noSource++;
            continue;
          }
          if (word.test(headers[top.definition])) counts.mentions++;
          // A sink-made source: most of its mass is attention on a sink.
          const apart = Math.max(...group.tokens.map((t) => spanMassFor(summary, t, sinksApart(view))[top.definition] ?? 0));
          if (apart < 0.5 * top.weight) counts.sinkFirst++;
        }
      }
      const row: SourcesRow = { file, tokens: doc.tokenIds.length, old, current, reading: describeReading(readable, NEW_VIEW, newRule) };
      rows.push(row);
      log(`  ${path.basename(file)}: ${doc.tokenIds.length} tokens, ${old.uses} uses; first source mentions the name: ${pct(old.mentions, old.uses)} -> ${pct(current.mentions, current.uses)}; sink first: ${pct(old.sinkFirst, old.uses)} -> ${pct(current.sinkFirst, current.uses)}`);
    }
  } finally {
    analyzer.dispose();
  }
  return { rows, missing };
}

function pct(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)}%`;
}

export function formatSources(rows: readonly SourcesRow[]): string[] {
  const total = (pick: (row: SourcesRow) => { uses: number; mentions: number; sinkFirst: number; noSource: number }) =>
    rows.reduce((sum, row) => {
      const c = pick(row);
      return { uses: sum.uses + c.uses, mentions: sum.mentions + c.mentions, sinkFirst: sum.sinkFirst + c.sinkFirst, noSource: sum.noSource + c.noSource };
    }, { uses: 0, mentions: 0, sinkFirst: 0, noSource: 0 });
  const lines = ['| file | tokens | uses | first source mentions the name: old view | new view | first source is a sink: old | new | no source above 5%: old | new |', '|---|--:|--:|--:|--:|--:|--:|--:|--:|'];
  for (const row of rows) {
    lines.push(`| ${path.basename(path.dirname(row.file))}/${path.basename(row.file)} | ${row.tokens} | ${row.old.uses} | ${pct(row.old.mentions, row.old.uses)} | ${pct(row.current.mentions, row.current.uses)} | ${pct(row.old.sinkFirst, row.old.uses)} | ${pct(row.current.sinkFirst, row.current.uses)} | ${pct(row.old.noSource, row.old.uses)} | ${pct(row.current.noSource, row.current.uses)} |`);
  }
  const o = total((r) => r.old);
  const c = total((r) => r.current);
  lines.push(`| **all** | ${rows.reduce((a, r) => a + r.tokens, 0)} | ${o.uses} | **${pct(o.mentions, o.uses)}** | **${pct(c.mentions, c.uses)}** | ${pct(o.sinkFirst, o.uses)} | ${pct(c.sinkFirst, c.uses)} | ${pct(o.noSource, o.uses)} | ${pct(c.noSource, c.uses)} |`);
  return lines;
}
