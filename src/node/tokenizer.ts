/**
 * Hugging Face tokenizer.json support for Node, through the pure-JS `@huggingface/tokenizers`.
 * It gives ids and tokens but no character offsets; aligning tokens with source ranges is done
 * elsewhere.
 */
import * as fs from 'node:fs/promises';
import { Tokenizer } from '@huggingface/tokenizers';
import { detectSpelling, type TokenSpelling } from '../analysis/tokenOffsets';

export class TokenizerFormatError extends Error {
  override readonly name = 'TokenizerFormatError';

  constructor(
    readonly file: string,
    message: string,
  ) {
    super(message);
  }
}

export interface TextTokenizer {
  /** Token ids of `text`, without special tokens added. */
  encode(text: string): number[];
  /** Text of `ids` (special tokens kept). */
  decode(ids: readonly number[]): string;
  /** The token strings (vocabulary entries) of `text`. */
  tokens(text: string): string[];
  /** Ids and token strings of `text` in one pass, without special tokens. */
  encodeWithTokens(text: string): { ids: number[]; tokens: string[] };
  /** How vocabulary strings spell bytes (for mapping tokens back to source ranges). */
  readonly spelling: TokenSpelling;
  /** Contents of the special added tokens (BOS, EOS, ...), which have no source text. */
  readonly specialTokens: ReadonlySet<string>;
  /** Number of entries in the vocabulary, added tokens included. */
  readonly vocabSize: number;
}

/** Builds a tokenizer from the parsed contents of a tokenizer.json (and optionally tokenizer_config.json). */
export function tokenizerFromJson(json: unknown, file: string, config: object = {}): TextTokenizer {
  const model = (json as { model?: { type?: unknown; vocab?: unknown } } | null)?.model;
  if (typeof json !== 'object' || json === null || typeof model !== 'object' || model === null || typeof model.vocab !== 'object') {
    throw new TokenizerFormatError(file, `${file} is not a Hugging Face tokenizer.json: it has no "model" with a "vocab". Use the tokenizer.json from the model's repository.`);
  }
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json, config);
  } catch (error) {
    throw new TokenizerFormatError(
      file,
      `${file} could not be loaded as a tokenizer (${error instanceof Error ? error.message : String(error)}). Use the tokenizer.json from the model's repository.`,
    );
  }
  const vocabSize = tokenizer.get_vocab(true).size;
  const added = (json as { added_tokens?: Array<{ content?: unknown; special?: unknown }> }).added_tokens ?? [];
  const specialTokens = new Set(added.filter((t) => t.special === true && typeof t.content === 'string').map((t) => t.content as string));
  return {
    vocabSize,
    spelling: detectSpelling(json),
    specialTokens,
    encodeWithTokens: (text) => {
      const encoding = tokenizer.encode(text, { add_special_tokens: false });
      return { ids: encoding.ids, tokens: encoding.tokens };
    },
    encode: (text) => tokenizer.encode(text, { add_special_tokens: false }).ids,
    decode: (ids) => tokenizer.decode([...ids], { skip_special_tokens: false, clean_up_tokenization_spaces: false }),
    tokens: (text) => tokenizer.encode(text, { add_special_tokens: false }).tokens,
  };
}

/** Reads and loads a tokenizer.json file. Throws TokenizerFormatError with the file name for unreadable or malformed files. */
export async function loadTokenizerFile(file: string): Promise<TextTokenizer> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new TokenizerFormatError(file, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TokenizerFormatError(file, `${file} is not valid JSON (${error instanceof Error ? error.message : String(error)}).`);
  }
  return tokenizerFromJson(json, file);
}
