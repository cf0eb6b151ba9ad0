"""Evaluation metrics (docs/DESIGN.md section 4): pure functions on lists and arrays.

Label metrics compare the probe's predictions for generated images with the labels of the user,
the target and the reference. Similarity metrics are mean cosine similarities in a feature space
(the probe's, or a pretrained encoder's), and `fd` is the Fréchet distance between Gaussians fitted
to two feature sets (FID when the features come from a pretrained encoder).

`summarize(records)` computes all of them for one method from per-sample `EvalRecord`s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ArrayLike = Any  # np.ndarray, torch.Tensor or nested lists; converted with `_as_2d`


def _as_2d(x: ArrayLike) -> np.ndarray:
    """Any (N, F) array-like (numpy, torch, lists) -> float64 numpy array."""
    if hasattr(x, "detach"):  # a torch tensor: no torch import needed for pure metrics
        x = x.detach().float().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"expected a (N, F) feature array, got shape {a.shape}")
    return a


def _check_len(*seqs: Sequence[Any]) -> int:
    n = len(seqs[0])
    if any(len(s) != n for s in seqs):
        raise ValueError(f"inputs differ in length: {[len(s) for s in seqs]}")
    return n


def _mean(flags: Sequence[bool | float]) -> float:
    return float(np.mean(np.asarray(flags, dtype=np.float64))) if len(flags) else float("nan")


# --------------------------------------------------------------------------- label metrics


def style_hits(pred_styles: Sequence[str], user_styles: Sequence[str]) -> list[bool]:
    _check_len(pred_styles, user_styles)
    return [p == u for p, u in zip(pred_styles, user_styles)]


def semantic_hits(pred_sem: Sequence[str], target_sem: Sequence[str]) -> list[bool]:
    _check_len(pred_sem, target_sem)
    return [p == t for p, t in zip(pred_sem, target_sem)]


def style_acc(pred_styles: Sequence[str], user_styles: Sequence[str]) -> float:
    """Share of outputs whose predicted style is the user's style."""
    return _mean(style_hits(pred_styles, user_styles))


def semantic_acc(pred_sem: Sequence[str], target_sem: Sequence[str]) -> float:
    """Share of outputs whose predicted semantics are the target's semantics."""
    return _mean(semantic_hits(pred_sem, target_sem))


def joint_hits(
    pred_styles: Sequence[str], user_styles: Sequence[str], pred_sem: Sequence[str], target_sem: Sequence[str]
) -> list[bool]:
    s = style_hits(pred_styles, user_styles)
    m = semantic_hits(pred_sem, target_sem)
    _check_len(s, m)
    return [a and b for a, b in zip(s, m)]


def joint_acc(
    pred_styles: Sequence[str], user_styles: Sequence[str], pred_sem: Sequence[str], target_sem: Sequence[str]
) -> float:
    """Share of outputs with both the user's style and the target's semantics."""
    return _mean(joint_hits(pred_styles, user_styles, pred_sem, target_sem))


def collapse_flags(
    pred_style: Sequence[str],
    pred_sem: Sequence[str],
    user_style: Sequence[str],
    target_sem: Sequence[str],
    ref_style: Sequence[str],
    history_sems: Sequence[Sequence[str]],
) -> list[bool]:
    """Per output: style collapse (the reference's style, not the user's) or semantic collapse (a
    history item's semantics, not the target's)."""
    _check_len(pred_style, pred_sem, user_style, target_sem, ref_style, history_sems)
    out = []
    for ps, pm, us, tm, rs, hs in zip(pred_style, pred_sem, user_style, target_sem, ref_style, history_sems):
        style_collapse = ps == rs and ps != us
        sem_collapse = pm in set(hs) and pm != tm
        out.append(style_collapse or sem_collapse)
    return out


def collapse_rate(flags: Sequence[bool]) -> float:
    """Share of outputs that collapsed, from `collapse_flags(...)`: onto the reference's style or a
    history item's semantics."""
    return _mean(flags)


# --------------------------------------------------------------------------- feature metrics


def _unit(a: np.ndarray) -> np.ndarray:
    # eps keeps an all-zero feature at similarity 0 instead of NaN
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)


