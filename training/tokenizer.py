#!/usr/bin/env python3
"""Stage 2: train a byte-level BPE tokenizer (own Python trainer), write it in Hugging Face
tokenizer.json form, and encode the corpus splits into uint16 token streams.

  id 0          <|endoftext|>  (bos = eos = document separator)
  ids 1..256    the 256 byte symbols (GPT-2 byte-to-unicode alphabet; every byte representable)
  ids 257..     merges, in training order

Outputs: training/work/tokenizer.json, training/work/data/{train,valid,tune}.bin (uint16,
documents separated by id 0) and {split}.docs.json (path, lang, start offset of each document).

Usage:  /usr/bin/python3 training/tokenizer.py [--vocab 4096] [--sample-mb 16]
Check:  node training/check_tokenizer.mjs   (loads it in @huggingface/tokenizers, round-trips)
"""
import argparse
import collections
import json
import os
import time

import numpy as np

from bpe import BYTE2U, EOT, Tokenizer, pretokenize

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")


def read_split(name):
    with open(os.path.join(WORK, "corpus", name + ".jsonl"), encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def train_bpe(word_counts, vocab_size, n_special):
    alphabet = [BYTE2U[b] for b in range(256)]
    vocab = {EOT: 0}
    for s in alphabet:
        vocab[s] = len(vocab)
    sym_id = dict(vocab)
    id_sym = {i: s for s, i in sym_id.items()}
    words, counts = [], []
    for w, c in word_counts.items():
        words.append([sym_id[ch] for ch in w])
        counts.append(c)
    pair_counts = collections.defaultdict(int)
    where = collections.defaultdict(set)
    for wi, w in enumerate(words):
        c = counts[wi]
        for a, b in zip(w, w[1:]):
            pair_counts[(a, b)] += c
            where[(a, b)].add(wi)
    merges = []
    t0 = time.time()
    while len(vocab) < vocab_size and pair_counts:
        best = max(pair_counts.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))[0]
        if pair_counts[best] < 2:
            break
        a, b = best
        new_s = id_sym[a] + id_sym[b]
        merges.append((id_sym[a], id_sym[b]))
        if new_s not in sym_id:
            nid = len(id_sym)
            sym_id[new_s] = nid
            id_sym[nid] = new_s
        nid = sym_id[new_s]
        if new_s not in vocab:
            vocab[new_s] = len(vocab)
        for wi in list(where[best]):
            w = words[wi]
            c = counts[wi]
            for p in zip(w, w[1:]):
                pair_counts[p] -= c
                if pair_counts[p] <= 0:
                    del pair_counts[p]
                where[p].discard(wi)
            out, i = [], 0
            while i < len(w):
                if i < len(w) - 1 and w[i] == a and w[i + 1] == b:
                    out.append(nid)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[wi] = out
            for p in zip(out, out[1:]):
                pair_counts[p] += c
                where[p].add(wi)
        where.pop(best, None)
        pair_counts.pop(best, None)
        if len(merges) % 500 == 0:
            print("  %d merges, %.0fs" % (len(merges), time.time() - t0), flush=True)
    return vocab, merges


def tokenizer_json(vocab, merges):
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": 0, "content": EOT, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [a + " " + b for a, b in merges]},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--sample-mb", type=float, default=16,
                    help="train the BPE on about this many MB of the train split (every k-th file)")
    ap.add_argument("--skip-train", action="store_true", help="reuse work/tokenizer.json, only encode")
    args = ap.parse_args()
    tok_path = os.path.join(WORK, "tokenizer.json")
    if not args.skip_train:
        docs = list(read_split("train"))
        total = sum(len(d["text"]) for d in docs)
        step = max(1, int(round(total / (args.sample_mb * 1e6))))
        wc = collections.Counter()
        for d in docs[::step]:
            wc.update(pretokenize(d["text"]))
        print("BPE on %d files (every %d-th), %d distinct pre-tokens" % (len(docs[::step]), step, len(wc)))
        vocab, merges = train_bpe(wc, args.vocab, 1)
        json.dump(tokenizer_json(vocab, merges), open(tok_path, "w", encoding="utf-8"),
                  ensure_ascii=False)
        print("vocab %d, merges %d -> %s" % (len(vocab), len(merges), tok_path))
    tok = Tokenizer.load(tok_path)
    os.makedirs(os.path.join(WORK, "data"), exist_ok=True)
    for split in ("valid", "tune", "train"):
        ids, index, nbytes = [], [], 0
        for d in read_split(split):
            index.append({"path": d["path"], "lang": d["lang"], "start": len(ids) + 1})
            ids.append(tok.eot_id)
            ids.extend(tok.encode(d["text"]))
            nbytes += len(d["text"].encode("utf-8"))
        ids.append(tok.eot_id)
        arr = np.array(ids, dtype=np.uint16)
        arr.tofile(os.path.join(WORK, "data", split + ".bin"))
        json.dump({"docs": index, "bytes": nbytes, "tokens": len(ids)},
                  open(os.path.join(WORK, "data", split + ".docs.json"), "w"))
        print("%s: %d docs, %d tokens, %.2f bytes/token" % (split, len(index), len(ids),
                                                           nbytes / len(ids)), flush=True)


if __name__ == "__main__":
    main()
