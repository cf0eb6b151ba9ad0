"""The `cards` foreign set: a Twemoji subject, recoloured in the theme's two inks, on a card.

SEMANTICS is a concept (rocket, cactus, snail, ...): its Twemoji artwork, about 40 px of a 64 px
image, always at the centre with a small per-item jitter of position, scale and rotation. The
drawing keeps its own shapes and shading but not its colours: its lightness is mapped onto the
theme's dark-to-light ink ramp (a duotone), so the palette of the subject belongs to the style, as a
sticker artist's palette does. STYLE is a theme: the background texture and its colours, the card
behind the subject (shape, fill, border), the duotone ramp, and an optional outline around the
subject. Unlike the glyph set the subject is drawn artwork with inner detail, not a font's flat
silhouette; unlike the badges its place never moves and it is a filled drawing, not a line.

Artwork: Twemoji by Twitter, Inc and other contributors (https://github.com/twitter/twemoji),
CC BY 4.0, read from the npm package `@iconify-json/twemoji` (fetched once with `npm pack`).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
from foreign_art import badge_mask, jitter, jittered_background, pad, solid
from PIL import Image

from drc.data.benchmarks import common, iconify
from drc.data.benchmarks.common import SUPERSAMPLE as SS

NAME = "foreign_cards"
INSTRUCTION = "a card"
BASE = 64.0  # geometry below is in pixels of a 64 px image
BOX = 40.0  # the subject's box
ATTRIBUTION = (
    "Twemoji by Twitter, Inc and other contributors (https://github.com/twitter/twemoji), "
    "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); recoloured and placed on cards"
)


@dataclass(frozen=True)
class Theme:
    name: str
    desc: str  # in captions: "a rocket on <desc>"
    bg: tuple[str, str, str, float]  # (texture kind, colour 1, colour 2, period px)
    card: tuple[str, str, str, float] | None  # (badge_mask shape, fill, border colour, border px) or none
    ramp: tuple[str, str]  # the duotone: the colour of black and of white in the artwork
    ring: tuple[float, str] | None = None  # an outline around the subject (width px, colour)


# fmt: off
THEMES: tuple[Theme, ...] = (
    Theme("mint_card", "a mint card", ("plain", "#FDF6EC", "#FDF6EC", 1),
          ("square", "#B8F2D8", "#1E6F5C", 2.5), ("#0E3B30", "#FFFFFF")),
    Theme("blueprint", "a blueprint", ("grid", "#1D4E89", "#5DA9E9", 8), None, ("#FFFFFF", "#CDE7FF"),
          ring=(1.5, "#0A2540")),
    Theme("sunset_circle", "a sunset disc", ("vgradient", "#FFB347", "#D7263D", 1),
          ("circle", "#FFF1C1", "#7A1E48", 2.0), ("#7A1E48", "#FFD166")),
    Theme("newsprint", "newsprint", ("speckle", "#EDEAE0", "#7D7A70", 0.6), None, ("#111111", "#DDDAD0")),
    Theme("candy_stripes", "candy stripes", ("stripes", "#FFC6DD", "#FFFFFF", 10),
          ("hexagon", "#FFFFFF", "#E23E8B", 3.0), ("#6A0D83", "#FF9EC7")),
    Theme("forest_checker", "a forest checker", ("checker", "#1B4332", "#2D6A4F", 8), None,
          ("#081C15", "#B7E4C7"), ring=(2.0, "#F4D35E")),
    Theme("night_octagon", "a night badge", ("plain", "#0B0C10", "#0B0C10", 1),
          ("octagon", "#1F2833", "#66FCF1", 2.0), ("#0B3C5D", "#66FCF1")),
    Theme("terracotta", "terracotta rings", ("rings", "#E07A5F", "#C8553D", 7),
          ("circle", "#F4F1DE", "#3D405B", 1.5), ("#3D405B", "#F2CC8F")),
    Theme("lemon_dots", "lemon dots", ("dots", "#FFF275", "#FF8C42", 9), None, ("#3A2E39", "#FFFFFF"),
          ring=(2.0, "#3A2E39")),
    Theme("violet_split", "a violet split", ("split", "#5A189A", "#9D4EDD", 1),
          ("diamond", "#E0AAFF", "#240046", 2.0), ("#240046", "#FFFFFF")),
)
# fmt: on
THEME_BY_NAME = {t.name: t for t in THEMES}

# Twemoji concepts with distinct silhouettes at 64 px, none shared with the glyph or badge sets.
SYMBOLS: tuple[tuple[str, str], ...] = (
    ("rocket", "rocket"),
    ("cactus", "cactus"),
    ("snail", "snail"),
    ("ghost", "ghost"),
    ("banana", "banana"),
    ("crab", "crab"),
    ("mushroom", "mushroom"),
    ("teapot", "teapot"),
    ("fir_tree", "evergreen-tree"),
    ("snowman", "snowman"),
)
SYMBOL_ICON = dict(SYMBOLS)


@functools.lru_cache(maxsize=1)
def _icons() -> iconify.IconSet:
    return iconify.load_set(iconify.fetch(["twemoji"], iconify.default_cache())[0])


def check_art() -> None:
    """Fail early (one line) when the Twemoji package lacks a concept."""
    names = _icons().names
    missing = [n for n, key in SYMBOLS if iconify.normalise(key) not in names]
    if missing:
        raise SystemExit(f"@iconify-json/twemoji has no icon for: {', '.join(missing)}")


@functools.lru_cache(maxsize=32)
def _artwork(symbol: str, px: int) -> Image.Image:
    """The concept's Twemoji drawing as RGBA, `px` square."""
    import cairosvg

    icons = _icons()
    svg = icons.svg(iconify.normalise(SYMBOL_ICON[symbol]))
    png = cairosvg.svg2png(bytestring=svg.encode("utf-8"), output_width=px, output_height=px)
    return Image.open(io.BytesIO(png)).convert("RGBA")


