"""StyleTower and SemTower: one cross-attention architecture, two roles (docs/DESIGN.md section 2).

A tower reads a *query* image and a *partner* image (both as visual-token embeddings `E(x)`,
`(B, N, code_dim)`): the query's tokens attend to the partner's tokens, then a feed-forward layer,
with pre-norm residuals. Trained in Stage 1 with partners that share exactly one factor with the
query (same style, or same semantics), a tower learns to keep what the two images share.

The attention building blocks (`Attention`, `CrossBlock`, `FeedForward`, `AttentionPool`) also serve
the FusionNetwork (`fusion.py`). Nothing here imports the run config.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Attention(nn.Module):
    """Multi-head attention of queries `x (B, Nq, D)` over keys/values `mem (B, Nk, D)`.

    `mem_mask (B, Nk)` bool, True = may be attended to, or `(B, Nq, Nk)` to choose per query.
    Every row must allow at least one key (callers guarantee it: an all-masked row would give NaN,
    not an error).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, x: Tensor, mem: Tensor, mem_mask: Tensor | None = None) -> Tensor:
        B, Nq, D = x.shape
        Nk = mem.shape[1]
        h = self.n_heads
        q = self.q(x).view(B, Nq, h, D // h).transpose(1, 2)  # (B, h, Nq, Dh)
        k, v = self.kv(mem).view(B, Nk, 2, h, D // h).permute(2, 0, 3, 1, 4)  # each (B, h, Nk, Dh)
        attn_mask = None
        if mem_mask is not None:  # broadcast over heads (and over queries for a (B, Nk) mask)
            attn_mask = mem_mask[:, None, None, :] if mem_mask.ndim == 2 else mem_mask[:, None]
        drop = self.dropout if self.training else 0.0
        if x.device.type == "cpu":
            # PyTorch's fused CPU attention kernel spent 44% of a composer training step (its
            # backward above all, with a mask), where plain matmul-softmax-matmul costs a few percent.
            # Scores and weights stay float32 under bf16 autocast, as inside the fused kernel: bf16
            # logits (8 bits of mantissa) blur which tokens a query picks. The scale goes on q and the
            # mask is filled in place: at (k*N)^2 scores per head the elementwise passes over the
            # score matrix, not the matmuls, were half of a DRC training step
            dt = q.dtype
            q, k, v = q.float() * (q.shape[-1] ** -0.5), k.float(), v.float()
            att = q @ k.transpose(-2, -1)
            if attn_mask is not None:
                att.masked_fill_(~attn_mask, float("-inf"))
            att = att.softmax(-1)
            y = ((F.dropout(att, drop) if drop > 0 else att) @ v).to(dt)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=drop)
        return self.out(y.transpose(1, 2).reshape(B, Nq, D))


class FeedForward(nn.Module):
    def __init__(self, d_model: int, mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = mult * d_model
        layers: list[nn.Module] = [nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model)]
        if dropout > 0:  # a p=0 Dropout still copies its input
            layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class CrossBlock(nn.Module):
    """`x = x + Attn(LN(x), LN(mem)); x = x + FFN(LN(x))` (pre-norm, as in GPT-2 / nanoGPT)."""

    def __init__(self, d_model: int, n_heads: int, ffn_mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.ln_q = nn.LayerNorm(d_model)
        self.ln_mem = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_heads, dropout)
        self.ln_ffn = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, ffn_mult, dropout)

    def forward(self, x: Tensor, mem: Tensor, mem_mask: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.ln_q(x), self.ln_mem(mem), mem_mask)
        return x + self.ffn(self.ln_ffn(x))


