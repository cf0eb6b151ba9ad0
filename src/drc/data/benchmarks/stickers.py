"""The sticker benchmark: `drc data stickers --out DIR [--users N] [--seed S] [--size 64] [--semantics K]`.

STYLE is the look of a user's sticker set, a *theme*: the character (an OpenMoji animal or face
drawn large), its colours (a remap of the artwork's own palette), its line colour and width, an
outer contour, the background colour or pattern, the frame (die-cut) shape, its border and a drop
shadow. SEMANTICS is an *intent* (love, sad, sleepy, ...): a big OpenMoji symbol in the intent's
own colour and place (a pink heart at the top right, a blue tear at the left, ...) together with a
pose of the character that goes with it (lean, slump, squash, stretch, jump).

Everything is chosen to survive a VQ tokenizer with 8x8-pixel tokens at 64 px: themes differ in
large areas (background colour, frame, character colour), intents in a 24-30 px symbol of a
distinct colour/shape at a distinct place plus a whole-character pose. Fine detail (the face's
expression) is never needed to tell anything apart.

`--semantics emoji` is a harder mode: the semantics is one of 60 subject emoji the character
shows (an apple, a bus, ...), all at one place and size and with no pose.

Artwork: OpenMoji (https://openmoji.org), CC BY-SA 4.0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from drc.data.benchmarks import common
from drc.data.benchmarks.common import SUPERSAMPLE as SS
from drc.data.benchmarks.intruders import DEFAULT_SHARE
from drc.data.benchmarks.openmoji import ATTRIBUTION, render_emoji
from drc.errors import DrcError

NAME = "stickers"
INSTRUCTION = "a sticker"
DEFAULT_USERS = 384
DEFAULT_USERS_EMOJI = 320
DEFAULT_SIZE = "64"
CHAR_BOX = 44.0  # the character's emoji box, in pixels of a 64 px sticker
BASE = 64.0  # all geometry below is in pixels of a 64 px sticker


@dataclass(frozen=True)
class Theme:
    """The look of one sticker set (the style label is `name`). Lengths are pixels at 64 px."""

    name: str
    char: str  # OpenMoji code of the character
    char_name: str  # used in captions: "a cat sticker, love"
    fills: tuple[tuple[str, str], ...]  # palette remap of the character's own fill colours
    line: str  # colour of the artwork's lines
    line_w: float  # their width in SVG units (OpenMoji draws 2)
    contour: tuple[tuple[float, str], ...]  # outline rings around the character, inner first
    bg: tuple[str, str, str, float]  # background (pattern kind, colour 1, colour 2, period)
    frame: str  # frame shape, see common.shape_mask; "diecut" = the character's own contour
    border: tuple[float, str]  # frame border (width, colour); width 0 for none
    canvas: str  # colour outside the frame
    shadow: bool  # drop shadow under the frame (or the die-cut character)


@dataclass(frozen=True)
class Intent:
    """One semantics label: a symbol in fixed colours and places, and a pose of the character."""

    name: str
    symbol: str  # OpenMoji code
    recolor: tuple[tuple[str, str], ...]  # raw SVG substitutions: the symbol's colour and line width
    spots: tuple[tuple[float, float, float], ...]  # (x, y, box size) per copy of the symbol
    dx: float = 0.0  # character offset, away from the symbol
    dy: float = 0.0
    sx: float = 1.0  # character squash / stretch
    sy: float = 1.0
    angle: float = 0.0  # character lean, degrees counter-clockwise
    flip: bool = False


def _fill(*pairs: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    """Palette remap pairs for SVG attributes: quoted, so "#fff" never hits the prefix of "#ffffff"."""
    return tuple((f'"{old}"', f'"{new}"') for old, new in pairs)


def _solid_lines(colour: str, width: float | None = None) -> tuple[tuple[str, str], ...]:
    """SVG substitutions turning OpenMoji's black strokes/fills into `colour` (and stroke width)."""
    pairs = list(_fill(("#000000", colour), ("#000", colour), ("#3f3f3f", colour)))
    if width is not None:
        pairs += [(f'stroke-width="{w}"', f'stroke-width="{width}"') for w in ("2", "1.75", "6", "4.6452")]
    return tuple(pairs)


