/**
 * Every WGSL kernel against its plain-TypeScript reference op (engine/reference/ops.ts) on random
 * shapes, including sizes that are not multiples of the tile or workgroup sizes, for both kernel
 * families (register-blocked and workgroup-tiled) where an op has both. Prints the max difference.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { requestNodeDevice } from '../../engine/hosts/nodeWebGpu';
import { compareNextToken } from '../../engine/causal';
import * as ops from '../../engine/reference/ops';
import { ropeCosSin } from '../../engine/model/rope';
import { float32ToFloat16Bits, float16BitsToFloat32 } from '../../engine/model/tensorData';
import { KernelLibrary, WORKGROUP_SIZE, dispatch, grid1d, type KernelConstants, type KernelName } from '../../engine/webgpu/kernels';
import { KERNEL_VARIANTS, maxAbsDiff, randomArray, seededRandom, withAdapter } from './gpuTestSupport';

/** Uploads arrays, runs single kernels and reads results back. */
class Harness {
  readonly library: KernelLibrary;
  private readonly buffers: GPUBuffer[] = [];

  constructor(readonly device: GPUDevice) {
    this.library = new KernelLibrary(device);
  }

  upload(data: Float32Array | Uint32Array | Int32Array | Uint16Array, label = 'input'): GPUBuffer {
    const bytes = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    const buffer = this.device.createBuffer({ label, size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
    this.buffers.push(buffer);
    return buffer;
  }

  output(count: number, label = 'output'): GPUBuffer {
    return this.upload(new Float32Array(count), label);
  }

  async run(name: KernelName, constants: KernelConstants, buffers: GPUBuffer[], groups: [number, number?, number?]): Promise<void> {
    const pipeline = await this.library.pipeline(name, constants);
    const encoder = this.device.createCommandEncoder({ label: `test ${name}` });
    const pass = encoder.beginComputePass({ label: `test ${name}` });
    dispatch(this.device, pass, pipeline, buffers, groups);
    pass.end();
    this.device.pushErrorScope('validation');
    this.device.queue.submit([encoder.finish()]);
    const error = await this.device.popErrorScope();
    if (error) throw new Error(`${name}: ${error.message}`);
  }

  async read(buffer: GPUBuffer, count: number): Promise<Float32Array> {
    const staging = this.device.createBuffer({ label: 'test staging', size: Math.max(16, count * 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const encoder = this.device.createCommandEncoder({ label: 'test readback' });
    encoder.copyBufferToBuffer(buffer, 0, staging, 0, count * 4);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const values = new Float32Array(staging.getMappedRange().slice(0, count * 4));
    staging.destroy();
    return values;
  }

  async readInt(buffer: GPUBuffer, count: number): Promise<Int32Array> {
    return new Int32Array((await this.read(buffer, count)).buffer);
  }

  dispose(): void {
    this.buffers.forEach((buffer) => buffer.destroy());
    this.library.dispose();
    this.device.destroy();
  }
}

async function withHarness(t: import('node:test').TestContext, body: (h: Harness) => Promise<void>): Promise<void> {
  await withAdapter(t, async () => {
    const { device } = await requestNodeDevice();
    const harness = new Harness(device);
    try {
      await body(harness);
    } finally {
      harness.dispose();
    }
  });
}

const wg = { WORKGROUP_SIZE };
const TOLERANCE = 1e-4;

function report(name: string, diff: number, tolerance = TOLERANCE): void {
  console.log(`${name}: max |diff| ${diff.toExponential(2)}`);
  assert.ok(diff <= tolerance, `${name}: max difference ${diff} exceeds ${tolerance}`);
}

/** f16 bits of `values`, and the values they round to. */
function toHalves(values: Float32Array): { bits: Uint16Array; rounded: Float32Array } {
  const bits = new Uint16Array(values.length + (values.length % 2));
  const rounded = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    bits[i] = float32ToFloat16Bits(values[i]);
    rounded[i] = float16BitsToFloat32(bits[i]);
  }
  return { bits, rounded };
}

const LINEAR_SHAPES = [
  { n: 5, inDim: 37, outDim: 70 },
  { n: 67, inDim: 64, outDim: 130 },
  { n: 1, inDim: 96, outDim: 300 },
];

for (const variant of KERNEL_VARIANTS) {
  for (const f16 of [false, true]) {
    test(`linear_${variant} (${f16 ? 'f16' : 'f32'} weights, split into two row chunks) matches ops.linear`, async (t) => {
      await withHarness(t, async (h) => {
        const random = seededRandom(7);
        let worst = 0;
        for (const { n, inDim, outDim } of LINEAR_SHAPES) {
          for (const withBias of [false, true]) {
            const x = randomArray(random, n * inDim);
            let w = randomArray(random, outDim * inDim, 0.5);
            const bias = withBias ? randomArray(random, outDim) : undefined;
            const halves = f16 ? toHalves(w) : undefined;
            if (halves) w = halves.rounded;
            const expected = ops.linear(x, w, bias, n, inDim, outDim);
            const xBuffer = h.upload(x);
            const y = h.output(n * outDim);
            // Two chunks of rows exercise the col_start offset that split weights use.
            const split = Math.ceil(outDim / 2);
            for (const [start, count] of [[0, split], [split, outDim - split]]) {
              const part = halves
                ? h.upload(halves.bits.slice(start * inDim, (start + count) * inDim))
                : h.upload(w.slice(start * inDim, (start + count) * inDim));
              const params = h.library.uniform([n, inDim, outDim, start, count, withBias ? 1 : 0]);
              const constants = variant === 'tiled' ? { WEIGHT_F16: f16 ? 1 : 0 } : { ...wg, WEIGHT_F16: f16 ? 1 : 0 };
              const groups: [number, number] =
                variant === 'tiled' ? [Math.ceil(count / 64), Math.ceil(n / 64)] : [Math.ceil(count / 4 / WORKGROUP_SIZE), Math.ceil(n / 4)];
              await h.run(`linear_${variant}`, constants, [params, xBuffer, part, bias ? h.upload(bias) : h.output(4), y], groups);
            }
            worst = Math.max(worst, maxAbsDiff(await h.read(y, n * outDim), expected));
          }
        }
        report(`linear_${variant} ${f16 ? 'f16' : 'f32'}`, worst);
      });
    });
  }
}

test('rmsnorm and layernorm match ops.rmsNorm and ops.layerNorm', async (t) => {
  await withHarness(t, async (h) => {
    const random = seededRandom(11);
    for (const [n, d] of [[3, 64], [70, 37]]) {
      const x = randomArray(random, n * d, 3);
      const weight = randomArray(random, d);
      const bias = randomArray(random, d);
      const out = h.output(n * d);
      await h.run('rmsnorm', wg, [h.library.uniform([n, d], [1e-5]), h.upload(x), h.upload(weight), out], [Math.ceil(n / WORKGROUP_SIZE)]);
      report(`rmsnorm n=${n} d=${d}`, maxAbsDiff(await h.read(out, n * d), ops.rmsNorm(x, weight, n, d, 1e-5)));
      await h.run('layernorm', wg, [h.library.uniform([n, d], [1e-5]), h.upload(x), h.upload(weight), h.upload(bias), out], [Math.ceil(n / WORKGROUP_SIZE)]);
      report(`layernorm n=${n} d=${d}`, maxAbsDiff(await h.read(out, n * d), ops.layerNorm(x, weight, bias, n, d, 1e-5)));
    }
  });
});

test('softcap caps logits in place like ops.softcap (Gemma 2)', async (t) => {
  await withHarness(t, async (h) => {
    const random = seededRandom(14);
    const x = randomArray(random, 1000, 40);
    const buffer = h.upload(x);
    await h.run('softcap', wg, [h.library.uniform([x.length], [30]), buffer], grid1d(x.length));
    report('softcap', maxAbsDiff(await h.read(buffer, x.length), ops.softcap(x.slice(), 30)), 1e-4);
  });
});

test('head_rmsnorm normalises each head in place like ops.rmsNorm over head_dim (Qwen3 q/k norm)', async (t) => {
  await withHarness(t, async (h) => {
    const random = seededRandom(12);
    for (const [rows, heads, headDim] of [[5, 4, 32], [67, 3, 17]]) {
      const x = randomArray(random, rows * heads * headDim, 3);
      const weight = randomArray(random, headDim);
      const buffer = h.upload(x);
      await h.run('head_rmsnorm', wg, [h.library.uniform([rows * heads, headDim], [1e-6]), buffer, h.upload(weight)], grid1d(rows * heads));
      report(`head_rmsnorm rows=${rows} heads=${heads} head_dim=${headDim}`, maxAbsDiff(await h.read(buffer, x.length), ops.rmsNorm(x, weight, rows * heads, headDim, 1e-6)));
    }
  });
});

for (const rotary of [16, 10]) test(`rope rotates like ops.applyRope (rotate-half pairing${rotary < 16 ? `, partial: ${rotary} of 16 dimensions` : ''})`, async (t) => {
  await withHarness(t, async (h) => {
    const random = seededRandom(13);
    const n = 45;
    const heads = 3;
    const headDim = 16;
    const theta = 10000;
    const spec = { headDim, ropeTheta: theta, rotaryDim: rotary };
    const x = randomArray(random, n * heads * headDim);
    const expected = x.slice();
    const cosSin = ropeCosSin(spec, 0, n, n);
    ops.applyRope(expected, n, heads, headDim, cosSin, rotary);
    const half = rotary / 2;
    const table = new Float32Array(n * half * 2);
    for (let p = 0; p < n; p++) {
      for (let i = 0; i < half; i++) {
        const angle = p / Math.pow(theta, (2 * i) / rotary);
        table[(p * half + i) * 2] = Math.cos(angle);
        table[(p * half + i) * 2 + 1] = Math.sin(angle);
      }
    }
    const buffer = h.upload(x);
    await h.run('rope', wg, [h.library.uniform([n, heads, headDim, rotary]), buffer, h.upload(table)], grid1d(n * heads * half));
    const got = await h.read(buffer, x.length);
    report(`rope (rotary ${rotary} of ${headDim})`, maxAbsDiff(got, expected), 1e-4);
    if (rotary < headDim) {
      // The dimensions past rotary_dim pass through unchanged.
      for (let r = 0; r < n * heads; r++) for (let c = rotary; c < headDim; c++) assert.equal(got[r * headDim + c], x[r * headDim + c]);
    }
  });
});

test('embedding gathers rows across table chunks, f32 and f16', async (t) => {
  await withHarness(t, async (h) => {
    const random = seededRandom(17);
    const vocab = 50;
    const d = 24;
    const table = randomArray(random, vocab * d);
    const ids = Uint32Array.from({ length: 33 }, () => Math.floor(random() * vocab));
    for (const f16 of [false, true]) {
      const halves = toHalves(table);
      const values = f16 ? halves.rounded : table;
      const expected = ops.embed(ids, values, d);
      const out = h.output(ids.length * d);
      const idBuffer = h.upload(ids);
      for (const [start, count] of [[0, 20], [20, 30]]) {
        const part = f16 ? h.upload(halves.bits.slice(start * d, (start + count) * d)) : h.upload(table.slice(start * d, (start + count) * d));
        await h.run('embedding', { ...wg, WEIGHT_F16: f16 ? 1 : 0 }, [h.library.uniform([ids.length, d, start, count]), idBuffer, part, out], grid1d(ids.length * d));
      }
      report(`embedding ${f16 ? 'f16' : 'f32'}`, maxAbsDiff(await h.read(out, ids.length * d), expected), 0);
    }
  });
});

test('add, silu_mul and gelu match ops.add, ops.swiglu and ops.geluTanh', async (t) => {
  await withHarness(t, async (h) => {
    const random = seededRandom(19);
    const count = 1000;
    const a = randomArray(random, count, 6);
    const b = randomArray(random, count, 6);
    const target = h.upload(a);
    await h.run('add', wg, [h.library.uniform([count]), target, h.upload(b)], grid1d(count));
    report('add', maxAbsDiff(await h.read(target, count), ops.add(a, b)), 0);
    const gate = h.upload(a);
    await h.run('silu_mul', wg, [h.library.uniform([count]), gate, h.upload(b)], grid1d(count));
    report('silu_mul', maxAbsDiff(await h.read(gate, count), ops.swiglu(a, b)));
    const wide = randomArray(random, count, 40);
    const x = h.upload(wide);
    await h.run('gelu', wg, [h.library.uniform([count]), x], grid1d(count));
    report('gelu', maxAbsDiff(await h.read(x, count), ops.geluTanh(wide)));
  });
});

for (const variant of KERNEL_VARIANTS) for (const [window, softcap] of [[0, 0], [7, 0], [0, 1.5]]) {
  test(`attention_scores_${variant} + attention_output + summaries match the CPU ops, in head/query blocks${window ? `, sliding window ${window}` : ''}${softcap ? `, scores soft-capped at ${softcap}` : ''}`, async (t) => {
    await withHarness(t, async (h) => {
      const random = seededRandom(23);
      const n = 37;
      const H = 4;
      const Hkv = 2;
      const d = 16;
      const q = randomArray(random, n * H * d, 2);
      const k = randomArray(random, n * Hkv * d, 2);
      const v = randomArray(random, n * Hkv * d);
      const expectedProbs = ops.causalAttentionProbs(q, k, n, H, Hkv, d, undefined, window, softcap);
      const expectedOut = ops.attentionOutput(expectedProbs, v, n, H, Hkv, d);
      const spans = [{ start: 0, end: 5 }, { start: 3, end: 30 }, { start: 36, end: 37 }];
      const topK = window ? 9 : 5; // wider than the window: the rows must pad with -1, never list an unseen key
      const request = { tokenIds: new Array(n).fill(0), spans, topK };
      const expectedSummary = ops.summarizeAttention([expectedProbs], [0], n, H, request, [window]);
      if (window) assert.equal(expectedSummary.topIndices[(0 * n + 30) * topK + window], -1, 'the reference pads past the window');

      const qBuffer = h.upload(q);
      const kBuffer = h.upload(k);
      const vBuffer = h.upload(v);
      const out = h.output(n * H * d);
      const topIndices = h.output(H * n * topK);
      const topWeights = h.output(H * n * topK);
      const spanBuffer = h.upload(Uint32Array.from(spans.flatMap((s) => [s.start, s.end])));
      const spanMass = h.output(H * n * spans.length);
      const spanMean = h.output(n * spans.length);
      const spanMax = h.output(n * spans.length);
      const probsAll = new Float32Array(H * n * n);
      // Blocks of 3 heads x 17 queries leave partial blocks in both directions.
      const headsPerBlock = 3;
      const queriesPerBlock = 17;
      const scoresName: KernelName = `attention_scores_${variant}`;
      const scoresConstants = variant === 'tiled' ? { HEAD_DIM: d } : wg;
      for (let head0 = 0; head0 < H; head0 += headsPerBlock) {
        const headCount = Math.min(headsPerBlock, H - head0);
        for (let query0 = 0; query0 < n; query0 += queriesPerBlock) {
          const queryCount = Math.min(queriesPerBlock, n - query0);
          const probs = h.output(headCount * queryCount * n);
          const block = [n, head0, headCount, query0, queryCount];
          const scoresParams = h.library.uniform([...block, H, Hkv, d, 0, 0, Hkv, window], [1 / Math.sqrt(d), softcap]);
          const groups: [number, number] = variant === 'tiled' ? [Math.ceil(queryCount / 16), headCount] : grid1d(headCount * queryCount);
          await h.run(scoresName, scoresConstants, [scoresParams, qBuffer, kBuffer, probs], groups);
          await h.run('attention_output', wg, [h.library.uniform([...block, H, Hkv, d, 0, 0, Hkv]), probs, vBuffer, out], grid1d(headCount * queryCount * d));
          await h.run('topk', { ...wg, TOP_K: topK }, [h.library.uniform([...block, 0, n, window]), probs, topIndices, topWeights], grid1d(headCount * queryCount));
          await h.run('span_mass', wg, [h.library.uniform([...block, spans.length, 0, n]), probs, spanBuffer, spanMass], grid1d(headCount * queryCount * spans.length));
          const values = await h.read(probs, headCount * queryCount * n);
          for (let hh = 0; hh < headCount; hh++) {
            for (let qq = 0; qq < queryCount; qq++) {
              const query = query0 + qq;
              const source = (hh * queryCount + qq) * n;
              probsAll.set(values.subarray(source, source + query + 1), ((head0 + hh) * n + query) * n);
            }
          }
        }
      }
      await h.run('head_reduce', wg, [h.library.uniform([n, H, spans.length]), spanMass, spanMean, spanMax], grid1d(n * spans.length));
      report(`attention_scores_${variant} probabilities`, maxAbsDiff(probsAll, expectedProbs));
      report(`attention_output (after ${variant} scores)`, maxAbsDiff(await h.read(out, n * H * d), expectedOut));
      assert.deepEqual([...(await h.readInt(topIndices, H * n * topK))], [...expectedSummary.topIndices], 'top-k indices');
      report('topk weights', maxAbsDiff(await h.read(topWeights, H * n * topK), expectedSummary.topWeights));
      report('span_mass', maxAbsDiff(await h.read(spanMass, H * n * spans.length), expectedSummary.spanMass));
      report('head_reduce mean', maxAbsDiff(await h.read(spanMean, n * spans.length), expectedSummary.spanMassMean));
      report('head_reduce max', maxAbsDiff(await h.read(spanMax, n * spans.length), expectedSummary.spanMassMax));
    });
  });
}

test('topk keeps the lower position first among equal weights and pads short rows with -1', async (t) => {
  await withHarness(t, async (h) => {
    const n = 6;
    // One head, one block: rows of a uniform causal distribution are all ties.
    const probs = new Float32Array(n * n);
    for (let q = 0; q < n; q++) for (let j = 0; j <= q; j++) probs[q * n + j] = 1 / (q + 1);
    const topK = 3;
    const indices = h.output(n * topK);
    const weights = h.output(n * topK);
    await h.run('topk', { ...wg, TOP_K: topK }, [h.library.uniform([n, 0, 1, 0, n, 0, n, 0]), h.upload(probs), indices, weights], grid1d(n));
    assert.deepEqual([...(await h.readInt(indices, n * topK))], [0, -1, -1, 0, 1, -1, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
  });
});

for (const window of [0, 9]) test(`attention_scores_masked hides a span from the later queries like ops.causalAttentionProbs with a mask, in head/query blocks${window ? `, sliding window ${window}` : ''}`, async (t) => {
  await withHarness(t, async (h) => {
    const random = seededRandom(29);
    const n = 37;
    const H = 4;
    const Hkv = 2;
    const d = 16;
    const q = randomArray(random, n * H * d, 2);
    const k = randomArray(random, n * Hkv * d, 2);
    const v = randomArray(random, n * Hkv * d);
    // Queries from 20 on may not see keys 8..20; query 19 (inside the span) still sees everything.
    const mask = { queryStart: 20, start: 8, end: 20 };
    const expectedProbs = ops.causalAttentionProbs(q, k, n, H, Hkv, d, (query, key) => query >= mask.queryStart && key >= mask.start && key < mask.end, window);
    const expectedOut = ops.attentionOutput(expectedProbs, v, n, H, Hkv, d);
    const qBuffer = h.upload(q);
    const kBuffer = h.upload(k);
    const vBuffer = h.upload(v);
    const out = h.output(n * H * d);
    const probsAll = new Float32Array(H * n * n);
    const headsPerBlock = 3;
    const queriesPerBlock = 17;
    for (let head0 = 0; head0 < H; head0 += headsPerBlock) {
      const headCount = Math.min(headsPerBlock, H - head0);
      for (let query0 = 0; query0 < n; query0 += queriesPerBlock) {
        const queryCount = Math.min(queriesPerBlock, n - query0);
        const probs = h.output(headCount * queryCount * n);
        const block = [n, head0, headCount, query0, queryCount, H, Hkv, d];
        await h.run('attention_scores_masked', wg, [h.library.uniform([...block, mask.queryStart, mask.start, mask.end, 0, 0, Hkv, window], [1 / Math.sqrt(d), 0]), qBuffer, kBuffer, probs], grid1d(headCount * queryCount));
        await h.run('attention_output', wg, [h.library.uniform([...block, 0, 0, Hkv]), probs, vBuffer, out], grid1d(headCount * queryCount * d));
        const values = await h.read(probs, headCount * queryCount * n);
        for (let hh = 0; hh < headCount; hh++) {
          for (let qq = 0; qq < queryCount; qq++) {
            const query = query0 + qq;
            const source = (hh * queryCount + qq) * n;
            probsAll.set(values.subarray(source, source + query + 1), ((head0 + hh) * n + query) * n);
          }
        }
      }
    }
    assert.equal(probsAll[(0 * n + 30) * n + 10], 0, 'query 30 must not see key 10');
    report('attention_scores_masked probabilities', maxAbsDiff(probsAll, expectedProbs));
    report('attention_output (after masked scores)', maxAbsDiff(await h.read(out, n * H * d), expectedOut));
  });
});

test('attention_row_masked: knockout rows over cached keys plus their own match ops.attentionRowsWithOwnKeys, masked and not', async (t) => {
  await withHarness(t, async (h) => {
    const random = seededRandom(31);
    const n = 29;
    const H = 4;
    const Hkv = 2;
    const d = 16;
    const query = 23;
    const masks = [{ start: 0, end: 0 }, { start: 0, end: 5 }, { start: 10, end: 23 }, { start: 22, end: 23 }, { start: 0, end: 23 }];
    const R = masks.length;
    const qRows = randomArray(random, R * H * d, 2);
    const kCache = randomArray(random, n * Hkv * d, 2);
    const vCache = randomArray(random, n * Hkv * d);
    const kRows = randomArray(random, R * Hkv * d, 2);
    const vRows = randomArray(random, R * Hkv * d);
    const buffers = [h.upload(qRows), h.upload(kCache), h.upload(vCache), h.upload(kRows), h.upload(vRows), h.upload(Uint32Array.from(masks.flatMap((m) => [m.start, m.end])))];
    for (const [applyMask, window, softcap] of [[0, 0, 0], [1, 0, 0], [1, 11, 0], [1, 0, 1.5]]) {
      const expected = ops.attentionRowsWithOwnKeys(qRows, kCache, vCache, kRows, vRows, applyMask ? masks : undefined, query, H, Hkv, d, window, softcap);
      const out = h.output(R * H * d);
      await h.run('attention_row_masked', wg, [h.library.uniform([R, query, H, Hkv, d, applyMask, 0, H, 0, Hkv, window], [1 / Math.sqrt(d), softcap]), ...buffers, out], [Math.ceil((R * H) / WORKGROUP_SIZE)]);
      report(`attention_row_masked (apply_mask ${applyMask}, window ${window}, softcap ${softcap})`, maxAbsDiff(await h.read(out, R * H * d), expected));
    }
  });
});

for (const f16 of [false, true]) {
  test(`value_norms (${f16 ? 'f16' : 'f32'} W_O in two row chunks) and value_weighting match ops.valueNorms and ops.valueWeightedProbs`, async (t) => {
    await withHarness(t, async (h) => {
      const random = seededRandom(37);
      const n = 21;
      const H = 4;
      const Hkv = 2;
      const hd = 8;
      const d = 30;
      const v = randomArray(random, n * Hkv * hd);
      let oWeight = randomArray(random, d * H * hd, 0.5);
      const halves = f16 ? toHalves(oWeight) : undefined;
      if (halves) oWeight = halves.rounded;
      const q = randomArray(random, n * H * hd, 2);
      const k = randomArray(random, n * Hkv * hd, 2);
      const probs = ops.causalAttentionProbs(q, k, n, H, Hkv, hd);
      const expectedNorms = ops.valueNorms(v, oWeight, n, H, Hkv, hd, d);
      const expectedWeighted = ops.valueWeightedProbs(probs, expectedNorms, n, H);

      const vBuffer = h.upload(v);
      const normSquares = h.output(H * n);
      // Two row chunks of W_O (13 and 17 output rows): the second adds to the first's sums.
      const split = 13;
      const cols = H * hd;
      for (const [index, [rowStart, rowCount]] of [[0, split], [split, d - split]].entries()) {
        const part = halves
          ? halves.bits.subarray(rowStart * cols, (rowStart + rowCount) * cols)
          : oWeight.subarray(rowStart * cols, (rowStart + rowCount) * cols);
        await h.run('value_norms', { ...wg, WEIGHT_F16: f16 ? 1 : 0 }, [h.library.uniform([n, H, Hkv, hd, rowCount, index > 0 ? 1 : 0, 0, H, 0, Hkv]), vBuffer, h.upload(part), normSquares], grid1d(H * n));
      }
      const norms = (await h.read(normSquares, H * n)).map(Math.sqrt);
      report(`value_norms ${f16 ? 'f16' : 'f32'}`, maxAbsDiff(norms, expectedNorms));

      // Rescale in blocks of 3 heads x 8 queries, leaving partial blocks.
      const weighted = new Float32Array(H * n * n);
      for (let head0 = 0; head0 < H; head0 += 3) {
        const headCount = Math.min(3, H - head0);
        for (let query0 = 0; query0 < n; query0 += 8) {
          const queryCount = Math.min(8, n - query0);
          const block = new Float32Array(headCount * queryCount * n);
          for (let hh = 0; hh < headCount; hh++) {
            for (let qq = 0; qq < queryCount; qq++) block.set(probs.subarray(((head0 + hh) * n + query0 + qq) * n, ((head0 + hh) * n + query0 + qq + 1) * n), (hh * queryCount + qq) * n);
          }
          const blockBuffer = h.upload(block);
          await h.run('value_weighting', wg, [h.library.uniform([n, head0, headCount, query0, queryCount]), blockBuffer, normSquares], grid1d(headCount * queryCount));
          const values = await h.read(blockBuffer, block.length);
          for (let hh = 0; hh < headCount; hh++) {
            for (let qq = 0; qq < queryCount; qq++) weighted.set(values.subarray((hh * queryCount + qq) * n, (hh * queryCount + qq + 1) * n), ((head0 + hh) * n + query0 + qq) * n);
          }
        }
      }
      report('value_weighting', maxAbsDiff(weighted, expectedWeighted));
      assert.ok(maxAbsDiff(expectedWeighted, probs) > 1e-2, 'the test norms should change the rows');
    });
  });
}

test('add_row adds one row of the addend to every row, like ops.addRow', async (t) => {
  await withHarness(t, async (h) => {
    const random = seededRandom(41);
    const rows = 5;
    const width = 70;
    const target = randomArray(random, rows * width, 3);
    const addend = randomArray(random, 9 * width, 3);
    const offset = 6 * width;
    const buffer = h.upload(target);
    await h.run('add_row', wg, [h.library.uniform([rows, width, offset]), buffer, h.upload(addend)], grid1d(rows * width));
    report('add_row', maxAbsDiff(await h.read(buffer, rows * width), ops.addRow(target, addend, offset, rows, width)), 0);
  });
});

test('copy_block scatters a column window of one matrix into rows of another, like ops.copyBlock', async (t) => {
  await withHarness(t, async (h) => {
    const random = seededRandom(47);
    // Rows 2..6 of a [7, 12] source, columns 4..9, into rows 3..7 of a [10, 6] target.
    const src = randomArray(random, 7 * 12, 3);
    const dst = randomArray(random, 10 * 6, 3);
    const args = [5, 6, 2 * 12 + 4, 12, 3 * 6, 6] as const;
    const buffer = h.upload(dst);
    await h.run('copy_block', wg, [h.library.uniform([...args]), h.upload(src), buffer], grid1d(5 * 6));
    const expected = ops.copyBlock(src, dst, ...args);
    assert.ok(maxAbsDiff(expected, dst) > 0, 'the copy should change the target');
    report('copy_block', maxAbsDiff(await h.read(buffer, dst.length), expected), 0);
  });
});

for (const variant of KERNEL_VARIANTS) {
  test(`attention_scores_${variant} + attention_output with Q in row blocks and K, V in KV-head groups match the CPU ops`, async (t) => {
    await withHarness(t, async (h) => {
      const random = seededRandom(53);
      const n = 23;
      const H = 6;
      const Hkv = 3;
      const d = 8;
      const q = randomArray(random, n * H * d, 2);
      const k = randomArray(random, n * Hkv * d, 2);
      const v = randomArray(random, n * Hkv * d);
      const expectedProbs = ops.causalAttentionProbs(q, k, n, H, Hkv, d);
      const expectedOut = ops.attentionOutput(expectedProbs, v, n, H, Hkv, d);
      // KV groups {0} and {1, 2}; query rows in blocks of 9 (the last one short).
      const groups = [{ start: 0, count: 1 }, { start: 1, count: 2 }];
      const columns = (t: Float32Array, group: { start: number; count: number }) => {
        const out = new Float32Array(n * group.count * d);
        for (let j = 0; j < n; j++) out.set(t.subarray((j * Hkv + group.start) * d, (j * Hkv + group.start + group.count) * d), j * group.count * d);
        return out;
      };
      const ratio = H / Hkv;
      const out = new Float32Array(n * H * d);
      let probDiff = 0;
      const scoresConstants = variant === 'tiled' ? { HEAD_DIM: d } : wg;
      for (let row0 = 0; row0 < n; row0 += 9) {
        const rows = Math.min(9, n - row0);
        const qBlock = h.upload(q.slice(row0 * H * d, (row0 + rows) * H * d));
        const outBlock = h.output(rows * H * d);
        for (const group of groups) {
          const kGroup = h.upload(columns(k, group));
          const vGroup = h.upload(columns(v, group));
          const head0 = group.start * ratio;
          const headCount = group.count * ratio;
          const block = [n, head0, headCount, row0, rows, H, Hkv, d];
          const probs = h.output(headCount * rows * n);
          const groupsOf: [number, number] = variant === 'tiled' ? [Math.ceil(rows / 16), headCount] : grid1d(headCount * rows);
          await h.run(`attention_scores_${variant}`, scoresConstants, [h.library.uniform([...block, row0, group.start, group.count, 0], [1 / Math.sqrt(d), 0]), qBlock, kGroup, probs], groupsOf);
          await h.run('attention_output', wg, [h.library.uniform([...block, row0, group.start, group.count]), probs, vGroup, outBlock], grid1d(headCount * rows * d));
          const values = await h.read(probs, headCount * rows * n);
          for (let hh = 0; hh < headCount; hh++) {
            for (let qq = 0; qq < rows; qq++) {
              const query = row0 + qq;
              const got = values.subarray((hh * rows + qq) * n, (hh * rows + qq) * n + query + 1);
              const want = expectedProbs.subarray(((head0 + hh) * n + query) * n, ((head0 + hh) * n + query) * n + query + 1);
              probDiff = Math.max(probDiff, maxAbsDiff(got, want));
            }
          }
        }
        out.set(await h.read(outBlock, rows * H * d), row0 * H * d);
      }
      report(`attention_scores_${variant} (row blocks, KV groups)`, probDiff);
      report(`attention_output (row blocks, KV groups)`, maxAbsDiff(out, expectedOut));
    });
  });
}

test('next_token_divergence gives the KL and delta log-probability of compareNextToken (engine/causal.ts)', async (t) => {
  await withHarness(t, async (h) => {
    const random = seededRandom(43);
    const rows = 6;
    const vocab = 1000;
    const full = randomArray(random, rows * vocab, 8);
    const changed = new Float32Array(full);
    // Rows change by growing amounts; row 0 not at all (KL 0).
    for (let r = 1; r < rows; r++) for (let i = 0; i < vocab; i++) changed[r * vocab + i] += (random() * 2 - 1) * r;
    const firstRow = 3;
    const next = Int32Array.from({ length: firstRow + rows }, (_, i) => (i === firstRow + rows - 1 ? -1 : (i * 37) % vocab));
    const out = h.output(rows * 2);
    await h.run('next_token_divergence', wg, [h.library.uniform([rows, vocab, firstRow]), h.upload(full), h.upload(changed), h.upload(next), out], [1]);
    const values = await h.read(out, rows * 2);
    let worst = 0;
    for (let r = 0; r < rows; r++) {
      const token = next[firstRow + r];
      const expected = compareNextToken(full.subarray(r * vocab, (r + 1) * vocab), changed.subarray(r * vocab, (r + 1) * vocab), token < 0 ? null : token);
      worst = Math.max(worst, Math.abs(values[r * 2] - expected.kl), Math.abs(values[r * 2 + 1] - (expected.deltaLogProb ?? 0)));
      if (r > 1) assert.ok(expected.kl > 0.1, `row ${r} should move the distribution`);
    }
    report('next_token_divergence', worst, 1e-5);
  });
});
