"""Drawing helpers both built-in benchmarks use, all on RGBA images at supersampled resolution:
patterns, frame masks, halos, posed pasting, shadows and the final reduction (`common.py` re-exports
them, so `common.pattern` and the like still work).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Colour = tuple[int, int, int]


def hex_rgb(h: str) -> Colour:
    h = h.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def pattern(kind: str, size: tuple[int, int], c1: str, c2: str, period: float) -> Image.Image:
    """A full-canvas background, RGB. kind: solid, stripes (diagonal), hstripes, dots, checker,
    gradient (vertical, c1 top to c2 bottom), rays (a sunburst from the centre)."""
    h, w = size
    a, b = np.array(hex_rgb(c1), np.float32), np.array(hex_rgb(c2), np.float32)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "solid":
        t = np.zeros((h, w), np.float32)
    elif kind == "stripes":
        t = (((x + y) / period) % 1.0 < 0.5).astype(np.float32)
    elif kind == "hstripes":
        t = ((y / period) % 1.0 < 0.5).astype(np.float32)
    elif kind == "checker":
        t = ((np.floor(x / period) + np.floor(y / period)) % 2).astype(np.float32)
    elif kind == "dots":
        # hexagonal dot lattice: every other row shifted by half a period
        row = np.floor(y / period)
        fx = (x / period + 0.5 * (row % 2)) % 1.0 - 0.5
        fy = (y / period) % 1.0 - 0.5
        t = (fx * fx + fy * fy < 0.22**2).astype(np.float32)
    elif kind == "gradient":
        t = y / max(1, h - 1)
    elif kind == "rays":
        ang = np.arctan2(y - h / 2, x - w / 2)
        t = ((ang / (2 * math.pi) * period) % 1.0 < 0.5).astype(np.float32)
    else:
        raise ValueError(f"unknown pattern {kind!r}")
    rgb = a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]
    return Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "RGB")


def shape_mask(kind: str, size: tuple[int, int], inset: float, angle: float = 0.0) -> Image.Image:
    """An 'L' mask of a frame shape filling the canvas less `inset` pixels.

    kind: full (the whole canvas), circle, rounded, hexagon, octagon, stamp (scalloped edge),
    bubble (rounded box with a speech tail at the lower left), tilted (rounded square turned `angle`).
    """
    h, w = size
    m = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(m)
    x0, y0, x1, y1 = inset, inset, w - 1 - inset, h - 1 - inset
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    r = min(rx, ry)
    if kind == "full":
        d.rectangle((0, 0, w, h), fill=255)
    elif kind == "circle":
        d.ellipse((x0, y0, x1, y1), fill=255)
    elif kind == "rounded":
        d.rounded_rectangle((x0, y0, x1, y1), radius=r * 0.38, fill=255)
    elif kind in ("hexagon", "octagon"):
        n, off = (6, 0.0) if kind == "hexagon" else (8, math.pi / 8)
        angles = [off + 2 * math.pi * i / n for i in range(n)]
        d.polygon([(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles], fill=255)
    elif kind == "stamp":
        # a postage stamp: a box whose edges are rows of overlapping discs
        b = r * 0.13
        ix0, iy0, ix1, iy1 = x0 + b, y0 + b, x1 - b, y1 - b
        d.rectangle((ix0, iy0, ix1, iy1), fill=255)
        n = 7
        for i in range(n + 1):
            px, py = ix0 + (ix1 - ix0) * i / n, iy0 + (iy1 - iy0) * i / n
            for qx, qy in ((px, iy0), (px, iy1), (ix0, py), (ix1, py)):
                d.ellipse((qx - b, qy - b, qx + b, qy + b), fill=255)
    elif kind == "bubble":
        d.rounded_rectangle((x0, y0, x1, y1 - r * 0.22), radius=r * 0.45, fill=255)
        tail = [(x0 + r * 0.25, y1 - r * 0.4), (x0 + r * 0.75, y1 - r * 0.3), (x0 + r * 0.05, y1)]
        d.polygon(tail, fill=255)
    elif kind == "tilted":
        s = r * 0.84
        d.rounded_rectangle((cx - s, cy - s, cx + s, cy + s), radius=s * 0.2, fill=255)
        return m.rotate(angle, resample=Image.Resampling.BICUBIC, center=(cx, cy))
    else:
        raise ValueError(f"unknown frame {kind!r}")
    return m


def _odd(x: float) -> int:
    n = max(1, int(round(x)))
    return n if n % 2 == 1 else n + 1


def grow(mask: Image.Image, px: float) -> Image.Image:
    """Dilate an 'L' mask by about `px` pixels (a square max filter, then a slight blur to round it)."""
    if px <= 0:
        return mask
    return mask.filter(ImageFilter.MaxFilter(_odd(2 * px + 1))).filter(ImageFilter.GaussianBlur(px * 0.25))


def shrink(mask: Image.Image, px: float) -> Image.Image:
    """Erode an 'L' mask by about `px` pixels."""
    if px <= 0:
        return mask
    return mask.filter(ImageFilter.MinFilter(_odd(2 * px + 1)))


def with_halo(art: Image.Image, rings: Sequence[tuple[float, str]]) -> Image.Image:
    """Put outline rings behind RGBA `art`: rings [(width px, colour), ...] from inner to outer.

    The image is padded by the total width so the rings are never cut off.
    """
    pad = int(math.ceil(sum(w for w, _ in rings))) + 2
    base = Image.new("RGBA", (art.width + 2 * pad, art.height + 2 * pad), (0, 0, 0, 0))
    base.alpha_composite(art, (pad, pad))
    alpha = base.getchannel("A").point(lambda v: 255 if v > 40 else 0)
    layers = []
    total = 0.0
    for width, colour in rings:
        total += width
        layers.append((grow(alpha, total), colour))
    out = Image.new("RGBA", base.size, (0, 0, 0, 0))
    for m, colour in reversed(layers):
        out.paste(Image.new("RGBA", base.size, hex_rgb(colour) + (255,)), (0, 0), m)
    out.alpha_composite(base)
    return out


def posed(art: Image.Image, scale_x: float, scale_y: float, angle: float, flip: bool) -> Image.Image:
    """`art` (RGBA) flipped left-right if `flip`, resized by (scale_x, scale_y), turned `angle`
    degrees counter-clockwise (the canvas grows to hold it)."""
    if flip:
        art = art.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    w, h = max(1, round(art.width * scale_x)), max(1, round(art.height * scale_y))
    if (w, h) != art.size:
        art = art.resize((w, h), Image.Resampling.BICUBIC)
    if abs(angle) > 0.01:
        art = art.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    return art


def paste_center(canvas: Image.Image, art: Image.Image, cx: float, cy: float) -> None:
    """Alpha-composite `art` onto RGBA `canvas` with its centre at (cx, cy), clipped to the canvas."""
    x, y = int(round(cx - art.width / 2)), int(round(cy - art.height / 2))
    x0, y0 = max(0, -x), max(0, -y)
    x1, y1 = min(art.width, canvas.width - x), min(art.height, canvas.height - y)
    if x1 <= x0 or y1 <= y0:
        return
    canvas.alpha_composite(art.crop((x0, y0, x1, y1)), (x + x0, y + y0))


def shadow(mask: Image.Image, dx: float, dy: float, blur: float, opacity: int = 90) -> Image.Image:
    """An RGBA drop shadow of an 'L' mask, moved by (dx, dy) and blurred."""
    m = mask.transform(mask.size, Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy))
    m = m.filter(ImageFilter.GaussianBlur(blur)).point(lambda v: v * opacity // 255)
    out = Image.new("RGBA", mask.size, (0, 0, 0, 0))
    out.putalpha(m)
    return out


def finish(canvas: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The supersampled RGBA canvas reduced to the output size, RGB."""
    h, w = size
    return canvas.convert("RGB").resize((w, h), Image.Resampling.LANCZOS)


def contact_sheet(
    cells: dict[tuple[str, str], Image.Image],
    rows: Sequence[str],
    cols: Sequence[str],
    held_out: set[tuple[str, str]],
    path: Path,
    gap: int = 2,
) -> Image.Image:
    """A row per theme, a column per semantics label; held-out cells get a red corner triangle.

    Labels are drawn with Pillow's built-in bitmap font so the sheet needs no font files.
    """
    h, w = next(iter(cells.values())).size[::-1]
    left, top = 90, 14
    sheet = Image.new("RGB", (left + len(cols) * (w + gap), top + len(rows) * (h + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, col in enumerate(cols):
        draw.text((left + c * (w + gap) + 1, 2), col[: max(1, w // 6)], fill="black")
    for r, row in enumerate(rows):
        y = top + r * (h + gap)
        draw.text((2, y + h // 2 - 5), row[:14], fill="black")
        for c, col in enumerate(cols):
            x = left + c * (w + gap)
            sheet.paste(cells[(row, col)], (x, y))
            if (row, col) in held_out:
                k = max(6, w // 6)
                draw.polygon([(x, y), (x + k, y), (x, y + k)], fill=(230, 0, 0))
    sheet.save(path, format="PNG")
    return sheet
