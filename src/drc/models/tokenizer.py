"""VQ visual tokenizer (stub: the config is final, the model is being written)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenizerConfig:
    channels: int = 64
    codebook_size: int = 512
    code_dim: int = 64
