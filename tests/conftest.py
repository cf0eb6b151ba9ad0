"""Test-wide settings: offline hubs, few threads, deterministic seeds."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# an OMP_NUM_THREADS of the user's makes drc.threads.configure_threads (called by train_run, load,
# the demo) leave the count below alone, whatever the machine's core count
os.environ.setdefault("OMP_NUM_THREADS", "2")
# DRC_TEST_PRECISION=fp32|bf16 runs the whole suite with `precision=auto` resolved to that precision
# (subprocesses included, through DRC_PRECISION): what passes must pass on every kind of machine
if os.environ.get("DRC_TEST_PRECISION"):
    os.environ["DRC_PRECISION"] = os.environ["DRC_TEST_PRECISION"]

import torch  # noqa: E402

torch.set_num_threads(2)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def pytest_report_header(config: pytest.Config) -> str:
    from drc.precision import resolve_precision

    used, reason = resolve_precision("auto", torch.device("cpu"))
    return f"drc: precision=auto resolves to {used} here ({reason})"


@pytest.fixture(scope="session")
def tiny_stickers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sticker benchmark shared by the end-to-end tests (built once per session)."""
    from drc.data.benchmarks.stickers import build

    out = tmp_path_factory.mktemp("bench") / "stickers"
    build(out, users=24, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_drc_run(tiny_stickers: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny-preset drc run on the tiny benchmark (trained once per session)."""
    from drc.pipeline import train_run

    out = tmp_path_factory.mktemp("runs") / "drc"
    train_run(tiny_stickers, out, method="drc", preset="tiny", progress=False)
    return out


# ---------------------------------------------------------------- images of every mode Pillow opens
# Each image is split in two: the left half RED, the right half BLUE, or transparent (so white once
# composited) for the modes with alpha, or two greys for the greyscale modes. A loader that averages
# palette indices, drops the alpha or misreads the bit depth gets at least one half wrong.
RED, BLUE, WHITE = (200, 30, 30), (30, 60, 200), (255, 255, 255)
GREY200, GREY40 = (200, 200, 200), (40, 40, 40)


def _halves(mode: str, side: int, left, right):
    from PIL import Image

    im = Image.new(mode, (side, side), left)
    im.paste(right, (side // 2, 0, side, side))
    return im


def _palette(mode: str, side: int, left, right):
    im = _halves(mode, side, left, right)
    im.putpalette([*RED, *BLUE, 30, 200, 60])  # indices 0, 1, 2: red, blue, green
    return im


def _converted(mode: str) -> tuple:
    """RED and BLUE as values of `mode` (Pillow's own conversion from RGB)."""
    from PIL import Image

    return tuple(Image.new("RGB", (1, 1), c).convert(mode).getpixel((0, 0)) for c in (RED, BLUE))


def _pil_cases(side: int) -> list[tuple]:
    """(name, PIL image, left RGB, right RGB, tolerance): one in-memory image of every mode."""
    g200, g40 = 200 * 257, 40 * 257  # 200 and 40 on a 16-bit scale
    p_transparent = _palette("P", side, 0, 1)
    p_transparent.info["transparency"] = 1
    return [
        ("1", _halves("1", side, 1, 0), WHITE, (0, 0, 0), 0),
        ("L", _halves("L", side, 200, 40), GREY200, GREY40, 0),
        ("LA", _halves("LA", side, (200, 255), (40, 0)), GREY200, WHITE, 0),
        ("La", _halves("La", side, (200, 255), (0, 0)), GREY200, WHITE, 0),
        ("P", _palette("P", side, 0, 1), RED, BLUE, 0),
        ("P_transparent", p_transparent, RED, WHITE, 0),
        ("PA", _palette("PA", side, (0, 255), (1, 0)), RED, WHITE, 0),
        ("RGB", _halves("RGB", side, RED, BLUE), RED, BLUE, 0),
        ("RGBA", _halves("RGBA", side, (*RED, 255), (*BLUE, 0)), RED, WHITE, 0),
        ("RGBa", _halves("RGBa", side, (*RED, 255), (0, 0, 0, 0)), RED, WHITE, 0),
        ("CMYK", _halves("CMYK", side, *_converted("CMYK")), RED, BLUE, 2),
        ("YCbCr", _halves("YCbCr", side, *_converted("YCbCr")), RED, BLUE, 3),
        ("LAB", _halves("LAB", side, *_converted("LAB")), RED, BLUE, 8),  # 8-bit LAB is coarse
        ("HSV", _halves("HSV", side, *_converted("HSV")), RED, BLUE, 3),
        ("I", _halves("I", side, 200, 40), GREY200, GREY40, 0),
        ("I_wide", _halves("I", side, g200, g40), GREY200, GREY40, 1),
        ("I;16", _halves("I;16", side, g200, g40), GREY200, GREY40, 1),
        ("I;16B", _halves("I;16B", side, g200, g40), GREY200, GREY40, 1),
        ("I;16L", _halves("I;16L", side, g200, g40), GREY200, GREY40, 1),
        ("F", _halves("F", side, 200.0, 40.0), GREY200, GREY40, 0),
    ]


def _frames(path: Path, first, fmt: str, **kw) -> None:
    """An animation of two frames: `first`, then plain green (which must not show)."""
    from PIL import Image

    if first.mode == "P":
        green = Image.new("P", first.size, 2)
        green.putpalette(first.getpalette())
    else:
        green = Image.new("RGBA", first.size, (30, 200, 60, 255))
    first.save(path, fmt, save_all=True, append_images=[green], duration=100, loop=0, **kw)


def write_odd_images(folder: Path, side: int) -> list[tuple]:
    """One file of every mode Pillow opens, side x side pixels, written into `folder`.

    Returns (path, mode it opens in, left RGB, right RGB, tolerance) per file; the modes no file
    format stores (PA, La, RGBa, HSV, I;16L) are in `_pil_cases` only.
    """
    folder.mkdir(parents=True, exist_ok=True)
    pil = {name: (im, left, right, tol) for name, im, left, right, tol in _pil_cases(side)}
    # (file name, case, format, mode the file opens in, extra tolerance for lossy formats)
    files = [
        ("1.png", "1", "PNG", "1", 0),
        ("L.png", "L", "PNG", "L", 0),
        ("L.jpg", "L", "JPEG", "L", 6),
        ("LA.png", "LA", "PNG", "LA", 0),
        ("P.png", "P", "PNG", "P", 0),
        ("P_transparent.png", "P_transparent", "PNG", "P", 0),
        ("P.bmp", "P", "BMP", "P", 0),
        ("RGB.png", "RGB", "PNG", "RGB", 0),
        ("RGB.jpg", "RGB", "JPEG", "RGB", 8),
        ("RGBA.png", "RGBA", "PNG", "RGBA", 0),
        ("CMYK.jpg", "CMYK", "JPEG", "CMYK", 12),
        ("YCbCr.tif", "YCbCr", "TIFF", "YCbCr", 0),
        ("LAB.tif", "LAB", "TIFF", "LAB", 0),
        ("I.tif", "I", "TIFF", "I", 0),
        ("I_wide.tif", "I_wide", "TIFF", "I", 0),
        ("I16.png", "I;16", "PNG", "I;16", 0),
        ("I16B.tif", "I;16B", "TIFF", "I;16B", 0),
        ("F.tif", "F", "TIFF", "F", 0),
    ]
    out = []
    for name, case, fmt, mode, extra in files:
        im, left, right, tol = pil[case]
        im.save(folder / name, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        out.append((folder / name, mode, left, right, tol + extra))
    # animations: the first frame is the image; its mode is the one Pillow gives that frame
    _frames(folder / "anim.gif", pil["P"][0], "GIF")
    out.append((folder / "anim.gif", "P", RED, BLUE, 0))
    _frames(folder / "anim.webp", pil["RGBA"][0], "WEBP", lossless=True)
    out.append((folder / "anim.webp", "RGBA", RED, WHITE, 0))
    _frames(folder / "anim_apng.png", pil["RGBA"][0], "PNG")
    out.append((folder / "anim_apng.png", "RGBA", RED, WHITE, 0))
    return out


@pytest.fixture(scope="session")
def odd_image_files():
    """The builder `write_odd_images(folder, side)` (tests import nothing from conftest)."""
    return write_odd_images


@pytest.fixture(scope="session")
def odd_pil_images():
    """The builder `_pil_cases(side)`: in-memory images of every mode, with their expected colours."""
    return _pil_cases
