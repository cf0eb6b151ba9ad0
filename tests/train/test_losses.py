"""The composer's loss: the dense draft term and the optional generator term."""

from __future__ import annotations

import math

import torch

from drc.models.conditioning import LatentInstruction
from drc.train.losses import composer_loss, draft_loss

V = 16


class ConstGenerator:
    """Records what it is asked; returns 5 for every row."""

    def __init__(self):
        self.calls = 0

    def loss(self, text_ids, text_mask, instr, target, drop):
        self.calls += 1
        self.drop = drop
        return torch.full((target.shape[0],), 5.0)


def test_draft_loss_is_low_for_the_target_and_high_elsewhere():
    target = torch.randint(V, (3, 12), generator=torch.Generator().manual_seed(0))
    right = draft_loss(LatentInstruction.hard(target, V), target)
    wrong = draft_loss(LatentInstruction.hard((target + 1) % V, V), target)
    uniform = draft_loss(LatentInstruction(torch.zeros(3, 12, V)), target)
    assert right.shape == (3,) and float(right.max()) < 1e-3
    assert float(wrong.min()) > 100
    assert torch.allclose(uniform, torch.full((3,), math.log(V)))


def test_generator_term_is_added_only_with_a_weight_and_drop_rows_lose_the_draft_term():
    target = torch.zeros(2, 4, dtype=torch.long)
    instr = LatentInstruction(torch.zeros(2, 4, V))
    gen = ConstGenerator()
    text = torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.bool)
    assert torch.allclose(composer_loss(instr, target, gen, *text, 0.0), torch.full((2,), math.log(V)))
    assert gen.calls == 0  # no generator pass at all when its weight is 0
    drop = torch.tensor([True, False])
    out = composer_loss(instr, target, gen, *text, 0.5, drop)
    assert gen.calls == 1 and torch.equal(gen.drop, drop)
    assert torch.allclose(out, torch.tensor([2.5, math.log(V) + 2.5]))
