import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openLocalFile } from '../../engine/hosts/nodeModelFolder';
import { ModelFormatError } from '../../engine/model/modelFormatError';
import { bytesAsFile } from '../../engine/model/randomAccessFile';
import { readSafetensors, type SafetensorsFile } from '../../engine/model/safetensors';
import { toFloat32 } from '../../engine/model/tensorData';
import { f32Tensor, writeSafetensors } from './fixtureModels';

const FILE = 'models/tiny/model.safetensors';

function validFile(): Uint8Array {
  return writeSafetensors(
    { 'a.weight': f32Tensor([1, 2, 3, 4, 5, 6], [2, 3]), 'b.bias': f32Tensor([-1.5, 0.25]) },
    { format: 'pt' },
  );
}

/** Replaces the JSON header of a file by `header` (the data stays as it is). */
function withHeader(header: unknown, data = new Uint8Array(32)): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setUint32(0, json.byteLength, true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

function parse(bytes: Uint8Array): Promise<SafetensorsFile> {
  return readSafetensors(bytesAsFile(bytes), FILE);
}

async function rejects(bytes: Uint8Array, pattern: RegExp): Promise<void> {
  await assert.rejects(
    parse(bytes),
    (error: unknown) => {
      assert.ok(error instanceof ModelFormatError, `expected ModelFormatError, got ${String(error)}`);
      assert.equal(error.file, FILE);
      assert.ok(error.message.includes(FILE), `message should name the file: ${error.message}`);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

test('reads tensors, shapes and metadata of a valid file', async () => {
  const file = await parse(validFile());
  assert.deepEqual(file.metadata, { format: 'pt' });
  const a = (await file.readTensor('a.weight'))!;
  assert.deepEqual(a.shape, [2, 3]);
  assert.equal(a.dtype, 'F32');
  assert.deepEqual([...toFloat32(a)], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...toFloat32((await file.readTensor('b.bias'))!)], [-1.5, 0.25]);
  assert.equal(await file.readTensor('missing'), undefined);
  // Bytes from memory have no place on disk to point at.
  assert.equal(a.source, undefined);
});

test('reads a tensor whose data is not 4-byte aligned in the file', async () => {
  // A 5-byte header puts the data at offset 13.
  const bytes = withHeader('{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'.padEnd(53), new Uint8Array(new Float32Array([3.5]).buffer));
  assert.deepEqual([...toFloat32((await (await parse(bytes)).readTensor('x'))!)], [3.5]);
});

test('accepts zero-sized tensors', async () => {
  const bytes = withHeader({ empty: { dtype: 'F16', shape: [0, 4], data_offsets: [0, 0] } }, new Uint8Array(0));
  assert.deepEqual((await (await parse(bytes)).readTensor('empty'))!.shape, [0, 4]);
});

test('rejects a file shorter than the header length field', async () => {
  await rejects(new Uint8Array(5), /truncated/);
});

test('rejects a header length beyond the end of the file', async () => {
  const bytes = validFile();
  await rejects(bytes.subarray(0, 8 + 10), /header length field says \d+ bytes but only 10 bytes follow/);
});

test('rejects an absurd header length', async () => {
  const bytes = new Uint8Array(16);
  new DataView(bytes.buffer).setUint32(4, 1, true); // 2^32 bytes
  await rejects(bytes, /more than the \d+-byte limit/);
});

test('rejects a header that is not JSON', async () => {
  await rejects(withHeader('{"a": {'), /JSON header does not parse/);
  await rejects(withHeader('[1, 2]'), /header is not a JSON object/);
});

test('rejects a truncated data section', async () => {
  const bytes = validFile();
  await rejects(bytes.subarray(0, bytes.byteLength - 4), /tensor b\.bias has data_offsets \[24, 32\] beyond the 28 bytes of data/);
});

test('rejects offsets outside the data and reversed offsets', async () => {
  await rejects(withHeader({ x: { dtype: 'F32', shape: [2], data_offsets: [40, 48] } }), /beyond the 32 bytes of data/);
  await rejects(withHeader({ x: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }), /begin after end/);
  await rejects(withHeader({ x: { dtype: 'F32', shape: [2], data_offsets: [-8, 0] } }), /not two non-negative integers/);
});

test('rejects a size that does not match shape and dtype', async () => {
  await rejects(withHeader({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }), /tensor x has 8 bytes of data but its shape \[3\] and dtype F32 need 12/);
  await rejects(withHeader({ x: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 16] } }), /need 8/);
});

test('rejects malformed shapes', async () => {
  await rejects(withHeader({ x: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }), /not a list of non-negative integers/);
  await rejects(withHeader({ x: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }), /not a list of non-negative integers/);
  await rejects(withHeader({ x: { dtype: 'F32', shape: '2', data_offsets: [0, 8] } }), /not a list of non-negative integers/);
});

test('rejects unsupported dtypes, naming dtype, tensor and file', async () => {
  await rejects(withHeader({ 'h.0.attn.qweight': { dtype: 'I8', shape: [4], data_offsets: [0, 4] } }), /^unsupported dtype I8 for tensor h\.0\.attn\.qweight in models\/tiny\/model\.safetensors/);
  await rejects(withHeader({ x: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } }), /unsupported dtype F8_E4M3 for tensor x/);
});

