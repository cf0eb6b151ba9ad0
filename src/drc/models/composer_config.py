"""`ComposerConfig`: the sizes of every composer's parts (the towers, the fusion and, for the
baselines, nothing but their width; see `composers.py`). `RunConfig` composes it as `composer`."""

from __future__ import annotations

from dataclasses import dataclass

from drc.models.draft_head import DraftHead


@dataclass
class ComposerConfig:
    d_model: int = 128  # width of the towers and the fusion
    n_heads: int = 4
    tower_layers: int = 1  # cross-attention + FFN blocks per tower (the paper: one)
    fusion_layers: int = 2
    ffn_mult: int = 4
    # dropout in the towers and the fusion (attention weights and FFN outputs): a regulariser against
    # recalling the seen (style, subject) image a reference resembles. With 0.1 (and Stage 2's
    # content_weight) held-out pairs of foreign sets were drafted more often, averaged over seeds;
    # 0.2 was worse (bench/README.md, "Content cells and dropout in the composer")
    dropout: float = 0.1
    # The StyleTower reads its partners' tokens averaged over runs of gcd(style_pool, N) neighbouring
    # cells (raster order; a run never straddles two images; 1 = every token). Style (palette, line,
    # texture) is a statistic of a region, not of a cell, and the (k*N)^2 attention over the whole
    # history was most of a training step; pooling by 4 trains faster at no loss of held-out accuracy
    # (measured: bench/README.md, "Speed levers for the 20-minute demo").
    style_pool: int = 4
    # How far a draft cell sees the reference, in token cells (Chebyshev distance on the token grid).
    # 0 (the paper): every cell reads the whole reference. w > 0: the SemTower reads the reference
    # within w cells of each cell, while the style features are read whole; the draft is then a
    # local translation of the reference in the history's style and cannot recall a whole seen
    # image for a recognised subject (bench/README.md, "Own folders").
    sem_window: int = 2
    # The window (in cells) of the fusion's cells among themselves and of their reading of the
    # semantic features, when `sem_window` > 0; -1 = `sem_window`. Windows add up through the
    # stacked blocks: with the SemTower's window w and F fusion blocks, a draft cell sees the
    # reference within (F + 1) * w cells at -1, and within w at 0 (each cell reads only its own
    # SemTower feature, and the cells do not talk), so that `sem_window` alone says the reach.
    fusion_window: int = 0
    # How a cell's feature becomes scores over the codes (`drc.models.draft_head`): `codebook`
    # (minus the distance to the tokenizer's frozen code vectors: codes that look alike score alike)
    # or `linear` (a free row per code, the paper's form).
    draft_head: DraftHead = "codebook"
