/**
 * Reader for the safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the tensor
 * data, with offsets relative to the end of the header.
 *
 * Every file is untrusted input (it may come from any Hub repository or a half-finished download),
 * so the header is validated completely before any tensor is handed out: sizes, offsets, dtypes and
 * shapes, and every tensor's bytes must lie inside the file (a truncated file is refused before a
 * single tensor is read). The file is never read whole: the header comes from two positional reads,
 * and each tensor from one read of its own when it is asked for, so a load holds the tensors it
 * uses and nothing else (a 3 GB checkpoint needs 3 GB, and no buffer over the largest tensor).
 */
import { ModelFormatError } from './modelFormatError';
import type { RandomAccessFile } from './randomAccessFile';
import { DTYPE_WIDTH } from './tensorData';
import type { HostTensor, TensorDType } from './modelTypes';

/** Headers larger than this are refused: real ones are a few hundred KB even for big models. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Where one tensor lies in the file, as its header says (offsets from the start of the data). */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: TensorDType;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsFile {
  readonly fileName: string;
  /** The string-to-string `__metadata__` map (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  /** Byte offset in the file where the data section starts (8 + the header length). */
  readonly dataStart: number;
  /**
   * Reads the tensor named `name` from the file (its bytes alone, with one read), or undefined when
   * the file has none by that name. The file must still be open.
   */
  readTensor(name: string): Promise<HostTensor | undefined>;
}

const SUPPORTED_DTYPES: readonly string[] = ['F32', 'F16', 'BF16'];

/**
 * Reads and validates the header of a safetensors file; tensors are read later, one by one, through
 * the returned object. The caller keeps `file` open while it reads tensors and closes it.
 * Throws ModelFormatError.
 */
export async function readSafetensors(file: RandomAccessFile, fileName: string): Promise<SafetensorsFile> {
  const fail = (problem: string): never => {
    throw new ModelFormatError(fileName, `${fileName} is not a valid safetensors file: ${problem}. ${REDOWNLOAD}`);
  };
  const fileSize = file.size;
  if (fileSize < 8) {
    fail(`it has ${fileSize} bytes, fewer than the 8-byte header length (the file is truncated)`);
  }
  const lengthBytes = await file.read(0, 8);
  const view = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8);
  const headerLengthLow = view.getUint32(0, true);
  const headerLengthHigh = view.getUint32(4, true);
  const headerLength = headerLengthHigh * 2 ** 32 + headerLengthLow;
  if (headerLength > MAX_HEADER_BYTES) {
    fail(`its header length field says ${headerLength} bytes, more than the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (8 + headerLength > fileSize) {
    fail(`its header length field says ${headerLength} bytes but only ${fileSize - 8} bytes follow it (the file is truncated)`);
  }
  const headerBytes = await file.read(8, headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (error) {
    fail(`its JSON header does not parse (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!isPlainObject(header)) fail('its header is not a JSON object');
  const headerObject = header as Record<string, unknown>;

  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  let metadata: Record<string, string> = {};
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, raw] of Object.entries(headerObject)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(raw, fail);
      continue;
    }
    const entry = parseEntry(name, raw, fileName, fail);
    if (entry.end > dataLength) {
      fail(`tensor ${name} has data_offsets [${entry.begin}, ${entry.end}] beyond the ${dataLength} bytes of data (the file is truncated)`);
    }
    entries.set(name, entry);
  }

  // Tensors must not share bytes: a crafted file could otherwise alias one tensor's data into another.
  const byOffset = [...entries.values()].filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < byOffset.length; i++) {
    if (byOffset[i].begin < byOffset[i - 1].end) {
      fail(`tensors ${byOffset[i - 1].name} and ${byOffset[i].name} overlap in the data section`);
    }
  }

  return {
    fileName,
    metadata,
    entries,
    dataStart,
    async readTensor(name: string): Promise<HostTensor | undefined> {
      const entry = entries.get(name);
      if (!entry) return undefined;
      const offset = dataStart + entry.begin;
      const length = entry.end - entry.begin;
      const bytes = await file.read(offset, length);
      const source = file.diskPath === undefined ? undefined : { file: file.diskPath, offset, length };
      return { name, shape: entry.shape, dtype: entry.dtype, bytes, ...(source ? { source } : {}) };
    },
  };
}

const REDOWNLOAD = 'Download the file again, or choose another model folder';

function parseMetadata(raw: unknown, fail: (problem: string) => never): Record<string, string> {
  if (!isPlainObject(raw)) fail('its __metadata__ is not a JSON object');
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof value !== 'string') fail(`its __metadata__ entry "${key}" is not a string`);
    metadata[key] = value as string;
  }
  return metadata;
}

function parseEntry(name: string, raw: unknown, fileName: string, fail: (problem: string) => never): SafetensorsEntry {
  if (!isPlainObject(raw)) fail(`the header entry for tensor ${name} is not a JSON object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string') fail(`tensor ${name} has no dtype string`);
  if (!SUPPORTED_DTYPES.includes(dtype as string)) {
    throw new ModelFormatError(
      fileName,
      `unsupported dtype ${String(dtype)} for tensor ${name} in ${fileName}: Attention Lens reads F32, F16 and BF16 weights. Use an unquantised checkpoint of the model.`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    fail(`tensor ${name} has shape ${JSON.stringify(shape)}, not a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
    fail(`tensor ${name} has data_offsets ${JSON.stringify(offsets)}, not two non-negative integers`);
  }
  const [begin, end] = offsets as number[];
  if (begin > end) fail(`tensor ${name} has data_offsets [${begin}, ${end}] with begin after end`);
  const typedDtype = dtype as TensorDType;
  let expectedBytes = DTYPE_WIDTH[typedDtype];
  for (const dim of shape as number[]) expectedBytes *= dim;
  if (!Number.isSafeInteger(expectedBytes)) fail(`tensor ${name} has shape [${(shape as number[]).join(', ')}], too large to load`);
  if (end - begin !== expectedBytes) {
    fail(
      `tensor ${name} has ${end - begin} bytes of data but its shape [${(shape as number[]).join(', ')}] and dtype ${typedDtype} need ${expectedBytes}`,
    );
  }
  return { name, dtype: typedDtype, shape: [...(shape as number[])], begin, end };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
