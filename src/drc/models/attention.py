"""The generator's decoder blocks: causal self-attention with a KV cache, and the attention helpers
(additive masks, positions among the visible tokens) that the built-in and the Janus generators share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from drc.models.generator_config import GeneratorConfig


class KVCache:
    """Preallocated keys/values of every layer: (layers, B, heads, max_len, head_dim) each."""

    def __init__(self, n_layer: int, b: int, n_head: int, max_len: int, head_dim: int, device, dtype) -> None:
        self.k = torch.empty(n_layer, b, n_head, max_len, head_dim, device=device, dtype=dtype)
        self.v = torch.empty_like(self.k)
        self.pos = 0  # positions filled so far


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.dropout

    def forward(self, x: Tensor, mask: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        """x (B,L,d); mask (B,1,L,keys) additive bias (0 or -inf); with a cache, keys = cache.pos + L."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_head, d // self.n_head).permute(2, 0, 3, 1, 4)
        if cache is not None:
            p = cache.pos
            cache.k[layer, :, :, p : p + t] = k
            cache.v[layer, :, :, p : p + t] = v
            k, v = cache.k[layer, :, :, : p + t], cache.v[layer, :, :, : p + t]
        drop = self.dropout if self.training else 0.0
        y = attention(q, k.to(q.dtype), v.to(q.dtype), mask, drop)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=cfg.bias)
        self.out = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        x = x + self.drop(self.attn(self.ln1(x), mask, cache, layer))
        return x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)))))


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype matmuls produce for `x` here: the autocast dtype when autocast is on, else x's."""
    dev = x.device.type
    if torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return x.dtype


def attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, dropout: float) -> Tensor:
    """Attention over (B,H,L,hd) with an additive mask `bias` (B,1,L,keys): 0 = attend, -inf = hidden.

    SDPA everywhere except bf16 training-size batches on CPU: there PyTorch's fused CPU kernel is
    ~2.5x slower (forward + backward) than the plain matmul-softmax-matmul for our short sequences
    (measured in `drc bench`'s setting: B=32, L=92, 4 heads of 64), and attention would be the
    largest single cost of a training step.
    """
    if q.device.type == "cpu" and q.dtype == torch.bfloat16 and q.shape[-2] > 1:
        att = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5) + bias
        att = att.softmax(-1)
        return (F.dropout(att, dropout) if dropout > 0 else att) @ v
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=dropout)


def positions(mask: Tensor) -> Tensor:
    """Position of each token among the valid ones (B,L) long: padding anywhere shifts nothing."""
    return (mask.long().cumsum(1) - 1).clamp(min=0)


def trim_padding(ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Drop trailing columns that are padding in every row: they are invisible, so only cost time."""
    mask = mask.bool()
    valid = mask.any(0).nonzero()
    keep = int(valid[-1]) + 1 if len(valid) else 0
    return ids[:, :keep], mask[:, :keep]


def attention_bias(prefix_mask: Tensor, n_visual: int, dtype: torch.dtype) -> Tensor:
    """(B,1,L,L) additive mask, L = P + N: 0 where a query may attend, -inf elsewhere.

    Causal, padded keys hidden, and each position sees at least itself: the diagonal is kept for
    padded positions so that no row is empty (an all-masked softmax gives NaN, and a NaN value row
    would poison every query through 0 * NaN).
    """
    b, p = prefix_mask.shape
    length = p + n_visual
    dev = prefix_mask.device
    keys = torch.cat([prefix_mask, torch.ones(b, n_visual, dtype=torch.bool, device=dev)], 1)
    causal = torch.ones(length, length, dtype=torch.bool, device=dev).tril()
    eye = torch.eye(length, dtype=torch.bool, device=dev)
    allowed = ((causal & keys[:, None, :]) | eye)[:, None]
    return torch.zeros(allowed.shape, dtype=dtype, device=dev).masked_fill_(~allowed, float("-inf"))
