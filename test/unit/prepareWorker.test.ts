/**
 * The worker thread that tokenizes and parses for the extension host (src/node/prepareWorker.ts):
 * the document it prepares is the one the extension host would have prepared itself, and a worker
 * that cannot start rejects its requests (the controller then works on its own thread).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DefinitionExtractor } from '../../src/analysis/definitions';
import { prepareDocument } from '../../src/analysis/documentAnalysis';
import { loadTokenizerFile } from '../../src/node/tokenizer';
import { PrepareWorkerClient } from '../../src/node/prepareWorkerClient';
import { repoRoot } from './fixtureModels';

const wasmDir = path.join(repoRoot, 'out', 'tree-sitter');
const tokenizerFile = path.join(repoRoot, 'default-model', 'tokenizer.json');

test('the worker thread prepares the same document as the extension host would, for TypeScript and Python', async () => {
  const client = new PrepareWorkerClient(path.join(repoRoot, 'out', 'prepareWorker.js'), wasmDir);
  const extractor = await DefinitionExtractor.create((name) => fs.promises.readFile(path.join(wasmDir, name)));
  const tokenizer = await loadTokenizerFile(tokenizerFile);
  try {
    for (const [languageId, file] of [['typescript', path.join(repoRoot, 'sample-workspace', 'src', 'inventory.ts')], ['python', path.join(repoRoot, 'training', 'corpus.py')]] as const) {
      const text = fs.readFileSync(file, 'utf8');
      const here = await extractor.extractWithReferences(languageId, text);
      const there = await client.parse(languageId, text);
      assert.deepEqual(there, here, `${path.basename(file)}: the same definitions, references and comments`);
      assert.ok(there.definitions.length > 3 && there.comments.length > 0);
      const doc = await client.prepare(text, tokenizerFile, there.definitions, there.references, there.comments);
      const expected = prepareDocument(text, tokenizer, here.definitions, here.references, here.comments);
      assert.deepEqual(doc, expected, `${path.basename(file)}: the same tokens, ranges, spans, identifiers and references`);
      assert.ok(doc.tokenIds.length > 500);
    }
  } finally {
    client.dispose();
  }
});

test('a worker that cannot start rejects its requests with the reason, and the next request tries again', async () => {
  const client = new PrepareWorkerClient(path.join(repoRoot, 'out', 'no-such-worker.js'), wasmDir);
  try {
    await assert.rejects(client.parse('typescript', 'const a = 1;\n'), /no-such-worker|Cannot find module|exited/);
    await assert.rejects(client.parse('typescript', 'const a = 1;\n'), /no-such-worker|Cannot find module|exited/);
  } finally {
    client.dispose();
  }
});