# Intents: each has its own symbol colour; two intents share a place only when their colours and
# shapes differ strongly (love: pink heart / sleepy: purple zzz at the top right; angry: red
# anger mark / question: blue "?" at the top left; celebrate: party popper / cold: cyan snowflake
# at the bottom left), and their poses differ too.
TL, TR, TC = (15.0, 14.0), (49.0, 14.0), (32.0, 11.0)
ML, MR, BL, BR, BC = (12.0, 35.0), (52.0, 35.0), (15.0, 50.0), (49.0, 50.0), (32.0, 51.0)
# fmt: off
INTENTS: tuple[Intent, ...] = (
    Intent("love", "2764", _fill(("#d22f27", "#FF3E9E")), ((*TR, 28),), dx=-4, dy=4, angle=-12),
    Intent("sad", "1F4A7", (), ((*ML, 26),), dx=5, dy=6, sy=0.86, angle=8),
    Intent("angry", "1F4A2", _fill(("#ea5a47", "#E3120B")), ((*TL, 28),), dx=4, dy=5, sx=1.14, sy=0.86),
    Intent("sleepy", "1F4A4", _solid_lines("#7B2CBF"), ((*TR, 28),), dx=-3, dy=5, angle=24),
    Intent("surprised", "2757", _fill(("#D22F27", "#1A1A1A")), ((12, 16, 26), (52, 16, 26)),
           dy=5, sx=0.86, sy=1.12),
    Intent("happy", "2728", (), ((10.0, 31.0, 25), (54.0, 31.0, 25)), dy=-1, sx=1.06, sy=1.06, angle=-6),
    Intent("music", "1F3B6", _solid_lines("#1FA84A", 3), ((*MR, 28),), dx=-5, dy=2, angle=12, flip=True),
    Intent("question", "2753", _fill(("#d22f27", "#1E5BFF")), ((*BC, 28),),
           dy=-8, sx=0.92, sy=0.92, angle=-18, flip=True),
    Intent("celebrate", "1F389", (), ((*BL, 28),), dx=5, dy=-5, angle=-10),
    Intent("idea", "1F4A1", (), ((*TC, 30),), dy=8, sx=0.95, sy=0.95),
    Intent("hot", "1F525", _fill(("#FCEA2B", "#FFB000"), ("#F1B31C", "#FF4A00")), ((*BR, 28),),
           dx=-4, dy=-1, sx=1.08, sy=0.84),
    Intent("cold", "2744", _solid_lines("#00C8F0", 5), ((*BL, 28),), dx=5, dy=-3, sx=0.84, sy=0.84),
)
# fmt: on

NO_BORDER = (0.0, "#000000")
WHITE = "#FFFFFF"


