"""The request batcher: per-row random streams, leave-one-out variants, and the influence distances."""

from __future__ import annotations

import torch

from drc import influence as explain
from drc.models.token_model import sample_from_logits


def test_one_generator_per_row_makes_rows_independent_of_the_batch() -> None:
    logits = torch.randn(3, 50)
    alone = sample_from_logits(logits[1:2], 1.0, 0, [torch.Generator().manual_seed(7)])
    for _ in range(3):  # whatever the other rows' generators are, row 1 draws from its own stream
        gens = [torch.Generator().manual_seed(int(torch.randint(0, 10**6, ()))) for _ in range(3)]
        gens[1] = torch.Generator().manual_seed(7)
        assert sample_from_logits(logits, 1.0, 0, gens)[1] == alone[0]
    # a single generator still works as before
    a = sample_from_logits(logits, 1.0, 5, torch.Generator().manual_seed(1))
    b = sample_from_logits(logits, 1.0, 5, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_leave_one_out_and_distances() -> None:
    hist = torch.arange(12).view(4, 3)
    variants = explain.leave_one_out(hist)
    assert len(variants) == 4
    assert torch.equal(variants[1], torch.tensor([[0, 1, 2], [6, 7, 8], [9, 10, 11]]))  # order kept
    a = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    assert explain.pixel_distance(a, a) == 0
    assert explain.pixel_distance(a, a + 10) == 10
    d = torch.randn(16, 8)
    assert explain.draft_distance(d, d) < 1e-6
    far = torch.full((16, 8), -30.0)
    far[:, 0] = 30
    near = torch.full((16, 8), -30.0)
    near[:, 1] = 30
    assert abs(explain.draft_distance(far, near) - 1.0) < 1e-4  # disjoint one-hot cells: distance 1
    out = explain.influence(a, d, [a, a + 4], [d, far])
    assert out[0] == {"pixel": 0.0, "draft": 0.0} and out[1]["pixel"] == 4.0 and out[1]["draft"] > 0
