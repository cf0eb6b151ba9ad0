"""The conditioning interface between any composer and the generator.

Every method (DRC's FusionNetwork, the entangled baselines, reference-only, history-only) turns its
inputs into a `LatentInstruction`; the generator consumes it unchanged. This is what lets every
method share one generator, one training loop and one sampler.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class LatentInstruction:
    """Latent instruction tokens for the generator.

    tokens:  (B, M, d_lmm) float, in the generator's embedding width.
    mask:    (B, M) bool, True where a token is real (composers with variable length pad).
    weights: (B, k) float or None, importance weight of each history image (sums to 1 over the
             valid history); returned with generations to explain which images shaped the style.
    """

    tokens: Tensor
    mask: Tensor
    weights: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def length(self) -> int:
        return int(self.tokens.shape[1])

    @staticmethod
    def full(tokens: Tensor, weights: Tensor | None = None) -> LatentInstruction:
        """An instruction with every token valid."""
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return LatentInstruction(tokens, mask, weights)

    def to(self, device: torch.device | str) -> LatentInstruction:
        w = None if self.weights is None else self.weights.to(device)
        return LatentInstruction(self.tokens.to(device), self.mask.to(device), w)

    def repeat_interleave(self, n: int) -> LatentInstruction:
        """Repeat each example n times along the batch (for n samples per input)."""
        w = None if self.weights is None else self.weights.repeat_interleave(n, 0)
        return LatentInstruction(self.tokens.repeat_interleave(n, 0), self.mask.repeat_interleave(n, 0), w)
