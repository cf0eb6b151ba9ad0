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


# --------------------------------------------------------------------------- output quality


def _edges(n: int = 3, size: int = 24, seed: int = 0) -> np.ndarray:
    """uint8 (n, 3, size, size) images of random blocks: crisp edges."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (n, 3, size // 4, size // 4))
    return np.repeat(np.repeat(blocks, 4, axis=2), 4, axis=3).astype(np.uint8)


def _box_blur(x: np.ndarray) -> np.ndarray:
    """3x3 box blur with edge padding, (N, 3, H, W) float."""
    p = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = x.shape[2:]
    return sum(p[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0


def test_laplacian_variance_hand_computed():
    flat = np.full((1, 3, 5, 5), 77, dtype=np.uint8)
    assert M.laplacian_variance(flat)[0] == 0.0
    # one white pixel in the centre of a black 5x5 grey image: interior Laplacian (3x3) is
    # -4*255 at the centre, 255 at its 4 neighbours, 0 at the 4 corners
    dot = np.zeros((3, 5, 5))
    dot[:, 2, 2] = 255
    lap = np.array([0, 255, 0, 255, -1020, 255, 0, 255, 0], dtype=np.float64)
    assert M.laplacian_variance(dot)[0] == pytest.approx(lap.var())
    # torch uint8 gives the same as numpy
    assert M.laplacian_variance(torch.from_numpy(dot).to(torch.uint8))[0] == pytest.approx(lap.var())
    with pytest.raises(ValueError):
        M.laplacian_variance(np.zeros((1, 3, 2, 8)))


def test_sharpness_ratio_blur_is_below_one_and_identity_is_one():
    real = _edges()
    assert M.sharpness_ratio(real, real) == pytest.approx(1.0)
    blurred = _box_blur(real)
    r = M.sharpness_ratio(blurred, real)
    assert 0.0 < r < 0.5, r
    # blurring twice loses more
    assert M.sharpness_ratio(_box_blur(blurred), real) < r
    # noise on a flat image is "sharper" than the flat target: the ratio of means is then NaN
    # (no edge energy to compare with), not infinite
    flat = np.full((2, 3, 8, 8), 128.0)
    assert math.isnan(M.sharpness_ratio(flat + np.random.default_rng(0).normal(0, 5, flat.shape), flat))
    with pytest.raises(ValueError):
        M.sharpness_ratio(real[:2], real)


def test_sharpness_ratio_is_the_ratio_of_means_not_the_mean_of_ratios():
    real = _edges(2)
    a, b = M.laplacian_variance(real)
    # image 0 exact, image 1 flat (ratio 0): ratio of means = a / (a + b), mean of ratios = 0.5
    gen = real.astype(np.float64).copy()
    gen[1] = 100.0
    assert M.sharpness_ratio(gen, real) == pytest.approx(a / (a + b))


def test_variety_identical_outputs_zero_distinct_positive():
    f = np.random.default_rng(0).normal(size=(4, 16))
    same = [np.repeat(f[i : i + 1], 4, axis=0) for i in range(4)]  # 4 requests, 4 copies each
    assert M.variety(same) == pytest.approx(0.0, abs=1e-12)
    distinct = [f, f * -1.0]
    assert M.variety(distinct) > 0.5
    # orthogonal unit rows: every pair at distance exactly 1
    assert M.mean_pairwise_distance(np.eye(3)) == pytest.approx(1.0)
    # groups of one are skipped; no group left is NaN
    assert M.variety([np.eye(3), np.ones((1, 3))]) == pytest.approx(1.0)
    assert math.isnan(M.variety([np.ones((1, 3))]))
    with pytest.raises(ValueError):
        M.mean_pairwise_distance(np.ones((1, 3)))


def test_pixel_variety_hand_computed():
    a = np.zeros((3, 3, 4, 4), dtype=np.uint8)
    a[1] = 10  # pairs: (0,1) 10, (0,2) 0, (1,2) 10 -> mean 20/3
    assert M.pixel_variety([a]) == pytest.approx(20 / 3)
    b = np.full((2, 3, 4, 4), 255, dtype=np.uint8)
    b[0] = 0  # uint8 must not wrap around: |0 - 255| = 255
    assert M.pixel_variety([a, torch.from_numpy(b)]) == pytest.approx((20 / 3 + 255) / 2)
    assert M.pixel_variety([np.repeat(b[:1], 4, axis=0)]) == 0.0
    assert math.isnan(M.pixel_variety([b[:1]]))

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
