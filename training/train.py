#!/usr/bin/env python3
"""Stage 3: train the default Llama code model.

CUDA when present (or --device cuda), else CPU.  Checkpoints (model + AdamW + RNG state) go to
training/work/ckpt/latest.pt every --ckpt-every seconds and at the end; `--resume` continues
from it bit-for-bit in schedule.  Reproducible from --seed when the schedule is token-based
(the default); `--until HH:MM` (UTC) additionally compresses the remaining LR schedule so that
it has fully decayed by that wall-clock time (used for fixed-length CPU sessions).

Data: random windows of the train token stream (files of one directory adjacent, so related
files share identifiers).  To speed up induction-head formation, some windows get a copied span
(a piece of the same window pasted again later: natural repetition), and some get a repeated
random-token segment (loss on its first copy is masked).  The last --long-frac of training runs
at --long-seq (1024) so attention works beyond 512 positions.

Usage:  nice -n 19 /usr/bin/python3 training/train.py [--resume] [--max-tokens N] [--until 15:25]
                                                      [--device cuda] [--threads 2]
"""
import argparse
import datetime
import json
import math
import os
import shutil
import signal
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from metrics import heldout_loss, induction_scores  # noqa: E402
from model import DEFAULT_CONFIG, Llama  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")
CKPT_DIR = os.path.join(WORK, "ckpt")
LOG = os.path.join(WORK, "train_log.txt")


