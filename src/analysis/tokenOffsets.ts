/**
 * Maps tokens back to the document. The tokenizer library returns ids and token strings but no
 * character offsets, so we rebuild each token's bytes from its vocabulary string and walk them
 * along the document's UTF-8 bytes, then convert byte positions to UTF-16 offsets (what VS Code's
 * `positionAt` takes). Handles byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM2) and SentencePiece-
 * style metaspace tokens with byte fallback (Llama 2, TinyLlama).
 */

/** How a tokenizer spells bytes in its vocabulary strings. */
export type TokenSpelling = 'byteLevel' | 'metaspace' | 'plain';

export interface TokenRange {
  /** UTF-16 offset of the token's first character. */
  readonly start: number;
  /** UTF-16 offset after its last character (start === end for special tokens like BOS). */
  readonly end: number;
}

/** Decides the spelling from a parsed tokenizer.json. */
export function detectSpelling(tokenizerJson: unknown): TokenSpelling {
  const text = JSON.stringify({
    pre: (tokenizerJson as { pre_tokenizer?: unknown })?.pre_tokenizer ?? null,
    dec: (tokenizerJson as { decoder?: unknown })?.decoder ?? null,
  });
  if (text.includes('"ByteLevel"')) return 'byteLevel';
  if (text.includes('"Metaspace"') || text.includes('▁') || text.includes('"ByteFallback"')) return 'metaspace';
  return 'plain';
}

let byteLevelDecoder: Map<number, number> | undefined;

/** GPT-2's byte <-> printable character table, inverted: code point -> byte. */
function byteLevelTable(): Map<number, number> {
  if (byteLevelDecoder) return byteLevelDecoder;
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table = new Map<number, number>();
  for (const b of printable) table.set(b, b);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!printable.includes(b)) table.set(256 + extra++, b);
  }
  byteLevelDecoder = table;
  return table;
}

const utf8 = new TextEncoder();

/** The bytes a vocabulary string stands for. */
export function tokenBytes(token: string, spelling: TokenSpelling): Uint8Array {
  if (spelling === 'byteLevel') {
    const table = byteLevelTable();
    const bytes: number[] = [];
    for (const ch of token) {
      const b = table.get(ch.codePointAt(0)!);
      if (b === undefined) return utf8.encode(token); // an added token spelled in plain text
      bytes.push(b);
    }
    return Uint8Array.from(bytes);
  }
  if (spelling === 'metaspace') {
    const fallback = /^<0x([0-9A-Fa-f]{2})>$/.exec(token);
    if (fallback) return Uint8Array.of(parseInt(fallback[1], 16));
    return utf8.encode(token.replace(/▁/g, ' '));
  }
  return utf8.encode(token);
}

/** For each UTF-8 byte of `text`, the UTF-16 offset of the character it belongs to; plus one entry for the end. */
function byteToUtf16(text: string): { bytes: Uint8Array; offsets: Uint32Array; charEnd: Uint32Array } {
  const bytes = utf8.encode(text);
  const offsets = new Uint32Array(bytes.length + 1);
  const charEnd = new Uint32Array(bytes.length + 1);
  let b = 0;
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const units = cp > 0xffff ? 2 : 1;
    const width = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (let k = 0; k < width; k++) {
      offsets[b + k] = i;
      charEnd[b + k] = i + units;
    }
    b += width;
    i += units;
  }
  offsets[bytes.length] = text.length;
  charEnd[bytes.length] = text.length;
  return { bytes, offsets, charEnd };
}

/**
 * The document range of every token. Tokens whose bytes are not found where expected (special
 * tokens, a dummy-prefix space the tokenizer added, text a normalizer changed) get an empty range at
 * the current position and the walk continues, so one odd token never shifts the rest.
 * A token that covers only part of a multi-byte character (byte-level BPE can split emoji) gets the
 * whole character's range.
 */
export function alignTokens(text: string, tokens: readonly string[], spelling: TokenSpelling, specialTokens: ReadonlySet<string> = new Set()): TokenRange[] {
  const { bytes, offsets, charEnd } = byteToUtf16(text);
  const ranges: TokenRange[] = [];
  let cursor = 0;
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t];
    if (specialTokens.has(token)) {
      ranges.push({ start: offsets[cursor], end: offsets[cursor] });
      continue;
    }
    let piece = tokenBytes(token, spelling);
    // SentencePiece adds a space before the first word that the document does not have.
    if (spelling === 'metaspace' && piece[0] === 0x20 && bytes[cursor] !== 0x20) piece = piece.subarray(1);
    if (piece.length === 0 || !matchesAt(bytes, cursor, piece)) {
      ranges.push({ start: offsets[cursor], end: offsets[cursor] });
      continue;
    }
    const first = cursor;
    const last = cursor + piece.length - 1;
    ranges.push({ start: offsets[first], end: charEnd[last] });
    cursor += piece.length;
  }
  return ranges;
}

function matchesAt(haystack: Uint8Array, at: number, needle: Uint8Array): boolean {
  if (at + needle.length > haystack.length) return false;
  for (let i = 0; i < needle.length; i++) if (haystack[at + i] !== needle[i]) return false;
  return true;
}

/** A run of tokens that together spell one identifier (sub-word tokens merged for display). */
export interface IdentifierGroup {
  readonly name: string;
  readonly start: number;
  readonly end: number;
  /** Token positions in the group, ascending. */
  readonly tokens: readonly number[];
}

const IDENTIFIER_CHAR = /[\p{L}\p{N}_$]/u;

/**
 * Groups tokens into identifiers: maximal runs of word characters in the document, with every token
 * whose (whitespace-trimmed) range lies inside the run. Tokens that are not part of an identifier
 * (operators, strings' quotes, whitespace) are left out.
 */
export function identifierGroups(text: string, ranges: readonly TokenRange[]): IdentifierGroup[] {
  const groups: IdentifierGroup[] = [];
  let current: { start: number; end: number; tokens: number[] } | undefined;
  const flush = () => {
    if (current) {
      const name = text.slice(current.start, current.end);
      if (/^[\p{L}_$]/u.test(name)) groups.push({ name, start: current.start, end: current.end, tokens: current.tokens });
    }
    current = undefined;
  };
  for (let t = 0; t < ranges.length; t++) {
    const end = ranges[t].end;
    let start = ranges[t].start;
    while (start < end && !IDENTIFIER_CHAR.test(text[start])) start++;
    if (start >= end) {
      if (ranges[t].end > ranges[t].start) flush();
      continue;
    }
    // A token that has non-word characters after its word part ends the identifier.
    let wordEnd = start;
    while (wordEnd < end && IDENTIFIER_CHAR.test(text[wordEnd])) wordEnd++;
    const continues = current !== undefined && current.end === start;
    if (!continues) flush();
    if (!current) current = { start, end: wordEnd, tokens: [t] };
    else {
      current.end = wordEnd;
      current.tokens.push(t);
    }
    if (wordEnd < end) flush();
  }
  flush();
  return groups;
}
