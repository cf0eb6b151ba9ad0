"""The explanation and fairness metrics on hand-made cases whose answer is known."""

from __future__ import annotations

import math

import pytest

from drc.eval.explain_metrics import (
    cold_start_ratio,
    influence_agreement,
    intruder_weight_ratio,
    spearman,
    spread,
)


def test_a_blind_weighting_gives_ratio_one_and_one_that_ignores_intruders_zero():
    flags = [[True, False, False, False, False], [False, True, True, False, False]]
    assert intruder_weight_ratio([[0.2] * 5, [0.2] * 5], flags) == pytest.approx(1.0)
    assert intruder_weight_ratio([[0.0, 0.25, 0.25, 0.25, 0.25], [0.4, 0.0, 0.0, 0.3, 0.3]], flags) == 0.0
    # pooled means: intruders (0.1 + 0.05 + 0.05) / 3, own items (0.9/4 * 4 + 0.9/3 * 3) / 7
    w = [[0.1, 0.225, 0.225, 0.225, 0.225], [0.3, 0.05, 0.05, 0.3, 0.3]]
    assert intruder_weight_ratio(w, flags) == pytest.approx((0.2 / 3) / (1.8 / 7))


def test_ratio_skips_users_without_intruders_and_is_none_without_any():
    assert intruder_weight_ratio([[0.5, 0.5]], [[False, False]]) is None
    assert intruder_weight_ratio([[0.5, 0.5], [0.9, 0.1]], [[False, False], [True, False]]) == pytest.approx(
        9.0
    )
    with pytest.raises(ValueError):
        intruder_weight_ratio([[0.5, 0.5]], [[True]])


def test_spearman_known_values_and_ties():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)  # 1 - 6*2 / (3*8)
    # ties take their mean rank: [1, 2.5, 2.5, 4] against [1, 2, 3, 4]
    assert spearman([0.1, 0.5, 0.5, 0.9], [1, 2, 3, 4]) == pytest.approx(
        4.5 / math.sqrt(4.5 * 5), abs=1e-9
    )
    assert spearman([1, 1, 1], [1, 2, 3]) is None and spearman([1], [2]) is None


def test_weights_equal_to_the_influence_agree_perfectly():
    w = [[0.1, 0.3, 0.2, 0.4], [0.5, 0.2, 0.3]]
    assert influence_agreement(w, w) == {"mean": pytest.approx(1.0), "n": 2}
    flipped = influence_agreement(w, [[-x for x in u] for u in w])
    assert flipped["mean"] == pytest.approx(-1.0)
    assert influence_agreement([[0.2, 0.2]], [[0.1, 0.3]]) == {"mean": None, "n": 0}  # uniform weights


def test_spread_names_the_worst_groups_and_cold_start_ratio():
    groups = {
        "a": {"joint_acc": 0.9},
        "b": {"joint_acc": 0.4},
        "c": {"joint_acc": 0.7},
        "d": {"joint_acc": None},
    }
    s = spread(groups, n_worst=2)
    assert s["gap"] == pytest.approx(0.5) and s["worst"] == ["b", "c"] and s["best"] == "a"
    assert spread({"a": {"joint_acc": 0.9}})["gap"] is None
    assert cold_start_ratio({"1": 0.3, "5": 0.6}, 5) == pytest.approx(0.5)
    assert cold_start_ratio({"1": 0.3, "5": 0.0}, 5) is None and cold_start_ratio({"5": 0.6}, 5) is None
