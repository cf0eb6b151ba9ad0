"""Output-quality metrics: sharpness against real images, variety within a request."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from drc.eval import quality as Q


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
    assert Q.laplacian_variance(flat)[0] == 0.0
    # one white pixel in the centre of a black 5x5 grey image: interior Laplacian (3x3) is
    # -4*255 at the centre, 255 at its 4 neighbours, 0 at the 4 corners
    dot = np.zeros((3, 5, 5))
    dot[:, 2, 2] = 255
    lap = np.array([0, 255, 0, 255, -1020, 255, 0, 255, 0], dtype=np.float64)
    assert Q.laplacian_variance(dot)[0] == pytest.approx(lap.var())
    # torch uint8 gives the same as numpy
    assert Q.laplacian_variance(torch.from_numpy(dot).to(torch.uint8))[0] == pytest.approx(lap.var())
    with pytest.raises(ValueError):
        Q.laplacian_variance(np.zeros((1, 3, 2, 8)))


def test_sharpness_ratio_blur_is_below_one_and_identity_is_one():
    real = _edges()
    assert Q.sharpness_ratio(real, real) == pytest.approx(1.0)
    blurred = _box_blur(real)
    r = Q.sharpness_ratio(blurred, real)
    assert 0.0 < r < 0.5, r
    # blurring twice loses more
    assert Q.sharpness_ratio(_box_blur(blurred), real) < r
    # noise on a flat image is "sharper" than the flat target: the ratio of means is then NaN
    # (no edge energy to compare with), not infinite
    flat = np.full((2, 3, 8, 8), 128.0)
    assert math.isnan(Q.sharpness_ratio(flat + np.random.default_rng(0).normal(0, 5, flat.shape), flat))
    with pytest.raises(ValueError):
        Q.sharpness_ratio(real[:2], real)


def test_sharpness_ratio_is_the_ratio_of_means_not_the_mean_of_ratios():
    real = _edges(2)
    a, b = Q.laplacian_variance(real)
    # image 0 exact, image 1 flat (ratio 0): ratio of means = a / (a + b), mean of ratios = 0.5
    gen = real.astype(np.float64).copy()
    gen[1] = 100.0
    assert Q.sharpness_ratio(gen, real) == pytest.approx(a / (a + b))


def test_variety_identical_outputs_zero_distinct_positive():
    f = np.random.default_rng(0).normal(size=(4, 16))
    same = [np.repeat(f[i : i + 1], 4, axis=0) for i in range(4)]  # 4 requests, 4 copies each
    assert Q.variety(same) == pytest.approx(0.0, abs=1e-12)
    distinct = [f, f * -1.0]
    assert Q.variety(distinct) > 0.5
    # orthogonal unit rows: every pair at distance exactly 1
    assert Q.mean_pairwise_distance(np.eye(3)) == pytest.approx(1.0)
    # groups of one are skipped; no group left is NaN
    assert Q.variety([np.eye(3), np.ones((1, 3))]) == pytest.approx(1.0)
    assert math.isnan(Q.variety([np.ones((1, 3))]))
    with pytest.raises(ValueError):
        Q.mean_pairwise_distance(np.ones((1, 3)))


def test_pixel_variety_hand_computed():
    a = np.zeros((3, 3, 4, 4), dtype=np.uint8)
    a[1] = 10  # pairs: (0,1) 10, (0,2) 0, (1,2) 10 -> mean 20/3
    assert Q.pixel_variety([a]) == pytest.approx(20 / 3)
    b = np.full((2, 3, 4, 4), 255, dtype=np.uint8)
    b[0] = 0  # uint8 must not wrap around: |0 - 255| = 255
    assert Q.pixel_variety([a, torch.from_numpy(b)]) == pytest.approx((20 / 3 + 255) / 2)
    assert Q.pixel_variety([np.repeat(b[:1], 4, axis=0)]) == 0.0
    assert math.isnan(Q.pixel_variety([b[:1]]))
