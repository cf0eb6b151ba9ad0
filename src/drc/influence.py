"""Leave-one-out influence: how far the output moves when one history image is left out.

One home for the service (`drc.serve.batcher`), the API (`DrcModel.explain`, `generate(explain=True)`,
`drc generate --explain`) and the evaluation (`influence_agreement` in `drc.eval`).

For a job with history h_1..h_L (L >= 2) the caller also renders L variants, variant i with h_i left
out (the rest stay in order, right-aligned as in training), each with the *same* per-image random
streams as the job's own images. Two distances are reported per history image:

  pixel  mean absolute difference between the job's images and variant i's, in 0-255 pixel units,
         over all pixels, channels and the job's n images: how much the picture a user sees changes.
  style  (evaluation, with probes) total-variation distance between the style probe's class
         probabilities of the outputs with and without h_i: how far the output's *style* moves.
  draft  mean total-variation distance (0..1) between the latent instruction's per-cell code
         distributions with and without h_i, in the tokenizer's code space: how much the composer's
         draft of the target moves. It involves no sampling, so it is free of sampling noise.

Both are 0 when an image does not matter. With a single history image there is nothing to compare
against (the composer needs at least one image), so influence is reported as None.
"""

from __future__ import annotations

import torch


def leave_one_out(hist: torch.Tensor) -> list[torch.Tensor]:
    """(L, N) history tokens -> L tensors (L-1, N), the i-th without image i (order kept)."""
    L = hist.shape[0]
    return [torch.cat([hist[:i], hist[i + 1 :]]) for i in range(L)]


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of two uint8 image batches (n, 3, H, W), in pixel units (0-255)."""
    return float((a.float() - b.float()).abs().mean())


def prob_distance(p: torch.Tensor, q: torch.Tensor) -> float:
    """Mean total-variation distance (0..1) between two (n, C) batches of class probabilities."""
    return float(0.5 * (p.float() - q.float()).abs().sum(-1).mean())


def draft_distance(p: torch.Tensor, q: torch.Tensor) -> float:
    """Mean total-variation distance between two (N, V) draft logits' per-cell distributions (0..1)."""
    return float(0.5 * (p.float().softmax(-1) - q.float().softmax(-1)).abs().sum(-1).mean())


def influence(
    full_images: torch.Tensor,
    full_draft: torch.Tensor,
    loo_images: list[torch.Tensor],
    loo_drafts: list[torch.Tensor],
) -> list[dict[str, float]]:
    """One {"pixel", "draft"} per history image, oldest first (see the module docstring)."""
    return [
        {
            "pixel": round(pixel_distance(full_images, im), 3),
            "draft": round(draft_distance(full_draft, d), 4),
        }
        for im, d in zip(loo_images, loo_drafts)
    ]
