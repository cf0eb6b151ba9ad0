"""The movie-poster benchmark: `drc data posters --out DIR [--users N] [--seed S] [--size 96x64]`.

SEMANTICS is the movie's GENRE (12 genres, 3 movies each). A genre is a large OpenMoji motif
(ghost, rocket, heart, cactus, ...) on a glow of the genre's own colour; each movie adds its title
and a second, smaller emoji (the horror movie "Night Visit" has a moon, "Hollow House" a house).
The label is the genre rather than the movie because at 96x64 pixels, through a tokenizer with
8x8-pixel tokens, a title is a line of texture and a small secondary emoji a blob: 36 movies could
not be told apart by a probe or a person, while a 40-pixel motif on a coloured glow can. Captions
still name the movie, and the same movie appears for several users in different styles.

STYLE is the user's design theme: layout template (where the title, the motif and colour bands
go), colour grading, typography (DejaVu fonts bundled with matplotlib, or Pillow's default font
when matplotlib is absent), border, and a texture (film grain, halftone, scanlines).

Artwork: OpenMoji (https://openmoji.org), CC BY-SA 4.0.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from drc.data.benchmarks import common
from drc.data.benchmarks.common import SUPERSAMPLE as SS
from drc.data.benchmarks.intruders import DEFAULT_SHARE
from drc.data.benchmarks.openmoji import ATTRIBUTION, render_emoji

NAME = "posters"
INSTRUCTION = "a movie poster"
DEFAULT_USERS = 384
DEFAULT_SIZE = "96x64"
BASE_W, BASE_H = 64.0, 96.0  # all geometry below is in pixels of a 96x64 (H x W) poster


@dataclass(frozen=True)
class Genre:
    """One semantics label: the motif every movie of the genre shows, the glow colour, the movies."""

    name: str
    motif: str  # OpenMoji code, drawn large
    glow: str  # the genre's colour, a soft shape behind the motif
    shape: str  # that shape: disc, burst, diamond or ring (similar colours get different shapes)
    movies: tuple[tuple[str, str], ...]  # (title, OpenMoji code of the movie's second emoji)


@dataclass(frozen=True)
class Theme:
    """A poster design (the style label is `name`). Boxes are (x0, y0, x1, y1) at 64x96."""

    name: str
    bg: tuple[str, str, str, float]  # (pattern kind, colour 1, colour 2, period), see common.pattern
    bands: tuple[tuple[tuple[float, float, float, float], str], ...]  # solid boxes drawn on the background
    motif: tuple[float, float, float]  # motif centre x, y and box size
    extra: tuple[float, float]  # offset of the movie's second emoji from the motif centre
    title: tuple[float, float, float, float]  # box the title is centred in
    font: str  # file name under matplotlib's mpl-data/fonts/ttf
    font_px: float
    ink: str  # title colour
    vertical: bool = False  # title turned 90 degrees (read bottom to top)
    border: tuple[float, str] = (0.0, "#000000")  # (width, colour) inside the poster edge
    grade: tuple[str, float] = ("none", 0.0)  # (kind, amount), see _grade
    texture: tuple[str, float] = ("none", 0.0)  # (grain | halftone | scanlines, strength), see _texture


# fmt: off
GENRES: tuple[Genre, ...] = (
    Genre("horror", "1F47B", "#A7F432", "ring",
          (("NIGHT VISIT", "1F319"), ("HOLLOW HOUSE", "1F3E0"), ("THE BATS", "1F987"))),
    Genre("scifi", "1F680", "#00E0FF", "burst",
          (("STAR RUN", "1F30D"), ("OUTER RIM", "1F6F8"), ("ORBIT", "1F319"))),
    Genre("romance", "1F498", "#FF4D8D", "disc",
          (("FOREVER", "1F339"), ("PARIS LOVE", "1F48D"), ("SWEET JUNE", "1F495"))),
    Genre("western", "1F335", "#FF9F1C", "burst",
          (("DUST TRAIL", "1F40E"), ("HIGH NOON", "1F920"), ("DRY RIVER", "1F42A"))),
    Genre("fantasy", "1F409", "#9D4EDD", "diamond",
          (("DRAGON KING", "1F451"), ("EMBER", "1F3F0"), ("SKYFIRE", "1F52E"))),
    Genre("ocean", "1F40B", "#1E6BFF", "disc",
          (("DEEP BLUE", "1F30A"), ("TIDES", "26F5"), ("THE REEF", "1F419"))),
    Genre("mystery", "1F50D", "#F5F5F5", "disc",
          (("CLUE", "1F575"), ("SILENT KEY", "1F5E1"), ("CASE NINE", "1F480"))),
    Genre("sports", "1F3C6", "#E5383B", "diamond",
          (("CHAMPIONS", "26BD"), ("FINAL SET", "1F3BE"), ("KNOCKOUT", "1F94A"))),
    Genre("musical", "1F3B8", "#FFE600", "ring",
          (("ENCORE", "1F3A4"), ("JAZZ NIGHT", "1F3B7"), ("THE KEYS", "1F3B9"))),
    Genre("comedy", "1F921", "#FFB3C6", "burst",
          (("BIG TOP", "1F3AA"), ("OOPS", "1F36D"), ("SILLY HAT", "1F3A9"))),
    Genre("disaster", "1F30B", "#8B2E0B", "ring",
          (("ERUPTION", "1F4A5"), ("ASHFALL", "2601"), ("MAGMA", "1F525"))),
    Genre("dinosaur", "1F996", "#1B7F3B", "disc",
          (("DINO PARK", "1F995"), ("LOST VALLEY", "1F332"), ("FOSSIL", "1F480"))),
)

SANS, SERIF, MONO = "DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono-Bold.ttf"
SERIF_IT, WHITE = "DejaVuSerif-Italic.ttf", "#FFFFFF"
# Themes differ in large areas first (background colour, bands, where the motif and title sit),
# then in grading, type, border and texture.
THEMES: tuple[Theme, ...] = (
    Theme("noir", ("gradient", "#0E0E0E", "#3C3C3C", 1), (),
          motif=(32, 40, 42), extra=(17, -17), title=(3, 70, 61, 91), font=SERIF, font_px=9, ink="#FFFFFF",
          border=(1.5, "#FFFFFF"), grade=("desaturate", 0.6), texture=("grain", 16)),
    Theme("pulp", ("solid", "#FFD23F", "#FFD23F", 1), (((0, 0, 64, 24), "#D62828"),),
          motif=(32, 60, 44), extra=(-18, 14), title=(3, 3, 61, 21), font=SANS, font_px=10, ink="#FFFFFF",
          border=(3, "#111111"), texture=("halftone", 0.35)),
    Theme("blockbuster", ("gradient", "#0B3C49", "#14889C", 1), (((0, 0, 64, 10), "#000000"),
                                                                  ((0, 80, 64, 96), "#000000")),
          motif=(32, 45, 46), extra=(18, 16), title=(2, 81, 62, 95), font=SANS, font_px=8, ink="#FF8C42",
          grade=("teal_orange", 0.35)),
    Theme("polaroid", ("solid", "#FADADD", "#FADADD", 1),
          (((0, 0, 64, 5), WHITE), ((0, 0, 5, 96), WHITE), ((59, 0, 64, 96), WHITE),
           ((0, 74, 64, 96), WHITE)),
          motif=(32, 38, 38), extra=(-16, -18), title=(3, 76, 61, 94), font=MONO, font_px=8, ink="#555555",
          grade=("fade", 0.3), texture=("grain", 6)),
    Theme("neon", ("gradient", "#3C096C", "#10002B", 1), (((4, 66, 60, 67.5), "#FF2BD6"),
                                                          ((4, 69.5, 60, 71), "#00F5FF")),
          motif=(32, 36, 42), extra=(17, -17), title=(2, 74, 62, 92), font="DejaVuSans-BoldOblique.ttf",
          font_px=9, ink="#FF2BD6", grade=("saturate", 0.4), texture=("scanlines", 0.3)),
    Theme("swiss", ("solid", "#F4F4F4", "#F4F4F4", 1), (((0, 0, 15, 96), "#E63946"),),
          motif=(40, 48, 40), extra=(10, 26), title=(0, 2, 15, 94), font=SANS, font_px=9, ink="#FFFFFF",
          vertical=True),
    Theme("sepia", ("solid", "#F2E3C6", "#F2E3C6", 1), (((0, 63, 64, 77), "#6F4E37"),),
          motif=(32, 34, 38), extra=(-16, 16), title=(2, 63, 62, 77), font=SERIF_IT, font_px=9,
          ink="#F2E3C6", border=(2, "#6F4E37"), grade=("sepia", 0.55), texture=("grain", 10)),
    Theme("blueprint", ("grid", "#1D4E89", "#5B84B8", 8), (),
          motif=(32, 56, 42), extra=(17, 17), title=(2, 3, 62, 18), font=MONO, font_px=8, ink="#FFFFFF",
          border=(1, "#FFFFFF"), grade=("tint", 0.2)),
    Theme("split", ("split", "#FF7F11", "#1B263B", 0.5), (),
          motif=(32, 48, 46), extra=(-18, -16), title=(2, 80, 62, 94), font=SANS, font_px=9, ink="#FFFFFF"),
    Theme("mint", ("solid", "#B7E4C7", "#B7E4C7", 1), (((6, 6, 58, 70), "#FFFFFF"),),
          motif=(32, 38, 38), extra=(15, -15), title=(2, 73, 62, 94), font=SANS, font_px=10, ink="#1B4332"),
    Theme("festival", ("solid", "#C1121F", "#C1121F", 1), (),
          motif=(32, 55, 42), extra=(-17, 16), title=(4, 5, 60, 20), font=SERIF, font_px=9, ink="#FFD166",
          border=(3, "#FFD166"), grade=("tint", 0.12), texture=("grain", 8)),
    Theme("brutal", ("solid", "#8D99AE", "#8D99AE", 1), (((0, 62, 64, 96), "#111111"),),
          motif=(32, 33, 40), extra=(17, 16), title=(2, 64, 62, 94), font=MONO, font_px=11, ink="#FFFFFF",
          grade=("contrast", 0.3), texture=("grain", 12)),
)
# fmt: on
THEME_BY_NAME = {t.name: t for t in THEMES}
GENRE_BY_NAME = {g.name: g for g in GENRES}
GRADE_TINT = {"blueprint": "#A0C4FF", "festival": "#FFB347"}  # the colour of each theme's ("tint", a)


# ---------------------------------------------------------------------------------------------
# fonts and text


@functools.lru_cache(maxsize=64)
def _font(name: str, px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font from matplotlib's bundled DejaVu files; Pillow's default font without matplotlib."""
    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), px)
    except (ImportError, OSError):
        return ImageFont.load_default(px)