@functools.lru_cache(maxsize=256)
def _art(theme: str, symbol: str, n: int) -> Image.Image:
    """The subject in the theme's duotone with its outline, RGBA at supersampled scale."""
    t = THEME_BY_NAME[theme]
    u = n * SS / BASE
    src = np.asarray(_artwork(symbol, round(BOX * u)), np.float32) / 255.0
    lum = src[..., 0] * 0.299 + src[..., 1] * 0.587 + src[..., 2] * 0.114
    dark, light = (np.array(common.hex_rgb(c), np.float32) for c in t.ramp)
    rgb = dark + (light - dark) * lum[..., None]
    art = Image.fromarray(np.dstack([rgb, src[..., 3:] * 255.0]).round().astype(np.uint8), "RGBA")
    if t.ring is None:
        return art
    w, colour = t.ring
    room = int(w * u) + 4
    out = Image.new("RGBA", (art.width + 2 * room, art.height + 2 * room), (0, 0, 0, 0))
    mask = pad(art.getchannel("A").point(lambda v: 255 if v > 96 else 0), room)
    out.alpha_composite(solid(common.grow(mask, w * u), colour))
    out.alpha_composite(art, (room, room))
    return out


@functools.lru_cache(maxsize=16)
def _card(theme: str, n: int) -> Image.Image | None:
    """The theme's card (border then fill), RGBA over the whole supersampled canvas, or None."""
    t = THEME_BY_NAME[theme]
    if t.card is None:
        return None
    shape, fill, border, width = t.card
    side = n * SS
    u = side / BASE
    out = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    out.alpha_composite(solid(badge_mask(shape, side, 4 * u), border))
    out.alpha_composite(solid(badge_mask(shape, side, (4 + width) * u), fill))
    return out


def render(theme: str, symbol: str, rng: np.random.Generator | None, size: tuple[int, int]):
    """One card: (RGB image of `size`, caption). rng None: the canonical look (contact sheet)."""
    t = THEME_BY_NAME[theme]
    n = size[0]
    u = n * SS / BASE
    canvas = jittered_background(t.bg, n * SS, u, rng)
    card = _card(theme, n)
    if card is not None:
        canvas.alpha_composite(card)
    s = 1.0 + jitter(rng, 0.06)
    art = common.posed(_art(theme, symbol, n), s, s, jitter(rng, 8.0), False)
    common.paste_center(canvas, art, (32 + jitter(rng, 2.0)) * u, (32 + jitter(rng, 2.0)) * u)
    words = symbol.replace("_", " ")
    return common.finish(canvas, size), f"{common.with_article(words)} on {t.desc}"
