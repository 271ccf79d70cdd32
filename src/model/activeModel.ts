/**
 * The model the extension analyses with: the embedded default (default-model/ inside the extension),
 * the folder named by `attentionLens.model`, or a Hugging Face repo id (`org/name[@revision]`)
 * resolved to its downloaded snapshot in the model cache. The host reads only what it needs itself
 * (config for the context length, tokenizer.json to tokenize); the webview fetches the weights.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseModelConfig } from '../../engine/model/modelConfig';
import type { ModelSpec } from '../../engine/model/modelTypes';
import { tokenizerFromJson, type TextTokenizer } from '../node/tokenizer';
import { defaultCacheRoot, ModelCache } from '../hub/modelCache';
import { classifyModelSetting, formatRepoRef } from '../hub/repoRef';

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

/**
 * The folder a setting value names. A repo id is looked up in each cache root in turn (the
 * extension's cache, then the CLI's, so `attention-lens pull` prepares a machine for offline use).
 */
export async function resolveModelFolder(extensionPath: string, modelSetting: string, cacheRoots: readonly string[]): Promise<{ folder: string; label: string; shortName: string; isDefault: boolean }> {
  const choice = classifyModelSetting(modelSetting, os.homedir());
  if (choice.kind === 'default') return { folder: path.join(extensionPath, 'default-model'), label: DEFAULT_MODEL_LABEL, shortName: 'default model', isDefault: true };
  if (choice.kind === 'folder') return { folder: choice.folder, label: choice.folder, shortName: path.basename(choice.folder), isDefault: false };
  for (const root of cacheRoots) {
    const folder = await new ModelCache(root).find(choice.ref);
    if (folder) return { folder, label: formatRepoRef(choice.ref), shortName: choice.ref.repo.split('/')[1], isDefault: false };
  }
  throw new Error(
    `${formatRepoRef(choice.ref)} (setting attentionLens.model) is not downloaded yet. Run "Attention Lens: Choose Model" and enter the repo id to download it, or run "attention-lens pull ${formatRepoRef(choice.ref)}" on the command line. Looked in ${cacheRoots.join(' and ')}.`,
  );
}

/** Loads the model's config and tokenizer. Throws errors that name the file and what to do. */
export async function loadActiveModel(extensionPath: string, modelSetting: string, cacheRoots: readonly string[] = [defaultCacheRoot()]): Promise<ActiveModel> {
  const { folder, label, shortName, isDefault } = await resolveModelFolder(extensionPath, modelSetting, cacheRoots);
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
  return { label, shortName, folder, files, spec, tokenizer };
}
