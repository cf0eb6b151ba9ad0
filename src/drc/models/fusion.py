"""FusionNetwork (stub: the config is final, the model is being written)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ComposerConfig:
    d_model: int = 128
    n_heads: int = 4
