"""Image loading: any size or mode in, RGB at the model's resolution out.

Accepts greyscale, palette, RGBA/LA (composited on white), CMYK JPEG, 1-bit, 16-bit, WebP, and very
large images (JPEGs are decoded at reduced scale with `draft`, others shrink with `reduce` before
the final resize, so a 6000-pixel image never needs its full float copy in memory).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from drc.errors import DataError

if TYPE_CHECKING:  # torch is imported lazily: `drc data check` should not pay for it
    import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB; transparency is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits by the actual range of the format
        arr = np.asarray(img, dtype=np.float64)
        # I;16 is 16-bit by definition (a dark 16-bit image must stay dark); plain "I" (32-bit) says
        # nothing about its range, so it is read as 8-bit unless values show otherwise
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert("RGB")


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
        with Image.open(path) as im:
            if size is not None:
                h, w = size
                if im.format == "JPEG":
                    im.draft("RGB", (w * 2, h * 2))  # decode at reduced scale: cheap and small
                # shrink huge images by an integer factor first (box filter, no big float copy)
                factor = min(im.width // (w * 2), im.height // (h * 2))
                if factor >= 2:
                    im = im.reduce(factor)
            # LOAD_TRUNCATED_IMAGES is False by default: a truncated file raises here
            im.load()
            rgb = to_rgb(im)
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: unreadable or truncated image ({msg})") from None
    if size is not None:
        h, w = size
        if rgb.size != (w, h):
            rgb = rgb.resize((w, h), Image.Resampling.LANCZOS)
    return rgb


def load_image(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB at `size` = (height, width); a writable array of its own."""
    # np.array, not np.asarray: asarray of a PIL image is read-only, and torch.from_numpy warns on it
    return np.array(open_image(path, size), dtype=np.uint8)


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [-1, 1] (also (B, H, W, 3) -> (B, 3, H, W))."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(arr)).float().div(127.5).sub(1.0)
    return t.permute(2, 0, 1) if t.ndim == 3 else t.permute(0, 3, 1, 2)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (B, 3, H, W) float in [-1, 1] -> uint8 (H, W, 3) or (B, H, W, 3)."""
    import torch

    t = t.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).cpu()
    return (t.permute(1, 2, 0) if t.ndim == 3 else t.permute(0, 2, 3, 1)).numpy()


assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # truncated images must be reported, not padded
