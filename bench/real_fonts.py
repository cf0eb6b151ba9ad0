"""A small real set from typefaces installed from Debian (issue 22: "a small real set of your own from
another source"): STYLE is the typeface (its type designer's drawing: stroke, contrast, serifs,
slant, pixel grid), SEMANTICS the character (A ... Z and four digits).

    apt-get install -y --no-install-recommends fonts-unifont fonts-urw-base35 fonts-lobster \\
        fonts-humor-sans fonts-comic-neue fonts-ebgaramond fonts-dejavu-core
    PYTHONPATH=src python bench/real_fonts.py --out /work/data/fonts_real --check   # [--size 128] [--users N]

10 typefaces x 30 characters = 300 images, one per (typeface, character), black on white. Each
character is drawn at 4x, cropped to its ink, centred and scaled down with Lanczos; one scale per
typeface (its largest character fills 80% of the side), so proportions inside a typeface are kept.
The typefaces were picked to look plainly different from one another at 64 px (contact sheet):
a pixel font, two scripts, a geometric sans, a typewriter, two comic hands, an old-style serif, a
heavy sans and a heavy serif. The plan of users and the folder layout are bench/real_sets.py's (held-out
test pairs, opaque ids `font0123`, shuffled users).

Files: items.jsonl, users.jsonl, dataset.json, images/*.png, LICENSES.md (each font's licence and
authors from /usr/share/doc/PACKAGE/copyright), contact_sheet.png and sample40.png. --check loads the
set with drc's reader and asserts the held-out test design (foreign_sets.check). A font that is not
installed stops the build with the apt command.
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import foreign_sets
import icon_themes as it
import real_sets
from PIL import Image, ImageDraw, ImageFont

MADE_BY = "bench/real_fonts.py"
NAME = "fonts_real"
INSTRUCTION = "a character"
FONT_ROOT = Path("/usr/share/fonts")
FILL = 0.8  # the typeface's largest character spans this share of the side
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Face:
    """One typeface: style label, Debian package, font file under the font root, display name."""

    name: str
    package: str
    file: str
    title: str
    files: str = "*"  # the debian/copyright stanza that covers the font


FACES: tuple[Face, ...] = (
    Face("pixel", "fonts-unifont", "opentype/unifont/unifont.otf", "GNU Unifont"),
    Face("chancery", "fonts-urw-base35", "opentype/urw-base35/Z003-MediumItalic.otf", "URW Z003"),
    Face("lobster", "fonts-lobster", "opentype/lobster/lobster.otf", "Lobster Two Bold Italic"),
    Face("geometric", "fonts-urw-base35", "opentype/urw-base35/URWGothic-Book.otf", "URW Gothic Book"),
    Face("typewriter", "fonts-urw-base35", "opentype/urw-base35/NimbusMonoPS-Regular.otf", "Nimbus Mono PS"),
    Face("xkcd", "fonts-humor-sans", "truetype/humor-sans/Humor-Sans.ttf", "Humor Sans", "*.ttf"),
    Face("comic", "fonts-comic-neue", "opentype/comic-neue/ComicNeue-Bold.otf", "Comic Neue Bold"),
    Face("garamond", "fonts-ebgaramond", "opentype/ebgaramond/EBGaramond12-Regular.otf", "EB Garamond"),
    Face("heavy_sans", "fonts-dejavu-core", "truetype/dejavu/DejaVuSans-Bold.ttf", "DejaVu Sans Bold"),
    Face("heavy_serif", "fonts-urw-base35", "opentype/urw-base35/URWBookman-Demi.otf", "URW Bookman Demi"),
)

# A..Z and the digits that no letter resembles (0 O, 1 I, 5 S, 6 G, 8 B, 9 g are left out). No
# lower case: Humor Sans draws capitals for it.
CHARACTERS: tuple[str, ...] = tuple(string.ascii_uppercase) + tuple("2347")


def label(ch: str) -> str:
    return f"letter_{ch.lower()}" if ch.isalpha() else f"digit_{ch}"


def load_face(face: Face, font_root: Path, px: int) -> ImageFont.FreeTypeFont:
    path = font_root / face.file
    try:
        if not path.is_file():  # Pillow would look the file's name up in the system's font folders
            raise OSError(path)
        return ImageFont.truetype(str(path), px)
    except OSError:
        raise SystemExit(
            f"{path}: cannot read typeface {face.name!r} "
            f"(apt-get install -y --no-install-recommends {face.package})"
        ) from None


def ink(font: ImageFont.FreeTypeFont, ch: str) -> Image.Image:
    """The character drawn black on white, cropped to its ink (L mode)."""
    left, top, right, bottom = font.getbbox(ch)
    pad = 8
    img = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 255)
    ImageDraw.Draw(img).text((pad - left, pad - top), ch, font=font, fill=0)
    box = Image.eval(img, lambda v: 255 - v).getbbox()
    if box is None:
        raise SystemExit(f"{font.path}: draws nothing for {ch!r}")
    return img.crop(box)


def render_face(face: Face, font_root: Path, size: int) -> dict[str, Image.Image]:
    """{label: RGB image} for every character of `face` at `size` px."""
    font = load_face(face, font_root, 64 * SUPERSAMPLE)
    glyphs = {label(ch): ink(font, ch) for ch in CHARACTERS}
    big = size * SUPERSAMPLE
    scale = FILL * big / max(max(g.size) for g in glyphs.values())
    out = {}
    for name, g in glyphs.items():
        w, h = max(1, round(g.width * scale)), max(1, round(g.height * scale))
        page = Image.new("L", (big, big), 255)
        page.paste(g.resize((w, h), Image.Resampling.LANCZOS), ((big - w) // 2, (big - h) // 2))
        out[name] = page.resize((size, size), Image.Resampling.LANCZOS).convert("RGB")
    return out


def build(
    out: Path, n_users: int, seed: int, size: int, noisy_share: float, font_root: Path, doc_root: Path
) -> dict[str, Any]:
    """Render and write the set; returns its counts."""
    credits = [it.read_credit(it.Theme(f.name, f.package, "", f.title, f.files), doc_root) for f in FACES]
    styles = [f.name for f in FACES]
    sems = [label(ch) for ch in CHARACTERS]
    char = {label(ch): ch for ch in CHARACTERS}
    images = {}
    captions = {}
    for f in FACES:
        for s, img in render_face(f, font_root, size).items():
            images[(f.name, s)] = img
            kind = "letter" if char[s].isalpha() else "digit"
            captions[(f.name, s)] = f"the {kind} {char[s]}, {f.title} typeface"
    rs = real_sets.RealSet(
        name=NAME,
        made_by=MADE_BY,
        instruction=INSTRUCTION,
        id_prefix="font",
        styles=styles,
        semantics=sems,
        images=images,
        captions=captions,
        licenses=it.license_text(
            credits,
            intro="Every image in images/ is one character of a typeface installed from Debian (package "
            "named below), drawn black on white at the image size.",
            kind="typeface",
        ),
        info={
            "style": "typeface: the type designer's drawing (stroke, contrast, serifs, slant, pixel grid)",
            "semantic": "character: the letter or digit drawn",
            "fonts": {f.name: f.file for f in FACES},
            "credits": [c.as_json() for c in credits],
            "description": (__doc__ or "").split("\n\n")[0],
        },
    )
    return real_sets.write(rs, out, n_users, seed, size, noisy_share)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    real_sets.add_args(p)
    p.add_argument("--font-root", type=Path, default=FONT_ROOT, help="where the fonts are installed")
    a = p.parse_args(argv)
    real_sets.check_args(a)
    print(json.dumps(build(a.out, a.users, a.seed, a.size, a.noisy_share, a.font_root, a.doc_root)))
    if a.check:
        print(json.dumps({"check": "ok", **foreign_sets.check(a.out)}))
    return 0


if __name__ == "__main__":
    from drc.errors import DrcError

    try:
        sys.exit(main())
    except DrcError as e:  # bad arguments or a bad folder: one line, no traceback
        sys.exit(f"error: {e}")
