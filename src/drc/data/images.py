"""Image loading: any size or mode in, RGB at the model's resolution out.

Accepts every mode Pillow opens (1, L, LA, P with or without transparency, PA, RGB, RGBA, CMYK,
YCbCr, LAB, HSV, I, I;16, F, ...), animated GIF/WebP/PNG (the first frame), and very large images.
Transparency is composited on white. Large images take a memory-safe path: JPEGs are decoded at
reduced scale with `draft`; anything else is first flattened to 8-bit L/RGB where its mode is one
`Image.reduce` refuses or averages wrongly (full-size 8-bit copies only, never a float one), then
shrunk by an integer factor with `reduce`, and only the small result is resized with LANCZOS.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from drc.errors import DataError

if TYPE_CHECKING:  # torch is imported lazily: `drc data check` should not pay for it
    import torch


_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16/32-bit integer greyscale
_STRIP = 1 << 20  # pixels per strip when scaling wide greyscale: bounds the float temporaries


def _wide_to_l(img: Image.Image) -> Image.Image:
    """I;16 / I;16B / I / F (H, W) -> L (H, W), scaled to 8 bits without a full-size float copy.

    I;16 is 16-bit by definition (a dark 16-bit image must stay dark); plain "I" (32-bit) says
    nothing about its range, so it is read as 8-bit unless values show otherwise; F is read on 0..255.
    """
    arr = np.asarray(img)  # (H, W) uint16 / int32 / float32: the image's own bytes, not floats
    if img.mode == "F":
        top = None
    else:
        top = 65535.0 if img.mode.startswith("I;16") or (arr.size and arr.max() > 255) else 255.0
    out = np.empty(arr.shape, np.uint8)
    rows = max(1, _STRIP // max(1, arr.shape[1]))
    for y in range(0, arr.shape[0], rows):
        part = arr[y : y + rows].astype(np.float64)
        if top is None:
            part = np.nan_to_num(part, nan=0.0)
        else:
            part = part / top * 255.0
        out[y : y + rows] = np.clip(part, 0, 255)  # truncates, as astype(uint8) does
    return Image.fromarray(out, "L")


def flatten(img: Image.Image) -> Image.Image:
    """Any PIL mode -> an 8-bit, alpha-free L or RGB image of the same size.

    Transparency is composited on white; palettes are expanded; 1-bit, 16/32-bit and float
    greyscale become L. The result is what `Image.reduce` can average correctly (it refuses P, 1
    and I;16, and would average palette indices, hues and unpremultiplied colours wrongly).
    """
    if img.mode in ("L", "RGB"):
        return img
    if img.mode == "1":
        return img.convert("L")
    if img.mode in _WIDE_MODES or img.mode == "F":
        return _wide_to_l(img)
    if img.mode == "P":
        # palette transparency (a colour index or per-index alpha) needs the alpha band
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode == "La":
        img = img.convert("LA")  # Pillow converts La to nothing else
    if img.mode in _ALPHA_MODES:
        if img.mode not in ("LA", "RGBA"):
            img = img.convert("RGBA")  # PA, RGBa
        # paste through the alpha band onto white: bit-identical to alpha_composite on white,
        # without its two extra full-size RGBA buffers
        out = Image.new("L" if img.mode == "LA" else "RGB", img.size, 255 if img.mode == "LA" else (255,) * 3)
        out.paste(img, (0, 0), img)
        return out
    if img.mode == "RGB":
        return img
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to a new RGB image of the same size; transparency is composited on white."""
    return flatten(img).convert("RGB")


def fit(img: Image.Image, size: tuple[int, int] | None) -> Image.Image:
    """Any PIL image (any mode, any size) -> RGB at `size` = (height, width), or its own size if None.

    An image over twice the target is first shrunk by an integer factor (box filter) to at least 2x
    the target (under 4x on its tighter side), so the LANCZOS resize never works on millions of
    pixels; it is flattened to 8-bit L/RGB before that, since `reduce` refuses or mis-averages other
    modes. `size` None: only converted.
    """
    if size is None:
        return to_rgb(img)
    h, w = size
    factor = min(img.width // (w * 2), img.height // (h * 2))
    if factor >= 2:
        img = flatten(img).reduce(factor)
    rgb = to_rgb(img)
    if rgb.size != (w, h):
        rgb = rgb.resize((w, h), Image.Resampling.LANCZOS)
    return rgb


def array_to_image(arr: np.ndarray) -> Image.Image:
    """An (H, W), (H, W, 1), (H, W, 2), (H, W, 3) or (H, W, 4) array -> a PIL image (L, LA, RGB, RGBA).

    uint8 is taken as is; bool as black/white; uint16 on its 16-bit range (like an I;16 PNG); any
    other integer or float dtype on the 0..255 scale, clipped (as mode I and F images are).
    Raises ValueError for any other shape (channels-first arrays included) or a non-numeric dtype.
    """
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (2, 3, 4))) or 0 in arr.shape[:2]:
        raise ValueError(f"array of shape {arr.shape} is not an (H, W), (H, W, 3) or (H, W, 4) image")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint16:
        arr = (arr.astype(np.float64) / 65535.0 * 255.0).astype(np.uint8)
    elif arr.dtype != np.uint8:
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(f"array of dtype {arr.dtype} is not an image")
        arr = np.clip(np.nan_to_num(arr, nan=0.0), 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr))  # uint8 (H, W[, 2|3|4]): L, LA, RGB, RGBA


def open_image(path: str | Path, size: tuple[int, int] | None = None) -> Image.Image:
    """Open, fully decode and convert an image; `size` is (height, width) or None to keep it.

    Raises DataError naming the file for anything that is not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as im:  # an animated GIF / WebP / PNG opens at its first frame
            if size is not None and im.format == "JPEG":
                h, w = size
                im.draft("RGB", (w * 2, h * 2))  # decode at reduced scale: cheap and small
            # LOAD_TRUNCATED_IMAGES is False by default: a truncated file raises here
            im.load()
            return fit(im, size)
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: unreadable or truncated image ({msg})") from None


def load_image(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB at `size` = (height, width); a writable array of its own."""
    # np.array, not np.asarray: asarray of a PIL image is read-only, and torch.from_numpy warns on it
    return np.array(open_image(path, size), dtype=np.uint8)


def pixels_to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """The one pixel scaling: uint8 (or 0..255) values -> float32 in [-1, 1], what the models read."""
    return pixels.float().div(127.5).sub(1.0)


def unit_to_pixels(x: torch.Tensor) -> torch.Tensor:
    """Its inverse: float in [-1, 1] (clamped) -> uint8 on the CPU."""
    import torch

    return x.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).cpu()


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [-1, 1] (also (B, H, W, 3) -> (B, 3, H, W))."""
    import torch

    t = pixels_to_unit(torch.from_numpy(np.ascontiguousarray(arr)))
    return t.permute(2, 0, 1) if t.ndim == 3 else t.permute(0, 3, 1, 2)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (B, 3, H, W) float in [-1, 1] -> uint8 (H, W, 3) or (B, H, W, 3)."""
    t = unit_to_pixels(t)
    return (t.permute(1, 2, 0) if t.ndim == 3 else t.permute(0, 2, 3, 1)).numpy()


assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # truncated images must be reported, not padded
