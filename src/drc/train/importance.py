"""Difficulty-aware importance sampling over training examples (Stage 1, docs/DESIGN.md section 2).

Each example i keeps a difficulty `d_i`: an EMA of its reconstruction loss (its first observed loss
initialises it; examples not seen yet count as the mean of the seen ones, so they are neither starved
nor favoured). Examples are drawn i.i.d. (with replacement) from

    p_i = (1 - u) * (d_i + eps)^alpha / sum_j (d_j + eps)^alpha  +  u / n

where the uniform share `u` keeps every example's probability at least u/n. `alpha = 0` is exactly
uniform sampling (the ablation): `probs()` returns 1/n and every weight is 1.

Unbiasedness: with raw weights `1 / (n p_i)`, `E_{i~p}[L_i / (n p_i)] = sum_i L_i / n`, the uniform
mean loss, for every draw. `sample()` returns the weights *normalised to mean 1 over the batch*
(self-normalised importance sampling): it keeps the loss scale (and so the learning rate) the same
as with uniform sampling whatever alpha is, and has lower variance, at the price of an O(1/B) bias
that vanishes as the batch grows. `raw_weights()` gives the exactly unbiased ones.

Under data parallelism each rank updates its own table from its own batches; rank 0's table is the
one checkpointed (the tables differ only in which examples each rank happened to see).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from drc.errors import DrcError


class ImportanceSampler:
    """Draws example indices by difficulty; see the module docstring for the maths."""

    def __init__(
        self, n: int, alpha: float = 1.0, eps: float = 0.05, uniform_mix: float = 0.2, ema: float = 0.9
    ) -> None:
        if n < 1:
            raise DrcError("importance sampling needs at least one training example")
        if alpha < 0:
            raise DrcError(f"stage1.alpha must be >= 0, got {alpha}")
        if eps <= 0:
            raise DrcError(f"stage1.eps must be > 0, got {eps}")
        if not 0.0 <= uniform_mix <= 1.0:
            raise DrcError(f"stage1.uniform_mix must be in [0, 1], got {uniform_mix}")
        if not 0.0 <= ema < 1.0:
            raise DrcError(f"stage1.ema must be in [0, 1), got {ema}")
        self.n, self.alpha, self.eps, self.uniform_mix, self.ema = n, alpha, eps, uniform_mix, ema
        # float64 CPU tensors (not numpy): the checkpoint's state.pt is loaded with weights_only=True
        self._d = torch.ones(n, dtype=torch.float64)
        self._seen = torch.zeros(n, dtype=torch.bool)

    # ------------------------------------------------------------------ distribution
    def difficulties(self) -> Tensor:
        """`(n,)` float64: the EMA losses; unseen examples get the mean of the seen ones (1.0 if none)."""
        if bool(self._seen.all()):
            return self._d.clone()
        fill = float(self._d[self._seen].mean()) if bool(self._seen.any()) else 1.0
        return torch.where(self._seen, self._d, torch.full_like(self._d, fill))

    def probs(self) -> Tensor:
        """`(n,)` float64 sampling probabilities (sum to 1)."""
        if self.alpha == 0:
            return torch.full((self.n,), 1.0 / self.n, dtype=torch.float64)
        q = (self.difficulties().clamp_min(0) + self.eps) ** self.alpha
        q = q / q.sum()
        return (1.0 - self.uniform_mix) * q + self.uniform_mix / self.n

    def raw_weights(self, idx: Tensor) -> Tensor:
        """`(B,)` float64 unbiased importance weights `1 / (n p_i)` of the drawn indices."""
        return 1.0 / (self.n * self.probs()[idx.cpu()])

    def sample(self, batch: int, gen: torch.Generator, normalise: bool = True) -> tuple[Tensor, Tensor]:
        """Draw `batch` indices i.i.d. from `probs()` -> (idx (B,) long, weights (B,) float32).

        The weights are `1 / (n p_i)`, divided by their batch mean when `normalise` (mean 1).
        """
        p = self.probs()
        idx = torch.multinomial(p, batch, replacement=True, generator=gen)
        w = 1.0 / (self.n * p[idx])
        if normalise:
            w = w / w.mean()
        return idx, w.float()

    # ------------------------------------------------------------------ difficulties
    def update(self, idx: Tensor, losses: Tensor) -> None:
        """Fold per-example losses `(B,)` into the difficulty EMA (in batch order; repeats apply twice)."""
        for i, loss in zip(idx.detach().cpu().tolist(), losses.detach().float().cpu().tolist()):
            if not math.isfinite(loss):
                continue  # a non-finite loss must not poison the table (the loop raises on it anyway)
            if self._seen[i]:
                self._d[i] = self.ema * self._d[i] + (1.0 - self.ema) * loss
            else:
                self._d[i] = loss
                self._seen[i] = True

    def entropy(self) -> float:
        """Shannon entropy of `probs()` in nats (log n for uniform sampling)."""
        p = self.probs()
        return float(-(p * p.clamp_min(1e-300).log()).sum())

    def hardest(self, k: int) -> list[tuple[int, float]]:
        """The k seen examples with the highest difficulty, hardest first: [(index, difficulty)]."""
        seen = torch.nonzero(self._seen).flatten()
        if seen.numel() == 0:
            return []
        d = self._d[seen]
        order = torch.argsort(d, descending=True)[:k]
        return [(int(seen[j]), float(d[j])) for j in order]

    @property
    def n_seen(self) -> int:
        return int(self._seen.sum())

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n, "difficulty": self._d.clone(), "seen": self._seen.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["n"]) != self.n:
            raise DrcError(
                f"importance sampler state is for {state['n']} examples, this run has {self.n}; "
                "the training set changed: use a new --out folder"
            )
        self._d = state["difficulty"].to(torch.float64).clone()
        self._seen = state["seen"].to(torch.bool).clone()
