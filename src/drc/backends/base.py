"""The generator backend interface: what Stage 1, Stage 2, evaluation, `drc generate` and the API
need from "the LMM" and its visual tokenizer.

A backend is a pair of modules that every stage reaches only through these calls:

    tokenizer.encode(images (B, 3, H, W) float in [-1, 1]) -> (B, h, w) long codes
    tokenizer.decode_code(codes (B, h, w) long)             -> (B, 3, H, W) float in [-1, 1]
    tokenizer.embed(codes (B, N) or (B, h, w) long)         -> (B, N, code_dim): what the towers read
    tokenizer.grid(H, W)                                    -> (h, w), h * w = N
    tokenizer.config.code_dim, tokenizer.config.codebook_size (= V)

    generator.loss(text_ids, text_mask, instr, image_tokens, drop_cond=None, drop_draft=None) -> (B,)
    generator.generate(text_ids, text_mask, instr, *, temperature, top_k, cfg_scale, generator, use_cache)
                                                            -> (B, N) long
    generator.config.n_visual (= N), generator.config.max_text_len

Text goes in as drc's byte-level ids (`drc.models.text.ByteTokenizer`, `(B, L)` long + `(B, L)` bool
mask), so the stages never depend on a backend's own text tokenizer: a backend with its own
vocabulary (Janus) decodes the bytes back to the string and tokenizes that. The image condition is
always a `LatentInstruction` (a draft `(B, N, V)` over the tokenizer's V codes).

Both are `nn.Module`s (the stages move them between devices, switch train/eval, freeze their
parameters and save `state_dict()`): a backend whose base weights are not the run's to store
(Janus: gigabytes, loaded from `generator.model_dir`) returns from `state_dict()` only what the run
trains (its LoRA adapters), so that checkpoints and the run folder stay small.

Implementations: the built-in `VQTokenizer` + `Generator` (`drc.models`, trained by `drc train`),
and `drc.backends.janus` (a pretrained Janus / Janus-Pro loaded from a local folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from drc.models.token_model import VisualTokenModel


@runtime_checkable
class VisualTokenizer(Protocol):
    """Images <-> grids of codebook indices, and the code vectors the composers read."""

    @property
    def config(self) -> Any:
        """Has `code_dim` and `codebook_size`."""
        ...

    def encode(self, images: Tensor) -> Tensor:
        """`(B, 3, H, W)` float in [-1, 1] -> `(B, h, w)` long codes (no gradient)."""
        ...

    def decode_code(self, idx: Tensor) -> Tensor:
        """`(B, h, w)` long -> `(B, 3, H, W)` float in [-1, 1]."""
        ...

    def embed(self, idx: Tensor) -> Tensor:
        """`(B, N)` or `(B, h, w)` long -> `(B, N, code_dim)` code vectors."""
        ...

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """The `(h, w)` token grid of an image of `height x width` pixels."""
        ...


# The generator side is a base class, not a protocol: a generator subclasses
# `drc.models.token_model.VisualTokenModel`, implements `config` (`n_visual` = N cells per image,
# `max_text_len` bytes of text), the teacher-forced `forward` and one sampling step (`_decoder`),
# and inherits `loss` and `generate`, so every backend samples and guides the same way.
TokenGenerator = VisualTokenModel


@dataclass
class Backend:
    """A loaded backend: its tokenizer and generator, and whether drc trains them (`pretrained`)."""

    name: str
    tokenizer: VisualTokenizer
    generator: TokenGenerator
    pretrained: bool = False
