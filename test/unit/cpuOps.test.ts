import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as ops from '../../engine/reference/ops';
import { ropeCosSin } from '../../engine/model/rope';
import { float16BitsToFloat32, float32ToFloat16Bits, toFloat16Bits, toFloat32 } from '../../engine/model/tensorData';
import type { HostTensor, TensorDType } from '../../engine/model/modelTypes';

function tensor(dtype: TensorDType, words: Uint16Array | Float32Array): HostTensor {
  return { name: 't', dtype, shape: [words.length], bytes: new Uint8Array(words.buffer) };
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-6): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

test('f16 decoding covers normals, subnormals, zeros, infinities and NaN', () => {
  assert.equal(float16BitsToFloat32(0x3c00), 1);
  assert.equal(float16BitsToFloat32(0xc000), -2);
  assert.equal(float16BitsToFloat32(0x7bff), 65504);
  assert.equal(float16BitsToFloat32(0x0001), 2 ** -24);
  assert.equal(float16BitsToFloat32(0x03ff), 1023 * 2 ** -24);
  assert.equal(float16BitsToFloat32(0x0400), 2 ** -14);
  assert.ok(Object.is(float16BitsToFloat32(0x8000), -0));
  assert.equal(float16BitsToFloat32(0x7c00), Infinity);
  assert.equal(float16BitsToFloat32(0xfc00), -Infinity);
  assert.ok(Number.isNaN(float16BitsToFloat32(0x7e00)));
});

