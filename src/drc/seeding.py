"""The one seeding rule for every image drc samples: `drc generate` (drc.api), the service
(drc.serve.batcher), leave-one-out explanations (api, eval) and evaluation (drc.eval.evaluate).

Image `index` of a request seeded `seed` is sampled from its own random stream, seeded by a stable
hash of (seed, request key, index). The request key is a digest of what the request conditions on:
the pixels of the history images actually used (the most recent k, oldest first), of the reference,
and the prompt. So the same inputs and seed draw the same random stream through every path, and an
evaluation case is a request like any other (its key: its history, reference and prompt). A row's
stream does not depend on the other rows of its batch; the image can still differ in the last bits
between batch compositions, as the batched matmuls round differently.

Leave-one-out variants reuse the full request's key, so variant image i differs from image i only
by its history. SHA-256 rather than Python's `hash()`, which is salted per process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import torch

from drc.runtime import derived_seed


def image_digest(image: torch.Tensor) -> str:
    """A digest of one uint8 image (3, H, W): its shape and pixels (not its file's bytes)."""
    arr = image.detach().to("cpu", torch.uint8).contiguous()
    h = hashlib.sha256(str(tuple(arr.shape)).encode())
    h.update(arr.numpy().tobytes())
    return h.hexdigest()


def request_key(history: Sequence[str], reference: str, prompt: str) -> str:
    """The key of a request: digests (`image_digest`) of its history images, oldest first, and of its
    reference, and its prompt."""
    h = hashlib.sha256()
    for part in (*history, "|", reference, "|", prompt):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def images_key(history: torch.Tensor, reference: torch.Tensor, prompt: str) -> str:
    """`request_key` of uint8 history images (L, 3, H, W) and a reference (3, H, W)."""
    return request_key([image_digest(im) for im in history], image_digest(reference), prompt)


def image_seed(seed: int, key: str, index: int) -> int:
    """The 63-bit seed of image `index` of the request `key` seeded `seed`."""
    return derived_seed("image", seed, key, index)


def image_generators(seed: int, key: str, indices: Iterable[int]) -> list[torch.Generator]:
    """One CPU generator per image index (what `DrcModel.sample(generators=...)` takes)."""
    return [torch.Generator(device="cpu").manual_seed(image_seed(seed, key, i)) for i in indices]
