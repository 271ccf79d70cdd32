/**
 * Decides whether a document can be analysed, before any tokenizing. Pure, so every case is unit
 * tested; the controller shows `message` to the user.
 */

export type DocumentProblem =
  | { readonly kind: 'refuse'; readonly reason: 'empty' | 'binary' | 'notSource' | 'tooLarge'; readonly message: string }
  | { readonly kind: 'warn'; readonly reason: 'invalidUtf8' | 'minified' | 'notebookCell'; readonly message: string };

export interface DocumentFacts {
  readonly text: string;
  readonly fileName: string;
  readonly uriScheme: string;
  /** Analysing a selection rather than the whole document. */
  readonly isSelection: boolean;
  /** attentionLens.maxFileTokens: the text is refused before tokenizing when it is far longer. */
  readonly maxFileTokens: number;
}

/** Schemes that hold editor UI rather than source code. */
const NOT_SOURCE_SCHEMES = new Set(['output', 'vscode-settings', 'debug', 'vscode-terminal', 'comment', 'walkThrough', 'walkThroughSnippet']);

/** Source averages 3-4 characters per token; 16 per token is beyond any tokenizer, so a safe early cap. */
export const MAX_CHARS_PER_TOKEN = 16;

/** Refusals first (nothing is analysed), then warnings (analysed, the user is told why it may look odd). */
export function checkDocument(facts: DocumentFacts): DocumentProblem[] {
  const { text, fileName } = facts;
  const what = facts.isSelection ? 'The selection' : fileName;
  if (NOT_SOURCE_SCHEMES.has(facts.uriScheme)) {
    return [{ kind: 'refuse', reason: 'notSource', message: `Attention Lens analyses source files; ${fileName} (${facts.uriScheme}) is not one.` }];
  }
  if (text.trim().length === 0) {
    return [{ kind: 'refuse', reason: 'empty', message: `${what} is empty: there is nothing to analyse.` }];
  }
  const sample = text.length > 65536 ? text.slice(0, 65536) : text;
  const nul = sample.indexOf('\u0000');
  const controls = (sample.match(/[\u0001-\u0008\u000e-\u001f]/g) ?? []).length;
  if (nul >= 0 || controls > sample.length / 100) {
    return [{ kind: 'refuse', reason: 'binary', message: `${what} looks like a binary file (it contains ${nul >= 0 ? 'NUL bytes' : 'control characters'}). Attention Lens analyses source text.` }];
  }
  if (text.length > facts.maxFileTokens * MAX_CHARS_PER_TOKEN) {
    return [
      {
        kind: 'refuse',
        reason: 'tooLarge',
        message: `${what} has ${text.length.toLocaleString('en-US')} characters, more than attentionLens.maxFileTokens (${facts.maxFileTokens.toLocaleString('en-US')} tokens) allows. Select the part you want and run "Attention Lens: Analyze Selection", or raise the setting.`,
      },
    ];
  }
  const problems: DocumentProblem[] = [];
  const replacement = (sample.match(/\uFFFD/g) ?? []).length;
  if (replacement > 0) {
    problems.push({ kind: 'warn', reason: 'invalidUtf8', message: `${what} contains ${replacement} character${replacement === 1 ? '' : 's'} that are not valid in its encoding (shown as \uFFFD); they are analysed as that replacement character. Reopen the file with the right encoding for exact results.` });
  }
  const lines = text.split('\n');
  const longest = lines.reduce((max, line) => Math.max(max, line.length), 0);
  if (longest > 2000 && lines.length < 10) {
    problems.push({ kind: 'warn', reason: 'minified', message: `${what} looks minified (a line of ${longest.toLocaleString('en-US')} characters). Attention is computed, but minified code has little of the structure Attention Lens shows.` });
  }
  if (facts.uriScheme === 'vscode-notebook-cell') {
    problems.push({ kind: 'warn', reason: 'notebookCell', message: 'Attention Lens analyses this notebook cell on its own; definitions in other cells are not in view.' });
  }
  return problems;
}
