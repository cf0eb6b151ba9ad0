"""The conditioning interface between any composer and the generator: a *draft* of the target.

Every method (DRC's towers + FusionNetwork, the entangled baselines, reference-only, history-only)
turns its inputs into a `LatentInstruction`; the generator consumes it unchanged. This is what lets
every method share one generator, one training loop and one sampler.

The latent instruction lives in the visual tokenizer's code space: for every cell of the token grid,
a distribution over the codebook (`draft`, logits `(B, N, V)`). It is the space the generator reads
images in (pretraining teaches it to render a crisp image from a corrupted draft of the target, see
`drc.models.generator`), so it carries everything visible in an image, named or not. That is the
point of the change from soft-prompt tokens (docs/DESIGN.md, "latent instruction"): a user's style
is exactly what no caption names, and a soft prompt pushed through a frozen caption-trained model by
a one-hot token loss learned it slowly and generalised poorly; a draft is trained with a dense
per-cell loss against the target's own tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

HARD_LOGIT = 1e4  # a one-hot draft as logits: softmax gives exactly 1 and 0 in float32


@dataclass
class LatentInstruction:
    """A draft of the target image in the tokenizer's code space.

    draft:   (B, N, V) float logits: for each of the N grid cells, scores over the V codebook entries.
             The generator reads `softmax(draft)`.
    weights: (B, k) float or None, importance weight of each history image (sums to 1 over the
             valid history); returned with generations to explain which images shaped the style.
    """

    draft: Tensor
    weights: Tensor | None = None

    def check_fits(self, n_visual: int, vocab: int, reader: str) -> None:
        """ValueError unless the draft has `n_visual` cells of `vocab` codes (what `reader` reads)."""
        _, n, v = self.draft.shape
        if (n, v) != (n_visual, vocab):
            raise ValueError(f"draft of {n} cells x {v} codes; {reader} reads {n_visual} x {vocab}")

    @staticmethod
    def hard(tokens: Tensor, vocab: int, weights: Tensor | None = None) -> LatentInstruction:
        """A one-hot draft from visual tokens `(B, N)` long (pretraining's corrupted targets, oracles)."""
        logits = torch.full((*tokens.shape, vocab), -HARD_LOGIT, device=tokens.device)
        return LatentInstruction(logits.scatter_(-1, tokens[..., None], 0.0), weights)

    def probs(self) -> Tensor:
        """`(B, N, V)` float32 distributions (what the generator reads)."""
        return self.draft.float().softmax(-1)

    def argmax(self) -> Tensor:
        """`(B, N)` long: the most likely code of every cell (the draft decoded on its own)."""
        return self.draft.argmax(-1)

    def sharpen(self, temperature: float) -> LatentInstruction:
        """Divide the logits by `temperature`; 0 gives the hard (one-hot) argmax draft."""
        if temperature <= 0:
            return LatentInstruction.hard(self.argmax(), self.draft.shape[2], self.weights)
        if temperature == 1:
            return self
        return LatentInstruction(self.draft / temperature, self.weights)

    def to(self, device: torch.device | str) -> LatentInstruction:
        w = None if self.weights is None else self.weights.to(device)
        return LatentInstruction(self.draft.to(device), w)

    def repeat_interleave(self, n: int) -> LatentInstruction:
        """Repeat each example n times along the batch (for n samples per input)."""
        w = None if self.weights is None else self.weights.repeat_interleave(n, 0)
        return LatentInstruction(self.draft.repeat_interleave(n, 0), w)

    def cat(self, other: LatentInstruction) -> LatentInstruction:
        """Both instructions as one batch (weights kept only when both have them)."""
        w = None
        if self.weights is not None and other.weights is not None:
            w = torch.cat([self.weights, other.weights])
        return LatentInstruction(torch.cat([self.draft, other.draft]), w)
