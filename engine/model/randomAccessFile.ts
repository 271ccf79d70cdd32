/**
 * Positional access to one binary model file. The safetensors reader asks for the 8-byte header
 * length, the JSON header and then each tensor it needs, each as its own read, so no host ever has
 * to hold a whole weights file in one buffer: Node's fs.readFile refuses files over 2 GiB, and a
 * second copy of a 3 GB checkpoint would double the memory a load needs.
 * No Node or DOM imports: the Node host reads with positional file reads (engine/hosts/
 * nodeModelFolder.ts), the webview and the tests from bytes already in memory (bytesAsFile).
 */

export interface RandomAccessFile {
  /** Bytes in the file. */
  readonly size: number;
  /**
   * Absolute path of the file on the local disk, when its bytes are read from one. Tensors read from
   * it record where their bytes lie (HostTensor.source), so an engine can map them instead of copying.
   */
  readonly diskPath?: string;
  /**
   * Exactly `length` bytes starting at byte `offset` of the file, in a buffer the caller may keep.
   * Rejects when the file holds fewer (a file that changed after it was opened).
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the file; no read follows. */
  close(): Promise<void>;
}

/**
 * A file whose bytes are already in memory (fetched by the webview, built by a test). Reads are
 * views on those bytes, not copies, so a model loaded from it costs no memory beyond the file itself.
 */
export function bytesAsFile(bytes: Uint8Array): RandomAccessFile {
  return {
    size: bytes.byteLength,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > bytes.byteLength) {
        throw new RangeError(`cannot read ${length} bytes at offset ${offset} of a ${bytes.byteLength}-byte file`);
      }
      return bytes.subarray(offset, offset + length);
    },
    async close(): Promise<void> {},
  };
}
