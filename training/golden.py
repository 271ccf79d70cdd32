#!/usr/bin/env python3
"""Stage 6: golden logits for the extension's engine test.

Loads default-model/ (F16 safetensors) with the PyTorch Llama class of training/model.py,
computes in float64, and writes default-model/golden.json:
  {producedBy, precision, tokenIds: [32 ids of a fixed code snippet],
   lastLogits: [vocab floats for the last position, 9 significant digits],
   attention[layer][head][query]: the query+1 causal probabilities (6 significant digits)}
(the same layout as the fixture goldens, test/unit/fixtureModels.ts `Golden`).

Usage:  /usr/bin/python3 training/golden.py [--model default-model] [--n 32]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import Tokenizer  # noqa: E402
from model import load_hf_folder  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SNIPPET = '''import { readFile } from "node:fs/promises";

export async function loadConfig(path: string): Promise<Config> {
  const text = await readFile(path, "utf8");
  const config = JSON.parse(text) as Config;
  if (!config.name) {
    throw new Error(`missing name in ${path}`);
  }
  return config;
}

def fibonacci(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "default-model"))
    ap.add_argument("--n", type=int, default=32)
    args = ap.parse_args()
    model = load_hf_folder(args.model, dtype=torch.float64)
    tok = Tokenizer.load(os.path.join(args.model, "tokenizer.json"))
    ids = tok.encode(SNIPPET)
    if len(ids) < args.n:
        raise SystemExit("snippet too short: %d tokens" % len(ids))
    ids = ids[:args.n]
    with torch.no_grad():
        logits, attns = model(torch.tensor([ids]), want_attn=True)
    last = logits[0, -1].numpy()
    def num(x, fmt):
        return float(fmt % x)

    # attention[layer][head][query]: the query + 1 causal probabilities (same layout as the
    # fixture goldens of training/fixtures/make_fixtures.py)
    attention = [[[[num(v, "%.6g") for v in p[0, h, q, :q + 1].tolist()] for q in range(len(ids))]
                  for h in range(p.shape[1])] for p in attns]
    out = {
        "tokenIds": ids,
        "text": tok.decode(ids),
        "precision": "float64 from the stored F16 weights",
        "lastLogits": [num(v, "%.9g") for v in last],
        "attention": attention,
        "argmaxNextToken": int(last.argmax()),
        "producedBy": "pytorch %s, training/golden.py with the training Llama class (training/model.py), "
                      "default-model/ F16 weights upcast to float64, computed in float64" % torch.__version__,
    }
    path = os.path.join(args.model, "golden.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote %s (%d tokens, %d logits, %.0f KB), argmax next token %d %r" % (
        path, len(ids), len(last), os.path.getsize(path) / 1e3, out["argmaxNextToken"],
        tok.decode([out["argmaxNextToken"]])))


if __name__ == "__main__":
    main()