# Themes differ in large areas first: each has its own background colour (sky blue, navy, pink,
# red, teal, lilac, mint, black, yellow, orange, kraft brown, lime) and frame shape, then in the
# character and its colours, lines, contour, border and shadow.
# fmt: off
THEMES: tuple[Theme, ...] = (
    Theme("sky_cat", "1F431", "cat", fills=(), line="#000000", line_w=2, contour=(),
          bg=("solid", "#7CC6FE", "#7CC6FE", 1),
          frame="circle", border=(3, WHITE), canvas=WHITE, shadow=True),
    Theme("navy_dog", "1F436", "dog", fills=_fill(("#f4aa41", "#F2F2F2"), ("#ea5a47", "#FF6F91")),
          line="#14213D", line_w=3, contour=((2, WHITE),),
          bg=("dots", "#1D3557", "#F1FAEE", 12),
          frame="rounded", border=NO_BORDER, canvas=WHITE, shadow=False),
    Theme("pink_frog", "1F438", "frog", fills=(), line="#1B4332", line_w=2, contour=(),
          bg=("stripes", "#FF8FB1", "#FFC4D6", 14),
          frame="hexagon", border=(2.5, "#2D6A4F"), canvas=WHITE, shadow=False),
    Theme("red_panda", "1F43C", "panda", fills=(), line="#000000", line_w=3, contour=(),
          bg=("solid", "#E63946", "#E63946", 1),
          frame="full", border=(3, "#111111"), canvas=WHITE, shadow=False),
    Theme("teal_fox", "1F98A", "fox", fills=(), line="#4A2500", line_w=2, contour=((1.5, "#4A2500"),),
          bg=("checker", "#2A9D8F", "#3FBFAF", 10),
          frame="octagon", border=(2, WHITE), canvas="#F4F1DE", shadow=False),
    Theme("grape_pig", "1F437", "pig", fills=(), line="#5A189A", line_w=2, contour=(),
          bg=("gradient", "#C8B6FF", "#6A4C93", 1),
          frame="circle", border=(3, "#FFD6E8"), canvas=WHITE, shadow=True),
    Theme("mint_bear", "1F43B", "bear", fills=(), line="#000000", line_w=3, contour=((4, WHITE),),
          bg=("solid", "#B7F0D8", "#B7F0D8", 1),
          frame="diecut", border=NO_BORDER, canvas="#B7F0D8", shadow=True),
    Theme("neon_tiger", "1F42F", "tiger", fills=_fill(("#e27022", "#FF4FA0"), ("#fff", "#FFE3F1")),
          line=WHITE, line_w=2, contour=(),
          bg=("rays", "#1A1A1A", "#333333", 12),
          frame="rounded", border=(3, "#FF9F1C"), canvas=WHITE, shadow=False),
    Theme("lemon_bunny", "1F430", "rabbit", fills=_fill(("#fff", "#FFF0F6"), ("#3f3f3f", "#FF5C8A")),
          line="#C9184A", line_w=2, contour=(),
          bg=("dots", "#FFD60A", WHITE, 11),
          frame="stamp", border=NO_BORDER, canvas=WHITE, shadow=True),
    Theme("lime_smiley", "1F642", "smiley", fills=_fill(("#FCEA2B", "#7BE35A")), line="#000000", line_w=4,
          contour=((2, "#000000"),),
          bg=("solid", "#FF7F11", "#FF7F11", 1),
          frame="bubble", border=(2, "#000000"), canvas=WHITE, shadow=False),
    Theme("kraft_unicorn", "1F984", "unicorn", fills=(), line="#3D2314", line_w=2, contour=(),
          bg=("hstripes", "#C68B59", "#B07445", 10),
          frame="full", border=(4, "#3D2314"), canvas=WHITE, shadow=False),
    Theme("plum_monkey", "1F435", "monkey", fills=_fill(("#f4aa41", "#C77DFF")), line="#3C096C", line_w=3,
          contour=((2, WHITE),),
          bg=("solid", "#B5E550", "#B5E550", 1),
          frame="tilted", border=(3, "#2B7A0B"), canvas=WHITE, shadow=True),
)
# fmt: on
THEME_BY_NAME = {t.name: t for t in THEMES}
INTENT_BY_NAME = {i.name: i for i in INTENTS}

# The harder mode (`--semantics emoji`): the semantics is WHICH object the character shows, one of
# 60 subject emoji drawn at the same place and size, with no pose to help. Many of them share
# colours and outlines at 64 px, so telling them apart takes the shape of a 32-pixel blob.
# fmt: off
SUBJECTS: tuple[tuple[str, str], ...] = (
    ("apple", "1F34E"), ("banana", "1F34C"), ("grapes", "1F347"), ("watermelon", "1F349"),
    ("strawberry", "1F353"), ("cherries", "1F352"), ("pineapple", "1F34D"), ("carrot", "1F955"),
    ("pizza", "1F355"), ("hamburger", "1F354"), ("ice_cream", "1F366"), ("doughnut", "1F369"),
    ("cake", "1F370"), ("cookie", "1F36A"), ("coffee", "2615"), ("lollipop", "1F36D"),
    ("fried_egg", "1F373"), ("bread", "1F35E"), ("cheese", "1F9C0"), ("avocado", "1F951"),
    ("corn", "1F33D"), ("hot_pepper", "1F336"), ("car", "1F697"), ("bicycle", "1F6B2"),
    ("airplane", "2708"), ("rocket", "1F680"), ("sailboat", "26F5"), ("bus", "1F68C"),
    ("locomotive", "1F682"), ("tractor", "1F69C"), ("sun", "2600"), ("rainbow", "1F308"),
    ("umbrella", "2602"), ("cloud", "2601"), ("snowman", "2603"), ("tree", "1F333"),
    ("cactus", "1F335"), ("sunflower", "1F33B"), ("tulip", "1F337"), ("mushroom", "1F344"),
    ("clover", "1F340"), ("maple_leaf", "1F341"), ("soccer_ball", "26BD"), ("basketball", "1F3C0"),
    ("guitar", "1F3B8"), ("trumpet", "1F3BA"), ("gift", "1F381"), ("balloon", "1F388"),
    ("crown", "1F451"), ("key", "1F511"), ("bell", "1F514"), ("book", "1F4D5"),
    ("pencil", "270F"), ("scissors", "2702"), ("camera", "1F4F7"), ("phone", "1F4F1"),
    ("television", "1F4FA"), ("house", "1F3E0"), ("anchor", "2693"), ("hourglass", "231B"),
)
# fmt: on
SUBJECT_CODE = dict(SUBJECTS)
SEMANTICS_KINDS = ("intent", "emoji")