def cosine_rows(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """(N,) cosine similarity of row i of `a` with row i of `b`."""
    a2, b2 = _as_2d(a), _as_2d(b)
    if a2.shape != b2.shape:
        raise ValueError(f"feature arrays differ in shape: {a2.shape} vs {b2.shape}")
    return np.sum(_unit(a2) * _unit(b2), axis=-1)


def hist_sim_per_sample(out_feats: ArrayLike, hist_feats: Sequence[ArrayLike]) -> np.ndarray:
    """(N,) mean cosine of each output with each of its own history images (k_i may vary)."""
    out = _unit(_as_2d(out_feats))
    if len(hist_feats) != len(out):
        raise ValueError(f"{len(out)} outputs but {len(hist_feats)} histories")
    return np.array([float(np.mean(_unit(_as_2d(h)) @ o)) for o, h in zip(out, hist_feats)])


def hist_sim(out_feats: ArrayLike, hist_feats: Sequence[ArrayLike]) -> float:
    """Mean over samples of the mean cosine between the output and each history image
    (the analogue of Pigeon's history CLIP/DINO image scores)."""
    v = hist_sim_per_sample(out_feats, hist_feats)
    return float(v.mean()) if len(v) else float("nan")


def ref_sim(out_feats: ArrayLike, ref_feats: ArrayLike) -> float:
    """Mean cosine between each output and its reference."""
    v = cosine_rows(out_feats, ref_feats)
    return float(v.mean()) if len(v) else float("nan")


def target_sim(out_feats: ArrayLike, target_feats: ArrayLike) -> float:
    """Mean cosine between each output and its real target."""
    v = cosine_rows(out_feats, target_feats)
    return float(v.mean()) if len(v) else float("nan")


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def fd_from_stats(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Fréchet distance ||mu_a - mu_b||^2 + Tr(A + B - 2 (A B)^(1/2)) between two Gaussians.

    Tr((A B)^(1/2)) is computed as the sum of square roots of the eigenvalues of A^(1/2) B A^(1/2),
    which has the same eigenvalues as A B but is symmetric PSD: `eigh` is exact and stable there,
    and singular covariances (fewer samples than feature dimensions) need no regulariser. This is
    the scipy-free form of the usual `sqrtm(A @ B)`.
    """
    sa = _psd_sqrt(cov_a)
    middle = sa @ cov_b @ sa
    middle = (middle + middle.T) / 2  # remove round-off asymmetry before eigvalsh
    tr_sqrt = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None))))
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_sqrt)


def gaussian_stats(feats: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and unbiased covariance (F, F) of an (N, F) feature set (N >= 2)."""
    a = _as_2d(feats)
    if len(a) < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {len(a)}")
    return a.mean(axis=0), np.cov(a, rowvar=False).reshape(a.shape[1], a.shape[1])


def fd(feats_a: ArrayLike, feats_b: ArrayLike) -> float:
    """Fréchet distance between Gaussians fitted to two (N, F) feature sets.

    Fewer than 2 samples on either side gives NaN (no covariance to fit). With few samples the
    value is biased upwards (as FID is); compare methods on the same sample count only.
    """
    a, b = _as_2d(feats_a), _as_2d(feats_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return max(fd_from_stats(*gaussian_stats(a), *gaussian_stats(b)), 0.0)


# --------------------------------------------------------------------------- noise


def bootstrap_ci(values: Sequence[float | bool], n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap confidence interval of the mean of `values` (e.g. 0/1 hits).

    Reports quote it next to accuracies so that a difference of a few points on a small test set
    is not read as a win. Empty input gives (nan, nan).
    """
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n, len(v)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return (float(lo), float(hi))


# --------------------------------------------------------------------------- one method's summary


SUMMARY_KEYS = (
    "style_acc",
    "semantic_acc",
    "joint_acc",
    "collapse_rate",
    "hist_sim",
    "ref_sim",
    "target_sim",
    "fd",
)


@dataclass
class EvalRecord:
    """One generated output with what it is judged against.

    Labels come from the dataset (user_style = the style of the user's history, target_sem and
    ref_style from the items) except pred_*, which are the probe's predictions for the output.
    Features are 1-D arrays (F,) in one feature space; hist_feats is (k, F).
    """

    pred_style: str
    pred_sem: str
    user_style: str
    target_sem: str
    ref_style: str
    history_sems: list[str]
    out_feat: ArrayLike
    hist_feats: ArrayLike
    ref_feat: ArrayLike
    target_feat: ArrayLike
    extra: dict[str, Any] = field(default_factory=dict)  # free-form tags for breakdowns (user, k, ...)
    # where the feature space has separate style and content embeddings (the shipped encoder's):
    # hist_sim compares styles (out_style (E,) with hist_style (k, E)), ref_sim contents
    out_style: ArrayLike | None = None
    hist_style: ArrayLike | None = None
    out_content: ArrayLike | None = None
    ref_content: ArrayLike | None = None


def summarize(records: Sequence[EvalRecord], ci: bool = True, seed: int = 0) -> dict[str, Any]:
    """All metrics of one method: style_acc, semantic_acc, joint_acc, collapse_rate, hist_sim (in the
    style embedding where records carry one), ref_sim (in the content embedding where records carry
    one), target_sim, fd (outputs vs targets in the same feature space), n, and, with `ci`,
    `<acc>_ci = [lo, hi]` 95% bootstrap intervals for the four rates."""
    n = len(records)
    if n == 0:
        out: dict[str, Any] = dict.fromkeys(SUMMARY_KEYS, float("nan"))
        out["n"] = 0
        return out
    ps = [r.pred_style for r in records]
    pm = [r.pred_sem for r in records]
    us = [r.user_style for r in records]
    tm = [r.target_sem for r in records]
    rs = [r.ref_style for r in records]
    hs = [list(r.history_sems) for r in records]
    hits = {
        "style_acc": style_hits(ps, us),
        "semantic_acc": semantic_hits(pm, tm),
        "joint_acc": joint_hits(ps, us, pm, tm),
        "collapse_rate": collapse_flags(ps, pm, us, tm, rs, hs),
    }
    out_f = np.concatenate([_as_2d(r.out_feat) for r in records])
    tgt_f = np.concatenate([_as_2d(r.target_feat) for r in records])
    ref_f = np.concatenate([_as_2d(r.ref_feat) for r in records])
    out = {k: _mean(v) for k, v in hits.items()}
    if all(r.out_style is not None and r.hist_style is not None for r in records):
        h_out = np.concatenate([_as_2d(r.out_style) for r in records])
        h_hist = [r.hist_style for r in records]
    else:
        h_out, h_hist = out_f, [r.hist_feats for r in records]
    if all(r.out_content is not None and r.ref_content is not None for r in records):
        r_out = np.concatenate([_as_2d(r.out_content) for r in records])
        r_ref = np.concatenate([_as_2d(r.ref_content) for r in records])
    else:
        r_out, r_ref = out_f, ref_f
    out.update(
        hist_sim=hist_sim(h_out, h_hist),
        ref_sim=ref_sim(r_out, r_ref),
        target_sim=target_sim(out_f, tgt_f),
        fd=fd(out_f, tgt_f),
        n=n,
    )
    if ci:
        for k, v in hits.items():
            out[f"{k}_ci"] = list(bootstrap_ci(v, seed=seed))
    return out


def group_by(records: Sequence[EvalRecord], key: Callable[[EvalRecord], Any]) -> dict[str, list[EvalRecord]]:
    """Records grouped by `key(record)` (as str), groups in first-seen order."""
    groups: dict[str, list[EvalRecord]] = {}
    for r in records:
        groups.setdefault(str(key(r)), []).append(r)
    return groups


def breakdown(
    records: Sequence[EvalRecord], key: Callable[[EvalRecord], Any], metric: str = "joint_acc"
) -> dict[str, dict[str, float]]:
    """{group: {metric, n}} - e.g. DRC's joint_acc per user style theme (`key=lambda r: r.user_style`)."""
    out = {}
    for g, rs in group_by(records, key).items():
        s = summarize(rs, ci=False)
        out[g] = {metric: s[metric], "n": s["n"]}
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def worst_group(groups: dict[str, dict[str, float]], metric: str = "joint_acc") -> str | None:
    """The group with the lowest finite `metric` (ties: first in order), or None."""
    finite = [(v[metric], g) for g, v in groups.items() if _finite(v.get(metric))]
    if not finite:
        return None
    best = min(v for v, _ in finite)
    return next(g for v, g in finite if v == best)
