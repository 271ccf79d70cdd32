// The embedded default model (default-model/) as shipped: it loads, its tokenizer round-trips code,
// and the CPU engine's logits match the PyTorch model that training produced (training/golden.py).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ReferenceEngine } from '../../engine/reference/referenceEngine';
import { loadModelFolder } from '../../engine/hosts/nodeModelFolder';
import { loadTokenizerFile } from '../../src/node/tokenizer';
import { repoRoot } from './fixtureModels';

const folder = path.join(repoRoot, 'default-model');

interface DefaultGolden {
  readonly tokenIds: number[];
  readonly text: string;
  readonly lastLogits: number[];
  readonly producedBy: string;
}

test('the shipped default model is a Llama-architecture HF folder within the 25 MB budget', async () => {
  const model = await loadModelFolder(folder);
  assert.equal(model.spec.architecture, 'LlamaForCausalLM');
  assert.ok(model.spec.maxPositions >= 1024, `context ${model.spec.maxPositions} >= 1024`);
  const bytes = ['config.json', 'model.safetensors', 'tokenizer.json'].reduce((sum, f) => sum + fs.statSync(path.join(folder, f)).size, 0);
  assert.ok(bytes <= 25 * 1024 * 1024, `${bytes} bytes`);
  assert.equal(model.weights.tokenEmbedding.dtype, 'F16', 'weights ship in F16');
});

test('the default tokenizer encodes the golden text to the golden ids and round-trips code exactly', async () => {
  const golden = JSON.parse(fs.readFileSync(path.join(folder, 'golden.json'), 'utf8')) as DefaultGolden;
  const tokenizer = await loadTokenizerFile(path.join(folder, 'tokenizer.json'));
  assert.deepEqual(tokenizer.encode(golden.text), golden.tokenIds);
  const code = 'def f(x):\r\n\treturn "é😀" + x  # ünïcode\n';
  assert.equal(tokenizer.decode(tokenizer.encode(code)), code);
});

test('CPU engine logits match the PyTorch default model within 1e-3', async () => {
  const golden = JSON.parse(fs.readFileSync(path.join(folder, 'golden.json'), 'utf8')) as DefaultGolden;
  const engine = new ReferenceEngine(await loadModelFolder(folder), 'test');
  const result = await engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 1 });
  let maxDiff = 0;
  golden.lastLogits.forEach((value, i) => (maxDiff = Math.max(maxDiff, Math.abs(value - result.lastLogits[i]))));
  console.log(`default model: max |logit diff| CPU vs PyTorch (${golden.producedBy}) = ${maxDiff.toExponential(2)}`);
  assert.ok(maxDiff <= 1e-3, `max |logit diff| ${maxDiff}`);
  engine.dispose();
});

test('the default model has an induction head: the second copy of a random sequence attends to the token after its first copy', async () => {
  // What makes the overlay point at earlier occurrences of an identifier. Same measure as
  // training/report.py: [EOT] R R, R = 50 random merge tokens; score = mean attention from each
  // token of the second copy to the token after its earlier occurrence.
  const model = await loadModelFolder(folder);
  const engine = new ReferenceEngine(model, 'test');
  let seed = 12345;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const length = 50;
  const r = Array.from({ length }, () => 257 + Math.floor(random() * (model.spec.vocabSize - 257)));
  await engine.run({ tokenIds: [0, ...r, ...r], spans: [], topK: 1 });
  let best = { score: 0, layer: -1, head: -1 };
  for (let layer = 0; layer < model.spec.numLayers; layer++) {
    for (let head = 0; head < model.spec.numHeads; head++) {
      let sum = 0;
      for (let j = 0; j < length - 1; j++) {
        const query = 1 + length + j; // R[j] in the second copy
        sum += (await engine.attentionRow(layer, head, query))[2 + j]; // R[j + 1] in the first copy
      }
      if (sum / (length - 1) > best.score) best = { score: sum / (length - 1), layer, head };
    }
  }
  console.log(`default model: best induction score ${best.score.toFixed(3)} (layer ${best.layer}, head ${best.head})`);
  assert.ok(best.score >= 0.3, `best induction score ${best.score.toFixed(3)} (layer ${best.layer}, head ${best.head}) < 0.3`);
  engine.dispose();
});
