"""The composer's training loss, shared by Stage 1 and Stage 2.

The main term is dense: the draft's cross-entropy against the target's own visual tokens at every
cell (N cells x V codes of signal per example, against the single next-token path through a frozen
generator). It is what lets the composition generalise to unseen style x semantics pairs: measured
on the sticker benchmark, the same DRC composer trained this way drafted held-out pairs at joint
accuracy 0.64 with no generator at all, while the soft prompt trained through the frozen generator
reached 0.25. The optional second term (`gen_weight`) is the paper's: the frozen generator's
token loss given the (soft) draft, so that the composer also learns what the generator reads best.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch.nn.functional as F
from torch import Tensor

from drc.models.instruction import LatentInstruction

if TYPE_CHECKING:
    from drc.backends.base import TokenGenerator


def draft_loss(instr: LatentInstruction, target: Tensor, cell_weight: Tensor | None = None) -> Tensor:
    """`(B,)` cross-entropy of the draft `(B, N, V)` against the target tokens `(B, N)` long: the mean
    over cells, or the `cell_weight (B, N)`-weighted mean."""
    ce = F.cross_entropy(instr.draft.float().transpose(1, 2), target, reduction="none")
    if cell_weight is None:
        return ce.mean(1)
    w = cell_weight.float()
    return (ce * w).sum(1) / w.sum(1).clamp(min=1e-8)


def content_cells(hist_tokens: Tensor, mask: Tensor, target: Tensor) -> Tensor:
    """`(B, N)` bool: the cells where no valid history image has the target's code.

    `hist_tokens (B, k, N)` long, `mask (B, k)` bool (False = padding), `target (B, N)` long.
    """
    same = (hist_tokens == target[:, None]) & mask[:, :, None]
    return ~same.any(1)


def content_weights(hist_tokens: Tensor, mask: Tensor, target: Tensor, extra: float) -> Tensor:
    """`(B, N)` cell weights for `draft_loss`: 1, plus `extra` on the target's content cells (no
    visible history image has the target's code there; `hist_tokens (B, k, N)`, `mask (B, k)`).

    Most of a cell's cross-entropy is spent on what the history already shows (background, frame),
    which a composer learns first; the few cells that carry the reference's subject are what a
    held-out pair needs."""
    return 1.0 + extra * content_cells(hist_tokens, mask, target).float()


def weight_loss(weights: Tensor, own: Tensor) -> Tensor:
    """`(B,)` KL(p || weights), p uniform over the history images marked `own (B, k)` bool.

    `weights (B, k)` are the composer's importance weights (0 on padding). Rows with no own image
    get 0. The floor on the weights keeps the log finite where a weight underflows to 0.
    """
    n = own.sum(1, keepdim=True)
    p = own.float() / n.clamp(min=1)
    kl = (p * (p.clamp(min=1e-12).log() - weights.float().clamp(min=1e-8).log())).sum(1)
    return kl * (n.squeeze(1) > 0).float()


def composer_loss(
    instr: LatentInstruction,
    target: Tensor,
    generator: TokenGenerator,
    text_ids: Tensor,
    text_mask: Tensor,
    gen_weight: float,
    drop: Tensor | None = None,
    cell_weight: Tensor | None = None,
) -> Tensor:
    """`(B,)` per-example loss: draft cross-entropy (+ `gen_weight` x the generator's token loss).

    The generator term runs the (frozen) generator on the soft draft with `text_ids/text_mask (B, L)`;
    `drop (B,) bool` marks unconditional rows (classifier-free guidance), which get no draft term
    either, since they carry no instruction.
    """
    loss = draft_loss(instr, target, cell_weight)
    if gen_weight > 0:
        gen = generator.loss(text_ids, text_mask, instr, target, drop)
        if drop is not None:
            loss = loss * (~drop).float()
        loss = loss + gen_weight * gen
    return loss
