// Lists the entries of a zip archive (a .vsix is one) from its central directory, with no
// dependency: enough to check what a package holds without unpacking it.
import * as fs from 'node:fs';

export interface ZipEntry {
  /** Path inside the archive, with forward slashes ("extension/out/extension.js"). */
  name: string;
  /** Bytes once extracted. */
  size: number;
}

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_DIRECTORY_HEADER = 0x02014b50;
// The end record is 22 bytes plus a comment of at most 65535 bytes.
const MAX_END_RECORD = 22 + 0xffff;

/** Reads `file`'s central directory. Throws, naming the file, when it is not a zip archive. */
export function readZipEntries(file: string): ZipEntry[] {
  const data = fs.readFileSync(file);
  let end = -1;
  for (let i = data.length - 22; i >= Math.max(0, data.length - MAX_END_RECORD); i--) {
    if (data.readUInt32LE(i) === END_OF_CENTRAL_DIRECTORY) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new Error(`${file} is not a zip archive (no end of central directory record)`);
  const count = data.readUInt16LE(end + 10);
  let offset = data.readUInt32LE(end + 16);
  if (count === 0xffff || offset === 0xffffffff) throw new Error(`${file} is a zip64 archive, which this reader does not handle`);
  const entries: ZipEntry[] = [];
  for (let n = 0; n < count; n++) {
    if (data.readUInt32LE(offset) !== CENTRAL_DIRECTORY_HEADER) throw new Error(`${file}: central directory entry ${n} is damaged`);
    const size = data.readUInt32LE(offset + 24);
    const nameLength = data.readUInt16LE(offset + 28);
    const extraLength = data.readUInt16LE(offset + 30);
    const commentLength = data.readUInt16LE(offset + 32);
    entries.push({ name: data.toString('utf8', offset + 46, offset + 46 + nameLength), size });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}
