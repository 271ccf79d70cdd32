/**
 * The model the extension analyses with: the embedded default (default-model/ inside the extension)
 * or the folder named by `attentionLens.model`. The host reads only what it needs itself (config
 * for the context length, tokenizer.json to tokenize); the webview fetches the weights.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseModelConfig } from '../../webview/engine/modelConfig';
import type { ModelSpec } from '../../webview/engine/modelTypes';
import { tokenizerFromJson, type TextTokenizer } from '../node/tokenizer';

export const DEFAULT_MODEL_LABEL = 'embedded default model';

export interface ActiveModel {
  /** For messages and the status bar. */
  readonly label: string;
  /** Short name for the status bar, e.g. "default" or the folder name. */
  readonly shortName: string;
  readonly folder: string;
  /** Files in the folder (the webview fetches from this list only). */
  readonly files: readonly string[];
  readonly spec: ModelSpec;
  readonly tokenizer: TextTokenizer;
}

/** Loads the model's config and tokenizer. Throws errors that name the file and what to do. */
export async function loadActiveModel(extensionPath: string, modelSetting: string): Promise<ActiveModel> {
  const isDefault = modelSetting.trim() === '';
  const folder = isDefault ? path.join(extensionPath, 'default-model') : path.resolve(modelSetting.trim());
  const label = isDefault ? DEFAULT_MODEL_LABEL : folder;
  let files: string[];
  try {
    files = (await fs.readdir(folder, { withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => entry.name).sort();
  } catch {
    throw new Error(
      isDefault
        ? `The embedded default model is missing from the extension (${folder}). Reinstall Attention Lens.`
        : `The model folder ${folder} (setting attentionLens.model) does not exist. Run "Attention Lens: Choose Model" to pick another.`,
    );
  }
  for (const required of ['config.json', 'tokenizer.json']) {
    if (!files.includes(required)) throw new Error(`${label} has no ${required}. A Hugging Face model folder needs config.json, tokenizer.json and model.safetensors.`);
  }
  if (!files.includes('model.safetensors') && !files.includes('model.safetensors.index.json')) {
    throw new Error(`${label} has no model.safetensors (nor a sharded model.safetensors.index.json). PyTorch .bin checkpoints are not loaded (they can run code); use the safetensors files.`);
  }
  const readJson = async (name: string): Promise<unknown> => {
    const file = path.join(folder, name);
    try {
      return JSON.parse(await fs.readFile(file, 'utf8'));
    } catch (error) {
      throw new Error(`${file} could not be read as JSON (${error instanceof Error ? error.message : String(error)}).`);
    }
  };
  const spec = parseModelConfig(await readJson('config.json'), path.join(folder, 'config.json'));
  const tokenizer = tokenizerFromJson(await readJson('tokenizer.json'), path.join(folder, 'tokenizer.json'));
  return { label, shortName: isDefault ? 'default model' : path.basename(folder), folder, files, spec, tokenizer };
}
