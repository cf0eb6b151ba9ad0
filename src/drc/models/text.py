"""Byte-level text tokenizer: UTF-8 bytes are the tokens (vocabulary 256, nothing to train or save)."""

from __future__ import annotations

import torch
from torch import Tensor


class ByteTokenizer:
    """`encode(texts, max_len) -> (ids (B,T) long, mask (B,T) bool)`, right-padded with id 0.

    T is `max_len` (fixed, so batches from different places concatenate); text longer than
    `max_len` bytes is cut. The empty string is all padding: the generator sees no text at all,
    which is also what classifier-free guidance's "unconditional" branch uses.
    """

    vocab_size = 256

    def encode(self, texts: list[str], max_len: int) -> tuple[Tensor, Tensor]:
        ids = torch.zeros(len(texts), max_len, dtype=torch.long)
        mask = torch.zeros(len(texts), max_len, dtype=torch.bool)
        for i, text in enumerate(texts):
            b = text.strip().encode("utf-8")[:max_len]
            if b:
                ids[i, : len(b)] = torch.frombuffer(bytearray(b), dtype=torch.uint8).long()
                mask[i, : len(b)] = True
        return ids, mask

    def decode(self, ids: Tensor, mask: Tensor) -> list[str]:
        """Inverse of `encode` (up to the cut); invalid UTF-8 from a cut is replaced."""
        return [bytes(row[m].tolist()).decode("utf-8", errors="replace") for row, m in zip(ids, mask)]
