"""From images to a `LatentInstruction`: the steps generation, evaluation and training share.

Conventions:
- pixels are uint8 `(B, 3, H, W)`; the models read them scaled to [-1, 1] (`drc.data.images`);
- encoding an image into visual tokens happens in one place, `encode_images`, in one precision: the
  run's `precision` (the autocast of `drc.precision`: bf16 where the machine multiplies in bf16
  faster, else fp32), with the input in channels_last (the fast conv layout on CPU and GPU). The
  token bank, pretraining and generation all encode through it, so every stage sees an image as
  the same tokens;
- a history batch is `(B, k, ...)`, oldest first; a history shorter than k (cold start) is
  **right-aligned** (`pad_history`): its most recent image sits at index k-1 and the missing ones
  are at the front, with the mask False there (their token ids are 0 and never read);
- embedding uses the frozen tokenizer's codebook (`embed(idx) -> (B, N, code_dim)`), never with a
  gradient into the tokenizer. Anything with an `embed` method works: a `VQTokenizer` or a
  `TokenBank` (which carries the tokenizer's codebook).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from drc.data.images import pixels_to_unit
from drc.models.instruction import LatentInstruction
from drc.precision import autocast

if TYPE_CHECKING:
    from drc.backends.base import VisualTokenizer
    from drc.models.composers import Composer


def model_input(images: Tensor, device: torch.device | str) -> Tensor:
    """uint8 (B,3,H,W) -> float [-1,1] on device, channels_last: how the tokenizer reads pixels."""
    x = pixels_to_unit(images.to(device, non_blocking=True))
    return x.contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def encode_images(
    tokenizer: VisualTokenizer, images: Tensor, batch_size: int = 256, device: torch.device | str = "cpu",
    precision: str = "auto",
) -> Tensor:  # fmt: skip
    """uint8 (N,3,H,W) -> long (N,h,w) token grids (on the CPU)."""
    device = torch.device(device)
    tokenizer.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = model_input(images[i : i + batch_size], device)
        with autocast(device, precision):
            out.append(tokenizer.encode(x).long().cpu())
    if not out:
        h, w = tokenizer.grid(images.shape[-2], images.shape[-1])
        return torch.zeros(0, h, w, dtype=torch.long)
    return torch.cat(out)


def pad_history(histories: Sequence[Tensor], k: int) -> tuple[Tensor, Tensor]:
    """Histories `(L_b, ...)` (oldest first) -> (padded (B, k, ...), mask (B, k) bool), right-aligned.

    A history longer than k keeps its last k entries; a shorter one is padded with zeros at the front.
    """
    B = len(histories)
    trailing = tuple(histories[0].shape[1:]) if B else ()
    dtype = histories[0].dtype if B else torch.long
    padded = torch.zeros(B, k, *trailing, dtype=dtype)
    mask = torch.zeros(B, k, dtype=torch.bool)
    for b, h in enumerate(histories):
        h = h[-k:] if k > 0 else h[:0]
        L = h.shape[0]
        if L:
            padded[b, k - L :] = h
            mask[b, k - L :] = True
    return padded, mask


def embed_tokens(embedder: VisualTokenizer, tokens: Tensor) -> Tensor:
    """`(..., N)` long -> `(..., N, code_dim)` codebook vectors, without gradient."""
    lead = tokens.shape[:-1]
    flat = tokens.reshape(-1, tokens.shape[-1])
    with torch.no_grad():
        e = embedder.embed(flat)
    return e.reshape(*lead, tokens.shape[-1], e.shape[-1]).detach()


def condition(
    composer: Composer, tokenizer: VisualTokenizer, hist_tokens: Tensor, hist_mask: Tensor, ref_tokens: Tensor
) -> LatentInstruction:
    """The one call generation and evaluation use: tokens in, latent instruction out.

    hist_tokens (B, k, N) long, hist_mask (B, k) bool (False = missing), ref_tokens (B, N) long.
    """
    dev = next(composer.parameters()).device
    hist_mask = hist_mask.to(dev).bool()
    # whatever the caller put in missing slots (0, -1 ...) is never read: make it a valid index
    hist_tokens = torch.where(hist_mask[..., None], hist_tokens.to(dev), 0)
    hist = embed_tokens(tokenizer, hist_tokens).to(dev)
    ref = embed_tokens(tokenizer, ref_tokens.to(dev)).to(dev)
    return composer(hist, hist_mask, ref)
