"""FusionNetwork: style features + semantic features -> one feature per cell of the draft.

One learned query per grid cell (`n_cells` = N) attends over the concatenation of the style features
and the semantic features (each tagged with a learned type embedding, so the queries can tell the
two apart); a few blocks of self-attention among the queries, cross-attention to the features and an
FFN. The composer's draft head turns each query's output into scores over the codebook (the latent
instruction, `drc.models.instruction`). The output length is fixed (N), whatever the history length.

`ComposerConfig` (sizes of the towers and the fusion) lives in `composer_config.py`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from drc.models.composer_config import ComposerConfig
from drc.models.towers import Attention, CrossBlock


class FusionBlock(nn.Module):
    """Queries talk to each other (self-attention), then read the features (CrossBlock: attn + FFN)."""

    def __init__(self, d_model: int, n_heads: int, ffn_mult: int, dropout: float) -> None:
        super().__init__()
        self.ln_self = nn.LayerNorm(d_model)
        self.self_attn = Attention(d_model, n_heads, dropout)
        self.cross = CrossBlock(d_model, n_heads, ffn_mult, dropout)

    def forward(
        self, q: Tensor, mem: Tensor, mem_mask: Tensor | None = None, self_mask: Tensor | None = None
    ) -> Tensor:
        h = self.ln_self(q)
        q = q + self.self_attn(h, h, self_mask)
        return self.cross(q, mem, mem_mask)


class FusionNetwork(nn.Module):
    """`(style (B, Ns, D), sem (B, Nm, D)) -> (B, n_cells, D)`: one feature per draft cell."""

    STYLE, SEM = 0, 1

    def __init__(self, cfg: ComposerConfig, n_cells: int) -> None:
        super().__init__()
        D = cfg.d_model
        self.queries = nn.Parameter(torch.randn(n_cells, D) * 0.02)
        self.type_embed = nn.Parameter(torch.randn(2, D) * 0.02)
        self.blocks = nn.ModuleList(
            FusionBlock(D, cfg.n_heads, cfg.ffn_mult, cfg.dropout) for _ in range(cfg.fusion_layers)
        )
        self.ln_out = nn.LayerNorm(D)

    @property
    def n_queries(self) -> int:
        return int(self.queries.shape[0])

    def forward(self, style: Tensor, sem: Tensor, local: Tensor | None = None) -> Tensor:
        """`local (n_cells, Nm)` bool (`ComposerConfig.fusion_window`): which semantic features, and
        which other cells, each cell may read; the style features are always read whole."""
        mem = torch.cat([style + self.type_embed[self.STYLE], sem + self.type_embed[self.SEM]], dim=1)
        q = self.queries.unsqueeze(0).expand(style.shape[0], -1, -1).to(mem.dtype)
        mem_mask = self_mask = None
        if local is not None:
            whole = torch.ones(local.shape[0], style.shape[1], dtype=torch.bool, device=local.device)
            mem_mask, self_mask = torch.cat([whole, local], 1)[None], local[None]  # (1, Nq, Nk)
        for blk in self.blocks:
            q = blk(q, mem, mem_mask, self_mask)
        return self.ln_out(q)