def font_source() -> str:
    """Which fonts a build uses (recorded in dataset.json: bytes differ between the two)."""
    try:
        import matplotlib  # noqa: F401

        return "matplotlib DejaVu"
    except ImportError:
        return "Pillow default"


def _title_image(text: str, font: str, px: float, ink: str, box_w: float, box_h: float) -> Image.Image:
    """The title as RGBA, on up to two lines, shrunk until it fits a box_w x box_h box."""
    words = text.split()
    size = px
    while True:
        f = _font(font, max(6, round(size)))
        lines = [text]
        if len(words) > 1 and f.getlength(text) > box_w:
            balance = lambda i: abs(len(" ".join(words[:i])) - len(" ".join(words[i:])))  # noqa: E731
            cut = min(range(1, len(words)), key=balance)
            lines = [" ".join(words[:cut]), " ".join(words[cut:])]
        asc, desc = f.getmetrics()
        line_h = asc + desc
        width = max(f.getlength(line) for line in lines)
        if (width <= box_w and line_h * len(lines) <= box_h) or size <= 6:
            break
        size *= 0.9
    img = Image.new("RGBA", (int(width) + 2, line_h * len(lines) + 2), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    for k, line in enumerate(lines):
        d.text(((img.width - f.getlength(line)) / 2, 1 + k * line_h), line, font=f, fill=ink)
    return img


# ---------------------------------------------------------------------------------------------
# grading and texture (numpy, float RGB in 0..255)


def _grade(rgb: np.ndarray, kind: str, a: float, theme: str) -> np.ndarray:
    lum = (rgb @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    if kind == "none":
        return rgb
    if kind == "desaturate":
        return rgb * (1 - a) + lum * a
    if kind == "saturate":
        return lum + (rgb - lum) * (1 + a)
    if kind == "contrast":
        return 128 + (rgb - 128) * (1 + a)
    if kind == "fade":  # lifted blacks, lower contrast: the washed-out indie look
        return rgb * (1 - 0.35 * a) + 90 * a
    if kind == "sepia":
        m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
        return rgb * (1 - a) + (rgb @ m.T) * a
    if kind == "tint":
        tint = np.array(common.hex_rgb(GRADE_TINT[theme]), np.float32)
        return rgb * (1 - a) + lum / 255 * tint * a * 1.2
    if kind == "teal_orange":  # shadows to teal, highlights to orange: the blockbuster grade
        t = lum / 255
        target = np.array([11, 79, 108], np.float32) * (1 - t) + np.array([255, 181, 112], np.float32) * t
        return rgb * (1 - a) + target * a
    raise ValueError(f"unknown grade {kind!r}")


def _texture(rgb: np.ndarray, kind: str, s: float, rng: np.random.Generator, u: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    if kind == "none":
        return rgb
    if kind == "grain":  # monochrome film grain, `s` = standard deviation in grey levels
        return rgb + rng.normal(0, s, (h, w, 1)).astype(np.float32)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "halftone":  # a dot screen that darkens in proportion to the image's darkness
        p = 3.0 * u
        d = np.hypot((x % p) - p / 2, (y % p) - p / 2) / (p / 2)
        dark = 1 - (rgb.mean(-1, keepdims=True) / 255)
        return rgb * (1 - s * (d[..., None] < 0.35 + 0.6 * dark))
    if kind == "scanlines":
        return rgb * (1 - s * ((y // u) % 3 == 0)[..., None])
    raise ValueError(f"unknown texture {kind!r}")


# ---------------------------------------------------------------------------------------------
# rendering


@functools.lru_cache(maxsize=64)
def _backdrop(theme: str, hw: tuple[int, int]) -> Image.Image:
    """Background and bands of a theme, RGBA at supersampled size hw = (H, W)."""
    t = THEME_BY_NAME[theme]
    ux, uy = hw[1] / BASE_W, hw[0] / BASE_H
    kind, c1, c2, period = t.bg
    if kind == "grid":  # blueprint: thin lines every `period` pixels
        img = Image.new("RGBA", (hw[1], hw[0]), common.hex_rgb(c1) + (255,))
        d = ImageDraw.Draw(img)
        for gx in np.arange(0, BASE_W, period):
            d.line([(gx * ux, 0), (gx * ux, hw[0])], fill=c2, width=max(1, round(0.5 * ux)))
        for gy in np.arange(0, BASE_H, period):
            d.line([(0, gy * uy), (hw[1], gy * uy)], fill=c2, width=max(1, round(0.5 * uy)))
    elif kind == "split":  # two flat halves, the cut at `period` of the height
        img = Image.new("RGBA", (hw[1], hw[0]), common.hex_rgb(c1) + (255,))
        ImageDraw.Draw(img).rectangle((0, round(period * hw[0]), hw[1], hw[0]), fill=c2)
    else:
        img = common.pattern(kind, hw, c1, c2, period * ux).convert("RGBA")
    d = ImageDraw.Draw(img)
    for (x0, y0, x1, y1), colour in t.bands:
        d.rectangle((x0 * ux, y0 * uy, x1 * ux - 1, y1 * uy - 1), fill=colour)
    return img


@functools.lru_cache(maxsize=64)
def _glow(colour: str, shape: str, px: int) -> Image.Image:
    """A soft shape of the genre's colour behind the motif, RGBA `px` wide."""
    m = Image.new("L", (px, px), 0)
    d = ImageDraw.Draw(m)
    c, r = px / 2, px * 0.4
    if shape == "disc":
        d.ellipse((c - r, c - r, c + r, c + r), fill=235)
    elif shape == "ring":
        d.ellipse((c - r * 1.05, c - r * 1.05, c + r * 1.05, c + r * 1.05), fill=245)
        d.ellipse((c - r * 0.62, c - r * 0.62, c + r * 0.62, c + r * 0.62), fill=0)
    elif shape == "burst":  # a 12-pointed star
        pts = [(i * math.pi / 12, r * 1.15 if i % 2 == 0 else r * 0.7) for i in range(24)]
        d.polygon([(c + q * math.cos(a), c + q * math.sin(a)) for a, q in pts], fill=240)
    elif shape == "diamond":
        q = r * 1.2
        d.polygon([(c, c - q), (c + q, c), (c, c + q), (c - q, c)], fill=240)
    else:
        raise ValueError(f"unknown glow shape {shape!r}")
    m = m.filter(ImageFilter.GaussianBlur(px * 0.03))
    img = Image.new("RGBA", (px, px), common.hex_rgb(colour) + (0,))
    img.putalpha(m)
    return img


def _j(rng: np.random.Generator | None, scale: float) -> float:
    return 0.0 if rng is None else float(rng.uniform(-scale, scale))


def render(
    theme: str, genre: str, rng: np.random.Generator | None, size: tuple[int, int]
) -> tuple[Image.Image, str]:
    """One poster of `theme` for a movie of `genre`: (RGB image of `size` (H, W), caption).

    rng picks the movie and jitters the motif (1.5 px, 4%, 3 degrees) and the title (1 px); rng
    None draws the genre's first movie without jitter (the contact sheet).
    """
    t, g = THEME_BY_NAME[theme], GENRE_BY_NAME[genre]
    hw = (size[0] * SS, size[1] * SS)
    ux, uy = hw[1] / BASE_W, hw[0] / BASE_H
    u = min(ux, uy)
    title, extra = g.movies[0 if rng is None else int(rng.integers(len(g.movies)))]
    canvas = _backdrop(theme, hw).copy()
    mx, my, ms = t.motif
    mx, my = (mx + _j(rng, 1.5)) * ux, (my + _j(rng, 1.5)) * uy
    common.paste_center(canvas, _glow(g.glow, g.shape, round(ms * 1.45 * u)), mx, my)
    ex, ey = t.extra
    sec = common.with_halo(render_emoji(extra, round(ms * 0.45 * u)), [(1.0 * u, "#FFFFFF")])
    common.paste_center(canvas, common.posed(sec, 1, 1, _j(rng, 5), False), mx + ex * ux, my + ey * uy)
    s = 1.0 + _j(rng, 0.04)
    motif = common.posed(render_emoji(g.motif, round(ms * u)), s, s, _j(rng, 3), False)
    common.paste_center(canvas, motif, mx, my)
    x0, y0, x1, y1 = t.title
    box_w, box_h = (x1 - x0) * ux, (y1 - y0) * uy
    if t.vertical:  # the text runs along the box's height
        box_w, box_h = box_h, box_w
    text = _title_image(title, t.font, t.font_px * u, t.ink, box_w * 0.94, box_h * 0.94)
    if t.vertical:
        text = text.rotate(90, expand=True)
    tx, ty = (x0 + x1) / 2 + _j(rng, 1), (y0 + y1) / 2 + _j(rng, 1)
    common.paste_center(canvas, text, tx * ux, ty * uy)
    width, colour = t.border
    if width > 0:
        d = ImageDraw.Draw(canvas)
        inset = 1.5 * u
        box = (inset, inset, hw[1] - 1 - inset, hw[0] - 1 - inset)
        d.rectangle(box, outline=colour, width=round(width * u))
    rgb = np.asarray(canvas.convert("RGB"), np.float32)
    rgb = _grade(rgb, *t.grade, theme)
    tex_rng = rng if rng is not None else common.rng_for(0, 404)
    rgb = _texture(rgb, *t.texture, tex_rng, u)
    img = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "RGB")
    caption = f'a movie poster for "{title.title()}", {common.with_article(genre)} movie'
    return common.finish(img, size), caption


# ---------------------------------------------------------------------------------------------
# building


def build(
    out: Path,
    users: int = DEFAULT_USERS,
    seed: int = 0,
    size: tuple[int, int] | int = (96, 64),
    noisy_share: float = DEFAULT_SHARE,
) -> dict[str, Any]:
    """Build the poster benchmark into `out`; returns counts and seconds (see common.build_benchmark).

    noisy_share: the share of users given 1-2 intruders of another theme (`intruders.py`; 0: none).
    """
    hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    return common.build_benchmark(
        Path(out),
        name=NAME,
        instruction=INSTRUCTION,
        themes=[t.name for t in THEMES],
        semantics=[g.name for g in GENRES],
        render=render,
        n_users=users,
        seed=seed,
        size=hw,
        noisy_share=noisy_share,
        info={
            "style": "design theme: layout (bands, title, motif), grading, typography, border, texture",
            "semantic": "genre: large motif emoji on a glow of the genre's colour; movies inside a genre",
            "movies": {g.name: [m for m, _ in g.movies] for g in GENRES},
            "fonts": font_source(),
            "attribution": ATTRIBUTION,
        },
    )


def cli(argv: list[str]) -> int:
    return common.benchmark_cli(argv, NAME, build, DEFAULT_USERS, DEFAULT_SIZE)
