"""The composer's loss: the dense draft term and the optional generator term."""

from __future__ import annotations

import math

import torch

from drc.models.instruction import LatentInstruction
from drc.train.losses import composer_loss, content_cells, content_weights, draft_loss, weight_loss

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


def test_weight_loss_is_zero_on_the_own_images_and_log_five_fourths_for_blind_weights():
    own = torch.tensor([[True, True, False, True, True], [False, False, False, False, False]])
    right = torch.tensor([[0.25, 0.25, 0.0, 0.25, 0.25], [0.2] * 5])
    blind = torch.full((2, 5), 0.2)
    assert torch.allclose(weight_loss(right, own), torch.zeros(2), atol=1e-6)
    # one intruder in five, weighted like the others: KL = sum over 4 own of 1/4 log((1/4) / (1/5))
    assert torch.allclose(weight_loss(blind, own), torch.tensor([math.log(5 / 4), 0.0]), atol=1e-6)
    # all weight on the intruder: large but finite (the floor keeps the log finite)
    wrong = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0]] * 2)
    out = weight_loss(wrong, own)
    assert torch.isfinite(out).all() and float(out[0]) > 10 and float(out[1]) == 0.0


def test_content_cells_are_those_no_history_image_has() -> None:
    hist = torch.tensor([[[0, 1, 2], [1, 2, 3]], [[0, 1, 2], [5, 5, 5]]])  # (B=2, k=2, N=3)
    target = torch.tensor([[1, 1, 9], [5, 1, 2]])
    both = torch.ones(2, 2, dtype=torch.bool)
    assert content_cells(hist, both, target).tolist() == [[False, False, True], [False, False, False]]
    # a padded history image (mask False) lends no cell
    only_first = torch.tensor([[True, False], [True, False]])
    assert content_cells(hist, only_first, target).tolist() == [[True, False, True], [True, False, False]]


def test_content_weights_add_the_extra_weight_on_content_cells_only() -> None:
    hist = torch.tensor([[[0, 1, 2], [1, 2, 3]]])  # (B=1, k=2, N=3)
    target = torch.tensor([[1, 1, 9]])
    w = content_weights(hist, torch.ones(1, 2, dtype=torch.bool), target, 3.0)
    assert w.tolist() == [[1.0, 1.0, 4.0]]


def test_weighted_draft_loss_is_the_weighted_mean_of_the_cells() -> None:
    target = torch.tensor([[0, 1, 2]])
    draft = torch.zeros(1, 3, V)
    draft[0, 0, 0] = 20.0  # cell 0 right and sure; cells 1 and 2 uniform
    instr = LatentInstruction(draft)
    per_cell = torch.nn.functional.cross_entropy(draft.transpose(1, 2), target, reduction="none")[0]
    assert torch.allclose(draft_loss(instr, target), per_cell.mean()[None])
    w = torch.tensor([[1.0, 1.0, 4.0]])
    want = (per_cell * w[0]).sum() / w.sum()
    assert torch.allclose(draft_loss(instr, target, w), want[None])
    # weighting the wrong cells more raises the loss; uniform weights change nothing
    assert draft_loss(instr, target, w) > draft_loss(instr, target)
    assert torch.allclose(draft_loss(instr, target, torch.full((1, 3), 2.0)), draft_loss(instr, target))
