#!/usr/bin/python3
"""Times a PyTorch (CPU, eager, float32) forward pass of a Hugging Face model folder with the
attention probabilities materialised for every layer, as the comparison column of `npm run bench`.

It reads config.json and model.safetensors (or the sharded index) itself, so it needs only torch,
and runs the same three families as the extension's engines (Llama, Qwen2, GPT-2). Each layer's
softmax(q k^T / sqrt(d) + causal mask) is built in full ([heads, n, n]) and kept, as
`output_attentions=True` with eager attention does.

Usage: torch_forward.py FOLDER N [N ...] [--repeats R] [--threads T]
Prints one JSON object: {"threads": T, "torch": version, "ms": {"N": median milliseconds}}.
"""
import argparse
import json
import math
import os
import struct
import time

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def read_safetensors(path):
    tensors = {}
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = bytearray(data[begin:end])
        t = torch.frombuffer(raw, dtype=DTYPES[entry["dtype"]]) if end > begin else torch.zeros(0)
        tensors[name] = t.reshape(entry["shape"]).to(torch.float32)
    return tensors


def load_folder(folder):
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    index = os.path.join(folder, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        for name in files:
            tensors.update(read_safetensors(os.path.join(folder, name)))
    else:
        tensors = read_safetensors(os.path.join(folder, "model.safetensors"))
    # GPT-2 checkpoints exist with and without the "transformer." prefix.
    return config, {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in tensors.items()}


def causal_probs(q, k, n):
    """q, k: [heads, n, d] -> probabilities [heads, n, n], materialised."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    mask = torch.full((n, n), float("-inf")).triu(1)
    return torch.softmax(scores + mask, dim=-1)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def llama_forward(config, w, ids):
    n = ids.shape[0]
    d = config["hidden_size"]
    H = config["num_attention_heads"]
    Hkv = config.get("num_key_value_heads", H)
    hd = config.get("head_dim") or d // H
    eps = config.get("rms_norm_eps", 1e-6)
    theta = config.get("rope_theta", 10000.0)
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = torch.arange(n, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()

    def rms(x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight

    def lin(x, name):
        bias = w.get(name + ".bias")
        return torch.nn.functional.linear(x, w[name + ".weight"], bias)

    x = w["model.embed_tokens.weight"][ids]
    attentions = []
    layers = config["num_hidden_layers"]
    for layer in range(layers):
        p = "model.layers.%d" % layer
        h = rms(x, w[p + ".input_layernorm.weight"])
        q = lin(h, p + ".self_attn.q_proj").view(n, H, hd).transpose(0, 1)
        k = lin(h, p + ".self_attn.k_proj").view(n, Hkv, hd).transpose(0, 1)
        v = lin(h, p + ".self_attn.v_proj").view(n, Hkv, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // Hkv, dim=0)
        v = v.repeat_interleave(H // Hkv, dim=0)
        probs = causal_probs(q, k, n)
        attentions.append(probs)
        out = (probs @ v).transpose(0, 1).reshape(n, H * hd)
        x = x + lin(out, p + ".self_attn.o_proj")
        h = rms(x, w[p + ".post_attention_layernorm.weight"])
        x = x + lin(torch.nn.functional.silu(lin(h, p + ".mlp.gate_proj")) * lin(h, p + ".mlp.up_proj"), p + ".mlp.down_proj")
    last = rms(x[-1:], w["model.norm.weight"])
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return last @ head.T, attentions


def gpt2_forward(config, w, ids):
    n = ids.shape[0]
    d = config["n_embd"]
    H = config["n_head"]
    hd = d // H
    eps = config.get("layer_norm_epsilon", 1e-5)

    def ln(x, name):
        return torch.nn.functional.layer_norm(x, (d,), w[name + ".weight"], w[name + ".bias"], eps)

    def conv1d(x, name):
        return x @ w[name + ".weight"] + w[name + ".bias"]

    x = w["wte.weight"][ids] + w["wpe.weight"][:n]
    attentions = []
    for layer in range(config["n_layer"]):
        p = "h.%d" % layer
        qkv = conv1d(ln(x, p + ".ln_1"), p + ".attn.c_attn")
        q, k, v = (t.view(n, H, hd).transpose(0, 1) for t in qkv.split(d, dim=-1))
        probs = causal_probs(q, k, n)
        attentions.append(probs)
        x = x + conv1d((probs @ v).transpose(0, 1).reshape(n, d), p + ".attn.c_proj")
        h = conv1d(ln(x, p + ".ln_2"), p + ".mlp.c_fc")
        h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * torch.pow(h, 3.0))))
        x = x + conv1d(h, p + ".mlp.c_proj")
    last = ln(x[-1:], "ln_f")
    return last @ w["wte.weight"].T, attentions


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("lengths", type=int, nargs="+")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--check-golden", action="store_true", help="compare with the folder's golden.json and print the max differences")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config, weights = load_folder(args.folder)
    arch = (config.get("architectures") or [config.get("model_type", "")])[0].lower()
    forward = gpt2_forward if "gpt2" in arch else llama_forward
    vocab = config["vocab_size"]
    if args.check_golden:
        with open(os.path.join(args.folder, "golden.json")) as f:
            golden = json.load(f)
        with torch.no_grad():
            logits, attentions = forward(config, weights, torch.tensor(golden["tokenIds"]))
        logit_diff = (logits[0] - torch.tensor(golden["lastLogits"])).abs().max().item()
        prob_diff = max(
            abs(attentions[l][h][q][j].item() - row[j])
            for l, layer in enumerate(golden["attention"]) for h, head in enumerate(layer)
            for q, row in enumerate(head) for j in range(len(row)))
        print(json.dumps({"maxLogitDiff": logit_diff, "maxProbDiff": prob_diff}))
        return
    results = {}
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n in args.lengths:
            ids = torch.randint(0, vocab, (n,), generator=generator)
            forward(config, weights, ids)  # warm-up
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                logits, attentions = forward(config, weights, ids)
                times.append((time.perf_counter() - start) * 1000)
                del logits, attentions
            times.sort()
            results[str(n)] = times[len(times) // 2]
    print(json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__, "ms": results}))


if __name__ == "__main__":
    main()