test('f32 to f16 rounds to nearest even and saturates to infinity', () => {
  assert.equal(float32ToFloat16Bits(1), 0x3c00);
  assert.equal(float32ToFloat16Bits(65504), 0x7bff);
  assert.equal(float32ToFloat16Bits(65520), 0x7c00); // halfway to the next power: rounds up to infinity
  assert.equal(float32ToFloat16Bits(65519), 0x7bff);
  assert.equal(float32ToFloat16Bits(1e6), 0x7c00);
  assert.equal(float32ToFloat16Bits(-Infinity), 0xfc00);
  assert.equal(float32ToFloat16Bits(NaN) & 0x7c00, 0x7c00);
  assert.notEqual(float32ToFloat16Bits(NaN) & 0x3ff, 0);
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
  assert.equal(float32ToFloat16Bits(1 + 2 ** -11), 0x3c00);
  // 1 + 3 * 2^-11 lies halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
  assert.equal(float32ToFloat16Bits(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(float32ToFloat16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01);
  // Subnormals: 2^-24 is the smallest; half of it is a tie that goes to zero, a bit more rounds up.
  assert.equal(float32ToFloat16Bits(2 ** -24), 0x0001);
  assert.equal(float32ToFloat16Bits(2 ** -25), 0x0000);
  assert.equal(float32ToFloat16Bits(2 ** -25 * 1.0001), 0x0001);
  assert.equal(float32ToFloat16Bits(3 * 2 ** -25), 0x0002);
  assert.equal(float32ToFloat16Bits(-(2 ** -30)), 0x8000);
  // Every finite half survives the round trip.
  for (let bits = 0; bits < 0x10000; bits++) {
    if ((bits & 0x7c00) === 0x7c00) continue;
    assert.equal(float32ToFloat16Bits(float16BitsToFloat32(bits)), bits);
  }
});

test('toFloat32 widens F16 and BF16 tensors; toFloat16Bits narrows F32 and BF16', () => {
  assert.deepEqual([...toFloat32(tensor('F16', new Uint16Array([0x3c00, 0x0001, 0xfc00])))], [1, 2 ** -24, -Infinity]);
  assert.deepEqual([...toFloat32(tensor('BF16', new Uint16Array([0x3f80, 0xc040, 0x0001])))], [1, -3, new Float32Array(new Uint32Array([0x10000]).buffer)[0]]);
  assert.deepEqual([...toFloat16Bits(tensor('F32', new Float32Array([1, -2, 0.1])))], [0x3c00, 0xc000, 0x2e66]);
  assert.deepEqual([...toFloat16Bits(tensor('BF16', new Uint16Array([0x3f80, 0xc040])))], [0x3c00, 0xc200]);
  assert.throws(() => toFloat32({ name: 'w', dtype: 'F32', shape: [3], bytes: new Uint8Array(8) }), /tensor w has 8 bytes but its shape \[3\] and dtype F32 need 12/);
});

test('linear computes x W^T + b with W in [out, in] layout', () => {
  const x = new Float32Array([1, 2, 3, 4, 5, 6]); // [2, 3]
  const w = new Float32Array([1, 0, 0, 0, 1, 1]); // [2, 3]
  close(ops.linear(x, w, new Float32Array([10, 20]), 2, 3, 2), [11, 25, 14, 31]);
  close(ops.linear(x, w, undefined, 2, 3, 2), [1, 5, 4, 11]);
});

test('rmsNorm and layerNorm normalise each row', () => {
  close(ops.rmsNorm(new Float32Array([3, 4, 0, 0]), new Float32Array([1, 2]), 2, 2, 1e-6), [3 / Math.sqrt(12.5 + 1e-6), 8 / Math.sqrt(12.5 + 1e-6), 0, 0]);
  const y = ops.layerNorm(new Float32Array([1, 3, 10, 10]), new Float32Array([1, 1]), new Float32Array([0, 0.5]), 2, 2, 0);
  close(y.subarray(0, 2), [-1, 1.5]);
  close(ops.layerNorm(new Float32Array([1, 3]), new Float32Array([2, 2]), new Float32Array([0, 0]), 1, 2, 1), [-2 / Math.sqrt(2), 2 / Math.sqrt(2)], 1e-6);
});

test('applyRope rotates pairs (i, i + d/2) by position * theta^(-2i/d)', () => {
  const headDim = 4;
  const spec = { headDim, ropeTheta: 100 };
  const x = new Float32Array([1, 2, 3, 4, 1, 2, 3, 4]); // [n=2, heads=1, 4]
  ops.applyRope(x, 2, 1, headDim, ropeCosSin(spec, 0, 2, 2));
  close(x.subarray(0, 4), [1, 2, 3, 4]); // position 0: no rotation
  const angles = [1, 1 / 10]; // theta^(-0/4), theta^(-2/4) with theta 100
  const expected = [
    1 * Math.cos(angles[0]) - 3 * Math.sin(angles[0]),
    2 * Math.cos(angles[1]) - 4 * Math.sin(angles[1]),
    3 * Math.cos(angles[0]) + 1 * Math.sin(angles[0]),
    4 * Math.cos(angles[1]) + 2 * Math.sin(angles[1]),
  ];
  close(x.subarray(4, 8), expected);
  const shifted = new Float32Array([1, 2, 3, 4]);
  ops.applyRope(shifted, 1, 1, headDim, ropeCosSin(spec, 1, 1, 2));
  close(shifted, expected);
});

test('causal attention: rows sum to 1, zero beyond the diagonal, GQA head mapping', () => {
  const n = 3, H = 4, Hkv = 2, d = 2;
  const q = Float32Array.from({ length: n * H * d }, (_, i) => Math.sin(i));
  const k = Float32Array.from({ length: n * Hkv * d }, (_, i) => Math.cos(i * 1.3));
  const probs = ops.causalAttentionProbs(q, k, n, H, Hkv, d);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < n; i++) {
      const row = probs.subarray((h * n + i) * n, (h * n + i + 1) * n);
      close([row.slice(0, i + 1).reduce((a, b) => a + b, 0)], [1]);
      for (let j = i + 1; j < n; j++) assert.equal(row[j], 0);
    }
  }
  // Head 3 reads KV head 1: row 1 is softmax over (q.k_0, q.k_1) / sqrt(2).
  const dot = (j: number) => (q[(1 * H + 3) * d] * k[(j * Hkv + 1) * d] + q[(1 * H + 3) * d + 1] * k[(j * Hkv + 1) * d + 1]) / Math.SQRT2;
  const e0 = Math.exp(dot(0)), e1 = Math.exp(dot(1));
  close(probs.subarray((3 * n + 1) * n, (3 * n + 1) * n + 2), [e0 / (e0 + e1), e1 / (e0 + e1)]);

  // The single-row variant (attentionRow) gives exactly the same numbers.
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < n; i++) {
      assert.deepEqual([...ops.causalAttentionRow(q, k, n, H, Hkv, d, h, i)], [...probs.subarray((h * n + i) * n, (h * n + i) * n + i + 1)]);
    }
  }
  assert.throws(() => ops.causalAttentionRow(q, k, n, H, Hkv, d, 0, n), /query 3 is outside the 3 positions/);

  const v = Float32Array.from({ length: n * Hkv * d }, (_, i) => i);
  const out = ops.attentionOutput(probs, v, n, H, Hkv, d);
  // Query 0 of head 2 (KV head 1) sees only v[0, 1, :] = [2, 3].
  close(out.subarray((0 * H + 2) * d, (0 * H + 2) * d + 2), [2, 3]);
});

