/**
 * A worker thread of the extension host that prepares a document for analysis: tree-sitter's parse
 * (definitions, references, comments) and the whole preparation with the model's tokenizer
 * (src/analysis/documentAnalysis.ts). On a 24k-token file each holds its thread for a quarter of a
 * second the first time; here that thread is not the extension host's, whose hovers and keystrokes
 * go on meanwhile. The client is src/node/prepareWorkerClient.ts; the protocol is below.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { DefinitionExtractor, type SourceDefinition, type TextRange } from '../analysis/definitions';
import { prepareDocument } from '../analysis/documentAnalysis';
import type { CodeReference } from '../analysis/references';
import { tokenizerFromJson, type TextTokenizer } from './tokenizer';

export type PrepareRequest =
  | { readonly id: number; readonly type: 'parse'; readonly languageId: string; readonly text: string }
  | {
      readonly id: number;
      readonly type: 'prepare';
      readonly text: string;
      /** The model's tokenizer.json (loaded once per file and modification time). */
      readonly tokenizerFile: string;
      readonly definitions: readonly SourceDefinition[];
      readonly references: readonly CodeReference[];
      readonly comments: readonly TextRange[];
    };

export type PrepareResponse = { readonly id: number; readonly ok: true; readonly value: unknown } | { readonly id: number; readonly ok: false; readonly error: string };

const wasmDir = (workerData as { wasmDir: string }).wasmDir;
let extractor: Promise<DefinitionExtractor> | undefined;
const tokenizers = new Map<string, { mtimeMs: number; tokenizer: Promise<TextTokenizer> }>();

async function tokenizerFor(file: string): Promise<TextTokenizer> {
  const { mtimeMs } = await fs.stat(file);
  let entry = tokenizers.get(file);
  if (!entry || entry.mtimeMs !== mtimeMs) {
    // As src/model/activeModel.ts builds the model's own: the same file, the same options.
    entry = { mtimeMs, tokenizer: fs.readFile(file, 'utf8').then((text) => tokenizerFromJson(JSON.parse(text), file)) };
    tokenizers.set(file, entry);
  }
  return entry.tokenizer;
}

async function answer(request: PrepareRequest): Promise<unknown> {
  if (request.type === 'parse') {
    extractor ??= DefinitionExtractor.create((name) => fs.readFile(path.join(wasmDir, name)));
    return (await extractor).extractWithReferences(request.languageId, request.text);
  }
  return prepareDocument(request.text, await tokenizerFor(request.tokenizerFile), request.definitions, request.references, request.comments);
}

parentPort?.on('message', (request: PrepareRequest) => {
  answer(request).then(
    (value) => parentPort!.postMessage({ id: request.id, ok: true, value } satisfies PrepareResponse),
    (error: unknown) => parentPort!.postMessage({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies PrepareResponse),
  );
});