# ---------------------------------------------------------------------------------------------
# rendering (cached pieces: everything but the per-item pose, jitter and placement)


@functools.lru_cache(maxsize=256)
def _character(theme: str, size: int) -> Image.Image:
    """The theme's character with its palette, lines and contour rings, RGBA at supersampled scale."""
    t = THEME_BY_NAME[theme]
    u = size * SS / BASE
    width = (('stroke-width="2"', f'stroke-width="{t.line_w}"'),)
    lines = _fill(("#000000", t.line), ("#000", t.line)) + width
    art = render_emoji(t.char, round(CHAR_BOX * u), t.fills + lines)
    rings = [(w * u, c) for w, c in t.contour]
    return common.with_halo(art, rings) if rings else art


@functools.lru_cache(maxsize=512)
def _symbol(code: str, recolor: tuple[tuple[str, str], ...], box: float, size: int) -> Image.Image:
    """A symbol (emoji `code`) with a white then dark ring so it reads on any background."""
    u = size * SS / BASE
    art = render_emoji(code, round(box * u), recolor)
    return common.with_halo(art, [(1.6 * u, "#FFFFFF"), (0.8 * u, "#222222")])


@functools.lru_cache(maxsize=64)
def _backdrop(theme: str, size: int) -> tuple[Image.Image, Image.Image]:
    """(RGBA canvas with shadow, frame, border and background; frame mask) for a theme."""
    t = THEME_BY_NAME[theme]
    u = size * SS / BASE
    hw = (size * SS, size * SS)
    canvas = Image.new("RGBA", (hw[1], hw[0]), common.hex_rgb(t.canvas) + (255,))
    kind, c1, c2, period = t.bg
    if t.frame == "diecut":
        mask = Image.new("L", canvas.size, 0)
        return canvas, mask
    mask = common.shape_mask(t.frame, hw, inset=(0 if t.frame == "full" else 2.5 * u), angle=8)
    if t.shadow:
        canvas.alpha_composite(common.shadow(mask, 1.5 * u, 2 * u, 1.2 * u))
    bw, bc = t.border
    inner = common.shrink(mask, bw * u) if bw > 0 else mask
    if bw > 0:
        canvas.paste(Image.new("RGBA", canvas.size, common.hex_rgb(bc) + (255,)), (0, 0), mask)
    canvas.paste(common.pattern(kind, hw, c1, c2, period * u).convert("RGBA"), (0, 0), inner)
    return canvas, mask


def _j(rng: np.random.Generator | None, scale: float) -> float:
    """A jitter value in [-scale, scale]; 0 for the canonical (contact sheet) rendering."""
    return 0.0 if rng is None else float(rng.uniform(-scale, scale))


