"""Sampling: one token per row from logits, and the sampling loop of every generator (built-in and
Janus), with the training loss they share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drc.models.instruction import LatentInstruction


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


def draft_guide(instr: LatentInstruction, weight: float) -> Tensor | None:
    """`(B, N, V)` float32 `weight * log softmax(draft)`: the composer's own belief about each cell,
    added to the generator's logits (`generate(guide=...)`), or None for weight 0.

    Why: the generator, pretrained to repair corrupted drafts of training images, repairs a draft of
    a pair it never saw towards a pair it did see (bench/README.md, "Sampling that follows the
    draft"). Multiplying its distribution by the composer's `p_draft^weight` keeps every cell among
    the codes the composer finds likely, while the generator still chooses among them, so outputs
    stay sharp and the n images of one request still differ (the draft's argmax gives n copies).
    """
    if weight < 0:
        raise ValueError(f"draft guide weight {weight} < 0")
    if weight == 0:
        return None
    return weight * instr.draft.float().log_softmax(-1)


# a function from the tokens sampled at the previous step `(R,)` long (None at the first step) to the
# next cell's logits `(R, V)` float, for R = B rows, or 2B under classifier-free guidance
StepFn = Callable[[Tensor | None], Tensor]


class VisualTokenModel(nn.Module):
    """What every generator (built-in and Janus) shares: the training loss and the sampling loop.

    A subclass implements `forward` (teacher-forced logits), `_decoder` (one step of sampling) and
    a `config` with `n_visual`; this class owns the classifier-free guidance and the seeding, so the
    backends sample identically by construction, not by copy.
    """

    config: Any  # set by the subclass: its config, with at least `n_visual`

    def _decoder(
        self, text_ids: Tensor, text_mask: Tensor, instr: LatentInstruction | None, drop: Tensor | None,
        use_cache: bool,
    ) -> StepFn:  # fmt: skip
        """Set up sampling for `text_ids/text_mask (R, L)`, `instr (R, N, V)`, `drop (R,)` bool
        (unconditional rows); return the step function (see `StepFn`)."""
        raise NotImplementedError

    def loss(
        self, text_ids: Tensor, text_mask: Tensor, instr: LatentInstruction | None, image_tokens: Tensor,
        drop_cond: Tensor | None = None, drop_draft: Tensor | None = None,
    ) -> Tensor:  # fmt: skip
        """`(B,)` per-example mean next-token cross-entropy of `image_tokens (B, N)` long (so callers can
        weight examples). `drop_cond (B,)` bool: unconditional rows (no text, no draft; classifier-free
        guidance); `drop_draft (B,)` bool: rows shown the text only. Differentiable in `instr.draft`."""
        logits = self(text_ids, text_mask, instr, image_tokens, drop_cond, drop_draft)
        ce = F.cross_entropy(logits.float().transpose(1, 2), image_tokens.to(logits.device), reduction="none")
        return ce.mean(1)

    @torch.no_grad()
    def generate(
        self,
        text_ids: Tensor,
        text_mask: Tensor,
        instr: LatentInstruction | None,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        cfg_scale: float = 1.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        use_cache: bool = True,
        guide: Tensor | None = None,
    ) -> Tensor:
        """Sample `(B, N)` long visual tokens, seeded by `generator` (one, or a list of one per row).

        cfg_scale != 1 runs the conditional rows and the unconditional ones (no text, no draft) as
        one batch of 2B and samples from uncond + cfg_scale * (cond - uncond). `guide (B, N, V)`
        float, if given, is added to cell i's guided logits before temperature and top-k: with
        `w * log p_draft` it samples from the product p_gen * p_draft^w (`draft_guide`). `use_cache=False`
        recomputes the whole sequence at every step where the model supports it (the reference the
        cache must match); the tokens are the same either way.
        """
        b = text_ids.shape[0]
        guided = cfg_scale != 1.0
        drop = None
        if guided:
            text_ids, text_mask = text_ids.repeat(2, 1), text_mask.repeat(2, 1)
            if instr is not None:
                instr = LatentInstruction(instr.draft.repeat(2, 1, 1))
            drop = torch.arange(2 * b, device=text_ids.device) >= b
        step = self._decoder(text_ids, text_mask, instr, drop, use_cache)
        out: list[Tensor] = []  # (B,) per cell, on the model's device
        prev: Tensor | None = None
        n = self.config.n_visual
        if guide is not None and guide.shape[:2] != (b, n):
            raise ValueError(f"guide of shape {tuple(guide.shape)} for {b} rows of {n} cells")
        for i in range(self.config.n_visual):
            logits = step(prev)
            if guided:
                cond, uncond = logits[:b], logits[b:]
                logits = uncond + cfg_scale * (cond - uncond)
            if guide is not None:
                logits = logits.float() + guide[:, i].to(logits.device, torch.float32)
            nxt = sample_from_logits(logits, temperature, top_k, generator)
            out.append(nxt)
            prev = nxt.repeat(2) if guided else nxt
        return torch.stack(out, 1)
