/**
 * A model folder on the local file system as a ModelFileSource (config.json, safetensors weights,
 * tokenizer.json). File names are plain names inside the folder; anything else is refused, so a
 * crafted shard index cannot read outside the folder. Weight files are read with positional reads
 * (FileHandle.read at an offset), never whole: fs.readFile refuses files over 2 GiB, and the
 * loader only wants the tensors, each in its own buffer.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ModelFormatError } from '../model/modelFormatError';
import { CONFIG_FILE, loadModel, type ModelFileSource } from '../model/modelLoader';
import type { LoadedModel } from '../model/modelTypes';
import type { RandomAccessFile } from '../model/randomAccessFile';

export class ModelFolder implements ModelFileSource {
  private constructor(readonly label: string) {}

  /** Opens `folder`, checking that it exists and holds a config.json. Throws ModelFormatError. */
  static async open(folder: string): Promise<ModelFolder> {
    const resolved = path.resolve(folder);
    let stat;
    try {
      stat = await fs.stat(resolved);
    } catch {
      throw new ModelFormatError(resolved, `model folder ${resolved} does not exist. Give the folder that holds config.json and model.safetensors.`);
    }
    if (!stat.isDirectory()) {
      throw new ModelFormatError(resolved, `${resolved} is not a folder. Give the folder that holds config.json and model.safetensors.`);
    }
    const source = new ModelFolder(resolved);
    if (!(await source.exists(CONFIG_FILE))) {
      throw new ModelFormatError(
        path.join(resolved, CONFIG_FILE),
        `model folder ${resolved} has no ${CONFIG_FILE}. A Hugging Face model folder holds config.json beside its weights.`,
      );
    }
    return source;
  }

  async exists(name: string): Promise<boolean> {
    try {
      return (await fs.stat(this.pathOf(name))).isFile();
    } catch {
      return false;
    }
  }

  async readText(name: string): Promise<string> {
    return fs.readFile(this.pathOf(name), 'utf8');
  }

  async openBinary(name: string): Promise<RandomAccessFile> {
    return openLocalFile(this.pathOf(name));
  }

  private pathOf(name: string): string {
    if (name.length === 0 || name.includes('/') || name.includes('\\') || name === '.' || name === '..' || name.includes('\0')) {
      throw new ModelFormatError(this.label, `refusing to read "${name}" from ${this.label}: only plain file names inside the model folder are read`);
    }
    return path.join(this.label, name);
  }
}

/** Opens and loads the model in `folder`. */
export async function loadModelFolder(folder: string): Promise<LoadedModel> {
  return loadModel(await ModelFolder.open(folder));
}

/**
 * One read() system call returns at most about 2 GiB on Linux, so a longer range (a tensor over
 * 2 GiB) is read in pieces of this size.
 */
const MAX_READ_BYTES = 1 << 30;

/** Opens the file at the absolute path `file` for positional reads. */
export async function openLocalFile(file: string): Promise<RandomAccessFile> {
  const handle = await fs.open(file, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (error) {
    await handle.close();
    throw error;
  }
  return {
    size,
    diskPath: file,
    async read(offset: number, length: number): Promise<Uint8Array> {
      // Not zero-filled: every byte is overwritten below, or the read fails.
      const buffer = Buffer.allocUnsafeSlow(length);
      let done = 0;
      while (done < length) {
        let bytesRead: number;
        try {
          ({ bytesRead } = await handle.read(buffer, done, Math.min(length - done, MAX_READ_BYTES), offset + done));
        } catch (error) {
          throw new Error(`Reading ${length} bytes at offset ${offset} of ${file} failed (${error instanceof Error ? error.message : String(error)}). Check that the disk is readable.`, { cause: error });
        }
        if (bytesRead === 0) {
          throw new ModelFormatError(
            file,
            `${file} ended at byte ${offset + done}, before the ${length} bytes at offset ${offset} that its header describes: the file changed after it was opened (is a download still writing it?). Load the model again once the file is complete.`,
          );
        }
        done += bytesRead;
      }
      return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
    },
    close: () => handle.close(),
  };
}
