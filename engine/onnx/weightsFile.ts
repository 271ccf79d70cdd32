/**
 * The CPU engine's float32 copy of a model's weights, on disk: one file (weights.bin) with every
 * distinct tensor as float32, 4 KiB aligned, and an index of where each one lies. The ONNX graphs
 * refer to it as external data and ONNX Runtime maps it into memory instead of holding its own
 * copies (with prepacking off, it computes straight from the mapped pages), so the engine process
 * holds about one float32 copy of the weights in file-backed pages the system can page out, rather
 * than the file's BF16 bytes, ONNX Runtime's copy of them and the float32 tensors it folds from
 * them (2.3x the float32 size at its peak for a 3 GB BF16 model).
 *
 * One folder per model under a cache root, named after what the copy was made from (the folder,
 * config.json, each safetensors file's size and modification time); the least recently used are
 * removed beyond `keep`. Written to a temporary folder and renamed into place, so a half-written
 * copy is never used.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HostTensor, LoadedModel } from '../model/modelTypes';
import { toFloat32 } from '../model/tensorData';

/** Where one tensor lies in weights.bin. */
export interface WeightLocation {
  readonly offset: number;
  readonly length: number;
}

/** A float32 weights file and how to find each tensor in it. */
export interface WeightsFile {
  /** The folder that holds weights.bin (the graphs are written beside it). */
  readonly dir: string;
  readonly fileName: string;
  locate(tensor: HostTensor): WeightLocation | undefined;
  readonly bytes: number;
}

const FORMAT = 'attention-lens float32 weights v1';
const FILE = 'weights.bin';
const INDEX = 'index.json';
const ALIGN = 4096;

interface IndexFile {
  readonly format: string;
  readonly tensors: Record<string, WeightLocation>;
  readonly bytes: number;
}

/** The key of a tensor in the index: its name (with its file) and shape, which are unique in a model. */
export function tensorKey(tensor: HostTensor): string {
  return `${tensor.name}|${tensor.shape.join('x')}`;
}

/** What the copy of `folder`'s weights is made from: the folder, its config and its safetensors files' sizes and times. */
export function weightsIdentity(folder: string): string {
  const hash = createHash('sha256');
  hash.update(FORMAT);
  hash.update(path.resolve(folder));
  for (const name of fs.readdirSync(folder).sort()) {
    if (name === 'config.json') hash.update(fs.readFileSync(path.join(folder, name)));
    else if (name.endsWith('.safetensors') || name.endsWith('.safetensors.index.json')) {
      const stat = fs.statSync(path.join(folder, name));
      hash.update(`${name}:${stat.size}:${stat.mtimeMs}`);
    }
  }
  return hash.digest('hex').slice(0, 24);
}

function opened(dir: string, index: IndexFile): WeightsFile {
  return {
    dir,
    fileName: FILE,
    bytes: index.bytes,
    locate: (tensor) => index.tensors[tensorKey(tensor)],
  };
}

/** The float32 copy of `folder`'s weights under `root`, if one was made (and is complete). */
export function findWeightsFile(root: string, folder: string): WeightsFile | undefined {
  const dir = path.join(root, weightsIdentity(folder));
  try {
    const index = JSON.parse(fs.readFileSync(path.join(dir, INDEX), 'utf8')) as IndexFile;
    if (index.format !== FORMAT || fs.statSync(path.join(dir, FILE)).size < index.bytes) return undefined;
    const now = new Date();
    fs.utimesSync(dir, now, now); // most recently used
    return opened(dir, index);
  } catch {
    return undefined;
  }
}

/**
 * Writes the float32 copy of `model`'s weights (loaded from `folder`) under `root`, one tensor at a
 * time, and removes the least recently used copies beyond `keep`. Throws when the disk cannot take
 * it (the engine then keeps the weights in memory, and says so).
 */
export function writeWeightsFile(root: string, folder: string, model: LoadedModel, tensors: Iterable<HostTensor>, keep = 2): WeightsFile {
  fs.mkdirSync(root, { recursive: true });
  const dir = path.join(root, weightsIdentity(folder));
  const temp = fs.mkdtempSync(path.join(root, '.partial-'));
  try {
    const fd = fs.openSync(path.join(temp, FILE), 'w');
    const index: Record<string, WeightLocation> = {};
    let offset = 0;
    try {
      for (const tensor of tensors) {
        const key = tensorKey(tensor);
        if (index[key]) continue;
        const values = tensor.dtype === 'F32' ? new Float32Array(tensor.bytes.buffer, tensor.bytes.byteOffset, tensor.bytes.byteLength / 4) : toFloat32(tensor);
        offset = Math.ceil(offset / ALIGN) * ALIGN;
        const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
        for (let written = 0; written < bytes.byteLength; ) written += fs.writeSync(fd, bytes, written, bytes.byteLength - written, offset + written);
        index[key] = { offset, length: bytes.byteLength };
        offset += bytes.byteLength;
      }
    } finally {
      fs.closeSync(fd);
    }
    const file: IndexFile = { format: FORMAT, tensors: index, bytes: offset };
    fs.writeFileSync(path.join(temp, INDEX), JSON.stringify({ ...file, model: model.origin }));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(temp, dir);
    removeStale(root, keep, dir);
    return opened(dir, file);
  } catch (error) {
    fs.rmSync(temp, { recursive: true, force: true });
    throw error;
  }
}

/** Removes the least recently used copies (and abandoned partial ones) beyond `keep`, never `current`. */
function removeStale(root: string, keep: number, current: string): void {
  const entries = fs.readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(root, e.name));
  for (const partial of entries.filter((dir) => path.basename(dir).startsWith('.partial-'))) {
    // Another process may be writing one right now: only those untouched for an hour are abandoned.
    if (Date.now() - fs.statSync(partial).mtimeMs > 3_600_000) fs.rmSync(partial, { recursive: true, force: true });
  }
  const copies = entries.filter((dir) => !path.basename(dir).startsWith('.partial-') && dir !== current).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  for (const stale of copies.slice(Math.max(0, keep - 1))) fs.rmSync(stale, { recursive: true, force: true });
}

/**
 * The model with every tensor's bytes let go (shapes, dtypes and names kept, shared tensors still
 * shared): what graphs built on a weights file need, without holding the weights in memory.
 */
export function withoutBytes(model: LoadedModel): LoadedModel {
  const seen = new Map<HostTensor, HostTensor>();
  const empty = new Uint8Array(0);
  const map = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(map);
    if (value && typeof value === 'object') {
      if ('bytes' in value && 'shape' in value && 'dtype' in value) {
        const tensor = value as HostTensor;
        let stripped = seen.get(tensor);
        if (!stripped) seen.set(tensor, (stripped = { ...tensor, bytes: empty }));
        return stripped;
      }
      return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, map(v)]));
    }
    return value;
  };
  return { ...model, weights: map(model.weights) as LoadedModel['weights'] };
}
