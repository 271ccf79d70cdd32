/**
 * A model folder on the local file system as a ModelFileSource (config.json, safetensors weights,
 * tokenizer.json). File names are plain names inside the folder; anything else is refused, so a
 * crafted shard index cannot read outside the folder.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ModelFormatError } from '../model/modelFormatError';
import { CONFIG_FILE, loadModel, type ModelFileSource } from '../model/modelLoader';
import type { LoadedModel } from '../model/modelTypes';

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

  async readBytes(name: string): Promise<Uint8Array> {
    const buffer = await fs.readFile(this.pathOf(name));
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
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
