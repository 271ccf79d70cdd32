import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeWindowSummaries, mergeWindowSummariesAsync, planWindows } from '../../src/analysis/windows';
import type { AttentionSummary, TokenSpan } from '../../engine/attention';

test('a file that fits the context is one window over all tokens', () => {
  const windows = planWindows({ numTokens: 100, context: 128, spans: [{ start: 0, end: 5 }], prefixCandidates: [0] });
  assert.equal(windows.length, 1);
  assert.equal(windows[0].positions.length, 100);
  assert.equal(windows[0].prefixLength, 0);
});

test('long files: every window fits the context, every token is owned exactly once, and imports lead each window', () => {
  const n = 3000;
  const context = 1024;
  const spans: TokenSpan[] = [{ start: 0, end: 12 }, { start: 12, end: 20 }, { start: 400, end: 410 }, { start: 2500, end: 2600 }];
  const windows = planWindows({ numTokens: n, context, spans, prefixCandidates: [0, 1, 2] });
  assert.ok(windows.length >= 4);
  const owners = new Array<number>(n).fill(0);
  for (const window of windows) {
    assert.ok(window.positions.length <= context, 'window fits the context');
    for (let p = window.ownedStart; p < window.ownedEnd; p++) owners[p]++;
    for (let i = 0; i < window.spans.length; i++) {
      const span = window.spans[i];
      const doc = spans[window.spanIds[i]];
      // Each engine span maps back inside its document span.
      for (let p = span.start; p < span.end; p++) assert.ok(window.positions[p] >= doc.start && window.positions[p] < doc.end);
    }
    // Positions after the prefix are one contiguous chunk of the document.
    for (let p = window.prefixLength + 1; p < window.positions.length; p++) assert.equal(window.positions[p], window.positions[p - 1] + 1);
  }
  assert.ok(owners.every((count) => count === 1), 'each token owned by exactly one window');
  const last = windows[windows.length - 1];
  assert.deepEqual(last.positions.slice(0, 12), Array.from({ length: 12 }, (_, i) => i), 'the last window starts with the first import');
  assert.ok(last.spanIds.includes(0) && last.spanIds.includes(3));
});

test('merged summaries put each owned query in its document position with document span ids', () => {
  const spans: TokenSpan[] = [{ start: 0, end: 4 }, { start: 60, end: 64 }];
  const windows = planWindows({ numTokens: 100, context: 64, spans, prefixCandidates: [0] });
  assert.ok(windows.length > 1);
  // A fake engine: query position p puts mass p/1000 on each span it sees, and its top-1 is position 0.
  const summaries: AttentionSummary[] = windows.map((w) => {
    const wn = w.positions.length;
    const wS = w.spans.length;
    const spanMass = new Float32Array(wn * wS);
    const topIndices = new Int32Array(wn);
    for (let q = 0; q < wn; q++) for (let s = 0; s < wS; s++) spanMass[q * wS + s] = w.positions[q] / 1000 + w.spanIds[s];
    return { numTokens: wn, layers: [0], numHeads: 1, topK: 1, topIndices, topWeights: new Float32Array(wn).fill(1), numSpans: wS, spanMass, spanMassMean: spanMass.slice(), spanMassMax: spanMass.slice() };
  });
  const merged = mergeWindowSummaries(windows, summaries, 100, 2);
  assert.equal(merged.numTokens, 100);
  assert.ok(Math.abs(merged.spanMass[90 * 2 + 0] - 0.09) < 1e-6, 'query 90 sees the import (span 0) through its window prefix');
  assert.ok(Math.abs(merged.spanMass[80 * 2 + 1] - 1.08) < 1e-6, 'span 1 keeps its document id');
  assert.equal(merged.spanMass[90 * 2 + 1], 0, 'a span neither in the prefix nor in the window has no mass');
  const ownerOf90 = windows.find((w) => 90 >= w.ownedStart && 90 < w.ownedEnd)!;
  assert.equal(merged.topIndices[90], ownerOf90.positions[0], 'top-k indices are document positions');
});

test('the merge in slices (the editor) gives the same summary as at once (the CLI); windows not run yet leave their rows empty', async () => {
  const spans: TokenSpan[] = [{ start: 0, end: 4 }, { start: 300, end: 304 }];
  const windows = planWindows({ numTokens: 1000, context: 128, spans, prefixCandidates: [0] });
  assert.ok(windows.length > 4);
  const L = 2;
  const H = 3;
  const k = 2;
  const summaries: AttentionSummary[] = windows.map((w) => {
    const wn = w.positions.length;
    const wS = w.spans.length;
    const spanMass = new Float32Array(L * H * wn * wS).map((_, i) => (i % 97) / 97);
    const topIndices = new Int32Array(L * H * wn * k).map((_, i) => (i % 3 === 0 ? -1 : Math.floor(i / k) % wn));
    return { numTokens: wn, layers: [0, 1], numHeads: H, topK: k, topIndices, topWeights: new Float32Array(L * H * wn * k).map((_, i) => i / 1e4), numSpans: wS, spanMass, spanMassMean: new Float32Array(L * wn * wS).fill(0.25), spanMassMax: new Float32Array(L * wn * wS).fill(0.5) };
  });
  const atOnce = mergeWindowSummaries(windows, summaries, 1000, 2);
  // A slice of 0 ms yields after every window and layer: the most interleaving there can be.
  const sliced = await mergeWindowSummariesAsync(windows, summaries, 1000, 2, 0);
  for (const key of ['topIndices', 'topWeights', 'spanMass', 'spanMassMean', 'spanMassMax'] as const) assert.deepEqual(sliced[key], atOnce[key], key);
  const partial = await mergeWindowSummariesAsync(windows, summaries.map((s, i) => (i === 2 ? s : undefined)), 1000, 2);
  const owned = windows[2];
  for (let q = 0; q < 1000; q++) {
    const row = partial.topIndices.subarray(q * k, q * k + k);
    const inside = q >= owned.ownedStart && q < owned.ownedEnd;
    if (!inside) assert.ok(row.every((v) => v === -1), `row ${q} outside the window that ran is empty`);
    else assert.deepEqual(row, atOnce.topIndices.subarray(q * k, q * k + k), `row ${q} of the window that ran`);
  }
});

test('without the prefix (attentionLens.windowPrefix off) windows are plain overlapping slices of the file, fewer of them', () => {
  const n = 3000;
  const context = 1024;
  const spans: TokenSpan[] = [{ start: 0, end: 12 }, { start: 400, end: 410 }];
  const withPrefix = planWindows({ numTokens: n, context, spans, prefixCandidates: [0, 1] });
  const plain = planWindows({ numTokens: n, context, spans, prefixCandidates: [], prefixShare: 0 });
  assert.ok(plain.length < withPrefix.length, `${plain.length} plain windows vs ${withPrefix.length} with the prefix`);
  const owners = new Array<number>(n).fill(0);
  for (const window of plain) {
    assert.equal(window.prefixLength, 0);
    assert.ok(window.positions.length <= context);
    for (let p = 1; p < window.positions.length; p++) assert.equal(window.positions[p], window.positions[p - 1] + 1, 'the file as it is');
    for (let p = window.ownedStart; p < window.ownedEnd; p++) owners[p]++;
  }
  assert.ok(owners.every((c) => c === 1), 'every token owned once');
});
