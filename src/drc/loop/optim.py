"""`OptimConfig`: one training stage's optimisation settings, read by the loop (`drc.loop.trainer`).

It lives with the loop, not in `drc.config`, so that the loop (and the evaluation probes that share
it) import no run-config section; `drc.config` composes it into the stage configs and re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class OptimConfig:
    """One training stage's optimisation settings (AdamW, warmup then cosine decay)."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-4
    min_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    log_every: int = 50
    ckpt_every: int = 200
