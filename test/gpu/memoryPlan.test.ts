/**
 * The WebGPU engine's memory plan (engine/webgpu/memoryPlan.ts) on real model shapes: long windows
 * split so that no buffer exceeds the smallest adapters' 128 MiB binding, the peak bytes grow with
 * n, and a window over a budget is answered with the longest one that fits. Pure: needs no adapter.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { ModelSpec } from '../../engine/model/modelTypes';
import { WindowTooLongError, bindingLimitTokens, longestWindow, memoryPlan, rowBlocks } from '../../engine/webgpu/memoryPlan';

const MiB = 1024 * 1024;

/** Qwen2.5-Coder-7B's shape (its config.json): [n, 18944] MLP rows and 28 query heads on 4 KV heads. */
const QWEN_7B: ModelSpec = {
  architecture: 'Qwen2ForCausalLM',
  family: 'qwen2',
  vocabSize: 152064,
  hiddenSize: 3584,
  numLayers: 28,
  numHeads: 28,
  numKvHeads: 4,
  headDim: 128,
  intermediateSize: 18944,
  maxPositions: 32768,
  norm: 'rms',
  normEps: 1e-6,
  positional: 'rope',
  ropeTheta: 1e6,
  mlp: 'swiglu',
  qkvBias: true,
  outBias: false,
  mlpBias: false,
  tieWordEmbeddings: false,
} as ModelSpec;

const REQUEST = { maxBindingBytes: 128 * MiB, topK: 8, numSpans: 16, weightBytesPerValue: 2 as const };

test('a 32k-token window of a 7B model fits 128 MiB bindings: MLP rows, Q and the residual in row blocks, keys by KV head', () => {
  const n = 32768;
  const plan = memoryPlan(QWEN_7B, n, REQUEST);
  // Unsplit, [n, 18944] f32 MLP rows alone would take 2.3 GiB in one binding.
  assert.ok(n * QWEN_7B.intermediateSize * 4 > 16 * 128 * MiB);
  assert.ok(plan.largestBindingBytes <= 128 * MiB, `largest buffer ${plan.largestBindingBytes}`);
  for (const buffer of plan.buffers) assert.ok(buffer.bytes <= 128 * MiB, `${buffer.label}: ${buffer.bytes}`);
  assert.ok(plan.layout.rowsPerBlock < n && plan.layout.rowsPerBlock >= 1);
  // One KV head of 32768 keys is 16 MiB: all four fit one binding.
  assert.equal(plan.layout.kvGroups, 1);
  const stateBytes = QWEN_7B.numLayers * n * (28 * 128 + 2 * 4 * 128) * 4 + n * QWEN_7B.hiddenSize * 4;
  assert.ok(plan.stateBytes >= stateBytes && plan.stateBytes < stateBytes * 1.001, `state ${plan.stateBytes} vs ${stateBytes}`);
  assert.ok(plan.peakBytes > plan.stateBytes + plan.weightBytes);
  console.log(`qwen 7B n=${n}: ${plan.layout.rowsPerBlock} rows per block, peak ${(plan.peakBytes / 2 ** 30).toFixed(2)} GiB (weights ${(plan.weightBytes / 2 ** 30).toFixed(2)} GiB)`);
});

test('keys and values split into groups of KV heads once all heads of n keys exceed a binding', () => {
  const plan = memoryPlan(QWEN_7B, 32768, { ...REQUEST, maxBindingBytes: 40 * MiB });
  // 16 MiB per KV head: two heads per 40 MiB binding, so two groups.
  assert.equal(plan.layout.kvHeadsPerGroup, 2);
  assert.equal(plan.layout.kvGroups, 2);
  assert.ok(plan.largestBindingBytes <= 40 * MiB);
});

test('a window over the binding limit is refused with the longest one that fits', () => {
  const options = { ...REQUEST, maxBindingBytes: 4 * MiB };
  const limit = bindingLimitTokens(QWEN_7B, options);
  // One KV head of n keys (n * 128 * 4 bytes) must fit: 8192 keys in 4 MiB.
  assert.equal(limit, 8192);
  assert.doesNotThrow(() => memoryPlan(QWEN_7B, limit, options));
  assert.throws(() => memoryPlan(QWEN_7B, limit + 1, options), (error: unknown) => error instanceof WindowTooLongError && error.longestWindow === limit && /longest window that fits is 8192 tokens/.test(error.message));
});

test('longestWindow is the largest n whose planned peak fits the budget', () => {
  const budget = 24 * 2 ** 30;
  const n = longestWindow(QWEN_7B, budget, REQUEST);
  assert.ok(n > 0 && n < QWEN_7B.maxPositions, `longest ${n}`);
  assert.ok(memoryPlan(QWEN_7B, n, REQUEST).peakBytes <= budget);
  assert.ok(memoryPlan(QWEN_7B, n + 1, REQUEST).peakBytes > budget);
  assert.equal(longestWindow(QWEN_7B, 1, REQUEST), 0, 'the weights alone exceed one byte');
  console.log(`qwen 7B (f16 weights) in 24 GiB: at most ${n} tokens`);
});

test('row blocks: reused rows in blocks from 0, computed rows in blocks from the first changed token', () => {
  assert.deepEqual(rowBlocks(10, 0, 4), [{ rowStart: 0, rows: 4 }, { rowStart: 4, rows: 4 }, { rowStart: 8, rows: 2 }]);
  assert.deepEqual(rowBlocks(10, 5, 4), [{ rowStart: 0, rows: 4 }, { rowStart: 4, rows: 1 }, { rowStart: 5, rows: 4 }, { rowStart: 9, rows: 1 }]);
});
