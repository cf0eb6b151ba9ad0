"""Comparisons for results that floating point may change in a few places (imported by tests).

What the platform promises: the same computation on the same inputs, shapes and machine gives the
same bits. What it does not promise: the same bits across batch sizes, precisions (bf16 autocast
against fp32) or machines, since oneDNN and BLAS pick other kernels and summation orders for other
shapes. An argmin or a sampled token then flips where two candidates were within rounding of each
other; these helpers bound how often that may happen instead of asserting it never does.
"""

from __future__ import annotations

import torch


def share_equal(a: torch.Tensor, b: torch.Tensor) -> float:
    """The share of positions where two same-shaped tensors hold the same value."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a == b).float().mean()) if a.numel() else 1.0


def assert_codes_near_ties(tokenizer, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *,
                           min_share: float = 0.95, rel_tol: float = 0.1) -> None:  # fmt: skip
    """Two code grids (B,h,w) of images x (B,3,H,W) agree on at least `min_share` of the cells, and
    where they differ both codes are about as near the fp32 encoding: a rounding-level tie, not a
    wrong code (distances within `rel_tol` of each other)."""
    assert share_equal(a, b) >= min_share, f"codes agree on only {share_equal(a, b):.3f}"
    with torch.no_grad():
        z = tokenizer.encoder(x.float()).float().permute(0, 2, 3, 1)  # (B,h,w,D)
        cb = tokenizer.quantizer.codebook.float()
        da = (z - cb[a]).norm(dim=-1)
        db = (z - cb[b]).norm(dim=-1)
    diff = a != b
    gap = (da - db).abs()[diff]
    near = torch.minimum(da, db)[diff]
    assert bool((gap <= rel_tol * near + 1e-6).all()), f"codes differ by more than a tie: {gap} vs {near}"
