"""The `glyphs` foreign set: a font symbol, large and centred, on a full-bleed textured tile.

SEMANTICS is which symbol (a DejaVu Sans glyph: star, umbrella, knight, ...), always at the centre,
about 40 px of a 64 px tile, with a small per-item jitter of position, scale and rotation. STYLE is
a theme: the background texture (stripes, dots, checker, grid, rings, speckle, gradients, split,
plain) and its two colours, the symbol's ink, and its treatment (outline rings, a soft or hard
shadow). There is no character and no frame: unlike the built-in stickers, the symbol's place
carries nothing, only its shape does, and the style is spread over the whole tile.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from foreign_art import glyph_mask, has_glyph, jitter, jittered_background, offset, pad, solid
from PIL import Image

from drc.data.benchmarks import common
from drc.data.benchmarks.common import SUPERSAMPLE as SS

NAME = "foreign_glyphs"
INSTRUCTION = "a symbol tile"
BASE = 64.0  # geometry below is in pixels of a 64 px tile
BOX = 40.0  # the symbol's larger side


@dataclass(frozen=True)
class Theme:
    name: str
    desc: str  # in captions: "a star on <desc>"
    bg: tuple[str, str, str, float]  # (texture kind, colour 1, colour 2, period px)
    ink: str
    rings: tuple[tuple[float, str], ...] = ()  # outline rings around the symbol (width px, colour)
    shadow: tuple[float, float, float, str, int] | None = None  # (dx, dy, blur px, colour, opacity)


# fmt: off
THEMES: tuple[Theme, ...] = (
    Theme("cream_ink", "plain cream", ("plain", "#F3EAD3", "#F3EAD3", 1), "#1B1B1B"),
    Theme("navy_stripes", "navy stripes", ("stripes", "#16325C", "#2B5A9B", 12), "#FFD23F",
          rings=((2.0, "#0B0B0B"),)),
    Theme("pink_dots", "pink polka dots", ("dots", "#FF9EC7", "#FFFFFF", 10), "#5B1865",
          shadow=(2.5, 2.5, 1.5, "#000000", 110)),
    Theme("forest_checker", "a green checkerboard", ("checker", "#2D6A4F", "#40916C", 8), "#FFFFFF",
          rings=((2.0, "#081C15"),)),
    Theme("sunset_fade", "a sunset gradient", ("vgradient", "#FF9F1C", "#7B2CBF", 1), "#FFFFFF",
          shadow=(0.0, 3.0, 2.5, "#2A0845", 150)),
    Theme("teal_bars", "teal bars", ("vstripes", "#0F7173", "#7FD1C7", 9), "#F05D5E",
          rings=((2.5, "#FFFFFF"),)),
    Theme("red_grid", "a red grid", ("grid", "#D62828", "#6A040F", 8), "#FFFFFF",
          rings=((1.5, "#000000"),), shadow=(3.0, 3.0, 0.0, "#000000", 255)),
    Theme("lilac_rings", "lilac rings", ("rings", "#E0C3FC", "#B185DB", 7), "#0B6E4F",
          rings=((1.5, "#FFFFFF"), (1.5, "#0B6E4F"))),
    Theme("sand_speckle", "speckled sand", ("speckle", "#E9C46A", "#8D6A2B", 0.7), "#1D4ED8",
          shadow=(3.5, 3.5, 0.0, "#7A4B00", 200)),
    Theme("night_split", "a split night tile", ("split", "#0D1B2A", "#415A77", 1), "#7CFFCB",
          rings=((2.0, "#0D1B2A"),)),
)
# fmt: on
THEME_BY_NAME = {t.name: t for t in THEMES}

# Bold, filled DejaVu Sans symbols with distinct silhouettes (thin ones, e.g. the sun's rays or the
# scissors, were left out: at 64 px they would be a few pixels of line).
SYMBOLS: tuple[tuple[str, str], ...] = (
    ("star", "\u2605"),
    ("umbrella", "\u2602"),
    ("knight", "\u265e"),
    ("telephone", "\u260e"),
    ("airplane", "\u2708"),
    ("music", "\u266b"),
    ("anchor", "\u2693"),
    ("heart", "\u2665"),
    ("crown", "\u265b"),
    ("gear", "\u2699"),
)
SYMBOL_CHAR = dict(SYMBOLS)


def check_font() -> None:
    """Fail early when the font lacks a symbol (it would draw the missing-glyph box)."""
    missing = [n for n, c in SYMBOLS if not has_glyph(c)]
    if missing:
        raise SystemExit(f"DejaVuSans.ttf has no glyph for: {', '.join(missing)}")


@functools.lru_cache(maxsize=256)
def _art(theme: str, symbol: str, n: int) -> Image.Image:
    """The theme's symbol in ink with its outline rings, RGBA at supersampled scale (no shadow)."""
    t = THEME_BY_NAME[theme]
    u = n * SS / BASE
    rings = [(w * u, c) for w, c in t.rings]
    room = int(sum(w for w, _ in rings)) + 4
    mask = pad(glyph_mask(SYMBOL_CHAR[symbol], round(BOX * u)), room)
    out = Image.new("RGBA", mask.size, (0, 0, 0, 0))
    total = 0.0
    layers = []
    for w, c in rings:
        total += w
        layers.append((common.grow(mask, total), c))
    for m, c in reversed(layers):
        out.alpha_composite(solid(m, c))
    out.alpha_composite(solid(mask, t.ink))
    return out


def render(theme: str, symbol: str, rng: np.random.Generator | None, size: tuple[int, int]):
    """One tile: (RGB image of `size`, caption). rng None: the canonical look (contact sheet)."""
    t = THEME_BY_NAME[theme]
    n = size[0]
    u = n * SS / BASE
    canvas = jittered_background(t.bg, n * SS, u, rng)
    s = 1.0 + jitter(rng, 0.06)
    art = common.posed(_art(theme, symbol, n), s, s, jitter(rng, 8.0), False)
    cx, cy = (32 + jitter(rng, 2.0)) * u, (32 + jitter(rng, 2.0)) * u
    if t.shadow is not None:
        dx, dy, blur, colour, opacity = t.shadow
        room = int((abs(dx) + abs(dy) + 2 * blur) * u) + 2
        a = pad(art.getchannel("A"), room)
        m = offset(a, dx * u, dy * u, blur * u).point(lambda v: v * opacity // 255)
        common.paste_center(canvas, solid(m, colour), cx, cy)
    common.paste_center(canvas, art, cx, cy)
    return common.finish(canvas, size), f"{common.with_article(symbol)} on {t.desc}"
