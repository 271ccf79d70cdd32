#!/usr/bin/env python3
"""Stage 5: attention report on the held-out files, written into default-model/MODEL_CARD.md.

Metrics (model loaded from the exported F16 folder, computed in float32):
  * validation loss: nats/token and bits/byte over the whole validation split (each file
    [EOT] + tokens + [EOT], windows of 1024 with every token predicted once).
  * induction score per head: [EOT] R R with R = 50 random merge tokens; mean attention from each
    token of the second copy to the token after its earlier occurrence (32 sequences).
  * distant-reference hit rate per head: identifier tokens (regex identifiers, keywords excluded,
    >= 2 chars) whose nearest earlier occurrence of the same identifier (same 1024-token window)
    ends >= 64 tokens before; hit = the head's top-1 attended position lies inside an earlier
    occurrence of that identifier.  "+next" also counts the token right after an earlier
    occurrence (where an induction head looks when the identifier is one token).
    The best head is chosen on the tuning split and reported on the validation split.
  * the same restricted to references whose identifier has an earlier definition or import in
    the window (regex: def/class/function/const/let/var/import/from-import); hit = top-1 inside
    that definition/import occurrence.

Usage:  /usr/bin/python3 training/report.py [--model default-model] [--max-docs N] [--no-card]
"""
import argparse
import bisect
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import Tokenizer  # noqa: E402
from metrics import induction_scores  # noqa: E402
from model import load_hf_folder  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(HERE, "work")
WIN = 1024
MIN_DIST = 64
KEYWORDS = set("""
False None True and as assert async await break class continue def del elif else except finally for
from global if import in is lambda nonlocal not or pass raise return try while with yield self cls
abstract any boolean case catch const constructor debugger declare default delete do enum export
extends false function get implements instanceof interface keyof let new null number of package
private protected public readonly require set static string super switch this throw true type
typeof undefined var void module exports prototype length
""".split())
IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
JS_DEFS = [
    re.compile(r"\b(?:function\*?|class|const|let|var|interface|enum)\s+([A-Za-z_$][\w$]*)"),
    re.compile(r"\btype\s+([A-Za-z_$][\w$]*)\s*(?:<[^>\n]*>)?\s*="),
    re.compile(r"\bimport\s+(?:type\s+)?([A-Za-z_$][\w$]*)\s*(?:,|\s+from\b)"),   # default import
    re.compile(r"\bimport\s+\*\s+as\s+([A-Za-z_$][\w$]*)"),                      # namespace import
]
JS_LIST = re.compile(r"\bimport\s+(?:type\s+)?(?:[\w$]+\s*,\s*)?\{([^}]*)\}\s*from")  # named imports
PY_DEFS = [re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", re.M)]
PY_IMPORT = re.compile(r"^\s*import\s+([^\n#;]+)", re.M)
PY_FROM = re.compile(r"^\s*from\s+[\w.]+\s+import\s+(\([^)]*\)|[^\n#;]+)", re.M)
ITEM = re.compile(r"([A-Za-z_$][\w$.]*)(?:\s+as\s+([A-Za-z_$][\w$]*))?")


def definition_spans(text, lang="javascript"):
    """Char spans of identifiers that are being defined or imported (bound names)."""
    spans = set()
    py = lang == "python"
    for pat in (PY_DEFS if py else JS_DEFS):
        for m in pat.finditer(text):
            spans.add((m.start(1), m.end(1)))
    for pat in ((PY_IMPORT, PY_FROM) if py else (JS_LIST,)):
        for m in pat.finditer(text):
            body, off = m.group(1), m.start(1)
            for im in ITEM.finditer(body):
                if im.group(2):
                    spans.add((off + im.start(2), off + im.end(2)))
                else:
                    name = im.group(1).split(".")[0]
                    spans.add((off + im.start(1), off + im.start(1) + len(name)))
    return spans


def analyse_doc(text, tok, lang="javascript"):
    ids, spans = tok.encode_with_offsets(text)
    starts = [s for s, _ in spans]
    defs = definition_spans(text, lang)
    occs = []  # (name, tok_lo, tok_hi_inclusive, is_def)
    for m in IDENT.finditer(text):
        name = m.group(0)
        if len(name) < 2 or name in KEYWORDS:
            continue
        lo = bisect.bisect_right(starts, m.start()) - 1
        hi = bisect.bisect_left(starts, m.end()) - 1
        if lo < 0 or hi < lo:
            continue
        occs.append((name, lo, hi, (m.start(), m.end()) in defs))
    return ids, occs


class Stats:
    def __init__(self, nl, nh):
        self.n = 0
        self.hit = np.zeros((nl, nh))
        self.hit_next = np.zeros((nl, nh))
        self.n_def = 0
        self.hit_def = np.zeros((nl, nh))
        self.hit_def_any = np.zeros((nl, nh))
        self.nll = 0.0
        self.ntok = 0
        self.nbytes = 0


@torch.no_grad()
def run_split(model, tok, split, max_docs, st):
    docs = [json.loads(l) for l in open(os.path.join(WORK, "corpus", split + ".jsonl"), encoding="utf-8")]
    if max_docs:
        docs = docs[:max_docs]
    eot = tok.eot_id
    for d in docs:
        text = d["text"]
        ids, occs = analyse_doc(text, tok, d["lang"])
        seq = [eot] + ids + [eot]
        st.nbytes += len(text.encode("utf-8"))
        # token -> occurrence (shifted by 1 for the leading EOT)
        for w0 in range(0, len(seq) - 1, WIN):
            w = seq[w0:w0 + WIN + 1]
            x = torch.tensor(w[:-1])[None]
            y = torch.tensor(w[1:])
            logits, attns = model(x, want_attn=True)
            st.nll += F.cross_entropy(logits[0].float(), y, reduction="sum").item()
            st.ntok += len(y)
            T = x.shape[1]
            # occurrences fully inside this window (window positions)
            wocc = []
            for name, lo, hi, isdef in occs:
                a, b = lo + 1 - w0, hi + 1 - w0
                if a >= 0 and b < T:
                    wocc.append((name, a, b, isdef))
            if not wocc:
                continue
            names = {}
            tok_name = np.full(T, -1)
            tok_occ = np.full(T, -1)
            tok_def = np.zeros(T, dtype=bool)
            occ_end = np.full(len(wocc), -1)
            for oi, (name, a, b, isdef) in enumerate(wocc):
                nid = names.setdefault(name, len(names))
                tok_name[a:b + 1] = nid
                tok_occ[a:b + 1] = oi
                tok_def[a:b + 1] = isdef
                occ_end[oi] = b
            # queries
            last_end, first_def = {}, {}
            q_idx, q_def = [], []
            for oi, (name, a, b, isdef) in enumerate(wocc):
                if name in last_end:
                    for q in range(a, b + 1):
                        if q - last_end[name] >= MIN_DIST:
                            q_idx.append(q)
                            q_def.append(name in first_def)
                last_end[name] = b
                if isdef and name not in first_def:
                    first_def[name] = oi
            if not q_idx:
                continue
            q_idx = np.array(q_idx)
            q_def = np.array(q_def)
            top = np.stack([p[0].argmax(-1).numpy() for p in attns])  # [L, H, T]
            t = top[:, :, q_idx]                                        # [L, H, Q]
            same = tok_name[t] == tok_name[q_idx]
            other = tok_occ[t] != tok_occ[q_idx]
            hit = same & other
            prev = np.maximum(t - 1, 0)
            is_end = np.zeros(T, dtype=bool)
            is_end[occ_end] = True
            hit_next = hit | ((tok_name[prev] == tok_name[q_idx]) & (tok_occ[prev] != tok_occ[q_idx])
                              & is_end[prev] & (t > 0))
            st.n += len(q_idx)
            st.hit += hit.sum(-1)
            st.hit_next += hit_next.sum(-1)
            if q_def.any():
                st.n_def += int(q_def.sum())
                st.hit_def += (hit & tok_def[t])[:, :, q_def].sum(-1)
                st.hit_def_any += hit[:, :, q_def].sum(-1)
    return st


def fmt_table(arr, fmt="%.3f"):
    nl, nh = arr.shape
    s = "| layer | " + " | ".join("h%d" % h for h in range(nh)) + " |\n|---|" + "---|" * nh + "\n"
    for l in range(nl):
        s += "| %d | " % l + " | ".join(fmt % v for v in arr[l]) + " |\n"
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "default-model"))
    ap.add_argument("--max-docs", type=int, default=0, help="limit files per split (0 = all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-card", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model = load_hf_folder(args.model)
    tok = Tokenizer.load(os.path.join(args.model, "tokenizer.json"))
    cfg = model.config
    nl, nh = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    ind = induction_scores(model, n_seq=32, length=50, seed=123)
    tune = run_split(model, tok, "tune", args.max_docs, Stats(nl, nh))
    valid = run_split(model, tok, "valid", args.max_docs, Stats(nl, nh))
    rate = lambda st: st.hit / max(1, st.n)
    best = np.unravel_index(rate(tune).argmax(), rate(tune).shape)
    rate_def = lambda st: st.hit_def / max(1, st.n_def)
    best_def = np.unravel_index(rate_def(tune).argmax(), rate_def(tune).shape)
    best_ind = np.unravel_index(ind.argmax(), ind.shape)
    nats = valid.nll / valid.ntok
    bpb = valid.nll / math.log(2) / valid.nbytes
    meta = json.load(open(os.path.join(args.model, "config.json")))
    res = {
        "valid_loss_nats_per_token": nats, "valid_bits_per_byte": bpb, "valid_tokens": valid.ntok,
        "valid_bytes": valid.nbytes, "induction_score": ind.tolist(),
        "induction_best": {"layer": int(best_ind[0]), "head": int(best_ind[1]), "score": float(ind.max())},
        "heads_induction_ge_0.3": int((ind >= 0.3).sum()),
        "distant_queries_valid": valid.n, "distant_queries_tune": tune.n,
        "distant_hit_rate_valid": rate(valid).tolist(),
        "distant_hit_rate_next_valid": (valid.hit_next / max(1, valid.n)).tolist(),
        "best_head_tune": {"layer": int(best[0]), "head": int(best[1]),
                           "tune_rate": float(rate(tune)[best]), "valid_rate": float(rate(valid)[best]),
                           "valid_rate_next": float(valid.hit_next[best] / max(1, valid.n))},
        "def_queries_valid": valid.n_def,
        "def_hit_rate_valid": rate_def(valid).tolist(),
        "best_def_head_tune": {"layer": int(best_def[0]), "head": int(best_def[1]),
                               "tune_rate": float(rate_def(tune)[best_def]),
                               "valid_rate": float(rate_def(valid)[best_def]),
                               "valid_rate_any_earlier": float(valid.hit_def_any[best_def] / max(1, valid.n_def))},
        "seconds": time.time() - t0,
    }
    st = os.path.join(args.model, "model.safetensors")
    from safetensors_io import read_safetensors  # noqa
    import struct
    hdr = json.loads(open(st, "rb").read(8 + struct.unpack("<Q", open(st, "rb").read(8))[0])[8:])
    trained = hdr.get("__metadata__", {}).get("tokens", "?")
    res["trained_tokens"] = trained
    json.dump(res, open(os.path.join(WORK, "report.json"), "w"), indent=1)
    b, bd = res["best_head_tune"], res["best_def_head_tune"]
    md = f"""Measured by `training/report.py` on the held-out files (never trained on) for the exported
F16 weights (computed in float32), after {int(float(trained)) / 1e6:.2f}M training tokens.

| metric | value | target |
|---|---|---|
| validation loss | **{nats:.3f} nats/token**, **{bpb:.3f} bits/byte** ({valid.ntok:,} tokens, {valid.nbytes / 1e6:.2f} MB) | |
| best induction score (layer {best_ind[0]}, head {best_ind[1]}) | **{ind.max():.3f}** ({res['heads_induction_ge_0.3']} heads >= 0.3) | >= 0.3 |
| distant-reference hit rate, best head on tuning split (layer {b['layer']}, head {b['head']}) | **{100 * b['valid_rate']:.1f}%** on validation (tuning {100 * b['tune_rate']:.1f}%; incl. token after the earlier occurrence {100 * b['valid_rate_next']:.1f}%), {valid.n:,} reference tokens | >= 50% |
| definition/import hit rate, best head on tuning split (layer {bd['layer']}, head {bd['head']}) | **{100 * bd['valid_rate']:.1f}%** on validation (top-1 inside any earlier occurrence: {100 * bd['valid_rate_any_earlier']:.1f}%), {valid.n_def:,} reference tokens | |

Distant reference = a token of an identifier (keywords excluded) whose nearest earlier occurrence
in the same 1024-token window ends >= {MIN_DIST} tokens before it; hit = the head's top-1 attended
position lies inside an earlier occurrence of the same identifier. Definition/import = the
earlier occurrence is matched by a def/class/function/const/let/var/import/from-import regex.
Induction score: `[EOT] R R`, R = 50 random tokens, attention from the second copy to the token
after the earlier occurrence (32 sequences).

Induction score per head:

{fmt_table(ind)}
Distant-reference hit rate per head (validation):

{fmt_table(rate(valid))}
Definition/import hit rate per head (validation):

{fmt_table(rate_def(valid))}"""
    print(md)
    print("report: %.0fs" % res["seconds"])
    if not args.no_card:
        card_path = os.path.join(args.model, "MODEL_CARD.md")
        card = open(card_path).read()
        s, e = "<!-- report:start -->", "<!-- report:end -->"
        block = s + "\n" + md + "\n" + e
        if s in card and e in card:
            card = card[:card.index(s)] + block + card[card.index(e) + len(e):]
        else:
            card += "\n## Evaluation\n" + block + "\n"
        open(card_path, "w").write(card)


if __name__ == "__main__":
    main()
