"""Minimal Llama (LlamaForCausalLM-compatible) in plain PyTorch (works with torch 1.13+).

Parameter names equal the Hugging Face checkpoint names (model.embed_tokens.weight,
model.layers.N.self_attn.q_proj.weight, ..., model.norm.weight, lm_head.weight when untied),
rotary embedding in HF's rotate-half layout, GQA, SwiGLU MLP, RMSNorm (weight * x / rms,
computed in float32).
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 4096,
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 2,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 32,
    "hidden_act": "silu",
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "mlp_bias": False,
    "tie_word_embeddings": True,
    "initializer_range": 0.02,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "torch_dtype": "float16",
    "use_cache": True,
}


# ATTENTION_LENS_TRAIN_SDPA=0 turns the fused GPU attention off (the explicit softmax path is the reference).
FUSED_ATTENTION = os.environ.get("ATTENTION_LENS_TRAIN_SDPA", "1") == "1" and hasattr(F, "scaled_dot_product_attention")


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x = upcast(x)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dt)


def upcast(x):
    """float16/bfloat16 -> float32; float32/float64 unchanged (golden logits use float64)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_cos_sin(positions, head_dim, theta, dtype):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    if dtype == torch.float64:
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    inv_freq = inv_freq.to(positions.device)
    freqs = positions.to(inv_freq.dtype)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, self.nh, self.nkv, self.hd = c["hidden_size"], c["num_attention_heads"], \
            c["num_key_value_heads"], c["head_dim"]
        self.q_proj = nn.Linear(d, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, d, bias=False)

    def forward(self, x, cos, sin, mask, want_attn=False):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        if not want_attn and q.is_cuda and FUSED_ATTENTION:
            # Training on a GPU: the fused kernel (same function; the probabilities are not needed).
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.o_proj(o.transpose(1, 2).reshape(B, T, self.nh * self.hd)), None
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hd)
        s = s + mask
        p = F.softmax(upcast(s), dim=-1).to(q.dtype)
        o = torch.matmul(p, v).transpose(1, 2).reshape(B, T, self.nh * self.hd)
        return self.o_proj(o), (p if want_attn else None)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, f = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, x, cos, sin, mask, want_attn=False):
        a, p = self.self_attn(self.input_layernorm(x), cos, sin, mask, want_attn)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, p


class Inner(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class Llama(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        c = self.config
        self.model = Inner(c)
        if not c["tie_word_embeddings"]:
            self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        std = c.get("initializer_range", 0.02)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, mean=0.0, std=std)
                if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                    p.data.mul_(1.0 / math.sqrt(2 * c["num_hidden_layers"]))

    def forward(self, ids, want_attn=False, return_hidden=False, attn_layers=None):
        """ids [B, T] -> logits [B, T, V] (and list of attention probs [B, H, T, T] per layer;
        with attn_layers, only those layers' probabilities, None for the others)."""
        c = self.config
        B, T = ids.shape
        x = self.model.embed_tokens(ids)
        pos = torch.arange(T, device=ids.device)
        # Under autocast the activations are float32 here; rotary tables follow the weights' dtype.
        cos, sin = rope_cos_sin(pos, c["head_dim"], c["rope_theta"], x.dtype)
        mask = torch.full((T, T), float("-inf"), dtype=x.dtype, device=ids.device).triu(1)
        attns = []
        for i, layer in enumerate(self.model.layers):
            wants = want_attn and (attn_layers is None or i in attn_layers)
            x, p = layer(x, cos, sin, mask, wants)
            attns.append(p)
        x = self.model.norm(x)
        w = self.model.embed_tokens.weight if c["tie_word_embeddings"] else self.lm_head.weight
        logits = F.linear(x, w)
        if want_attn:
            return logits, attns
        return logits

    def num_params(self):
        return sum(p.numel() for p in self.parameters())


def load_hf_folder(folder, dtype=torch.float32):
    """Load config.json + model.safetensors (written by export.py) into a Llama."""
    from safetensors_io import read_safetensors
    config = json.load(open(folder + "/config.json"))
    m = Llama(config)
    tensors = read_safetensors(folder + "/model.safetensors")
    sd = {k: torch.from_numpy(v.astype("float32")).to(dtype) for k, v in tensors.items()}
    missing, unexpected = m.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and config["tie_word_embeddings"])]
    if missing or unexpected:
        raise ValueError("missing %s unexpected %s" % (missing, unexpected))
    return m.to(dtype).eval()
