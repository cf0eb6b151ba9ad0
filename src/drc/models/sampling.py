"""Sampling one token per row from logits: the sampler of every generator (built-in and Janus)."""

from __future__ import annotations

import torch
from torch import Tensor


def sample_from_logits(
    logits: Tensor, temperature: float, top_k: int, generator: torch.Generator | list[torch.Generator] | None
) -> Tensor:
    """(B,V) float logits -> (B,) long. Inverse-CDF sampling from one uniform per row.

    One uniform per row (drawn on the generator's device) rather than torch.multinomial keeps the
    random stream identical however the logits were computed, on any device. `generator` may be a
    list of B generators, one per row: then a row's samples depend only on its own generator, not on
    which other rows share the batch (`drc serve` batches unrelated requests together).
    """
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, -1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    cdf = logits.softmax(-1).cumsum(-1)
    if isinstance(generator, (list, tuple)):
        if len(generator) != logits.shape[0]:
            raise ValueError(f"{len(generator)} generators for {logits.shape[0]} rows")
        u = torch.cat([torch.rand(1, 1, generator=g, device=g.device) for g in generator]).to(logits.device)
    else:
        gen_device = generator.device if generator is not None else logits.device
        u = torch.rand(logits.shape[0], 1, generator=generator, device=gen_device).to(logits.device)
    u = u * cdf[:, -1:]  # cdf ends at 1 up to rounding
    return (cdf < u).sum(-1).clamp(max=logits.shape[-1] - 1)