def log(msg):
    line = "%s %s" % (datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S"), msg)
    print(line, flush=True)
    with open(LOG, "a") as f:
        f.write(line + "\n")


def parse_until(s):
    if not s:
        return None
    now = datetime.datetime.utcnow()
    hh, mm = map(int, s.split(":"))
    t = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if t <= now:
        t += datetime.timedelta(days=1)
    return time.time() + (t - now).total_seconds()


def make_batch(data, batch, seq, rng, args, vocab):
    starts = rng.integers(0, len(data) - seq - 2, size=batch)
    x = np.stack([data[s:s + seq + 1].astype(np.int64) for s in starts])
    mask = np.ones((batch, seq), dtype=bool)
    for b in range(batch):
        r = rng.random()
        if r < args.copy_prob:  # paste a span of this window again later
            L = int(rng.integers(16, min(128, seq // 2 - 8) + 1))
            s = int(rng.integers(0, seq // 2 - L)) if seq // 2 - L > 0 else 0
            d = int(rng.integers(s + L + 8, seq + 1 - L))
            x[b, d:d + L] = x[b, s:s + L]
        elif r < args.copy_prob + args.rand_prob:  # repeated random-token segment
            L = int(rng.integers(args.rand_min, min(args.rand_max, seq // 2 - 2) + 1))
            seg = rng.integers(257, vocab, size=L)
            s = int(rng.integers(1, seq // 2 - L))
            d = int(rng.integers(s + L, seq + 1 - L))
            x[b, s:s + L] = seg
            x[b, d:d + L] = seg
            mask[b, s - 1:s + L - 1] = False  # first copy is unpredictable
    x = torch.from_numpy(x)
    y = x[:, 1:].clone()
    y[~torch.from_numpy(mask)] = -100
    return x[:, :-1], y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--max-tokens", type=float, default=40e6)
    ap.add_argument("--until", default=None, help="UTC HH:MM by which the LR schedule must end")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--long-seq", type=int, default=1024)
    ap.add_argument("--long-frac", type=float, default=0.15)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--copy-prob", type=float, default=0.3)
    ap.add_argument("--rand-prob", type=float, default=0.15)
    ap.add_argument("--rand-min", type=int, default=10, help="random segment length range")
    ap.add_argument("--rand-max", type=int, default=80)
    ap.add_argument("--schedule", default="cosine", choices=["cosine", "wsd"],
                    help="cosine decay over the run, or warmup-stable-decay (constant LR, then a linear "
                         "decay over the last --decay-frac)")
    ap.add_argument("--decay-frac", type=float, default=0.2)
    ap.add_argument("--prev-aux", type=float, default=0.0,
                    help="weight of an auxiliary loss that pulls layer 0 head --prev-head towards "
                         "the previous token (seeds the first half of the induction circuit)")
    ap.add_argument("--prev-head", type=int, default=0)
    ap.add_argument("--ckpt-every", type=float, default=300, help="seconds")
    ap.add_argument("--eval-every", type=int, default=500, help="steps")
    ap.add_argument("--config", default=None, help="JSON overrides of the model config")
    ap.add_argument("--amp", default="none", choices=["none", "bf16"],
                    help="bf16 autocast (GPU training); norms, softmax and the loss stay float32")
    ap.add_argument("--max-seconds", type=float, default=0,
                    help="time budget: the schedule also advances with active training time and ends by "
                         "it; time between SIGUSR1 and SIGUSR2 (a caller pausing the run with SIGSTOP in "
                         "between, e.g. to benchmark on the same GPU) does not count")
    ap.add_argument("--light-out", default=None,
                    help="also write the final model alone (float16 weights, no optimizer) to this path, "
                         "small enough to carry; export.py reads it like a checkpoint")
    ap.add_argument("--restart-schedule", action="store_true",
                    help="with --resume: recompute the schedule position as tokens / --max-tokens "
                         "(to train a finished run longer, e.g. --max-tokens 40000000)")
    args = ap.parse_args()

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    torch.set_num_threads(args.threads)
    os.makedirs(CKPT_DIR, exist_ok=True)
    data = np.fromfile(os.path.join(WORK, "data", "train.bin"), dtype=np.uint16)
    valid = np.fromfile(os.path.join(WORK, "data", "valid.bin"), dtype=np.uint16)
    latest = os.path.join(CKPT_DIR, "latest.pt")

    if args.resume and os.path.exists(latest):
        ck = torch.load(latest, map_location="cpu")
        config = ck["config"]
        saved = ck["args"]
        for k in ("max_tokens", "lr", "min_lr_frac", "warmup", "batch", "seq", "long_seq",
                  "long_frac", "copy_prob", "rand_prob", "rand_min", "rand_max", "wd", "seed",
                  "schedule", "decay_frac", "prev_aux", "prev_head"):
            if getattr(args, k) == ap.get_default(k) and k in saved:
                setattr(args, k, saved[k])  # keep the run's settings unless overridden
    else:
        ck = None
        config = dict(DEFAULT_CONFIG)
        if args.config:
            config.update(json.loads(args.config))
    torch.manual_seed(args.seed)
    model = Llama(config).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    rng = np.random.default_rng(args.seed)
    step, tokens, progress = 0, 0, 0.0
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        step, tokens, progress = ck["step"], ck["tokens"], ck["progress"]
        if args.restart_schedule:
            progress = tokens / args.max_tokens
        log("resumed from %s: step %d, %.2fM tokens, progress %.3f" % (latest, step, tokens / 1e6, progress))
    else:
        with open(LOG, "a") as f:
            f.write("\n")
        log("new run: %d params, config %s" % (model.num_params(), json.dumps(config)))
    log("args %s, device %s, threads %d, train stream %d tokens" % (json.dumps(vars(args)), device,
                                                                    torch.get_num_threads(), len(data)))

    amp = torch.autocast("cuda", dtype=torch.bfloat16) if args.amp == "bf16" and device == "cuda" else None
    # Active time: wall time since the start minus the pauses a caller announces (SIGUSR1 before it
    # stops this process, SIGUSR2 after it continues it).
    pause = {"total": 0.0, "since": None}

    def on_pause(signum, frame):
        if pause["since"] is None:
            pause["since"] = time.time()

    def on_resume(signum, frame):
        if pause["since"] is not None:
            pause["total"] += time.time() - pause["since"]
            pause["since"] = None

    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, on_pause)
        signal.signal(signal.SIGUSR2, on_resume)
    t_start = time.time()
    until = parse_until(args.until)
    t_res, p_res = time.time(), progress
    time_rate = (1.0 - p_res) / max(1.0, until - t_res) if until else 0.0

    def save(tag=None):
        state = {"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                 "torch_rng": torch.get_rng_state(), "step": step, "tokens": tokens,
                 "progress": progress, "config": config, "args": vars(args)}
        tmp = latest + ".tmp"
        torch.save(state, tmp)
        os.replace(tmp, latest)
        if tag:
            shutil.copyfile(latest, os.path.join(CKPT_DIR, tag + ".pt"))

    last_ck = time.time()
    t_win, tok_win, loss_win, n_win = time.time(), 0, 0.0, 0
    next_snapshot = (int(tokens // 5e6) + 1) * 5e6
    model.train()
    while progress < 1.0:
        long_phase = progress >= 1.0 - args.long_frac
        seq = args.long_seq if long_phase else args.seq
        batch = max(1, args.batch * args.seq // seq)
        x, y = make_batch(data, batch, seq, rng, args, config["vocab_size"])
        x, y = x.to(device), y.to(device)
        warm = min(1.0, (step + 1) / args.warmup)
        if args.schedule == "wsd":
            shape = min(1.0, (1.0 - min(1.0, progress)) / args.decay_frac)
        else:
            shape = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        lr = args.lr * warm * (args.min_lr_frac + (1 - args.min_lr_frac) * shape)
        for gr in opt.param_groups:
            gr["lr"] = lr
        if amp is not None:
            amp.__enter__()
        if args.prev_aux > 0:
            logits, attns = model(x, want_attn=True, attn_layers={0})
        else:
            logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1), ignore_index=-100)
        if args.prev_aux > 0:
            # layer 0, one head: -log attention on the previous token (positions 1..T-1)
            p0 = attns[0][:, args.prev_head]
            i = torch.arange(1, p0.shape[-1], device=p0.device)
            loss = loss + args.prev_aux * -torch.log(p0[:, i, i - 1].float() + 1e-6).mean()
        if amp is not None:
            amp.__exit__(None, None, None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += batch * seq
        active = time.time() - t_start - pause["total"]
        progress = max(progress, tokens / args.max_tokens,
                       (p_res + (time.time() - t_res) * time_rate) if until else 0.0,
                       (p_res + active / args.max_seconds * (1.0 - p_res)) if args.max_seconds > 0 else 0.0)
        tok_win += batch * seq
        loss_win += loss.detach()  # no per-step host sync on a GPU
        n_win += 1
        if step % 50 == 0:
            dt = time.time() - t_win
            log("step %d tokens %.3fM progress %.3f seq %d lr %.2e loss %.4f tok/s %.0f" % (
                step, tokens / 1e6, progress, seq, lr, float(loss_win) / n_win, tok_win / dt))
            t_win, tok_win, loss_win, n_win = time.time(), 0, 0.0, 0
        if step % args.eval_every == 0:
            model.eval()
            t0 = time.time()
            vl = heldout_loss(model, valid, seq=512, n_windows=8, device=device)
            ind = induction_scores(model, n_seq=4, device=device)
            best = np.unravel_index(ind.argmax(), ind.shape)
            log("eval step %d tokens %.3fM val_loss %.4f induction_max %.3f (layer %d head %d) "
                "layer_max %s [%.1fs]" % (step, tokens / 1e6, vl, ind.max(), best[0], best[1],
                                          [round(float(v), 3) for v in ind.max(axis=1)], time.time() - t0))
            model.train()
            t_win = time.time()
        if time.time() - last_ck > args.ckpt_every:
            tag = None
            if tokens >= next_snapshot:
                tag = "tokens_%03dM" % int(tokens // 1e6)
                next_snapshot += 5e6
            save(tag)
            last_ck = time.time()
    save("final")
    log("done: step %d, %.2fM tokens" % (step, tokens / 1e6))
    if args.light_out:
        light = {"model": {k: v.detach().half().cpu() for k, v in model.state_dict().items()},
                 "step": step, "tokens": tokens, "progress": progress, "config": config, "args": vars(args)}
        torch.save(light, args.light_out)
        log("model alone (float16) -> %s" % args.light_out)


if __name__ == "__main__":
    main()
