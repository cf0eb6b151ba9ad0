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
    (
        "photo.webp",
        lambda p: Image.new("RGB", (20, 16), (10, 200, 30)).save(p, lossless=True),
        "RGB",
        (10, 200, 30),
        0,
    ),
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


# ---------------------------------------------------------------- every mode, large and small
# the model side the tests load at; 512 is 8x it (the shrink path: reduce, or draft for JPEG) and
# 40 is under it (no shrinking, an upscale)
SIDE = 64


def _halves_ok(arr: np.ndarray, left, right, tol: int) -> bool:
    """The left and right halves of (SIDE, SIDE, 3) `arr` have the expected colours, away from the seam."""
    row = SIDE // 2
    return (
        np.abs(arr[row, SIDE // 8].astype(int) - left).max() <= tol
        and np.abs(arr[row, SIDE - SIDE // 8].astype(int) - right).max() <= tol
    )


def test_issue_reproduction_palette_512(tmp_path: Path) -> None:
    Image.new("RGB", (512, 512), (200, 30, 30)).convert("P").save(tmp_path / "p512.png")
    arr = load_image(tmp_path / "p512.png", (64, 64))
    assert arr.shape == (64, 64, 3) and arr.dtype == np.uint8
    assert np.abs(arr.astype(int) - (200, 30, 30)).max() <= 8  # the web palette's nearest red


@pytest.mark.parametrize("side", [512, 40])
def test_every_mode_loads_at_any_size(tmp_path: Path, side: int, odd_image_files, monkeypatch) -> None:
    cases = odd_image_files(tmp_path, side)
    seen: list[tuple[int, int]] = []
    real = images_mod.to_rgb
    monkeypatch.setattr(images_mod, "to_rgb", lambda im: seen.append(im.size) or real(im))
    bad = []
    for path, mode, left, right, tol in cases:
        with Image.open(path) as im:  # the file really is of that mode (an animation: 2 frames)
            assert im.mode == mode, (path.name, im.mode)
            assert getattr(im, "n_frames", 1) == (2 if path.stem.startswith("anim") else 1), path.name
        seen.clear()
        arr = load_image(path, (SIDE, SIDE))
        assert arr.shape == (SIDE, SIDE, 3) and arr.dtype == np.uint8 and arr.flags.writeable
        if not _halves_ok(arr, left, right, tol):
            bad.append(f"{path.name}: {arr[SIDE // 2, SIDE // 8]} {arr[SIDE // 2, -SIDE // 8]}")
        if side > 4 * SIDE:  # the shrink path: to_rgb and the resize see a few times SIDE, not 512
            assert seen and max(max(s) for s in seen) <= 4 * SIDE, (path.name, seen)
        assert check_image(path) is None, path.name
    assert not bad, bad


@pytest.mark.parametrize("side", [512, 40])
def test_every_pil_mode_fits(side: int, odd_pil_images) -> None:
    bad = []
    for name, im, left, right, tol in odd_pil_images(side):
        rgb = images_mod.fit(im, (SIDE, SIDE))
        assert rgb.mode == "RGB" and rgb.size == (SIDE, SIDE), name
        if not _halves_ok(np.asarray(rgb), left, right, tol):
            bad.append(name)
        assert images_mod.to_rgb(im).size == (side, side)  # to_rgb keeps the size
    assert not bad, bad


def test_check_and_bank_accept_every_mode(tmp_path: Path, odd_image_files, capsys) -> None:
    """`drc data check` and the training ImageBank read a dataset of every mode, large and small."""
    from drc.cli import main
    from drc.data.bank import ImageBank
    from drc.data.manifest import load_dataset

    root = tmp_path / "ds"
    items, expect = [], {}
    for side in (512, 40):
        for path, _, left, right, tol in odd_image_files(root / f"img{side}", side):
            iid = f"{side}-{path.name}"
            items.append(Item(iid, str(path.relative_to(root)), "a sticker"))
            expect[iid] = (left, right, tol)
    write_dataset(root, items, [User("u", tuple(it.id for it in items))])
    assert main(["data", "check", str(root)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{len(items)} items, 1 users") and err == "", (out, err)
    bank = ImageBank.from_dataset(load_dataset(root), (SIDE, SIDE))
    bad = [
        iid
        for iid, (left, right, tol) in expect.items()
        if not _halves_ok(bank.get([iid])[0].permute(1, 2, 0).numpy(), left, right, tol)
    ]
    assert not bad, bad


def test_huge_palette_image_is_shrunk_before_conversion(tmp_path: Path, monkeypatch) -> None:
    """A palette image is expanded to RGB once at full size (8-bit), then reduced, never resized whole."""
    im = Image.new("P", (3000, 2000), 0)
    im.paste(1, (1500, 0, 3000, 2000))
    im.putpalette([200, 30, 30, 30, 60, 200])
    im.save(tmp_path / "big.png")
    resized: list[tuple[int, int]] = []
    real = Image.Image.resize

    def spy(self, size, *a, **kw):
        resized.append(self.size)
        return real(self, size, *a, **kw)

    monkeypatch.setattr(Image.Image, "resize", spy)
    arr = load_image(tmp_path / "big.png", (48, 64))
    assert arr.shape == (48, 64, 3)
    assert (arr[24, 8] == (200, 30, 30)).all() and (arr[24, 56] == (30, 60, 200)).all()
    assert resized and max(max(s) for s in resized) <= 4 * 64, resized


def test_array_to_image() -> None:
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[:, :, 0] = 200
    assert images_mod.array_to_image(rgb).mode == "RGB"
    assert (np.asarray(images_mod.array_to_image(rgb)) == rgb).all()
    assert images_mod.array_to_image(rgb[:, :, :1]).mode == "L"  # (H, W, 1)
    rgba = np.zeros((5, 7, 4), np.uint8)  # fully transparent black: white once composited
    assert (np.asarray(images_mod.to_rgb(images_mod.array_to_image(rgba))) == 255).all()
    assert np.asarray(images_mod.array_to_image(np.ones((2, 2), bool))).max() == 255
    wide = np.full((2, 2), 200 * 257, np.uint16)  # 16-bit: 200 on the 8-bit scale
    assert (np.asarray(images_mod.array_to_image(wide)) == 200).all()
    floats = np.array([[-5.0, 300.0], [np.nan, 12.7]])  # 0..255, clipped; NaN as 0
    assert np.asarray(images_mod.array_to_image(floats)).tolist() == [[0, 255], [0, 12]]
    for shape in [(3, 5, 7), (5,), (5, 7, 5), (0, 7, 3)]:
        with pytest.raises(ValueError, match="not an"):
            images_mod.array_to_image(np.zeros(shape, np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        images_mod.array_to_image(np.array([["a", "b"]]))
