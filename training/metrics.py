"""Shared evaluation helpers: loss on held-out windows, induction score per head."""
import math

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def heldout_loss(model, data, seq=512, n_windows=16, seed=0, device="cpu"):
    """Mean next-token loss (nats/token) on n fixed windows of the uint16 token array."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(data) - seq - 1, size=n_windows)
    tot, n = 0.0, 0
    for s in starts:
        w = torch.from_numpy(data[s:s + seq + 1].astype(np.int64))[None].to(device)
        logits = model(w[:, :-1])
        tot += F.cross_entropy(logits[0].float(), w[0, 1:], reduction="sum").item()
        n += seq
    return tot / n


@torch.no_grad()
def induction_scores(model, n_seq=8, length=50, vocab_lo=257, seed=0, device="cpu", prefix=None):
    """Induction score per head: a random token sequence R (length `length`, ids drawn from the
    merge tokens) is shown twice: [EOT] R R. For each query position i in the second copy
    (token R[j]), the score is the attention weight on the position of R[j+1] in the first copy
    (the token after the earlier occurrence of the current token). Averaged over positions and
    sequences. Returns array [layers, heads]."""
    g = torch.Generator().manual_seed(seed)
    V = model.config["vocab_size"]
    L = length
    ids = torch.randint(vocab_lo, V, (n_seq, L), generator=g)
    bos = torch.zeros((n_seq, 1), dtype=torch.long)
    x = torch.cat([bos, ids, ids], dim=1).to(device)  # positions: R at 1..L, copy at L+1..2L
    _, attns = model(x, want_attn=True)
    out = []
    q = torch.arange(L + 1, 2 * L)             # second-copy positions holding R[j], j=0..L-2
    k = q - L + 1                              # first-copy position of R[j+1]
    for p in attns:  # [B, H, T, T]
        out.append(p[:, :, q, k].float().mean(dim=(0, 2)).cpu().numpy())
    return np.stack(out)


def bits_per_byte(nats_per_token, tokens, nbytes):
    return nats_per_token * tokens / nbytes / math.log(2)
