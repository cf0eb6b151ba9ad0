"""Draft heads: one feature per cell `(B, N, D)` -> scores over the tokenizer's V codes `(B, N, V)`.

- `codebook` (the default; LayerNorm + Linear to `code_dim`, then minus the squared distance to each
  frozen codebook vector, times a learned scale): the head predicts a point in the tokenizer's
  latent space and the codes nearest to it score highest. Codes that decode alike (the same ink
  edge over two phases of a texture) score alike, so a cell the composer is unsure of still gets a
  code of the right shape, and a code's score cannot be learned apart from its look.
- `linear` (LayerNorm + Linear to V, the paper's form): every code has its own free output row and
  bias; a code that no training target shows only ever has its score pushed down.

On the foreign glyph and badge sets the codebook head drafted held-out pairs of training users far
better than the linear head (bench/README.md, "The draft head and the reach").

`make_draft_head(kind, d_model, vocab, codebook)` builds one; `DRAFT_HEADS` lists the kinds.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor, nn

DraftHead = Literal["linear", "codebook"]
DRAFT_HEADS: tuple[str, ...] = get_args(DraftHead)


class CodebookHead(nn.Module):
    """`(B, N, D) -> (B, N, V)`: `-scale * ||proj(LN(h)) - e_c||^2` over the frozen codebook `e`.

    `codebook (V, code_dim)` is a persistent buffer: the composer's weights carry the vectors they
    were trained against, and strict loading refuses a tokenizer whose codebook has another shape.
    """

    def __init__(self, d_model: int, codebook: Tensor) -> None:
        super().__init__()
        if codebook.ndim != 2:
            raise ValueError(f"codebook must be (V, code_dim), got shape {tuple(codebook.shape)}")
        self.ln = nn.LayerNorm(d_model)
        self.proj = nn.Linear(d_model, codebook.shape[1])
        self.register_buffer("codebook", codebook.detach().float().clone())
        # distances between code vectors are O(1) to O(10): a unit scale starts with soft scores
        self.log_scale = nn.Parameter(torch.zeros(()))

    def forward(self, h: Tensor) -> Tensor:
        z = self.proj(self.ln(h))
        # float32 outside autocast: the score differences between near codes are small, and bf16
        # (8 bits of mantissa) would tie them
        with torch.autocast(device_type=z.device.type, enabled=False):
            z, cb = z.float(), self.codebook.float()
            d2 = z.pow(2).sum(-1, keepdim=True) - 2 * z @ cb.T + cb.pow(2).sum(-1)
            return -d2 * self.log_scale.exp()


def make_draft_head(kind: str, d_model: int, vocab: int, codebook: Tensor | None = None) -> nn.Module:
    """The draft head of `kind` (`DRAFT_HEADS`); `codebook (vocab, code_dim)` is needed by `codebook`."""
    if kind == "linear":
        return nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, vocab))
    if kind == "codebook":
        if codebook is None:
            raise ValueError("composer.draft_head=codebook needs the tokenizer's codebook vectors")
        if codebook.shape[0] != vocab:
            raise ValueError(f"codebook has {codebook.shape[0]} codes, the draft {vocab}")
        return CodebookHead(d_model, codebook)
    raise ValueError(f"unknown composer.draft_head {kind!r}; valid: {', '.join(DRAFT_HEADS)}")