test('activations and elementwise ops', () => {
  close(ops.silu(new Float32Array([0, 1, -1])), [0, 1 / (1 + Math.exp(-1)), -1 / (1 + Math.exp(1))]);
  close(ops.geluTanh(new Float32Array([0, 1, -3])), [0, 0.8411920071, -0.0036373920], 1e-6);
  close(ops.swiglu(new Float32Array([1, 0]), new Float32Array([2, 5])), [2 / (1 + Math.exp(-1)), 0]);
  close(ops.add(new Float32Array([1, 2]), new Float32Array([3, -2])), [4, 0]);
  close(ops.embed([2, 0], new Float32Array([1, 1, 2, 2, 3, 3]), 2), [3, 3, 1, 1]);
  assert.throws(() => ops.embed([3], new Float32Array(6), 2), /token id 3 at position 0 is outside the vocabulary \(0\.\.2\)/);
});

test('topKRow keeps the best first, lower index first on ties, pads with -1/0', () => {
  const row = new Float32Array([0.1, 0.3, 0.3, 0.2, 0.1, 9]);
  const top = ops.topKRow(row, 5, 4); // the 9 at index 5 lies beyond `length`
  assert.deepEqual([...top.indices], [1, 2, 3, 0]);
  close(top.weights, [0.3, 0.3, 0.2, 0.1]);
  const short = ops.topKRow(new Float32Array([0.4, 0.6]), 2, 4);
  assert.deepEqual([...short.indices], [1, 0, -1, -1]);
  assert.deepEqual([...short.weights], [new Float32Array([0.6])[0], new Float32Array([0.4])[0], 0, 0]);
  assert.deepEqual([...ops.topKRow(new Float32Array([0.25, 0.25, 0.25, 0.25]), 4, 2).indices], [0, 1]);
});

test('spanMassRow sums only positions the query can see', () => {
  const row = new Float32Array([0.1, 0.2, 0.3, 0.4, 0]);
  close(ops.spanMassRow(row, 3, [{ start: 0, end: 2 }, { start: 1, end: 5 }, { start: 2, end: 3 }]), [0.3, 0.9, 0.3]);
  close(ops.spanMassRow(row, 1, [{ start: 1, end: 4 }, { start: 3, end: 4 }]), [0.2, 0]);
});

test('summarizeAttention lays out top-k, span mass and its head mean and max', () => {
  const n = 2, H = 2;
  // Layer 5's probabilities, [H, n, n]; row 0 sees only position 0.
  const probs = new Float32Array([1, 0, 0.25, 0.75, 1, 0, 0.5, 0.5]);
  const summary = ops.summarizeAttention([probs], [5], n, H, { tokenIds: [1, 2], spans: [{ start: 1, end: 2 }], topK: 2 });
  assert.deepEqual(summary.layers, [5]);
  assert.equal(summary.numTokens, 2);
  assert.equal(summary.numSpans, 1);
  assert.deepEqual([...summary.topIndices], [0, -1, 1, 0, 0, -1, 0, 1]);
  close(summary.topWeights, [1, 0, 0.75, 0.25, 1, 0, 0.5, 0.5]);
  close(summary.spanMass, [0, 0.75, 0, 0.5]);
  close(summary.spanMassMean, [0, 0.625]);
  close(summary.spanMassMax, [0, 0.75]);
});
