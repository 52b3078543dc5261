"""Shared building blocks: attention cores (plain / SDPA, chosen at export), activations."""

import torch
import torch.nn as nn
import torch.nn.functional as F


def has_sdpa():
    return hasattr(F, "scaled_dot_product_attention")


class PlainAttentionCore(nn.Module):
    """softmax(q k^T / sqrt(d)) v with matmul (never baddbmm: torch 1.13 beta=0 bug).

    q: [B, H, N, d], k/v: [B, H, M, d].  ``upcast`` computes the softmax in float32 (diffusers
    ``upcast_softmax``); ``causal`` masks keys after the query position (CLIP).
    """

    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, upcast: bool) -> torch.Tensor:
        scale = float(q.size(-1)) ** -0.5
        scores = torch.matmul(q, k.transpose(-1, -2)) * scale
        if causal:
            n = q.size(-2)
            m = k.size(-2)
            mask = torch.full([n, m], float("-inf"), dtype=scores.dtype, device=scores.device).triu(1)
            scores = scores + mask
        if upcast:
            probs = scores.float().softmax(dim=-1).to(v.dtype)
        else:
            probs = scores.softmax(dim=-1)
        return torch.matmul(probs, v)


class SdpaAttentionCore(nn.Module):
    """torch.nn.functional.scaled_dot_product_attention (torch >= 2.0); default scale 1/sqrt(d)."""

    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, upcast: bool) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def attention_core(kind):
    if kind == "sdpa":
        return SdpaAttentionCore()
    if kind == "plain":
        return PlainAttentionCore()
    raise ValueError(f"unknown attention kind {kind!r}")


def resolve_attention(requested):
    """'auto' -> 'sdpa' when this torch has it, else 'plain'."""
    if requested in (None, "auto"):
        return "sdpa" if has_sdpa() else "plain"
    if requested == "sdpa" and not has_sdpa():
        from .. import ConvertError
        raise ConvertError(f"--attention sdpa needs torch >= 2.0 (this is torch {torch.__version__})")
    if requested not in ("sdpa", "plain"):
        from .. import ConvertError
        raise ConvertError(f"unknown attention kind {requested!r} (auto, sdpa, plain)")
    return requested


def activation(name):
    """diffusers get_activation / transformers ACT2FN subset, as parameter-free modules."""
    name = (name or "").lower()
    if name in ("silu", "swish"):
        return nn.SiLU()
    if name == "mish":
        return nn.Mish()
    if name == "gelu":
        return nn.GELU()
    if name == "relu":
        return nn.ReLU()
    if name == "quick_gelu":
        return QuickGELU()
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return nn.GELU(approximate="tanh")
    from .. import ConvertError
    raise ConvertError(f"unsupported activation function {name!r}")


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)
