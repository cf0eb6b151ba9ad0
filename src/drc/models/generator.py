"""The built-in generator (stub: the config is final, the model is being written)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GeneratorConfig:
    n_layer: int = 6
    n_head: int = 4
    d_model: int = 256


class Generator:  # placeholder
    pass
