import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { alignTokens, detectSpelling, identifierGroups, tokenBytes, type TokenSpelling } from '../../src/analysis/tokenOffsets';

/** GPT-2's printable spelling of a byte, to build a byte-level vocabulary. */
function byteChar(b: number): string {
  const printable = (x: number) => (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
  if (printable(b)) return String.fromCodePoint(b);
  let n = 0;
  for (let x = 0; x < b; x++) if (!printable(x)) n++;
  return String.fromCodePoint(256 + n);
}

function byteLevelTokenizerJson() {
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[byteChar(b)] = b;
  const merges = ['i m', 'im p', 'imp o', 'impo r', 'impor t', 'Ġ f', 'Ġf o', 'Ġfo o', 'r e', 'c o', 'co n', 'con s', 'cons t'];
  for (const merge of merges) vocab[merge.replace(' ', '')] = Object.keys(vocab).length;
  return {
    version: '1.0',
    added_tokens: [{ id: 300, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: { ...vocab, '<|endoftext|>': 300 }, merges },
  };
}

function metaspaceTokenizerJson() {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  for (const piece of ['▁', 'f', 'o', 'x', 'y', '=', '(', ')', 'é', '▁f', '▁fo', '▁foo']) vocab[piece] = Object.keys(vocab).length;
  return {
    version: '1.0',
    added_tokens: [
      { id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 1, content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: null,
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges: ['▁ f', '▁f o', '▁fo o'] },
  };
}

function check(text: string, json: object, spelling: TokenSpelling) {
  const tokenizer = new Tokenizer(json, {});
  const encoding = tokenizer.encode(text, { add_special_tokens: false });
  const ranges = alignTokens(text, encoding.tokens, spelling);
  assert.equal(ranges.length, encoding.tokens.length);
  return { tokens: encoding.tokens, ranges };
}

const tricky = 'import foo\r\n\tconst x = "é😀";\r\nfoo(x)\n';

test('byte-level tokens map to exact UTF-16 ranges across CRLF, tabs, accents and emoji', () => {
  const json = byteLevelTokenizerJson();
  assert.equal(detectSpelling(json), 'byteLevel');
  const { tokens, ranges } = check(tricky, json, 'byteLevel');
  // Ranges are contiguous and cover the whole text (no token lost or shifted).
  assert.equal(ranges[0].start, 0);
  assert.equal(ranges[ranges.length - 1].end, tricky.length);
  for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i].start <= ranges[i - 1].end && ranges[i].start >= ranges[i - 1].start, `token ${i} continues where ${i - 1} ended`);
  // Every token that is a whole number of characters spells exactly its range's text.
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let whole = 0;
  tokens.forEach((token, i) => {
    let decoded: string | undefined;
    try {
      decoded = decoder.decode(tokenBytes(token, 'byteLevel'));
    } catch {
      // a piece of a multi-byte character: its range is the whole character
      assert.equal(tricky.slice(ranges[i].start, ranges[i].end), tricky.slice(ranges[i].start, ranges[i].end).length === 2 ? '😀' : 'é');
      return;
    }
    whole++;
    assert.equal(tricky.slice(ranges[i].start, ranges[i].end), decoded, `token ${i} ${JSON.stringify(token)}`);
  });
  assert.ok(whole > 10);
  const importToken = tokens.indexOf('import');
  assert.deepEqual(ranges[importToken], { start: 0, end: 6 });
  const emoji = tricky.indexOf('😀');
  assert.ok(ranges.some((r) => r.start === emoji && r.end === emoji + 2), 'the emoji (a surrogate pair) is covered as one character');
});

test('metaspace tokens with byte fallback map back, without the added leading space', () => {
  const text = 'foo(x) = é😀\ny';
  const json = metaspaceTokenizerJson();
  assert.equal(detectSpelling(json), 'metaspace');
  const { tokens, ranges } = check(text, json, 'metaspace');
  assert.equal(tokens[0], '▁foo');
  assert.deepEqual(ranges[0], { start: 0, end: 3 }, 'the dummy prefix space is not in the document');
  assert.equal(ranges[ranges.length - 1].end, text.length);
  const emojiStart = text.indexOf('😀');
  const emojiPieces = ranges.filter((r) => r.start === emojiStart);
  assert.equal(emojiPieces.length, 4, 'four byte-fallback tokens, each mapped to the whole emoji');
  assert.ok(emojiPieces.every((r) => r.end === emojiStart + 2));
});

test('special tokens and tokens that do not match get empty ranges without shifting the rest', () => {
  const text = 'foo foo';
  const ranges = alignTokens(text, ['<|endoftext|>', 'foo', 'Ġfoo'], 'byteLevel', new Set(['<|endoftext|>']));
  assert.deepEqual(ranges, [{ start: 0, end: 0 }, { start: 0, end: 3 }, { start: 3, end: 7 }]);
  const mismatched = alignTokens(text, ['bar', 'foo', 'Ġfoo'], 'byteLevel');
  assert.deepEqual(mismatched, [{ start: 0, end: 0 }, { start: 0, end: 3 }, { start: 3, end: 7 }]);
});

test('sub-word tokens are merged into identifiers for display', () => {
  const text = 'readFileSync(path); x_1 = 42';
  // read|File|Sync|(|path|);|Ġx|_|1|Ġ=|Ġ42
  const tokens = ['read', 'File', 'Sync', '(', 'path', ');', 'Ġx', '_', '1', 'Ġ=', 'Ġ42'];
  const groups = identifierGroups(text, alignTokens(text, tokens, 'byteLevel'));
  assert.deepEqual(
    groups.map((g) => [g.name, g.tokens]),
    [
      ['readFileSync', [0, 1, 2]],
      ['path', [4]],
      ['x_1', [6, 7, 8]],
    ],
  );
  assert.deepEqual([groups[0].start, groups[0].end], [0, 12]);
});
