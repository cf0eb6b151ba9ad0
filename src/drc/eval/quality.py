"""Output-quality metrics (issue 23): how sharp generated images are against real ones
(`sharpness_ratio`, also a tokenizer's reconstruction against its originals) and how different the
n outputs of one request are (`variety`, in a feature space; `pixel_variety`, in pixels). Pure
functions on arrays, as `metrics.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from drc.eval.metrics import ArrayLike, _as_2d, _unit

_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 grey


def laplacian_variance(images: ArrayLike) -> np.ndarray:
    """(N,) variance of the 3x3 Laplacian [[0,1,0],[1,-4,1],[0,1,0]] of each image's grey levels.

    images: (N, 3, H, W) (or one (3, H, W)), uint8 in 0..255 or float; H, W >= 3. The Laplacian is
    taken on the (H-2, W-2) interior only, so a padding rule adds no edge at the border. High for
    crisp outlines and fine detail, near 0 for a flat or smeared image; in (grey units)^2.
    """
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    a = np.asarray(images, dtype=np.float64)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[1] != 3 or a.shape[2] < 3 or a.shape[3] < 3:
        raise ValueError(f"expected images (N, 3, H, W) with H, W >= 3, got shape {a.shape}")
    g = np.einsum("nchw,c->nhw", a, _LUMA)
    lap = g[:, :-2, 1:-1] + g[:, 2:, 1:-1] + g[:, 1:-1, :-2] + g[:, 1:-1, 2:] - 4 * g[:, 1:-1, 1:-1]
    return lap.reshape(len(a), -1).var(axis=1)


def sharpness_ratio(images: ArrayLike, references: ArrayLike) -> float:
    """How sharp `images` are against `references`: sum of their Laplacian variances / the
    references' (`laplacian_variance`), i.e. the ratio of the two means.

    images, references: (N, 3, H, W), image i judged against reference i (a generated image and
    its case's real target; a tokenizer's reconstruction and its original). 1 = as much edge
    energy as the real images, < 1 = blurrier, > 1 = sharper or noisier.

    The ratio of means, not the mean of per-image ratios: a nearly flat reference (a plain-colour
    sticker) has a Laplacian variance near 0, and one such pair's ratio would be huge and rule the
    mean; the ratio of means weighs each pair by its reference's edge energy and stays bounded.
    It equals the per-image ratio when every reference is equally sharp. Empty or all-flat
    references give NaN.
    """
    a, b = laplacian_variance(images), laplacian_variance(references)
    if a.shape != b.shape:
        raise ValueError(f"{len(a)} images but {len(b)} references")
    den = float(b.sum())
    return float(a.sum()) / den if den > 0 else float("nan")


def mean_pairwise_distance(feats: ArrayLike) -> float:
    """Mean cosine distance (1 - cosine) over the n(n-1)/2 pairs of rows of `feats` (n, F), n >= 2.
    0 for n identical rows; up to 2 for opposite ones."""
    u = _unit(_as_2d(feats))
    n = len(u)
    if n < 2:
        raise ValueError(f"a pairwise distance needs at least 2 rows, got {n}")
    sims = (u @ u.T)[np.triu_indices(n, k=1)]
    return float(np.mean(np.clip(1.0 - sims, 0.0, 2.0)))  # clip: round-off on identical rows


def variety(groups: Sequence[ArrayLike]) -> float:
    """How different the images within each group are, averaged over groups: the mean over groups
    of `mean_pairwise_distance(group)`; group g is (n_g, F) features (the n outputs of one
    request; or the real items of one (style, semantics) pair). Groups with fewer than 2 rows are
    skipped; NaN when none is left."""
    vals = [mean_pairwise_distance(g) for g in groups if len(_as_2d(g)) >= 2]
    return float(np.mean(vals)) if vals else float("nan")


def pixel_variety(groups: Sequence[ArrayLike]) -> float:
    """`variety` in pixels: the mean over groups of the mean absolute difference (0..255 units)
    over the pairs of images of a group; group g is (n_g, 3, H, W) images, n_g >= 2 (others are
    skipped; NaN when none is left). Unlike probe features it sees shifts and redrawn detail."""
    vals = []
    for g in groups:
        a = _as_2d(np.asarray(g.detach().cpu() if hasattr(g, "detach") else g).reshape(len(g), -1))
        if len(a) >= 2:
            i, j = np.triu_indices(len(a), k=1)
            vals.append(float(np.abs(a[i] - a[j]).mean()))
    return float(np.mean(vals)) if vals else float("nan")
