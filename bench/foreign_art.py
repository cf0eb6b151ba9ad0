"""Drawing pieces of the foreign benchmark sets (bench/foreign_sets.py) that the built-in ones lack:
textured backgrounds with a per-item phase, font glyph masks, badge shapes and line-art OpenMoji.

Everything works on supersampled RGBA/L images (drc.data.benchmarks.common.SUPERSAMPLE) like the
built-in builders, so `common.finish` reduces a canvas to the output size.
"""

from __future__ import annotations

import functools
import io
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from drc.data.benchmarks import common
from drc.data.benchmarks.openmoji import svg_text

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", str(Path.home() / ".fonts"))


def find_font(name: str = "DejaVuSans.ttf") -> Path:
    """A font file by name: the system font folders, then matplotlib's bundled fonts."""
    for d in FONT_DIRS:
        hits = sorted(Path(d).rglob(name)) if Path(d).is_dir() else []
        if hits:
            return hits[0]
    try:
        import matplotlib

        p = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / name
        if p.is_file():
            return p
    except ImportError:
        pass
    raise SystemExit(f"font {name} not found in {', '.join(FONT_DIRS)} or matplotlib; install fonts-dejavu")


def texture(
    kind: str, size: tuple[int, int], c1: str, c2: str, period: float, phase: tuple[float, float] = (0, 0)
) -> Image.Image:
    """A full-canvas background, RGB, shifted by `phase` pixels (a per-item jitter).

    kind: plain, stripes (diagonal), vstripes, dots (square lattice), checker, vgradient (c1 top to
    c2 bottom), dgradient (corner to corner), grid (thin lines), rings (concentric from the centre),
    speckle (fixed random flecks), split (two halves on a diagonal).
    """
    h, w = size
    a, b = np.array(common.hex_rgb(c1), np.float32), np.array(common.hex_rgb(c2), np.float32)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = x + phase[0], y + phase[1]
    if kind == "plain":
        t = np.zeros((h, w), np.float32)
    elif kind == "stripes":
        t = (((x - y) / period) % 1.0 < 0.5).astype(np.float32)
    elif kind == "vstripes":
        t = ((x / period) % 1.0 < 0.4).astype(np.float32)
    elif kind == "dots":
        fx, fy = (x / period) % 1.0 - 0.5, (y / period) % 1.0 - 0.5
        t = (fx * fx + fy * fy < 0.2**2).astype(np.float32)
    elif kind == "checker":
        t = ((np.floor(x / period) + np.floor(y / period)) % 2).astype(np.float32)
    elif kind == "vgradient":
        t = np.clip((y - phase[1]) / max(1, h - 1), 0, 1)
    elif kind == "dgradient":
        t = np.clip((x - phase[0] + y - phase[1]) / max(1, h + w - 2), 0, 1)
    elif kind == "grid":
        t = (((x / period) % 1.0 < 0.14) | ((y / period) % 1.0 < 0.14)).astype(np.float32)
    elif kind == "rings":
        r = np.hypot(x - phase[0] - w / 2, y - phase[1] - h / 2)
        t = ((r / period) % 1.0 < 0.5).astype(np.float32)
    elif kind == "speckle":
        rng = np.random.default_rng(int(period * 1000))
        t = (rng.random((h // 4 + 2, w // 4 + 2)) < 0.18).astype(np.float32)
        t = np.kron(t, np.ones((4, 4), np.float32))
        ox, oy = int(phase[0]) % 4, int(phase[1]) % 4
        t = t[oy : oy + h, ox : ox + w]
    elif kind == "split":
        t = ((x - phase[0]) * 0.6 + (y - phase[1]) > 0.8 * h).astype(np.float32)
    else:
        raise ValueError(f"unknown texture {kind!r}")
    rgb = a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]
    return Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "RGB")


def jitter(rng: np.random.Generator | None, scale: float) -> float:
    """A uniform draw in [-scale, scale] (a per-item jitter), or 0 for the canonical look (rng None)."""
    return 0.0 if rng is None else float(rng.uniform(-scale, scale))


def jittered_background(
    bg: tuple[str, str, str, float], side: int, u: float, rng: np.random.Generator | None
) -> Image.Image:
    """A theme's full-canvas `texture` (kind, colour 1, colour 2, period in base pixels) as RGBA,
    `side` square, its pattern shifted by up to one period (`u`: canvas pixels per base pixel)."""
    kind, c1, c2, period = bg
    phase = (jitter(rng, period * u), jitter(rng, period * u))
    return texture(kind, (side, side), c1, c2, period * u, phase).convert("RGBA")


@functools.lru_cache(maxsize=64)
def glyph_mask(char: str, box: int, font: str = "DejaVuSans.ttf") -> Image.Image:
    """An 'L' mask of font glyph `char`, its larger side scaled to `box` pixels (tight bounding box)."""
    f = ImageFont.truetype(str(find_font(font)), 4 * box)
    m = Image.new("L", (8 * box, 8 * box), 0)
    ImageDraw.Draw(m).text((2 * box, 2 * box), char, font=f, fill=255)
    bb = m.getbbox()
    if bb is None:
        raise SystemExit(f"font {font} draws nothing for {char!r} (U+{ord(char):04X})")
    m = m.crop(bb)
    s = box / max(m.size)
    return m.resize((max(1, round(m.width * s)), max(1, round(m.height * s))), Image.Resampling.LANCZOS)


def has_glyph(char: str, font: str = "DejaVuSans.ttf") -> bool:
    """True when `font` draws `char` with its own glyph, not the missing-glyph box (.notdef)."""
    f = ImageFont.truetype(str(find_font(font)), 48)
    missing = np.asarray(f.getmask("\ue000"))
    m = np.asarray(f.getmask(char))
    return not (m.shape == missing.shape and bool((m == missing).all())) and m.any()


def solid(mask: Image.Image, colour: str) -> Image.Image:
    """An RGBA image of `colour` with `mask` as its alpha."""
    out = Image.new("RGBA", mask.size, common.hex_rgb(colour) + (255,))
    out.putalpha(mask)
    return out


def pad(mask: Image.Image, px: int) -> Image.Image:
    """`mask` on a larger transparent canvas, `px` pixels on every side (room for outlines, shadows)."""
    out = Image.new("L", (mask.width + 2 * px, mask.height + 2 * px), 0)
    out.paste(mask, (px, px))
    return out


def offset(mask: Image.Image, dx: float, dy: float, blur: float = 0.0) -> Image.Image:
    """`mask` moved by (dx, dy), optionally blurred."""
    m = mask.transform(mask.size, Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy))
    return m.filter(ImageFilter.GaussianBlur(blur)) if blur > 0 else m


