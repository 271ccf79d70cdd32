// The embedded default model (default-model/) as shipped: it loads, its tokenizer round-trips code,
// and the CPU engine's logits match the PyTorch model that training produced (training/golden.py).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CpuEngine } from '../../webview/engine/cpu/cpuEngine';
import { loadModelFolder } from '../../src/node/modelFolder';
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
  const engine = new CpuEngine(await loadModelFolder(folder), 'test');
  const result = await engine.run({ tokenIds: golden.tokenIds, spans: [], topK: 1 });
  let maxDiff = 0;
  golden.lastLogits.forEach((value, i) => (maxDiff = Math.max(maxDiff, Math.abs(value - result.lastLogits[i]))));
  console.log(`default model: max |logit diff| CPU vs PyTorch (${golden.producedBy}) = ${maxDiff.toExponential(2)}`);
  assert.ok(maxDiff <= 1e-3, `max |logit diff| ${maxDiff}`);
  engine.dispose();
});
