"""ImportanceSampler: probabilities, weights, unbiasedness, difficulty updates, checkpoint state."""

from __future__ import annotations

import io
import math

import pytest
import torch

from drc.errors import DrcError
from drc.train.importance import ImportanceSampler

LOSSES = torch.tensor([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 0.05, 2.0], dtype=torch.float64)


def trained_sampler(alpha: float = 1.0, uniform_mix: float = 0.2) -> ImportanceSampler:
    s = ImportanceSampler(len(LOSSES), alpha=alpha, eps=0.05, uniform_mix=uniform_mix, ema=0.9)
    s.update(torch.arange(len(LOSSES)), LOSSES)
    return s


def test_alpha_zero_is_exactly_uniform():
    s = trained_sampler(alpha=0.0)
    assert torch.equal(s.probs(), torch.full((8,), 1 / 8, dtype=torch.float64))
    idx, w = s.sample(64, torch.Generator().manual_seed(0))
    assert torch.equal(w, torch.ones(64))
    assert s.entropy() == pytest.approx(math.log(8))


def test_probs_follow_difficulty_with_a_uniform_floor():
    s = trained_sampler(alpha=1.0, uniform_mix=0.2)
    p = s.probs()
    assert float(p.sum()) == pytest.approx(1.0)
    assert float(p.min()) >= 0.2 / 8 - 1e-12
    order = torch.argsort(LOSSES)
    assert torch.all(p[order][1:] > p[order][:-1])  # harder -> likelier
    q = (LOSSES + 0.05) / (LOSSES + 0.05).sum()
    assert torch.allclose(p, 0.8 * q + 0.2 / 8)
    assert s.entropy() < math.log(8)


def test_weighted_loss_is_exactly_unbiased():
    s = trained_sampler(alpha=2.0, uniform_mix=0.1)
    p = s.probs()
    raw = s.raw_weights(torch.arange(8))
    expectation = float((p * raw * LOSSES).sum())  # E_{i~p}[L_i / (n p_i)], enumerated
    assert expectation == pytest.approx(float(LOSSES.mean()), rel=1e-12)
    # ... while the plain (unweighted) loss under p is biased towards the hard examples
    assert float((p * LOSSES).sum()) > float(LOSSES.mean()) * 1.3


def test_normalised_weights_are_close_to_unbiased_by_monte_carlo():
    s = trained_sampler(alpha=1.0, uniform_mix=0.2)
    g = torch.Generator().manual_seed(0)
    raw_est, norm_est = [], []
    for _ in range(4000):
        idx, w = s.sample(32, g)
        assert float(w.mean()) == pytest.approx(1.0, rel=1e-5)
        raw_est.append(float((s.raw_weights(idx) * LOSSES[idx]).mean()))
        norm_est.append(float((w.double() * LOSSES[idx]).mean()))
    target = float(LOSSES.mean())
    assert sum(raw_est) / len(raw_est) == pytest.approx(target, rel=0.02)
    assert sum(norm_est) / len(norm_est) == pytest.approx(target, rel=0.05)  # self-normalised: O(1/B) bias


def test_sample_frequencies_match_probs():
    s = trained_sampler(alpha=1.0)
    idx, _ = s.sample(200_000, torch.Generator().manual_seed(1))
    freq = torch.bincount(idx, minlength=8).double() / idx.numel()
    assert torch.allclose(freq, s.probs(), atol=4e-3)


def test_update_is_an_ema_and_unseen_examples_count_as_the_mean():
    s = ImportanceSampler(4, alpha=1.0, ema=0.5)
    assert torch.equal(s.difficulties(), torch.ones(4, dtype=torch.float64))
    s.update(torch.tensor([0, 1]), torch.tensor([2.0, 4.0]))
    assert s.difficulties().tolist() == [2.0, 4.0, 3.0, 3.0]  # first loss sets; unseen -> mean(2, 4)
    s.update(torch.tensor([0, 0]), torch.tensor([4.0, 4.0]))  # repeats apply in order
    assert s.difficulties()[0] == pytest.approx(0.5 * (0.5 * 2 + 0.5 * 4) + 0.5 * 4)
    s.update(torch.tensor([3]), torch.tensor([float("nan")]))
    assert s.n_seen == 2


def test_hardest_lists_seen_examples_hardest_first():
    s = trained_sampler()
    top = s.hardest(3)
    assert [i for i, _ in top] == [5, 7, 4]
    assert top[0][1] == pytest.approx(3.2)
    assert ImportanceSampler(5).hardest(3) == []


def test_state_round_trips_through_a_weights_only_checkpoint():
    s = trained_sampler()
    buf = io.BytesIO()
    torch.save({"sampler": s.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)["sampler"]
    t = ImportanceSampler(8, alpha=1.0, eps=0.05, uniform_mix=0.2, ema=0.9)
    t.load_state_dict(state)
    assert torch.equal(t.probs(), s.probs())
    with pytest.raises(DrcError, match="8 examples"):
        ImportanceSampler(9).load_state_dict(state)


def test_invalid_settings_are_user_errors():
    with pytest.raises(DrcError, match="alpha"):
        ImportanceSampler(4, alpha=-1)
    with pytest.raises(DrcError, match="uniform_mix"):
        ImportanceSampler(4, uniform_mix=1.5)
    with pytest.raises(DrcError, match="ema"):
        ImportanceSampler(4, ema=1.0)
