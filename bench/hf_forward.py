#!/usr/bin/env python3
"""Hugging Face transformers on a model folder, as the comparison of `npm run bench -- --real-shapes`.

For each length N, on CUDA when there is a GPU (else the CPU):
  - eager attention with output_attentions=True: every layer's [heads, N, N] probabilities
    materialised and returned, the only way transformers hands out attention weights. Skipped with
    a note when those tensors alone would not fit in the free memory;
  - SDPA without attentions (float32): the floor, the same forward pass computing no weights;
  - SDPA in bfloat16: what people run for speed.
All float32 runs have TF32 off (the engines compute in float32). Logits are computed for the last
position only (logits_to_keep=1), as our engines do. Each time is the median of --repeats timed runs
after one warm-up; peak device memory from torch.cuda.max_memory_allocated.

--ours FILE (from bench/realShapes.ts) gives our engine's results for one N: the token ids (then used
here too), the last position's logits, exact attention rows and their top-k sources. They are
compared with transformers eager on the same tokens: max |logit diff|, argmax, max |prob diff| over
the rows, and how many top-k sets are equal (ties within 1e-6 of the k-th weight count as equal).

Usage: hf_forward.py FOLDER --lengths 2048,8192 [--repeats 2] [--ours F ...] --out RESULT.json
"""
import argparse
import base64
import json
import os
import sys
import time

import numpy as np
import torch


OOM = getattr(torch, "OutOfMemoryError", getattr(torch.cuda, "OutOfMemoryError", MemoryError))


def f32(text):
    return np.frombuffer(base64.b64decode(text), dtype=np.float32)


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def free_bytes(device):
    if device == "cuda":
        return torch.cuda.mem_get_info()[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def timed(model, ids, device, repeats, **kwargs):
    """Median ms of `repeats` forward passes after a warm-up, peak bytes, and the last outputs."""
    times = []
    out = None
    for r in range(repeats + 1):
        out = None
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model(input_ids=ids, use_cache=False, logits_to_keep=1, **kwargs)
        sync(device)
        if r > 0:
            times.append((time.perf_counter() - t0) * 1000)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    times.sort()
    return times[len(times) // 2], peak, out


def compare(ours, out):
    logits = out.logits[0, -1].float().cpu().numpy()
    our_logits = f32(ours["lastLogits"])
    result = {
        "maxLogitDiff": float(np.abs(logits - our_logits).max()),
        "argmaxSame": bool(int(logits.argmax()) == int(our_logits.argmax())),
        "rows": 0,
        "maxProbDiff": 0.0,
        "topKSame": 0,
        "topKCompared": 0,
    }
    k = ours["topK"]
    for row in ours["rows"]:
        layer, head, query = row["layer"], row["head"], row["query"]
        theirs = out.attentions[layer][0, head, query, : query + 1].float().cpu().numpy()
        mine = f32(row["values"])
        result["rows"] += 1
        result["maxProbDiff"] = max(result["maxProbDiff"], float(np.abs(theirs - mine).max()))
        top = [i for i in row["top"] if i >= 0]
        if top:
            result["topKCompared"] += 1
            order = np.argsort(-theirs, kind="stable")[: len(top)]
            kth = theirs[order[-1]]
            # Equal sets, or the only differences are positions tied with the k-th weight.
            differing = set(top) ^ set(int(i) for i in order)
            if all(abs(theirs[i] - kth) <= 1e-6 for i in differing):
                result["topKSame"] += 1
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--lengths", required=True)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--ours", action="append", default=[])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    report = {"device": "?", "torch": torch.__version__, "transformers": "?", "rows": []}
    try:
        import transformers
        from transformers import AutoModelForCausalLM
    except ImportError as error:
        report["error"] = "not installed (%s)" % error
        json.dump(report, open(args.out, "w"))
        return
    report["transformers"] = transformers.__version__
    device = "cuda" if torch.cuda.is_available() else "cpu"
    report["device"] = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (%d threads)" % torch.get_num_threads()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    config = json.load(open(os.path.join(args.folder, "config.json")))
    ours = {}
    for path in args.ours:
        data = json.load(open(path))
        ours[data["n"]] = data

    def load(dtype, attn):
        try:
            return AutoModelForCausalLM.from_pretrained(args.folder, dtype=dtype, attn_implementation=attn).to(device).eval()
        except TypeError:
            return AutoModelForCausalLM.from_pretrained(args.folder, torch_dtype=dtype, attn_implementation=attn).to(device).eval()

    t0 = time.perf_counter()
    model = load(torch.float32, "eager")
    print("  transformers: %s loaded on %s in %.1f s" % (config["architectures"][0], report["device"], time.perf_counter() - t0), flush=True)
    lengths = [int(n) for n in args.lengths.split(",") if n]
    rows = {n: {"n": n} for n in lengths}
    layers = config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    for n in lengths:
        if n > config.get("max_position_embeddings", n):
            continue
        ids = torch.tensor([ours[n]["tokenIds"]] if n in ours else torch.randint(0, config["vocab_size"], (1, n)).tolist(), device=device)
        need = layers * heads * n * n * 4
        if need * 1.15 > free_bytes(device):
            rows[n]["eagerNote"] = "attentions need %.0f GB" % (need / 1e9)
        else:
            try:
                ms, peak, out = timed(model, ids, device, args.repeats, output_attentions=True)
                rows[n]["eagerMs"], rows[n]["eagerPeakBytes"] = ms, peak
                if n in ours:
                    rows[n]["fidelity"] = compare(ours[n], out)
                del out
            except OOM:
                rows[n]["eagerNote"] = "out of memory"
            print("  transformers eager n=%d: %s" % (n, rows[n].get("eagerMs", rows[n].get("eagerNote"))), flush=True)
        if device == "cuda":
            torch.cuda.empty_cache()
    try:
        model.set_attn_implementation("sdpa")
    except Exception:  # older transformers: load again
        del model
        model = load(torch.float32, "sdpa")
    for n in lengths:
        if n > config.get("max_position_embeddings", n):
            continue
        ids = torch.tensor([ours[n]["tokenIds"]] if n in ours else torch.randint(0, config["vocab_size"], (1, n)).tolist(), device=device)
        try:
            ms, peak, out = timed(model, ids, device, args.repeats)
            rows[n]["sdpaMs"], rows[n]["sdpaPeakBytes"] = ms, peak
            del out
        except OOM:
            rows[n]["sdpaNote"] = "out of memory"
    model = model.to(torch.bfloat16)
    for n in lengths:
        if n > config.get("max_position_embeddings", n):
            continue
        ids = torch.tensor([ours[n]["tokenIds"]] if n in ours else torch.randint(0, config["vocab_size"], (1, n)).tolist(), device=device)
        try:
            ms, _, out = timed(model, ids, device, args.repeats)
            rows[n]["sdpaBf16Ms"] = ms
            del out
        except OOM:
            pass
        print("  transformers sdpa n=%d: %s ms (bf16 %s ms)" % (n, rows[n].get("sdpaMs"), rows[n].get("sdpaBf16Ms")), flush=True)
    report["rows"] = [rows[n] for n in lengths]
    json.dump(report, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # report, so the benchmark table says what failed
        import traceback
        traceback.print_exc()
        out = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else None
        if out:
            json.dump({"device": "?", "torch": torch.__version__, "transformers": "?", "rows": [], "error": "%s: %s" % (type(error).__name__, error)}, open(out, "w"))
        sys.exit(1)