test('rejects overlapping tensors', async () => {
  await rejects(
    withHeader({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }),
    /tensors a and b overlap/,
  );
});

test('rejects malformed __metadata__', async () => {
  await rejects(withHeader({ __metadata__: { format: 1 } }), /__metadata__ entry "format" is not a string/);
  await rejects(withHeader({ __metadata__: [] }), /__metadata__ is not a JSON object/);
});

/**
 * A safetensors file over 2 GiB that costs almost no disk: a 2.25 GiB F32 tensor of zeros left as
 * a hole in a sparse file, then a small tensor whose bytes start past 2^31.
 */
const GAP = 2.25 * 2 ** 30;
const SMALL = [1.5, -2, 3.25, 1e-3];

function withSparseFile(run: (file: string, dataStart: number) => Promise<void>): Promise<void> {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'attention-lens-sparse-'));
  const file = path.join(folder, 'model.safetensors');
  const header = new TextEncoder().encode(
    JSON.stringify({
      big: { dtype: 'F32', shape: [GAP / 4], data_offsets: [0, GAP] },
      small: { dtype: 'F32', shape: [SMALL.length], data_offsets: [GAP, GAP + 4 * SMALL.length] },
    }),
  );
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.byteLength));
  const dataStart = 8 + header.byteLength;
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, length, 0, 8, 0);
    fs.writeSync(fd, header, 0, header.byteLength, 8);
    // Writing past the end leaves the big tensor's bytes as a hole that reads as zeros.
    fs.writeSync(fd, new Uint8Array(new Float32Array(SMALL).buffer), 0, 4 * SMALL.length, dataStart + GAP);
  } finally {
    fs.closeSync(fd);
  }
  return run(file, dataStart).finally(() => fs.rmSync(folder, { recursive: true, force: true }));
}

test('a file over 2 GiB opens, and a tensor past byte 2^31 reads back exactly without reading the others', () =>
  withSparseFile(async (file, dataStart) => {
    assert.ok(fs.statSync(file).size > 2 ** 31);
    const opened = await openLocalFile(file);
    try {
      const parsed = await readSafetensors(opened, file);
      assert.deepEqual([...parsed.entries.keys()], ['big', 'small']);
      assert.deepEqual(parsed.entries.get('big')!.shape, [GAP / 4]);
      const before = process.memoryUsage().arrayBuffers;
      const small = (await parsed.readTensor('small'))!;
      assert.deepEqual([...toFloat32(small)], [...new Float32Array(SMALL)]);
      assert.deepEqual(small.source, { file, offset: dataStart + GAP, length: 4 * SMALL.length });
      // The 2.25 GiB tensor was not read to get here.
      assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 2 ** 20);
    } finally {
      await opened.close();
    }
  }));

test('a truncated file over 2 GiB is refused from its header, before any tensor is read', () =>
  withSparseFile(async (file, dataStart) => {
    fs.truncateSync(file, dataStart + GAP + 8);
    const opened = await openLocalFile(file);
    try {
      await assert.rejects(readSafetensors(opened, file), (error: unknown) => {
        assert.ok(error instanceof ModelFormatError);
        assert.equal(error.file, file);
        assert.match(error.message, new RegExp(`tensor small has data_offsets \\[${GAP}, ${GAP + 16}\\] beyond the ${GAP + 8} bytes of data \\(the file is truncated\\)`));
        return true;
      });
    } finally {
      await opened.close();
    }
  }));

test('a file that shrinks after its header was read gives a clear error when the tensor is read', () =>
  withSparseFile(async (file, dataStart) => {
    const opened = await openLocalFile(file);
    try {
      const parsed = await readSafetensors(opened, file);
      fs.truncateSync(file, dataStart + GAP + 8);
      await assert.rejects(parsed.readTensor('small'), (error: unknown) => {
        assert.ok(error instanceof ModelFormatError);
        assert.equal(error.file, file);
        assert.ok(error.message.startsWith(`${file} ended at byte ${dataStart + GAP + 8}, before the 16 bytes at offset ${dataStart + GAP}`), error.message);
        assert.match(error.message, /changed after it was opened/);
        return true;
      });
    } finally {
      await opened.close();
    }
  }));