# ---------------------------------------------------------------------------------------------
# badge shapes: masks on a square canvas of side n, the badge filling it less `inset`


def badge_mask(kind: str, n: int, inset: float) -> Image.Image:
    """An 'L' mask: circle, shield, seal (a 20-point starburst), diamond, square (rounded), pentagon
    (a home-plate badge, point down), rosette (a disc with two ribbon tails), hexagon, octagon."""
    if kind in ("hexagon", "octagon", "circle"):
        return common.shape_mask(kind, (n, n), inset)
    m = Image.new("L", (n, n), 0)
    d = ImageDraw.Draw(m)
    x0, y0, x1, y1 = inset, inset, n - 1 - inset, n - 1 - inset
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    if kind == "shield":
        top, mid = y0 + 0.02 * r, y0 + 1.0 * r
        pts = [(x0 + 0.08 * r, top), (x1 - 0.08 * r, top), (x1 - 0.08 * r, mid)]
        for i in range(1, 20):  # the lower edge: two arcs meeting at the point
            t = i / 20
            pts.append((x1 - 0.08 * r - t * (r - 0.08 * r), mid + math.sin(t * math.pi / 2) * (y1 - mid)))
        pts.append((cx, y1))
        for i in range(19, 0, -1):
            t = i / 20
            pts.append((x0 + 0.08 * r + t * (r - 0.08 * r), mid + math.sin(t * math.pi / 2) * (y1 - mid)))
        pts.append((x0 + 0.08 * r, mid))
        d.polygon(pts, fill=255)
    elif kind == "seal":
        k = 20
        pts = [
            (cx + (r if i % 2 == 0 else 0.84 * r) * math.cos(math.pi * i / k - math.pi / 2),
             cy + (r if i % 2 == 0 else 0.84 * r) * math.sin(math.pi * i / k - math.pi / 2))
            for i in range(2 * k)
        ]  # fmt: skip
        d.polygon(pts, fill=255)
    elif kind == "diamond":
        d.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=255)
    elif kind == "square":
        d.rounded_rectangle((x0 + 0.06 * r, y0 + 0.06 * r, x1 - 0.06 * r, y1 - 0.06 * r), 0.22 * r, fill=255)
    elif kind == "pentagon":
        d.polygon([(x0 + 0.1 * r, y0), (x1 - 0.1 * r, y0), (x1 - 0.1 * r, cy + 0.3 * r), (cx, y1),
                   (x0 + 0.1 * r, cy + 0.3 * r)], fill=255)  # fmt: skip
    elif kind == "rosette":
        for sgn in (-1, 1):  # two ribbon tails, each cut with a notch at its end
            tail = [(0.55, cy), (0.05, cy), (0.3, y1), (0.45, y1 - 0.15 * r), (0.6, y1)]
            d.polygon([(cx + sgn * k * r, y) for k, y in tail], fill=255)
        rr = 0.78 * r
        d.ellipse((cx - rr, y0, cx + rr, y0 + 2 * rr), fill=255)
    else:
        raise ValueError(f"unknown badge {kind!r}")
    return m