class AttentionPool(nn.Module):
    """One learned query attends over a sequence: `(B, N, D) -> (B, D)`.

    Used to summarise a tower's per-image output for the importance scorer: unlike a mean, the
    pool can learn to look at the tokens that carry style (outline, background) and skip the rest.
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.ln = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_heads)

    def forward(self, x: Tensor) -> Tensor:
        q = self.query.expand(x.shape[0], 1, -1).to(x.dtype)
        return self.attn(q, self.ln(x))[:, 0]


def local_window_mask(grid: tuple[int, int], radius: int) -> Tensor:
    """`(N, N)` bool, N = h * w cells in raster order: True where two cells are within `radius`
    cells of each other on the grid (Chebyshev distance)."""
    h, w = grid
    r = torch.arange(h * w)
    y, x = r // w, r % w
    return ((y[:, None] - y[None, :]).abs() <= radius) & ((x[:, None] - x[None, :]).abs() <= radius)


class Tower(nn.Module):
    """Cross-attention tower: queries from one image, keys/values from a partner image.

    Input projection `code_dim -> d_model` plus learned positional embeddings (shared by the query
    and the partner, so "the same place in both images" is visible to the attention), then
    `n_layers` CrossBlocks and a final LayerNorm. The partner is fixed memory: only the query
    stream is updated, like a decoder's cross-attention.
    """

    def __init__(
        self,
        code_dim: int,
        n_visual: int,
        d_model: int,
        n_heads: int,
        n_layers: int = 1,
        ffn_mult: int = 4,
        dropout: float = 0.0,
        mem_pool: int = 1,
    ) -> None:
        super().__init__()
        if mem_pool < 1 or n_visual % mem_pool:
            raise ValueError(f"mem_pool {mem_pool} must be >= 1 and divide the {n_visual} visual tokens")
        self.n_visual, self.mem_pool = n_visual, mem_pool
        self.inp = nn.Linear(code_dim, d_model)
        self.pos = nn.Parameter(torch.randn(n_visual, d_model) * 0.02)
        self.blocks = nn.ModuleList(CrossBlock(d_model, n_heads, ffn_mult, dropout) for _ in range(n_layers))
        self.ln_out = nn.LayerNorm(d_model)

    def embed(self, x: Tensor) -> Tensor:
        """`(..., N, code_dim) -> (..., N, d_model)`: input projection + positional embedding."""
        if x.shape[-2] != self.n_visual:
            raise ValueError(f"expected {self.n_visual} visual tokens per image, got {x.shape[-2]}")
        return self.inp(x) + self.pos

    def pool_memory(self, mem: Tensor) -> Tensor:
        """Embedded partner tokens `(B, j*N, D) -> (B, j*N/p, D)`: the mean of each run of p = mem_pool
        consecutive cells (raster order; runs never cross an image, as p divides N). Identity for p=1."""
        p = self.mem_pool
        if p == 1:
            return mem
        B, L, D = mem.shape
        return mem.view(B, L // p, p, D).mean(2)

    def attend(self, q: Tensor, mem: Tensor, mem_mask: Tensor | None = None) -> Tensor:
        """Already-embedded `q (B, Nq, D)` over `mem (B, Nk, D)` -> `(B, Nq, D)`."""
        for blk in self.blocks:
            q = blk(q, mem, mem_mask)
        return self.ln_out(q)

    def forward(self, x_q: Tensor, x_kv: Tensor, kv_mask: Tensor | None = None) -> Tensor:
        """`x_q (B, N, code_dim)`, `x_kv (B, Nk, code_dim)` with Nk a multiple of N -> `(B, N, D)`.

        A partner of several images is passed flattened, `(B, j*N, code_dim)`; each gets the same
        positional embeddings.
        """
        B, Nk, C = x_kv.shape
        mem = self.pool_memory(self.embed(x_kv.view(B, Nk // self.n_visual, self.n_visual, C)).flatten(1, 2))
        if kv_mask is not None and self.mem_pool > 1:
            kv_mask = kv_mask[..., :: self.mem_pool]  # a run is one image's cells: all valid or none
        return self.attend(self.embed(x_q), mem, kv_mask)


class StyleTower(Tower):
    """The tower whose output should carry style: the query attends to an image of the same style."""


class SemTower(Tower):
    """The tower whose output should carry semantics: the query attends to an image of the same semantics."""
