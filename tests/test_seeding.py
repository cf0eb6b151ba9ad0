"""`drc.seeding`: the one seeding rule, per image, keyed by (seed, the request's inputs, index).

(That `drc generate`, the service and evaluation draw the same image through it:
tests/serve/test_seeding_paths.py, which needs the service's extra.)"""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from drc.seeding import image_digest, image_generators, image_seed, images_key, request_key


def _images(seed: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8)


def test_every_part_of_the_key_moves_the_seed() -> None:
    hist, ref = _images(0, 3), _images(1, 1)[0]
    key = images_key(hist, ref, "a sticker")
    seeds = {
        image_seed(0, key, 0),
        image_seed(1, key, 0),  # the seed
        image_seed(0, key, 1),  # the index
        image_seed(0, images_key(hist, ref, "a poster"), 0),  # the prompt
        image_seed(0, images_key(hist[1:], ref, "a sticker"), 0),  # the history
        image_seed(0, images_key(hist.flip(0), ref, "a sticker"), 0),  # its order
        image_seed(0, images_key(hist, hist[0], "a sticker"), 0),  # the reference
    }
    assert len(seeds) == 7 and all(0 <= s < 2**63 for s in seeds)


def test_the_key_reads_pixels_not_memory_layout() -> None:
    hist, ref = _images(0, 2), _images(1, 1)[0]
    strided = ref.permute(1, 2, 0).contiguous().permute(2, 0, 1)  # same pixels, another layout
    assert images_key(hist, strided, "p") == images_key(hist, ref, "p")
    assert request_key([image_digest(h) for h in hist], image_digest(ref), "p") == images_key(hist, ref, "p")
    # one pixel more or less is another image
    other = ref.clone()
    other[0, 0, 0] ^= 1
    assert image_digest(other) != image_digest(ref)


def test_generators_are_the_per_image_streams() -> None:
    a = [g.initial_seed() for g in image_generators(3, "k", range(2, 5))]
    assert a == [image_seed(3, "k", i) for i in (2, 3, 4)]
    # a stream depends on its own index only, not on the range it is asked in
    assert image_generators(3, "k", [3])[0].initial_seed() == a[1]


def test_the_rule_does_not_depend_on_the_process() -> None:
    """Not Python's hash(), which is salted per process: another interpreter, another hash seed,
    the same seed."""
    code = "from drc.seeding import image_seed; print(image_seed(5, 'key', 2))"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) == image_seed(5, "key", 2)
