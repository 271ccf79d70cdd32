import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTokenizerFile, TokenizerFormatError } from '../../src/node/tokenizer';
import { fixtureDir } from './fixtureModels';

const TOKENIZER = path.join(fixtureDir('llama-f32'), 'tokenizer.json');

test('encodes like the reference byte-level BPE of the fixture generator', async () => {
  const tokenizer = await loadTokenizerFile(TOKENIZER);
  assert.equal(tokenizer.vocabSize, 300);
  const golden = JSON.parse(fs.readFileSync(path.join(fixtureDir('llama-f32'), 'tokenizer-golden.json'), 'utf8')) as {
    samples: { text: string; ids: number[] }[];
  };
  for (const sample of golden.samples) {
    assert.deepEqual(tokenizer.encode(sample.text), sample.ids, JSON.stringify(sample.text));
    assert.equal(tokenizer.decode(sample.ids), sample.text);
  }
});

test('round-trips non-ASCII text, CRLF, tabs and emoji through byte tokens', async () => {
  const tokenizer = await loadTokenizerFile(TOKENIZER);
  const text = 'const café = "naïve";\r\n\tlet 👍 = 1; // 日本\n';
  const ids = tokenizer.encode(text);
  assert.ok(ids.every((id) => id >= 0 && id < 300));
  assert.equal(tokenizer.decode(ids), text);
});

test('malformed tokenizer files are refused naming the file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-tokenizer-'));
  try {
    const notJson = path.join(dir, 'broken.json');
    fs.writeFileSync(notJson, '{"model": ');
    const noModel = path.join(dir, 'empty.json');
    fs.writeFileSync(noModel, '{"version": "1.0"}');
    for (const [file, pattern] of [
      [notJson, /broken\.json is not valid JSON/],
      [noModel, /empty\.json is not a Hugging Face tokenizer\.json/],
      [path.join(dir, 'missing.json'), /cannot read .*missing\.json: ENOENT/],
    ] as const) {
      await assert.rejects(loadTokenizerFile(file), (error: unknown) => error instanceof TokenizerFormatError && error.file === file && pattern.test(error.message));
    }
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
