#!/usr/bin/env python3
"""Compare the extension's CPU engine (node out/cli.js forward, needs `npm run build`) with
default-model/golden.json: max |logit diff| over the full vocabulary and max |prob diff| over
every attention row.  Exit code 1 when above 1e-3.

Usage:  /usr/bin/python3 training/check_engine.py [--model default-model]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "default-model"))
    args = ap.parse_args()
    g = json.load(open(os.path.join(args.model, "golden.json")))
    n = len(g["tokenIds"])
    L, H = len(g["attention"]), len(g["attention"][0])
    cmd = ["node", os.path.join(ROOT, "out", "cli.js"), "forward", "--model", args.model, "--backend", "cpu",
           "--token-ids", ",".join(map(str, g["tokenIds"]))]
    for l in range(L):
        for h in range(H):
            cmd += ["--attention", "%d:%d:%d" % (l, h, n - 1)]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    dl = max(abs(a - b) for a, b in zip(out["logits"], g["lastLogits"]))
    da = 0.0
    for row in out["attention"]:
        exp = g["attention"][row["layer"]][row["head"]][row["query"]]
        da = max(da, max(abs(a - b) for a, b in zip(row["probs"], exp)))
    ok = dl <= 1e-3 and da <= 1e-3 and len(out["logits"]) == len(g["lastLogits"])
    print("engine vs golden: max |logit diff| %.2e, max |attention diff| %.2e (last query, all heads): %s"
          % (dl, da, "OK" if ok else "FAIL"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
