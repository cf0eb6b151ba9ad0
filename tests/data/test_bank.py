"""ImageBank: decode once at the model's resolution, look up by id, cache to a file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from drc.data.bank import ImageBank
from drc.data.images import load_image
from drc.data.manifest import load_dataset
from drc.errors import DataError, DrcError


def test_from_dataset_and_get(dataset_dir: Path) -> None:
    ds = load_dataset(dataset_dir)
    bank = ImageBank.from_dataset(ds, (8, 6), workers=2)
    assert bank.images.dtype == torch.uint8 and bank.images.shape == (12, 3, 8, 6)
    assert bank.ids == list(ds.items) and bank.size == (8, 6) and len(bank) == 12
    batch = bank.get(["blue-sun", "red-cat", "blue-sun"])
    assert batch.shape == (3, 3, 8, 6) and batch.dtype == torch.uint8
    for n, iid in enumerate(["blue-sun", "red-cat"]):
        want = torch.from_numpy(load_image(ds.image_path(iid), (8, 6))).permute(2, 0, 1)
        assert torch.equal(batch[n], want)
    assert torch.equal(batch[0], batch[2])
    assert bank.get([]).shape == (0, 3, 8, 6)
    with pytest.raises(DrcError, match="'nope' is not in the image bank"):
        bank.get(["red-cat", "nope"])
    # the same bank whatever the number of workers
    assert torch.equal(ImageBank.from_dataset(ds, (8, 6), workers=1).images, bank.images)


def test_save_load(dataset_dir: Path, tmp_path: Path) -> None:
    bank = ImageBank.from_dataset(load_dataset(dataset_dir), (8, 8))
    path = tmp_path / "cache" / "bank.pt"
    bank.save(path)
    assert torch.load(path, weights_only=True)["ids"] == bank.ids  # plain data: safe loading works
    back = ImageBank.load(path)
    assert back.ids == bank.ids and back.index == bank.index and torch.equal(back.images, bank.images)
    assert back.fingerprint == bank.fingerprint
    assert [p.name for p in path.parent.iterdir()] == ["bank.pt"]  # no temporary file left
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="junk.pt"):
        ImageBank.load(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not an image bank"):
        ImageBank.load(tmp_path / "other.pt")
    with pytest.raises(DrcError, match="not found"):
        ImageBank.load(tmp_path / "missing.pt")


def test_from_images_checks() -> None:
    with pytest.raises(ValueError, match="uint8"):
        ImageBank.from_images(["a"], torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="distinct"):
        ImageBank.from_images(["a", "a"], torch.zeros(2, 3, 4, 4, dtype=torch.uint8))


def test_cached_rebuilds_when_an_image_changes(dataset_dir: Path, tmp_path: Path) -> None:
    ds = load_dataset(dataset_dir)
    path = tmp_path / "bank.pt"
    first = ImageBank.cached(ds, (8, 8), path)
    mtime = path.stat().st_mtime_ns
    again = ImageBank.cached(ds, (8, 8), path)
    assert path.stat().st_mtime_ns == mtime and torch.equal(again.images, first.images)  # reused
    # another size -> rebuilt
    assert ImageBank.cached(ds, (4, 4), path).size == (4, 4)
    # an edited image -> rebuilt with the new pixels
    img = ds.image_path("red-cat")
    Image.fromarray(np.zeros((12, 10, 3), np.uint8)).save(img)
    os.utime(img, ns=(mtime + 10**9, mtime + 10**9))
    fresh = ImageBank.cached(ds, (4, 4), path)
    assert int(fresh.get(["red-cat"]).max()) == 0
    # a broken cache file is rebuilt, not an error
    path.write_bytes(b"garbage")
    assert ImageBank.cached(ds, (4, 4), path).size == (4, 4)
