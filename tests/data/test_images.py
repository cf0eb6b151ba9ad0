"""Odd but valid images are accepted by the dataset check and load as RGB uint8 of the right size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import drc.data.images as images_mod
from drc.data.images import load_image, open_image, to_tensor, to_uint8
from drc.data.manifest import Item, User, check_image, validate_dataset, write_dataset
from drc.errors import DataError


def _rgba(path: Path) -> None:
    im = Image.new("RGBA", (20, 16), (255, 0, 0, 255))
    im.paste((0, 0, 255, 0), (0, 0, 10, 16))  # left half fully transparent: must become white
    im.save(path)


def _palette(path: Path) -> None:
    Image.new("RGB", (20, 16), (0, 128, 0)).quantize(4).save(path)


def _palette_transparent(path: Path) -> None:
    im = Image.new("P", (20, 16), 1)
    im.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    im.info["transparency"] = 1
    im.save(path, transparency=1)


def _cmyk_jpeg(path: Path) -> None:
    Image.new("CMYK", (20, 16), (255, 0, 0, 0)).save(path, quality=95)  # pure cyan


def _bits16(path: Path) -> None:
    Image.fromarray(np.full((16, 20), 65535, dtype=np.uint16)).save(path)  # "I;16" white


def _bits16_dark(path: Path) -> None:
    arr = np.zeros((16, 20), dtype=np.uint16)
    arr[:, 10:] = 32768
    Image.fromarray(arr).save(path)


def _bits16_very_dark(path: Path) -> None:
    Image.fromarray(np.full((16, 20), 200, dtype=np.uint16)).save(path)  # 200/65535: nearly black


# (file name, writer, expected PIL mode on disk, expected RGB of pixel (row 8, col 15), tolerance)
KINDS = [
    ("grey.png", lambda p: Image.new("L", (20, 16), 128).save(p), "L", (128, 128, 128), 0),
    ("la.png", lambda p: Image.new("LA", (20, 16), (0, 0)).save(p), "LA", (255, 255, 255), 0),
    ("palette.png", _palette, "P", (0, 128, 0), 0),
    ("palette_t.png", _palette_transparent, "P", (255, 255, 255), 0),
    ("rgba.png", _rgba, "RGBA", (255, 0, 0), 0),
    ("cmyk.jpg", _cmyk_jpeg, "CMYK", (0, 255, 255), 6),
    ("onebit.png", lambda p: Image.new("1", (20, 16), 1).save(p), "1", (255, 255, 255), 0),
    ("sixteen.png", _bits16, "I;16", (255, 255, 255), 0),
    ("sixteen_dark.png", _bits16_dark, "I;16", (128, 128, 128), 1),
    ("sixteen_very_dark.png", _bits16_very_dark, "I;16", (1, 1, 1), 1),
    ("photo.webp", lambda p: Image.new("RGB", (20, 16), (10, 200, 30)).save(p, lossless=True), "RGB",
     (10, 200, 30), 0),
    ("anim.gif", lambda p: Image.new("P", (20, 16), 0).save(p), "P", (0, 0, 0), 0),
]


@pytest.mark.parametrize(("name", "write", "mode", "rgb", "tol"), KINDS, ids=[k[0] for k in KINDS])
def test_odd_kind_accepted(tmp_path: Path, name: str, write, mode: str, rgb, tol: int) -> None:
    path = tmp_path / name
    write(path)
    with Image.open(path) as im:
        assert im.mode.startswith(mode)  # the file really is of the odd kind
    assert check_image(path) is None
    arr = load_image(path, (16, 20))
    assert arr.shape == (16, 20, 3) and arr.dtype == np.uint8 and arr.flags.writeable
    assert np.abs(arr[8, 15].astype(int) - rgb).max() <= tol, arr[8, 15]
    # resized to any (H, W), not necessarily square or the same aspect
    assert load_image(path, (8, 6)).shape == (8, 6, 3)


def test_rgba_transparent_is_white(tmp_path: Path) -> None:
    _rgba(tmp_path / "a.png")
    arr = load_image(tmp_path / "a.png", (16, 20))
    assert (arr[:, :10] == 255).all() and (arr[:, 12:] == (255, 0, 0)).all()


def test_dataset_of_odd_kinds_is_valid(tmp_path: Path) -> None:
    items = []
    for name, write, *_ in KINDS:
        write(tmp_path / name)
        items.append(Item(name, name, ""))
    write_dataset(tmp_path, items, [User("u", tuple(it.id for it in items))])
    ds, problems = validate_dataset(tmp_path)
    assert problems == [] and ds is not None and len(ds.items) == len(KINDS)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_large_image_is_decoded_small(tmp_path: Path, fmt: str, monkeypatch) -> None:
    path = tmp_path / f"big.{fmt.lower()}"
    arr = np.zeros((3000, 4000, 3), np.uint8)
    arr[:, :2000] = (200, 30, 30)
    Image.fromarray(arr).save(path, fmt)
    seen: list[tuple[int, int]] = []
    real = images_mod.to_rgb

    def spy(im: Image.Image) -> Image.Image:
        seen.append(im.size)
        return real(im)

    monkeypatch.setattr(images_mod, "to_rgb", spy)
    out = load_image(path, (48, 64))
    assert out.shape == (48, 64, 3)
    assert np.abs(out[24, 10].astype(int) - (200, 30, 30)).max() <= 8 and out[24, 60].max() <= 8
    # JPEG: draft decodes at 1/8 scale; PNG: reduce by an integer factor before conversion. Either way
    # the image converted (and later resized) is a few times the target, never 4000 x 3000
    assert max(seen[0]) <= 4 * 64, seen
    assert check_image(path) is None


def test_broken_files_raise_data_error(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("plain text")
    for name, words in [("empty.png", "0 bytes"), ("text.png", "not an image"), ("gone.png", "not found")]:
        with pytest.raises(DataError, match=words) as e:
            open_image(tmp_path / name, (8, 8))
        assert name in str(e.value)


def test_tensor_round_trip() -> None:
    arr = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    t = to_tensor(arr)
    assert t.shape == (3, 5, 7) and t.dtype == torch.float32 and t.min() >= -1 and t.max() <= 1
    assert (to_uint8(t) == arr).all()
    batch = to_tensor(np.stack([arr, arr]))
    assert batch.shape == (2, 3, 5, 7) and (to_uint8(batch)[1] == arr).all()
