/**
 * What an edit leaves valid: the part of an analysis before the first change must be exactly what
 * a new analysis of the edited file computes for those tokens (a causal model), across windows.
 * Checked against a real re-analysis with the embedded default model on the CPU engine.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openFileAnalyzer, type AnalysedFile } from '../../src/cli/analyze';
import type { DocumentAnalysisResult } from '../../src/analysis/documentResult';
import { prefixResult } from '../../src/analysis/prefixResult';
import { describeReading, headsTable, inheritReading, prepareReading, sinkContext } from '../../src/analysis/reading';
import { repoRoot } from './fixtureModels';

function asResult(a: AnalysedFile, version: number): DocumentAnalysisResult {
  return {
    uri: 'file:///inventory.ts', version, languageId: a.languageId, baseOffset: 0, doc: a.doc, summary: a.summary, windows: a.windows,
    backend: { kind: 'reference', reason: 'test' },
    model: { label: 'default', shortName: 'default', architecture: 'LlamaForCausalLM', numLayers: 2, numHeads: 8, context: 1024 },
    stats: { forwardMs: 0, summaryMs: 0, readbackBytes: 0, elapsedMs: 0 },
  };
}

test('the part before an edit equals what a re-analysis of the edited file computes for it, in several windows', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-prefix-'));
  // Small windows so the kept part spans several of them.
  const analyzer = await openFileAnalyzer({ model: path.join(repoRoot, 'default-model'), backend: 'cpu', weighting: 'attention', context: 1024, treeSitterDir: path.join(repoRoot, 'node_modules', '@vscode', 'tree-sitter-wasm', 'wasm') }, () => undefined);
  try {
    const text = fs.readFileSync(path.join(repoRoot, 'sample-workspace', 'src', 'inventory.ts'), 'utf8');
    const lines = text.split('\n');
    const changeOffset = lines.slice(0, 150).join('\n').length + 1; // the start of line 151
    const edited = `${text.slice(0, changeOffset)}  // an edit\n${text.slice(changeOffset)}`;
    fs.writeFileSync(path.join(dir, 'before.ts'), text);
    fs.writeFileSync(path.join(dir, 'after.ts'), edited);
    const before = await analyzer.analyze(path.join(dir, 'before.ts'));
    const after = await analyzer.analyze(path.join(dir, 'after.ts'));
    assert.ok(before.windows >= 3, `${before.windows} windows`);

    const kept = prefixResult(asResult(before, 1), 2, changeOffset)!;
    assert.ok(kept, 'an edit far into the file keeps the part before it');
    assert.equal(kept.version, 2);
    assert.deepEqual(kept.prefixOf, { tokens: before.doc.tokenIds.length, changeOffset });
    const p = kept.doc.tokenIds.length;
    assert.ok(p > 1500 && p < before.doc.tokenIds.length, `${p} tokens kept`);
    assert.ok(kept.doc.ranges[p - 1].end <= changeOffset);
    assert.deepEqual([...kept.doc.tokenIds], after.doc.tokenIds.slice(0, p), 'the same tokens');
    assert.ok(kept.windowPlan === undefined && kept.runId === undefined, 'checks and exact rows wait for the new run');

    // Every kept row, every head: the same top-k and the same masses on the same definitions.
    const { summary: a } = kept;
    const b = after.summary;
    const L = a.layers.length;
    const H = a.numHeads;
    const k = a.topK;
    const columnOf = kept.doc.definitions.map((d) => after.doc.definitions.findIndex((x) => x.start === d.start && x.end === d.end));
    assert.ok(columnOf.every((c) => c >= 0), 'the kept definitions are definitions of the edited file');
    let worst = 0;
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        for (let q = 0; q < p; q++) {
          for (let j = 0; j < k; j++) {
            worst = Math.max(worst, Math.abs(a.topWeights[((l * H + h) * p + q) * k + j] - b.topWeights[((l * H + h) * b.numTokens + q) * k + j]));
          }
          columnOf.forEach((c, s) => {
            worst = Math.max(worst, Math.abs(a.spanMass[((l * H + h) * p + q) * a.numSpans + s] - b.spanMass[((l * H + h) * b.numTokens + q) * b.numSpans + c]));
          });
        }
      }
    }
    assert.ok(worst < 1e-4, `max |diff| ${worst}`);
    // The code's references in the kept part point at kept definitions only.
    for (const r of kept.doc.references) for (const t of r.targets) assert.ok(t < kept.doc.definitions.length);

    // While typing, the kept part reads as the whole analysis did: the same sinks and definition
    // heads, not recomputed (the editor calls inheritReading on every edit).
    const whole = asResult(before, 1);
    await prepareReading(whole, 64);
    const typed = prefixResult(whole, 2, changeOffset)!;
    inheritReading(whole, typed);
    assert.equal(sinkContext(typed).analysis, sinkContext(whole).analysis, 'the same sinks');
    assert.equal(headsTable(typed, 64), headsTable(whole, 64), 'the same heads table');
    // Computed in slices (the editor) or at once (the CLI): the same.
    const atOnce = asResult(before, 1);
    assert.deepEqual(headsTable(atOnce, 64), headsTable(whole, 64));
    assert.deepEqual(sinkContext(atOnce).analysis.sinks, sinkContext(whole).analysis.sinks);
    assert.equal(describeReading(typed, { layer: 'all', head: 'definition' }, { minDistance: 64 }), describeReading(whole, { layer: 'all', head: 'definition' }, { minDistance: 64 }));

    // An edit at the very start leaves nothing.
    assert.equal(prefixResult(asResult(before, 1), 2, 0), undefined);
  } finally {
    analyzer.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
