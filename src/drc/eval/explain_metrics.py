"""Metrics that check the explanations and the fairness of a method (pure functions, no torch).

- `intruder_weight_ratio`: mean importance weight of the intruders in noisy histories over the mean
  weight of the user's own items. 1.0 = the weights are blind to intruders; 0 = they ignore them.
- `spearman` / `influence_agreement`: rank correlation, per user, between each history image's weight
  and its leave-one-out influence (how far the output moves without it); the mean over users.
- `spread`: the gap (max - min) of a metric across groups (themes, intents), the worst groups named.
- `cold_start_ratio`: joint accuracy with one history image over joint accuracy with the full history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def intruder_weight_ratio(
    weights: Sequence[Sequence[float]], intruder: Sequence[Sequence[bool]]
) -> float | None:
    """Mean weight of intruders / mean weight of the other history images, pooled over users.

    `weights[u][i]`, `intruder[u][i]`: user u's history image i. Users with no intruder or no own
    item are skipped (they say nothing about the ratio). None when nothing is left, or when the own
    items' mean weight is 0.
    """
    w_in: list[float] = []
    w_own: list[float] = []
    for w, m in zip(weights, intruder):
        if len(w) != len(m):
            raise ValueError(f"weights ({len(w)}) and intruder flags ({len(m)}) differ in length")
        if not any(m) or all(m):
            continue
        w_in += [float(x) for x, f in zip(w, m) if f]
        w_own += [float(x) for x, f in zip(w, m) if not f]
    if not w_in or not w_own:
        return None
    own = sum(w_own) / len(w_own)
    return None if own <= 0 else (sum(w_in) / len(w_in)) / own


def _ranks(x: Sequence[float]) -> list[float]:
    """Ranks 1..n, ties sharing their mean rank."""
    order = sorted(range(len(x)), key=lambda i: x[i])
    ranks = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for t in range(i, j + 1):
            ranks[order[t]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation of two equal-length sequences (ties: mean ranks); None if either
    is constant or shorter than 2 (no ranking to compare)."""
    if len(a) != len(b):
        raise ValueError(f"sequences of length {len(a)} and {len(b)}")
    if len(a) < 2:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    if va == 0 or vb == 0:
        return None
    return cov / math.sqrt(va * vb)


def influence_agreement(
    weights: Sequence[Sequence[float]], influence: Sequence[Sequence[float]]
) -> dict[str, Any]:
    """{"mean": mean per-user Spearman(weights, influence) or None, "n": users that had one}."""
    rhos = [r for w, f in zip(weights, influence) if (r := spearman(w, f)) is not None]
    return {"mean": sum(rhos) / len(rhos) if rhos else None, "n": len(rhos)}


def spread(
    groups: Mapping[str, Mapping[str, float]], metric: str = "joint_acc", n_worst: int = 3
) -> dict[str, Any]:
    """{"gap": max - min of `metric` over groups, "worst": the n_worst lowest groups (lowest first),
    "best": the highest group}; gap None with fewer than two groups with a finite value."""
    vals = sorted(
        (float(v[metric]), g)
        for g, v in groups.items()
        if v.get(metric) is not None and math.isfinite(v[metric])
    )
    if len(vals) < 2:
        return {"gap": None, "worst": [g for _, g in vals], "best": vals[-1][1] if vals else None}
    return {"gap": vals[-1][0] - vals[0][0], "worst": [g for _, g in vals[:n_worst]], "best": vals[-1][1]}


def cold_start_ratio(by_history_len: Mapping[str, float | None], full: int) -> float | None:
    """joint(k=1) / joint(k=full) from a history-length curve {"1": acc, ...}; None if undefined."""
    one, top = by_history_len.get("1"), by_history_len.get(str(full))
    if one is None or top is None or not math.isfinite(one) or not math.isfinite(top) or top == 0:
        return None
    return one / top
