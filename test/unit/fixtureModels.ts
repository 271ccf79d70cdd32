/**
 * Access to the generated test models in test/fixtures/models (written by
 * training/fixtures/make_fixtures.py) and their golden outputs from the independent PyTorch
 * implementation.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelFileSource } from '../../engine/model/modelLoader';
import { bytesAsFile, type RandomAccessFile } from '../../engine/model/randomAccessFile';

/** The repository root: the bundled tests run from out/test/unit. */
export const repoRoot = path.resolve(__dirname, '..', '..', '..');

export const FIXTURE_MODELS = [
  'llama-f32',
  'llama-bf16',
  'qwen2-f16',
  'qwen2-sharded',
  'gpt2-f32',
  'gpt2-f16',
  'qwen3-bf16',
  'rope-linear',
  'rope-dynamic',
  'rope-yarn',
  'rope-longrope',
  'rope-llama3',
  'qwen2-sliding',
  'smollm3-f32',
  'starcoder2-bf16',
  'phi3-f32',
  'granite-bf16',
  'gemma3-bf16',
  'gemma2-f32',
] as const;

/** Fixtures whose rotary tables depend on the sequence length: golden-short.json holds a shorter run of the same tokens. */
export const SHORT_GOLDEN_MODELS = ['rope-dynamic', 'rope-longrope'] as const;

export function fixtureDir(name: string): string {
  return path.join(repoRoot, 'test', 'fixtures', 'models', name);
}

export interface Golden {
  readonly producedBy: string;
  readonly tokenIds: number[];
  readonly lastLogits: number[];
  /** attention[layer][head][query]: the query + 1 causal probabilities. */
  readonly attention: number[][][][];
}

export function readGolden(name: string, file: 'golden.json' | 'golden-short.json' = 'golden.json'): Golden {
  return JSON.parse(fs.readFileSync(path.join(fixtureDir(name), file), 'utf8')) as Golden;
}

/** An in-memory ModelFileSource holding a copy of a fixture folder, for tests that corrupt files. */
export class MemorySource implements ModelFileSource {
  readonly files = new Map<string, Uint8Array>();

  constructor(readonly label: string) {}

  static fromFixture(name: string): MemorySource {
    const source = new MemorySource(`memory/${name}`);
    for (const file of fs.readdirSync(fixtureDir(name))) {
      source.files.set(file, new Uint8Array(fs.readFileSync(path.join(fixtureDir(name), file))));
    }
    return source;
  }

  async exists(name: string): Promise<boolean> {
    return this.files.has(name);
  }

  async readText(name: string): Promise<string> {
    return new TextDecoder().decode(this.bytesOf(name));
  }

  async openBinary(name: string): Promise<RandomAccessFile> {
    return bytesAsFile(this.bytesOf(name));
  }

  private bytesOf(name: string): Uint8Array {
    const bytes = this.files.get(name);
    if (!bytes) throw new Error(`no file ${name}`);
    return bytes;
  }

  setText(name: string, text: string): void {
    this.files.set(name, new TextEncoder().encode(text));
  }
}

/** A tensor for writeSafetensors: raw little-endian bytes with dtype and shape. */
export interface RawTensor {
  readonly dtype: string;
  readonly shape: number[];
  readonly bytes: Uint8Array;
}

/** Writes a safetensors file (header entries in the given order, data contiguous). */
export function writeSafetensors(tensors: Record<string, RawTensor>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.byteLength] };
    offset += t.bytes.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setUint32(0, json.byteLength, true);
  out.set(json, 8);
  let at = 8 + json.byteLength;
  for (const t of Object.values(tensors)) {
    out.set(t.bytes, at);
    at += t.bytes.byteLength;
  }
  return out;
}

export function f32Tensor(values: number[], shape = [values.length]): RawTensor {
  return { dtype: 'F32', shape, bytes: new Uint8Array(new Float32Array(values).buffer) };
}
