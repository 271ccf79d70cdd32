/**
 * llama.cpp, the benchmark's peer (bench/llamaCpp.ts), as an independent implementation: the GGUF
 * written from a Hugging Face folder (bench/gguf.ts) parses with node-llama-cpp's own GGUF reader,
 * and llama.cpp's CPU prefill of random Llama and Qwen2 models gives the last-position
 * log-probabilities our reference engine gives. A wrong q/k permutation, a transposed matrix or a
 * swapped norm shows up here as differences of order one.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import { writeGgufFromFolder } from '../../bench/gguf';
import { compareLogProbs, llamaCppPrefill } from '../../bench/llamaCpp';
import { seededRandom } from '../gpu/gpuTestSupport';
import { writeSyntheticLlama, type SyntheticLlamaShape } from '../gpu/syntheticModel';

const SMALL: SyntheticLlamaShape = {
  vocabSize: 512,
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 96,
  maxPositions: 512,
  ropeTheta: 10000,
};

/**
 * Largest log-probability difference, relative to the largest |log-probability|, for the two to
 * agree. Exact F32 on both sides measures about 2e-7; llama.cpp's F16 flash attention about 2e-4;
 * a wrong mapping of any tensor, order one.
 */
const RELATIVE_TOLERANCE = 1e-5;

/**
 * writeSyntheticLlama makes every norm weight 1, which would hide a norm written under the wrong
 * name; this gives each its own random values (0.5 to 1.5) in place, in the file's dtype.
 */
function randomizeNorms(folder: string, seed: number): void {
  const file = path.join(folder, 'model.safetensors');
  const bytes = fs.readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const random = seededRandom(seed);
  const scratch = new Float32Array(1);
  const bits = new Uint32Array(scratch.buffer);
  for (const [name, entry] of Object.entries(header)) {
    if (!name.endsWith('norm.weight')) continue;
    const width = entry.dtype === 'BF16' ? 2 : 4;
    for (let at = 8 + headerLength + entry.data_offsets[0]; at < 8 + headerLength + entry.data_offsets[1]; at += width) {
      scratch[0] = 0.5 + random();
      if (width === 4) bytes.writeFloatLE(scratch[0], at);
      else bytes.writeUInt16LE(bits[0] >>> 16, at);
    }
  }
  fs.writeFileSync(file, bytes);
}

function tokenIds(count: number, vocab: number, seed: number): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => Math.floor(random() * vocab));
}

test('the GGUF carries llama.cpp\'s tensor names, dimensions and metadata, as node-llama-cpp\'s reader sees them', async () => {
  const { readGgufFileInfo } = await import('node-llama-cpp');
  const folder = writeSyntheticLlama({ ...SMALL, family: 'qwen2', dtype: 'BF16' }, 11);
  try {
    const out = path.join(folder, 'model.gguf');
    const written = writeGgufFromFolder(folder, out);
    const info = await readGgufFileInfo(out, { readTensorInfo: true });
    assert.equal(info.version, 3);
    const metadata = info.metadata as unknown as Record<string, Record<string, unknown>>;
    assert.equal(metadata.general.architecture, 'qwen2');
    assert.equal(metadata.general.alignment, 32);
    assert.equal((metadata.qwen2.attention as Record<string, unknown>).head_count_kv, 2);
    assert.equal((metadata.tokenizer.ggml as Record<string, unknown[]>).tokens.length, 512);
    const tensors = new Map(info.fullTensorInfo!.map((t) => [t.name, t]));
    assert.equal(tensors.size, written.tensorCount);
    // A PyTorch [out, in] matrix is [in, out] in GGUF; tied embeddings write no output.weight.
    assert.deepEqual(tensors.get('token_embd.weight')?.dimensions.map(Number), [64, 512]);
    assert.deepEqual(tensors.get('blk.1.attn_k.weight')?.dimensions.map(Number), [64, 32]);
    assert.deepEqual(tensors.get('blk.1.attn_k.bias')?.dimensions.map(Number), [32]);
    assert.deepEqual(tensors.get('blk.0.ffn_down.weight')?.dimensions.map(Number), [96, 64]);
    assert.equal(tensors.has('output.weight'), false);
    for (const tensor of tensors.values()) assert.equal(Number(tensor.offset) % 32, 0, `${tensor.name} is aligned`);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

for (const [label, shape, n] of [
  ['an untied F32 Llama', { ...SMALL, tieEmbeddings: false }, 150],
  ['a tied BF16 Qwen2 (q/k/v biases)', { ...SMALL, family: 'qwen2', dtype: 'BF16', rmsNormEps: 1e-6 }, 97],
] as const) {
  test(`llama.cpp's prefill of ${label} gives the reference engine's last-position log-probabilities`, async () => {
    const folder = writeSyntheticLlama(shape, 5);
    try {
      randomizeNorms(folder, 6);
      const ids = tokenIds(n, shape.vocabSize, 7);
      const engine = new ReferenceEngine(await loadModelFolder(folder), 'test');
      const ours = await engine.run({ tokenIds: ids, spans: [], topK: 1 });
      engine.dispose();
      const peer = await llamaCppPrefill(folder, ids, { threads: 2, repeats: 1 });
      const comparison = compareLogProbs(ours.lastLogits, peer.lastLogProbs);
      console.log(`${label}, n = ${n}: max |log p ours - llama.cpp| = ${comparison.maxAbsDiff.toExponential(2)}, ${(comparison.maxAbsDiff / comparison.scale).toExponential(1)} of the largest |log p| (${comparison.scale.toFixed(1)}); ${peer.version}`);
      assert.equal(comparison.compared, shape.vocabSize, 'no llama.cpp probability underflowed');
      assert.ok(comparison.sameArgmax, 'both predict the same next token');
      assert.ok(comparison.scale > 1, 'the comparison is not of flat distributions');
      assert.ok(comparison.maxAbsDiff < RELATIVE_TOLERANCE * comparison.scale, `max difference ${comparison.maxAbsDiff} at token ${comparison.worstToken}`);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
}

test('the temporary GGUF is deleted, and a model llama.cpp would run differently is refused with a reason', async () => {
  const before = fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith('attention-lens-gguf-')).length;
  const folder = writeSyntheticLlama(SMALL, 8);
  try {
    await llamaCppPrefill(folder, [1, 2, 3], { threads: 1, repeats: 1 });
    assert.equal(fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith('attention-lens-gguf-')).length, before);
    await assert.rejects(llamaCppPrefill(folder, [1, 512], { threads: 1 }), /token id 512 at position 1 is outside the vocabulary \[0, 512\)/);
    fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify({ ...JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8')), rope_scaling: { rope_type: 'llama3', factor: 8 } }));
    assert.throws(() => writeGgufFromFolder(folder, path.join(folder, 'x.gguf')), /rope_scaling/);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
});