# ---------------------------------------------------------------------------------------------
# line-art OpenMoji: the artwork's own line layer only, in one ink and a chosen stroke width

_SVG_NS = "http://www.w3.org/2000/svg"
_COLOUR_LAYERS = ("color", "skin", "hair")  # group ids (and prefixes: "color-foreground", "skin-shadow")
_SHAPES = ("path", "line", "polyline", "polygon", "rect", "circle", "ellipse")
_BLACKS = (None, "#000", "#000000", "#3f3f3f", "black")


def _line_layer(svg: str, ink: str, width: float) -> str:
    """The SVG source with every colour layer group removed (at any depth) and the line work in
    `ink`: strokes at `width` units, and black filled shapes (OpenMoji draws some outlines, e.g. the
    bicycle's wheels, as filled rings) in `ink` with a stroke that thickens them to about `width`."""
    ET.register_namespace("", _SVG_NS)
    root = ET.fromstring(svg)
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag.endswith("}g") and child.get("id", "").startswith(_COLOUR_LAYERS):
                parent.remove(child)
    for el in root.iter():
        if not el.tag.endswith(_SHAPES):
            continue
        fill = el.get("fill")
        stroke = el.get("stroke")
        if stroke not in (None, "none"):
            el.set("stroke", ink)
            el.set("stroke-width", str(width))
        if fill is None or fill.lower() in _BLACKS:
            el.set("fill", ink)
            if stroke in (None, "none"):
                el.set("stroke", ink)
                el.set("stroke-width", str(max(0.0, width - 2.0)))
                el.set("stroke-linejoin", "round")
    return ET.tostring(root, encoding="unicode")


@functools.lru_cache(maxsize=512)
def line_art(code: str, px: int, ink: str, width: float) -> Image.Image:
    """OpenMoji `code` as line art: colour layers dropped, lines in `ink` at `width` SVG units, RGBA
    of `px`x`px` (the 72-unit emoji box)."""
    import cairosvg

    svg = _line_layer(svg_text(code), ink, width)
    png = cairosvg.svg2png(bytestring=svg.encode("utf-8"), output_width=px, output_height=px)
    return Image.open(io.BytesIO(png)).convert("RGBA")
