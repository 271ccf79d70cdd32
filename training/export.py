#!/usr/bin/env python3
"""Stage 4: export a training checkpoint as a Hugging Face LlamaForCausalLM folder.

Writes default-model/ (repo root): config.json, model.safetensors (F16, written by hand),
tokenizer.json, tokenizer_config.json, training_log.txt, MODEL_CARD.md (the report section
written by report.py is kept).  Refuses to write more than 25 MB.

Usage:  /usr/bin/python3 training/export.py [--ckpt training/work/ckpt/latest.pt] [--out default-model]
"""
import argparse
import datetime
import json
import os
import re
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(HERE, "work")
REPORT_START, REPORT_END = "<!-- report:start -->", "<!-- report:end -->"
CONFIG_KEYS = ["architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size",
               "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
               "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling",
               "attention_bias", "attention_dropout", "mlp_bias", "tie_word_embeddings",
               "initializer_range", "bos_token_id", "eos_token_id", "torch_dtype", "use_cache"]


def summarize_log(path):
    """Last train line + eval lines of the current run, and the average throughput."""
    if not os.path.exists(path):
        return [], None
    lines = open(path).read().splitlines()
    evals = [l for l in lines if " eval step " in l]
    tps = [float(m.group(1)) for l in lines for m in [re.search(r"tok/s (\d+)", l)] if m]
    return evals, (sum(tps) / len(tps) if tps else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(WORK, "ckpt", "latest.pt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "default-model"))
    args = ap.parse_args()
    ck = torch.load(args.ckpt, map_location="cpu")
    cfg = ck["config"]
    config = {k: cfg[k] for k in CONFIG_KEYS if k in cfg}
    config["torch_dtype"] = "float16"
    sd = ck["model"]
    tensors = {}
    for name, t in sd.items():
        if name == "lm_head.weight" and cfg["tie_word_embeddings"]:
            continue
        a = t.detach().float().cpu().numpy()
        if np.abs(a).max() > 65000:
            raise ValueError("%s overflows float16" % name)
        tensors[name] = a.astype(np.float16)
    nparams = sum(int(np.prod(a.shape)) for a in tensors.values())
    os.makedirs(args.out, exist_ok=True)
    meta = {"format": "pt", "step": ck["step"], "tokens": ck["tokens"]}
    write_safetensors(os.path.join(args.out, "model.safetensors"), tensors, meta)
    json.dump(config, open(os.path.join(args.out, "config.json"), "w"), indent=2)
    shutil.copyfile(os.path.join(WORK, "tokenizer.json"), os.path.join(args.out, "tokenizer.json"))
    json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|endoftext|>",
               "eos_token": "<|endoftext|>", "unk_token": None, "add_bos_token": False,
               "add_eos_token": False, "model_max_length": config["max_position_embeddings"],
               "clean_up_tokenization_spaces": False},
              open(os.path.join(args.out, "tokenizer_config.json"), "w"), indent=2)
    log_src = os.path.join(WORK, "train_log.txt")
    if os.path.exists(log_src):
        shutil.copyfile(log_src, os.path.join(args.out, "training_log.txt"))
    evals, tps = summarize_log(log_src)

    stats = json.load(open(os.path.join(WORK, "corpus", "stats.json")))
    dstats = {s: json.load(open(os.path.join(WORK, "data", s + ".docs.json"))) for s in ("train", "valid", "tune")}
    card_path = os.path.join(args.out, "MODEL_CARD.md")
    report = ""
    if os.path.exists(card_path):
        old = open(card_path).read()
        if REPORT_START in old and REPORT_END in old:
            report = old[old.index(REPORT_START):old.index(REPORT_END) + len(REPORT_END)]
    if not report:
        report = REPORT_START + "\n_Run `/usr/bin/python3 training/report.py` to fill this section._\n" + REPORT_END
    srcs = "\n".join("| %s | %d | %.1f |" % (k, v["files"], v["bytes"] / 1e6) for k, v in stats["sources"].items())
    a = ck["args"]
    if a.get("schedule", "cosine") == "wsd":
        sched = "constant, then linear decay to %gx over the last %d%%" % (a["min_lr_frac"], 100 * a["decay_frac"])
    else:
        sched = "warmup %d, cosine to %gx" % (a["warmup"], a["min_lr_frac"])
    prev_aux = ""
    if a.get("prev_aux", 0) > 0:
        prev_aux = (" Layer 0 head %d also gets an auxiliary loss (weight %g: -log of its attention on the"
                    " previous token), which seeds the previous-token half of the induction circuit;"
                    " every other head, and the induction heads of layer 1, are learned from the"
                    " next-token loss alone." % (a["prev_head"], a["prev_aux"]))
    card = f"""# Attention Lens default code model

A tiny **Llama-architecture** (LlamaForCausalLM, Hugging Face format) code model trained from
scratch by this project (`training/`), embedded in the extension so it works offline without
downloading anything. It exists to make attention patterns over code visible; it is **not** a
useful code-completion model.

## Model
| | |
|---|---|
| architecture | Llama: RMSNorm, rotary (rotate-half, theta {config['rope_theta']:g}), GQA, SwiGLU, tied embeddings |
| layers / hidden / MLP | {config['num_hidden_layers']} / {config['hidden_size']} / {config['intermediate_size']} |
| heads / KV heads / head dim | {config['num_attention_heads']} / {config['num_key_value_heads']} / {config['head_dim']} |
| context | trained at {a['seq']} tokens, last {int(a['long_frac'] * 100)}% of steps at {a['long_seq']}; max_position_embeddings {config['max_position_embeddings']} |
| vocabulary | {config['vocab_size']} byte-level BPE (`<|endoftext|>` = id 0 = bos = eos; ids 1-256 the 256 bytes) |
| parameters | {nparams:,} ({os.path.getsize(os.path.join(args.out, 'model.safetensors')) / 1e6:.1f} MB F16 safetensors) |
| trained | {ck['tokens'] / 1e6:.2f}M tokens, {ck['step']} steps; last phase: batch {a['batch']}x{a['seq']} tokens, AdamW lr {a['lr']} ({sched}), wd {a['wd']}, seed {a['seed']} (history below) |
| hardware | CPU (2 shared cores, PyTorch {torch.__version__}), average {tps or 0:,.0f} tokens/s |
| exported | {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M')} UTC from `{os.path.relpath(args.ckpt, ROOT)}` (schedule progress {ck['progress']:.2f}) |

## Data
Permissively licensed source code only (full list with licenses: `training/NOTICE`): the own
JS/TS sources of {len(stats['sources']) - 1} npm packages (MIT / Apache-2.0) and the Python 3.11 standard library
(PSF). Minified and bundled files removed (`.min.js`, dist/umd/bundle paths, lines > 1000 chars,
> 120 chars/line on average), exact duplicates removed (hash of whitespace-normalised text).
Split by whole file: train {dstats['train']['tokens'] / 1e6:.2f}M tokens ({stats['splits']['train']['files']} files),
validation {dstats['valid']['tokens'] / 1e3:.0f}k tokens ({stats['splits']['valid']['files']} files),
tuning {dstats['tune']['tokens'] / 1e3:.0f}k tokens ({stats['splits']['tune']['files']} files).
Languages (bytes): {', '.join('%s %.1f MB' % (k, v / 1e6) for k, v in stats['languages_bytes'].items())}.

| source | files | MB |
|---|---|---|
{srcs}

Training windows are random {a['seq']}-token spans of the concatenated train stream (files of one
directory adjacent). To speed up induction-head formation, {int(a['copy_prob'] * 100)}% of windows have a span of
16-128 tokens pasted again later in the window and {int(a['rand_prob'] * 100)}% contain a repeated random-token segment
(loss on its first copy masked).{prev_aux}

History (commands in `training/README.md`, every evaluation in `training_log.txt`): run 1 trained
0-14.95M tokens (batch 4x512, cosine from 2e-3, no auxiliary loss) and formed no induction head
(best score 0.015, no previous-token head in layer 0). Run 2 resumed from it with the learning
rate back at 2e-3 (warmup-stable-decay), batch 2x512 and the previous-token auxiliary loss; the
induction head of layer 1 formed abruptly at about 22M tokens (score 0.03 -> 0.72 within 0.6M tokens).

## Evaluation
{report}

## Known limits
- Tiny (a few million parameters) and trained for a few CPU-hours: completions are poor, loss is
  far above real code models. It is meant for visualising attention, not for generating code.
- Long-range attention: one induction head (see the table above) carries most of it. An
  induction head looks at the token *after* an earlier occurrence of the current token, so for a
  one-token identifier its top-1 lands just after the earlier occurrence (the "incl. token after"
  rate), not inside it; the overlay counts attention per definition/import statement, which
  includes that position. Few heads, few parameters: attention is noisier than in real code
  models (use a Hub model for serious studies).
- Target missed: the best head's top-1 lies strictly inside an earlier occurrence for fewer than
  the 50% of distant references the project aimed for (see the table). Reaching it takes a head
  that attends to the earlier occurrence itself (a duplicate-token head) rather than to the token
  after it; such heads are known from larger pretrained models (GPT-2's duplicate-token heads).
  What it would take here, an estimate we have not tested: 3-4 layers and ~100M tokens, i.e. a
  GPU session (`train.py --device cuda`, minutes) rather than 2 shared CPU cores (measured
  4,000 tokens/s at 512 and 2,400 at 1024 tokens per window: 9-14M tokens/hour).
- Languages: JavaScript, TypeScript and Python only; other languages tokenize fine (byte-level)
  but the model has not seen them.
- Attention beyond {a['long_seq']} tokens was never trained (rotary allows longer inputs, quality
  will degrade).
- No safety or quality filtering beyond license, minification and duplicate filters.

## Training log (evaluations during training)
```
{chr(10).join(evals[-12:])}
```
Full log: `training_log.txt`. Reproduce: see `training/README.md`.
"""
    with open(card_path, "w") as f:
        f.write(card)
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    if total > 25e6:
        raise SystemExit("default-model/ is %.1f MB > 25 MB" % (total / 1e6))
    print("exported %s: %d params, step %d, %.2fM tokens, folder %.1f MB" % (
        args.out, nparams, ck["step"], ck["tokens"] / 1e6, total / 1e6))


if __name__ == "__main__":
    main()
