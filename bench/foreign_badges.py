"""The `badges` foreign set: a line-art icon inside a badge.

SEMANTICS is a concept (house, bicycle, key, ...): its OpenMoji artwork reduced to the line
layer (colour layers dropped), in one ink and a thick stroke, about 30-36 px of a 64 px image
(a 36-44 px emoji box). STYLE is a theme: the badge shape (shield, seal, circle, diamond,
rosette, ...), its fill texture and colours, its border (solid, double, dashed, stitched or
none), an optional ribbon banner, the ink, the canvas outside the badge, a shadow, and where in
the badge the icon sits (centre, high above a banner, ...). Unlike the built-in stickers the art
is monochrome line work, the semantics has no colour or place of its own, and the place the icon
sits belongs to the style.

Artwork: OpenMoji (https://openmoji.org), CC BY-SA 4.0.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from foreign_art import badge_mask, jitter, jittered_background, line_art, offset, solid, texture
from PIL import Image, ImageChops, ImageDraw

from drc.data.benchmarks import common
from drc.data.benchmarks.common import SUPERSAMPLE as SS
from drc.data.benchmarks.openmoji import ATTRIBUTION

NAME = "foreign_badges"
INSTRUCTION = "a badge"
BASE = 64.0  # geometry below is in pixels of a 64 px image


@dataclass(frozen=True)
class Theme:
    name: str
    desc: str  # in captions: "a house on <desc>"
    shape: str  # foreign_art.badge_mask kind
    fill: tuple[str, str, str, float]  # badge texture (kind, colour 1, colour 2, period px)
    border: tuple[str, float, str]  # (solid | double | dashed | stitched | none, width px, colour)
    ink: str
    icon: tuple[float, float, float]  # (x, y, box px) of the icon's 72-unit emoji box
    canvas: tuple[str, str, str, float] = ("plain", "#FFFFFF", "#FFFFFF", 1)  # outside the badge
    banner: tuple[float, float, str] | None = None  # (top y, height, colour) of a ribbon band
    shadow: bool = False
    line_w: float = 5.0  # stroke width in SVG units (OpenMoji draws 2)


# fmt: off
THEMES: tuple[Theme, ...] = (
    Theme("police_shield", "a navy shield", "shield", ("plain", "#1B2A4A", "#1B2A4A", 1),
          ("double", 2.0, "#E9B949"), "#FFFFFF", (32, 28, 42), shadow=True),
    Theme("scout_patch", "a khaki scout patch", "circle", ("speckle", "#C9B98B", "#B3A171", 0.3),
          ("stitched", 2.5, "#5C4326"), "#3E2A14", (32, 32, 44), canvas=("plain", "#2F4F2F", "#2F4F2F", 1)),
    Theme("gold_seal", "a gold seal", "seal", ("rings", "#F6C343", "#E0A526", 5),
          ("solid", 1.5, "#7A4A00"), "#8B1E1E", (32, 32, 40), canvas=("plain", "#FFF6E0", "#FFF6E0", 1),
          shadow=True),
    Theme("mint_tile", "a mint tile with a ribbon", "square", ("vgradient", "#C7F9E5", "#5FD3B3", 1),
          ("none", 0, "#000000"), "#0B4F4A", (32, 24, 38), banner=(43, 10, "#0B4F4A"), shadow=True),
    Theme("ruby_diamond", "a ruby diamond", "diamond", ("checker", "#C1121F", "#A50E1A", 6),
          ("solid", 2.5, "#FFFFFF"), "#FFFFFF", (32, 32, 36), canvas=("plain", "#DDDDDD", "#DDDDDD", 1)),
    Theme("sky_plate", "a sky-blue plate badge", "pentagon", ("stripes", "#8ECAE6", "#B9E2F2", 9),
          ("solid", 3.5, "#023047"), "#023047", (32, 27, 40)),
    Theme("violet_rosette", "a violet rosette", "rosette", ("rings", "#7B2CBF", "#9D4EDD", 4),
          ("dashed", 2.0, "#FFD60A"), "#FFFFFF", (32, 25, 36), canvas=("plain", "#FFFBD6", "#FFFBD6", 1)),
    Theme("orange_hex", "an orange hexagon on teal dots", "hexagon", ("plain", "#FB8500", "#FB8500", 1),
          ("solid", 3.0, "#111111"), "#111111", (32, 32, 42), canvas=("dots", "#CFF5F0", "#3AAFA9", 8)),
    Theme("slate_octagon", "a slate octagon", "octagon", ("grid", "#2B2D42", "#3C4060", 7),
          ("dashed", 2.5, "#4CC9F0"), "#4CC9F0", (32, 32, 42), canvas=("plain", "#0A0A0A", "#0A0A0A", 1)),
    Theme("rose_banner", "a rose circle with a ribbon", "circle", ("dgradient", "#FFD1DC", "#FF8FAB", 1),
          ("solid", 2.0, "#FFFFFF"), "#5A1846", (32, 22, 36), banner=(40, 10, "#5A1846"),
          canvas=("vstripes", "#FFFFFF", "#F3E6EC", 6)),
)
# fmt: on
THEME_BY_NAME = {t.name: t for t in THEMES}

# OpenMoji concepts whose line art keeps a distinct outline at about 30 px (round ones that would
# all read as a circle, e.g. apple / clock / globe, were left out).
SYMBOLS: tuple[tuple[str, str], ...] = (
    ("house", "1F3E0"),
    ("bicycle", "1F6B2"),
    ("key", "1F511"),
    ("bell", "1F514"),
    ("fish", "1F41F"),
    ("tree", "1F333"),
    ("rocket", "1F680"),
    ("light_bulb", "1F4A1"),
    ("trophy", "1F3C6"),
    ("sailboat", "26F5"),
)
SYMBOL_CODE = dict(SYMBOLS)


def _ring(mask: Image.Image, width: float) -> Image.Image:
    """The band of `mask` within `width` pixels of its edge."""
    return ImageChops.subtract(mask, common.shrink(mask, width))


def _angular(mask: Image.Image, n_dashes: int, duty: float) -> Image.Image:
    """`mask` kept only on `n_dashes` angular sectors around the centre (a dashed ring)."""
    h, w = mask.size[1], mask.size[0]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = (np.arctan2(y - h / 2, x - w / 2) / (2 * math.pi) * n_dashes) % 1.0
    keep = (a < duty).astype(np.uint8) * 255
    return ImageChops.multiply(mask, Image.fromarray(keep, "L"))


@functools.lru_cache(maxsize=32)
def _badge(theme: str, n: int) -> tuple[Image.Image, Image.Image]:
    """(RGBA badge with border, banner and shadow on a transparent canvas; the badge's mask)."""
    t = THEME_BY_NAME[theme]
    u = n * SS / BASE
    side = n * SS
    mask = badge_mask(t.shape, side, 3.0 * u)
    out = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    if t.shadow:
        drop = offset(mask, 1.5 * u, 2.0 * u, 1.2 * u).point(lambda v: v * 100 // 255)
        out.alpha_composite(solid(drop, "#000000"))
    kind, c1, c2, period = t.fill
    body = texture(kind, (side, side), c1, c2, period * u).convert("RGBA")
    body.putalpha(mask)
    out.alpha_composite(body)
    style, bw, bc = t.border
    if style == "solid":
        out.alpha_composite(solid(_ring(mask, bw * u), bc))
    elif style == "double":
        out.alpha_composite(solid(_ring(mask, bw * u), bc))
        out.alpha_composite(solid(_ring(common.shrink(mask, 2.2 * bw * u), 0.7 * bw * u), bc))
    elif style == "dashed":
        out.alpha_composite(solid(_angular(_ring(mask, bw * u), 36, 0.6), bc))
    elif style == "stitched":  # a dashed thread a little inside the edge
        inner = _ring(common.shrink(mask, 1.6 * bw * u), 0.6 * bw * u)
        out.alpha_composite(solid(_angular(inner, 40, 0.55), bc))
        out.alpha_composite(solid(_ring(mask, 0.7 * bw * u), bc))
    if t.banner is not None:
        top, height, colour = t.banner
        band = Image.new("L", (side, side), 0)
        y0, y1, notch = top * u, (top + height) * u, 3.0 * u
        x0, x1, ym = 4.0 * u, side - 4.0 * u, (top + height / 2) * u
        pts = [(x0, y0), (x1, y0), (x1 - notch, ym), (x1, y1), (x0, y1), (x0 + notch, ym)]
        ImageDraw.Draw(band).polygon(pts, fill=255)
        out.alpha_composite(solid(band, colour))
    return out, mask


def render(theme: str, symbol: str, rng: np.random.Generator | None, size: tuple[int, int]):
    """One badge: (RGB image of `size`, caption). rng None: the canonical look (contact sheet)."""
    t = THEME_BY_NAME[theme]
    n = size[0]
    u = n * SS / BASE
    canvas = jittered_background(t.canvas, n * SS, u, rng)
    canvas.alpha_composite(_badge(theme, n)[0])
    x, y, box = t.icon
    art = line_art(SYMBOL_CODE[symbol], round(box * u), t.ink, t.line_w)
    s = 1.0 + jitter(rng, 0.05)
    art = common.posed(art, s, s, jitter(rng, 6.0), False)
    common.paste_center(canvas, art, (x + jitter(rng, 1.5)) * u, (y + jitter(rng, 1.5)) * u)
    return common.finish(canvas, size), f"{common.with_article(symbol.replace('_', ' '))} on {t.desc}"


__all__ = ["ATTRIBUTION", "INSTRUCTION", "NAME", "SYMBOLS", "THEMES", "render"]
