"""Byte-level BPE, exactly as Hugging Face `tokenizers` / `@huggingface/tokenizers` apply it
(ByteLevel pre-tokenizer with the GPT-2 regex, no prefix space; BPE merges applied by rank).

Shared by tokenizer.py (training + corpus encoding), report.py and golden.py.
"""
import json

import regex

GPT2_PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
EOT = "<|endoftext|>"


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE2U = bytes_to_unicode()
U2BYTE = {v: k for k, v in BYTE2U.items()}


def pretokenize(text):
    """-> list of byte-level strings (each char is one byte via BYTE2U)."""
    return ["".join(BYTE2U[b] for b in w.encode("utf-8")) for w in GPT2_PATTERN.findall(text)]


class Tokenizer:
    def __init__(self, vocab, merges, eot_id):
        self.vocab = vocab  # str -> id
        self.inv = {i: s for s, i in vocab.items()}
        self.ranks = {tuple(m): r for r, m in enumerate(merges)}
        self.eot_id = eot_id
        self.cache = {}

    @classmethod
    def load(cls, path):
        d = json.load(open(path, encoding="utf-8"))
        merges = [m.split(" ") if isinstance(m, str) else m for m in d["model"]["merges"]]
        eot = [t["id"] for t in d["added_tokens"] if t["content"] == EOT][0]
        return cls(d["model"]["vocab"], merges, eot)

    def _bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        ranks = self.ranks
        while len(parts) > 1:
            best, best_i = None, -1
            for i in range(len(parts) - 1):
                r = ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, best_i = r, i
            if best is None:
                break
            a, b = parts[best_i], parts[best_i + 1]
            # merge every occurrence of (a, b), left to right (as HF does for the lowest rank)
            out, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        ids = [self.vocab[p] for p in parts]
        if len(self.cache) < 2_000_000:
            self.cache[word] = ids
        return ids

    def encode(self, text):
        """Encode plain text (no special-token parsing)."""
        ids = []
        for w in pretokenize(text):
            ids.extend(self._bpe(w))
        return ids

    def encode_with_offsets(self, text):
        """-> ids, list of (char_start, char_end) into text for each token (approximate for
        tokens that split a multi-byte character)."""
        ids, spans = [], []
        pos = 0
        for m in GPT2_PATTERN.finditer(text):
            w = m.group(0)
            bw = "".join(BYTE2U[b] for b in w.encode("utf-8"))
            toks = self._bpe(bw)
            # map byte offsets inside w back to char offsets
            b2c = []
            for ci, ch in enumerate(w):
                b2c.extend([ci] * len(ch.encode("utf-8")))
            b2c.append(len(w))
            bo = 0
            for t in toks:
                n = len(self.inv[t])
                spans.append((m.start() + b2c[bo], m.start() + b2c[min(bo + n, len(b2c) - 1)]))
                bo += n
            ids.extend(toks)
        return ids, spans

    def decode(self, ids):
        bs = bytearray()
        for i in ids:
            s = self.inv[i]
            if s == EOT:
                bs.extend(EOT.encode())
            else:
                bs.extend(U2BYTE[c] for c in s)
        return bs.decode("utf-8", errors="replace")