def _draw(
    theme: str,
    pose: Intent,
    symbol: tuple[str, tuple[tuple[str, str], ...]],
    rng: np.random.Generator | None,
    size: tuple[int, int],
) -> Image.Image:
    """A sticker of `theme`: the character posed as `pose` says, `symbol` (code, recolor) at each of
    the pose's spots. rng None: no jitter; otherwise positions move by up to 1.5 px, sizes by 4-5%
    and angles by 4-6 degrees, so a user's stickers are alike but never identical."""
    t = THEME_BY_NAME[theme]
    n = size[0]
    u = n * SS / BASE
    canvas = _backdrop(theme, n)[0].copy()
    s = 1.0 + _j(rng, 0.04)
    char = common.posed(_character(theme, n), pose.sx * s, pose.sy * s, pose.angle + _j(rng, 4), pose.flip)
    cx, cy = (32 + pose.dx + _j(rng, 1.5)) * u, (34 + pose.dy + _j(rng, 1.5)) * u
    if t.frame == "diecut" and t.shadow:
        sh = Image.new("L", canvas.size, 0)
        sh.paste(char.getchannel("A"), (int(round(cx - char.width / 2)), int(round(cy - char.height / 2))))
        canvas.alpha_composite(common.shadow(sh, 1.5 * u, 2 * u, 1.2 * u))
    common.paste_center(canvas, char, cx, cy)
    for x, y, box in pose.spots:
        sym = common.posed(_symbol(*symbol, box, n), 1.0 + _j(rng, 0.05), 1.0, _j(rng, 6), False)
        common.paste_center(canvas, sym, (x + _j(rng, 1.5)) * u, (y + _j(rng, 1.5)) * u)
    return common.finish(canvas, size)


def render(
    theme: str, intent: str, rng: np.random.Generator | None, size: tuple[int, int]
) -> tuple[Image.Image, str]:
    """One sticker of `theme` showing `intent`: (RGB image of `size`, caption)."""
    i = INTENT_BY_NAME[intent]
    img = _draw(theme, i, (i.symbol, i.recolor), rng, size)
    return img, f"{common.with_article(THEME_BY_NAME[theme].char_name)} sticker, {intent}"


# emoji mode: the character a little smaller at the upper left, the subject large at the lower right
SUBJECT_POSE = Intent("subject", "", (), ((44, 45, 32),), dx=-6, dy=-6, sx=0.9, sy=0.9)


def render_subject(
    theme: str, subject: str, rng: np.random.Generator | None, size: tuple[int, int]
) -> tuple[Image.Image, str]:
    """One sticker of `theme` with the character showing `subject` (emoji mode)."""
    img = _draw(theme, SUBJECT_POSE, (SUBJECT_CODE[subject], ()), rng, size)
    thing = common.with_article(subject.replace("_", " "))
    return img, f"{common.with_article(THEME_BY_NAME[theme].char_name)} sticker with {thing}"


# ---------------------------------------------------------------------------------------------
# building


def build(
    out: Path,
    users: int | None = None,
    seed: int = 0,
    size: tuple[int, int] | int = 64,
    semantics: str = "intent",
    noisy_share: float = DEFAULT_SHARE,
) -> dict[str, Any]:
    """Build the sticker benchmark into `out`; returns counts and seconds (see common.build_benchmark).

    semantics: "intent" (12 intents, the benchmark) or "emoji" (60 subject emoji, a harder mode that
    needs more users: 12.5% of 720 pairs are held out and each needs a test user).
    users None: DEFAULT_USERS (intent) or DEFAULT_USERS_EMOJI (emoji).
    noisy_share: the share of users given 1-2 intruders of another theme (`intruders.py`; 0: none).
    """
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if hw[0] != hw[1]:
        raise DrcError(f"stickers are square: --size {hw[0]}x{hw[1]} has height != width")
    if semantics not in SEMANTICS_KINDS:
        raise DrcError(f"unknown sticker semantics {semantics!r}; valid: {', '.join(SEMANTICS_KINDS)}")
    emoji = semantics == "emoji"
    labels = [name for name, _ in SUBJECTS] if emoji else [i.name for i in INTENTS]
    return common.build_benchmark(
        Path(out),
        name=f"{NAME}_emoji" if emoji else NAME,
        instruction=INSTRUCTION,
        themes=[t.name for t in THEMES],
        semantics=labels,
        render=render_subject if emoji else render,
        n_users=users if users is not None else (DEFAULT_USERS_EMOJI if emoji else DEFAULT_USERS),
        seed=seed,
        size=(hw[0], hw[1]),
        noisy_share=noisy_share,
        info={
            "style": "theme: character, palette, line, contour, background, frame, border, shadow",
            "semantic": "subject emoji shown with the character"
            if emoji
            else "intent: symbol (colour, shape, place) and character pose",
            "characters": {t.name: t.char_name for t in THEMES},
            "attribution": ATTRIBUTION,
        },
    )


def cli(argv: list[str]) -> int:
    return common.benchmark_cli(argv, NAME, build, DEFAULT_USERS, DEFAULT_SIZE, semantics=SEMANTICS_KINDS)
