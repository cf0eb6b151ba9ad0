"""Metrics against hand-computed cases and closed-form Fréchet distances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from drc.eval import metrics as M


def test_label_accuracies_hand_computed():
    ps = ["a", "a", "b", "c"]
    us = ["a", "b", "b", "b"]
    pm = ["x", "y", "y", "x"]
    tm = ["x", "x", "y", "y"]
    assert M.style_acc(ps, us) == 0.5
    assert M.semantic_acc(pm, tm) == 0.5
    # sample 0 (a/a, x/x) and sample 2 (b/b, y/y) are right on both
    assert M.joint_acc(ps, us, pm, tm) == 0.5
    assert M.joint_hits(ps, us, pm, tm) == [True, False, True, False]
    with pytest.raises(ValueError):
        M.style_acc(["a"], ["a", "b"])


def test_collapse_rate_cases():
    # 0: style = reference's, not user's -> style collapse
    # 1: style = reference's but also the user's -> not collapse (user and reference share a style)
    # 2: semantics of a history item, not the target's -> semantic collapse
    # 3: semantics of a history item that is also the target's -> not collapse
    # 4: wrong but neither reference style nor history semantics -> not collapse
    pred_style = ["r", "u", "u", "u", "z"]
    pred_sem = ["t", "t", "h", "t", "q"]
    user_style = ["u", "u", "u", "u", "u"]
    target_sem = ["t", "t", "t", "t", "t"]
    ref_style = ["r", "u", "r", "r", "r"]
    history = [["h"], ["h"], ["h", "g"], ["t", "h"], ["h"]]
    flags = M.collapse_flags(pred_style, pred_sem, user_style, target_sem, ref_style, history)
    assert flags == [True, False, True, False, False]
    rate = M.collapse_rate(flags)
    assert rate == pytest.approx(0.4)


def test_similarities_hand_computed():
    out = np.array([[1.0, 0.0], [0.0, 2.0]])
    ref = np.array([[1.0, 0.0], [1.0, 0.0]])  # cos 1 and 0
    assert M.ref_sim(out, ref) == pytest.approx(0.5)
    tgt = torch.tensor([[-3.0, 0.0], [0.0, 5.0]])  # cos -1 and 1; torch input accepted
    assert M.target_sim(out, tgt) == pytest.approx(0.0)
    # sample 0: history cos 1 and 0 -> 0.5; sample 1 (k = 1): cos 1 -> 1.0; mean 0.75
    hist = [np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([[0.0, 1.0]])]
    assert M.hist_sim(out, hist) == pytest.approx(0.75)
    # a zero feature is similarity 0, not NaN
    assert M.ref_sim(np.zeros((1, 2)), np.ones((1, 2))) == 0.0


def test_fd_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 4))
    assert M.fd(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([1.0, -2.0, 0.5, 3.0])
    # same covariance, shifted mean -> exactly ||shift||^2
    assert M.fd(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-9)
    # diagonal covariances: sum (sqrt(a_i) - sqrt(b_i))^2 + ||mu_a - mu_b||^2
    mu_a, mu_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    va, vb = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    want = float(np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(va) - np.sqrt(vb)) ** 2))
    assert M.fd_from_stats(mu_a, np.diag(va), mu_b, np.diag(vb)) == pytest.approx(want, rel=1e-12)
    # general (non-commuting) case against an independent formula: sqrt via eig of A @ B
    A = np.array([[2.0, 0.5], [0.5, 1.0]])
    B = np.array([[1.0, -0.3], [-0.3, 3.0]])
    tr_sqrt = float(np.sum(np.sqrt(np.linalg.eigvals(A @ B).real)))
    want = float(np.trace(A) + np.trace(B) - 2 * tr_sqrt)
    assert M.fd_from_stats(np.zeros(2), A, np.zeros(2), B) == pytest.approx(want, rel=1e-10)
    # singular covariances (fewer samples than dims) are fine; too few samples is NaN
    assert math.isfinite(M.fd(rng.normal(size=(3, 8)), rng.normal(size=(3, 8))))
    assert math.isnan(M.fd(a[:1], a))


def test_bootstrap_ci():
    lo, hi = M.bootstrap_ci([1, 0] * 50, n=2000, seed=0)
    assert lo < 0.5 < hi
    assert lo > 0.35 and hi < 0.65  # the standard error of the mean is 0.05
    assert M.bootstrap_ci([1, 1, 1]) == (1.0, 1.0)
    assert M.bootstrap_ci([1, 0, 1], seed=3) == M.bootstrap_ci([1, 0, 1], seed=3)
    assert all(math.isnan(v) for v in M.bootstrap_ci([]))


def _rec(ps, pm, us, tm, rs, hs, out, tgt, k=2, **extra):
    hist = np.stack([np.array(out, float)] * k)
    return M.EvalRecord(
        ps,
        pm,
        us,
        tm,
        rs,
        hs,
        np.array(out, float),
        hist,
        np.array(tgt, float),
        np.array(tgt, float),
        extra=extra,
    )


def test_summarize_and_breakdowns():
    recs = [
        _rec("u1", "t", "u1", "t", "r", ["h"], [1, 0], [1, 0], theme="A"),  # joint hit
        _rec("r", "t", "u1", "t", "r", ["h"], [1, 0], [0, 1], theme="A"),  # style collapse
        _rec("u2", "h", "u2", "t", "r", ["h"], [0, 1], [0, 1], theme="B"),  # semantic collapse
        _rec("u2", "t", "u2", "t", "r", ["h"], [0, 1], [0, 1], theme="B"),  # joint hit
    ]
    s = M.summarize(recs)
    assert s["n"] == 4
    assert s["style_acc"] == 0.75 and s["semantic_acc"] == 0.75 and s["joint_acc"] == 0.5
    assert s["collapse_rate"] == 0.5
    assert s["hist_sim"] == pytest.approx(1.0)  # histories are copies of the outputs
    assert s["target_sim"] == pytest.approx(0.75) and s["ref_sim"] == pytest.approx(0.75)
    assert s["fd"] >= 0.0
    lo, hi = s["joint_acc_ci"]
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0
    groups = M.breakdown(recs, lambda r: r.extra["theme"])
    assert groups == {"A": {"joint_acc": 0.5, "n": 2}, "B": {"joint_acc": 0.5, "n": 2}}
    groups["B"]["joint_acc"] = 0.25
    assert M.worst_group(groups) == "B"
    empty = M.summarize([])
    assert empty["n"] == 0 and math.isnan(empty["joint_acc"])


def test_summarize_reads_style_and_content_embeddings_where_given():
    """With the shipped encoder's embeddings, hist_sim compares styles and ref_sim contents; the
    plain features still give target_sim and fd."""
    e1, e2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])

    def record(**kw):
        return M.EvalRecord("s", "m", "s", "m", "r", ["h"], out_feat=e1, hist_feats=e2[None], ref_feat=e2,
                            target_feat=e1, **kw)  # fmt: skip

    plain = M.summarize([record(), record()], ci=False)
    assert plain["hist_sim"] == pytest.approx(0.0) and plain["ref_sim"] == pytest.approx(0.0)
    split = M.summarize(
        [record(out_style=e1, hist_style=e1[None], out_content=e2, ref_content=-e2)] * 2, ci=False
    )
    assert split["hist_sim"] == pytest.approx(1.0) and split["ref_sim"] == pytest.approx(-1.0)
    assert split["target_sim"] == pytest.approx(1.0)
    # one record without embeddings: all fall back to the plain features
    mixed = M.summarize([record(out_style=e1, hist_style=e1[None]), record()], ci=False)
    assert mixed["hist_sim"] == pytest.approx(0.0)
