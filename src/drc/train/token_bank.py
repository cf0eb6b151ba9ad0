"""TokenBank: every image the stages need, tokenised once.

Encoding images is the expensive part of a composer training step; the tokenizer is frozen in
Stages 1 and 2, so each real item is encoded once, and so are `A` semantic-preserving augmentations
of it (Stage 1's unlabelled `x_m`, Stage 2's references). A training step then only indexes token
tensors and looks up codebook vectors.

The tokenizer's codebook is captured too (`codebook (V, code_dim)`), so `bank.embed(tokens)` equals
`tokenizer.embed(tokens)` without needing the tokenizer in the training loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from drc.atomic import atomic_write
from drc.errors import DrcError
from drc.models.composers import codebook_of
from drc.models.inference import encode_images

if TYPE_CHECKING:
    from drc.backends.base import VisualTokenizer
    from drc.data.bank import ImageBank


@dataclass
class TokenBank:
    ids: list[str]
    index: dict[str, int]
    tokens: Tensor  # long (n_items, N): visual tokens of each real item
    aug_tokens: Tensor  # long (n_items, A, N): tokens of A augmentations of each item (A may be 0)
    styles: list[str | None]
    semantics: list[str | None]
    texts: list[str]
    codebook: Tensor | None = None  # float (V, code_dim): the frozen tokenizer's codebook vectors
    grid: tuple[int, int] | None = None  # the (h, w) token grid, h * w = N
    # what drew the augmentations (seed, count, which items): a cached bank is reused only for the
    # same recipe, since the same tokenizer and images with another seed give other augmentations
    recipe: str = ""

    # ------------------------------------------------------------------ properties
    @property
    def n_items(self) -> int:
        return len(self.ids)

    @property
    def n_aug(self) -> int:
        return int(self.aug_tokens.shape[1])

    @property
    def n_visual(self) -> int:
        return int(self.tokens.shape[1])

    @property
    def labelled(self) -> bool:
        """True when every item has a style and a semantics label."""
        return bool(self.ids) and all(self.styles) and all(self.semantics)

    def rows(self, ids: list[str]) -> Tensor:
        """Item ids -> `(len,)` long row indices; unknown ids are a DrcError."""
        missing = [i for i in ids if i not in self.index]
        if missing:
            raise DrcError(f"token bank has no item {missing[0]!r} ({len(missing)} missing)")
        return torch.tensor([self.index[i] for i in ids], dtype=torch.long)

    def embed(self, tokens: Tensor) -> Tensor:
        """`(..., N) long -> (..., N, code_dim)` codebook vectors (no gradient: the tokenizer is frozen)."""
        if self.codebook is None:
            raise DrcError("this token bank holds no codebook; build it with TokenBank.build")
        return F.embedding(tokens.to(self.codebook.device), self.codebook)

    def to(self, device: torch.device | str) -> TokenBank:
        cb = None if self.codebook is None else self.codebook.to(device)
        moved = {"tokens": self.tokens.to(device), "aug_tokens": self.aug_tokens.to(device), "codebook": cb}
        return dataclasses.replace(self, **moved)

    # ------------------------------------------------------------------ cache file
    def save(self, path: str | Path) -> None:
        """Write the bank to `path` (temporary file, then rename); loads with weights_only=True."""
        path = Path(path)
        blob = {
            "ids": self.ids,
            "tokens": self.tokens.cpu(),
            "aug_tokens": self.aug_tokens.cpu(),
            "styles": [s or "" for s in self.styles],
            "semantics": [s or "" for s in self.semantics],
            "texts": self.texts,
            "codebook": self.codebook.cpu() if self.codebook is not None else torch.zeros(0),
            "grid": list(self.grid) if self.grid is not None else [],
            "recipe": self.recipe,
        }
        atomic_write(path, lambda tmp: torch.save(blob, tmp))

    @staticmethod
    def load(path: str | Path) -> TokenBank:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        ids = list(blob["ids"])
        return TokenBank(
            ids=ids,
            index={i: r for r, i in enumerate(ids)},
            tokens=blob["tokens"],
            aug_tokens=blob["aug_tokens"],
            styles=[s or None for s in blob["styles"]],
            semantics=[s or None for s in blob["semantics"]],
            texts=list(blob["texts"]),
            codebook=blob["codebook"] if blob["codebook"].numel() else None,
            grid=tuple(blob["grid"]) if blob["grid"] else None,  # type: ignore[arg-type]
            recipe=str(blob.get("recipe", "")),
        )

    # ------------------------------------------------------------------ building
    @staticmethod
    @torch.no_grad()
    def build(
        bank: ImageBank,
        tokenizer: VisualTokenizer,
        ds_items: Mapping[str, Any],
        n_aug: int,
        seed: int,
        device: torch.device | str,
        augment_fn: Callable[[Any, np.random.Generator], Any] | None = None,
        batch_size: int = 64,
        precision: str = "auto",
        aug_ids: Collection[str] | None = None,
    ) -> TokenBank:
        """Tokenise every image of `bank` (an `ImageBank`: ids, index, images uint8 (n, 3, H, W)).

        ds_items: item id -> Item (for `style`, `semantics`, `text`; ids absent get None / "").
        n_aug: augmentations per item; augmentation `a` of the chunk starting at position `c` of the
            augmented rows is drawn with `np.random.default_rng([seed, a, c])`, so the bank depends
            only on the seed (and on `aug_ids`).
        augment_fn: `(uint8 (B, 3, H, W), rng) -> uint8 (B, 3, H, W)`; default `augment_batch`.
        precision: the encoder's autocast (`drc.precision`; the codebook lookup is float32 anyway);
            the same as generation's `DrcModel.tokens` and pretraining's `encode_images`, so every
            stage sees an image as the same tokens.
        aug_ids: the items whose augmentations anything reads (the training items; None = all).
            The others hold their own tokens in `aug_tokens` as placeholders: augmenting and
            encoding them would cost a third of the build on the benchmarks for nothing.
        """
        if n_aug < 0:
            raise DrcError(f"n_aug must be >= 0, got {n_aug}")
        if augment_fn is None and n_aug > 0:
            from drc.data.augment import augment_batch  # local: only needed when augmenting

            augment_fn = augment_batch
        device = torch.device(device)
        was_training = tokenizer.training
        tokenizer.eval()
        images = torch.as_tensor(bank.images)
        n = images.shape[0]
        grid: tuple[int, int] | None = None

        def encode(chunk: Tensor) -> Tensor:
            nonlocal grid
            idx = encode_images(
                tokenizer, chunk, batch_size=max(len(chunk), 1), device=device, precision=precision
            )
            grid = (int(idx.shape[1]), int(idx.shape[2]))  # (B, h, w)
            return idx.flatten(1).to(device)

        if n == 0:
            raise DrcError("cannot build a token bank from an empty image bank")
        tokens = torch.cat([encode(images[c : c + batch_size]) for c in range(0, n, batch_size)])
        aug = tokens[:, None, :].repeat(1, n_aug, 1)
        wanted = set(bank.ids) if aug_ids is None else set(aug_ids)
        rows = torch.tensor([r for r, i in enumerate(bank.ids) if i in wanted], dtype=torch.long)
        for c in range(0, len(rows), batch_size):
            sel = rows[c : c + batch_size]
            chunk = images[sel]
            for a in range(n_aug):
                out = augment_fn(chunk, np.random.default_rng([seed, a, c]))  # type: ignore[misc]
                aug[sel.to(aug.device), a] = encode(torch.as_tensor(np.asarray(out)))
        codebook = codebook_of(tokenizer).to(device)
        tokenizer.train(was_training)
        ids = list(bank.ids)
        items = [ds_items.get(i) for i in ids]
        return TokenBank(
            ids=ids,
            index={i: r for r, i in enumerate(ids)},
            tokens=tokens,
            aug_tokens=aug,
            styles=[getattr(it, "style", None) for it in items],
            semantics=[getattr(it, "semantics", None) for it in items],
            texts=[getattr(it, "text", "") or "" for it in items],
            codebook=codebook,
            grid=grid,
        )
