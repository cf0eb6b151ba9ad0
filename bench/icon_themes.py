"""Desktop icon themes installed from Debian: find an icon concept in a theme, render it, credit it.

A theme is a folder under /usr/share/icons (`Theme.folder`) installed by one Debian package
(`Theme.package`). `index_theme` reads the theme's own full-colour icons, never the themes it
inherits (their art is another design team's): files under a size folder ("48x48", "48", "48x48@2x",
"scalable") and a context folder of `CONTEXTS` (apps, places, mimetypes, devices, ...). Symbolic
(monochrome) icons and status/action/emblem icons are skipped. A concept (`CONCEPTS`) names the
freedesktop icon names that draw it, best first; `resolve` takes the first name the theme has, and
`best_file` the largest drawing of it (a vector where the theme has one at that size).

`render_file` draws an SVG with cairosvg (as drc.data.benchmarks.iconify does) or reads a PNG, scales
it to the output size with antialiasing and composites its alpha onto a white canvas: no colour is
added that the theme does not have.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ICON_ROOT = Path("/usr/share/icons")
SUFFIXES = (".svg", ".png")
VECTOR_SIZE = 4096  # "scalable" ranks above every bitmap size
CANVAS = (255, 255, 255)
# freedesktop contexts that hold full-colour object icons (elementary-xfce says "mimes")
CONTEXTS = frozenset(
    {"apps", "places", "mimetypes", "mimes", "devices", "categories", "preferences", "applets"}
)
# contexts of status, action and decoration icons, pruned from the walk (Papirus has 290k files)
SKIP = frozenset(
    {"actions", "status", "emblems", "emotes", "animations", "panel", "notifications", "cursors"}
)
MIN_SIZE = 32  # smaller drawings are simplified art; the largest drawing is taken anyway
_SIZE = re.compile(r"^(\d+)(?:x\d+)?(?:@(\d)x)?$")


@dataclass(frozen=True)
class Theme:
    """One design team's icon theme: style label, Debian package, folder under the icon root."""

    name: str
    package: str
    folder: str
    title: str
    files: str = "*"  # the debian/copyright stanza ("Files: ...") that covers the icons


# Seven themes whose full-colour icons look clearly different on the contact sheet: Tango's outlined
# 2005 gradients, Oxygen's photo-like KDE 4 art, Breeze's flat KDE Plasma art, Papirus's flat
# rounded art, elementary-xfce's soft gradients, Faenza's glossy dark tiles and Yaru's Ubuntu art.
# (Paper was left out: Papirus is its fork and looks alike; Deepin's names miss most concepts.)
THEMES: tuple[Theme, ...] = (
    Theme("tango", "tango-icon-theme", "Tango", "Tango"),
    Theme("oxygen", "oxygen-icon-theme", "oxygen", "Oxygen"),
    Theme("breeze", "breeze-icon-theme", "breeze", "Breeze"),
    Theme("papirus", "papirus-icon-theme", "Papirus", "Papirus"),
    Theme("elementary", "elementary-xfce-icon-theme", "elementary-xfce", "elementary-xfce"),
    Theme("faenza", "faenza-icon-theme", "Faenza", "Faenza"),
    Theme("yaru", "yaru-theme-icon", "Yaru", "Yaru", "icons/*"),
)

# Concepts: the label, then the freedesktop icon names that draw it in the themes above, best first
# (a later name is a theme's own alias where it lacks the standard one). Kept where every theme has
# a full-colour drawing that shows the concept at 64 px (contact sheet). Left out: clock, pdf,
# microphone, laptop, scanner, webcam, battery, wireless, floppy disk (a theme lacks them or has only
# a monochrome one); executable, office, games, graphics, locale, wallpaper, file manager, server
# (themes draw different things; elementary's server is a folder); display and internet (look like
# computer and web browser).
CONCEPTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("calculator", ("accessories-calculator",)),
    ("terminal", ("utilities-terminal",)),
    ("web browser", ("internet-web-browser", "web-browser")),
    ("mail", ("internet-mail", "mail-client")),
    ("calendar", ("office-calendar", "x-office-calendar")),
    ("trash", ("user-trash",)),
    ("folder", ("folder",)),
    ("home folder", ("user-home", "folder-home")),
    ("printer", ("printer",)),
    ("camera", ("camera-photo", "accessories-camera")),
    ("audio file", ("audio-x-generic",)),
    ("image file", ("image-x-generic",)),
    ("video file", ("video-x-generic",)),
    ("text file", ("text-x-generic",)),
    ("web page", ("text-html",)),
    ("spreadsheet", ("x-office-spreadsheet",)),
    ("presentation", ("x-office-presentation",)),
    ("address book", ("x-office-address-book", "office-address-book")),
    ("package", ("package-x-generic",)),
    ("font", ("font-x-generic", "preferences-desktop-font")),
    ("computer", ("computer",)),
    ("hard disk", ("drive-harddisk",)),
    ("optical disc", ("media-optical",)),
    ("removable drive", ("drive-removable-media",)),
    ("keyboard", ("input-keyboard",)),
    ("mouse", ("input-mouse",)),
    ("gamepad", ("input-gaming",)),
    ("text editor", ("accessories-text-editor",)),
    ("character map", ("accessories-character-map",)),
    ("system monitor", ("utilities-system-monitor",)),
    ("help", ("help-browser",)),
    ("settings", ("preferences-system", "preferences-desktop")),
    ("users", ("system-users",)),
    ("accessibility", ("preferences-desktop-accessibility",)),
)


@dataclass(frozen=True)
class IconFile:
    """One drawing of an icon name in a theme: its file, nominal size (VECTOR_SIZE: scalable) and the
    pixel scale of its folder ("48x48@2x": 2)."""

    path: Path
    size: int
    scale: int = 1

    @property
    def vector(self) -> bool:
        return self.path.suffix == ".svg"


def _size_of(part: str) -> tuple[int, int] | None:
    """A size folder's (nominal size, scale); None for any other folder."""
    if part.startswith("scalable"):
        return VECTOR_SIZE, 1
    m = _SIZE.match(part)
    return (int(m.group(1)), int(m.group(2) or 1)) if m else None


def index_theme(root: Path) -> dict[str, list[IconFile]]:
    """{icon name: its full-colour drawings} of the theme in `root` (its own files only)."""
    found: dict[str, list[IconFile]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        rel = Path(dirpath).relative_to(root).parts
        sizes = [s for s in map(_size_of, rel) if s is not None]
        if rel and ("symbolic" in rel[-1] or rel[-1] in SKIP or (sizes and sizes[-1][0] < MIN_SIZE)):
            dirnames.clear()
            continue
        if not sizes or not CONTEXTS & set(rel):
            continue
        for f in filenames:
            p = Path(dirpath) / f
            if p.suffix not in SUFFIXES or "symbolic" in p.stem or not p.is_file():
                continue
            found.setdefault(p.stem, []).append(IconFile(p, *sizes[-1]))
    return found


def label(words: str) -> str:
    """A concept's semantics label: "web browser" -> "web-browser"."""
    return words.replace(" ", "-")


def theme_root(theme: Theme, icon_root: Path) -> Path:
    """The theme's folder; a one-line error naming the package to install where it is missing."""
    root = icon_root / theme.folder
    if not (root / "index.theme").is_file():
        raise SystemExit(
            f"icon theme {theme.name!r} is not installed ({root}/index.theme missing): "
            f"apt-get install -y --no-install-recommends {theme.package}"
        )
    return root


def _has_text(f: IconFile) -> bool:
    return f.vector and b"<text" in f.path.read_bytes()


def best_file(files: list[IconFile]) -> IconFile:
    """The drawing made for the largest size (a 48 px drawing has more detail than the 22 px one at 3x);
    at one size the larger pixel scale, then a vector before a bitmap, then by path (a stable pick).

    An SVG with <text> in it is taken only where the theme has no other drawing: cairosvg lacks the
    designer's fonts and draws Faenza's font icon as a blank page, while the theme's PNGs show the "A".
    """
    usable = [f for f in files if not _has_text(f)] or files
    return max(usable, key=lambda f: (f.size, f.scale, f.vector, str(f.path)))


def resolve(index: dict[str, list[IconFile]], names: tuple[str, ...]) -> tuple[str, IconFile] | None:
    """The first of `names` the theme draws, and its best file; None where it draws none."""
    for n in names:
        if n in index:
            return n, best_file(index[n])
    return None


def render_file(path: Path, size: int) -> Image.Image:
    """The icon file as a `size` x `size` RGB image: alpha composited onto the white canvas.

    SVGs are drawn by cairosvg at 4x and PNGs read as they are, then both are scaled down with
    Lanczos (antialiased); a non-square drawing is centred on a square first.
    """
    if path.suffix == ".svg":
        import cairosvg

        big = size * 4
        png = cairosvg.svg2png(url=str(path), output_width=big, output_height=big)
        art = Image.open(io.BytesIO(png)).convert("RGBA")
    else:
        art = Image.open(path).convert("RGBA")
    side = max(art.size)
    if art.size != (side, side):
        square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        square.paste(art, ((side - art.width) // 2, (side - art.height) // 2))
        art = square
    art = art.resize((size, size), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", art.size, (*CANVAS, 255))
    canvas.alpha_composite(art)
    return canvas.convert("RGB")


# ---------------------------------------------------------------------------------------------
# credits: what /usr/share/doc/PACKAGE says about the artwork


@dataclass(frozen=True)
class Credit:
    """A theme's artwork licence as its Debian package states it (debian/copyright, DEP-5)."""

    theme: str
    title: str
    package: str
    version: str
    source: str
    copyright: tuple[str, ...]
    license: str
    files: str
    comment: tuple[str, ...] = ()  # the stanza's Comment (Papirus names the themes it builds on)

    def as_json(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def _stanzas(text: str) -> list[dict[str, list[str]]]:
    """DEP-5 paragraphs as {field: [first line, continuation lines...]}."""
    out: list[dict[str, list[str]]] = []
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, list[str]] = {}
        last = None
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and last is not None:
                fields[last].append(line.strip())
            elif ":" in line:
                last, _, value = line.partition(":")
                fields[last] = [value.strip()]
        if fields:
            out.append(fields)
    return out


def read_credit(theme: Theme, doc_root: Path) -> Credit:
    """The theme's credit from `doc_root`/PACKAGE/copyright (and the version from changelog.Debian.gz)."""
    import gzip

    doc = doc_root / theme.package
    path = doc / "copyright"
    try:
        stanzas = _stanzas(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        raise SystemExit(
            f"{path}: missing; the licence of theme {theme.name!r} is read from it "
            f"(apt-get install -y --no-install-recommends {theme.package})"
        ) from None
    art = [s for s in stanzas if s.get("Files", [""])[0].split()[:1] == [theme.files]]
    if not art or "License" not in art[0]:
        raise SystemExit(f"{path}: no 'Files: {theme.files}' stanza with a License field")
    version = "unknown"
    try:
        with gzip.open(doc / "changelog.Debian.gz", "rt", encoding="utf-8") as f:
            m = re.match(r"\S+ \(([^)]+)\)", f.readline())
            version = m.group(1) if m else version
    except OSError:
        pass
    header = stanzas[0]
    return Credit(
        theme=theme.name,
        title=theme.title,
        package=theme.package,
        version=version,
        source=(header.get("Source") or [""])[0],
        copyright=tuple(c for c in art[0].get("Copyright", []) if c),
        license=art[0]["License"][0],
        files=theme.files,
        comment=tuple(c for c in art[0].get("Comment", []) if c not in ("", ".")),
    )


ICONS_INTRO = (
    "Every image in images/ is one icon of a desktop icon theme installed from Debian (package named "
    "below), rendered (scaled to the image size and composited on white, not otherwise changed)."
)


def license_text(credits: list[Credit], intro: str = ICONS_INTRO, kind: str = "theme") -> str:
    """LICENSES.md: each style's package, authors and licence; `intro` says what an image is."""
    lines = [
        "# Artwork licences",
        "",
        intro,
        "",
        "The artwork belongs to its authors and is used under the licence its package states in",
        "/usr/share/doc/PACKAGE/copyright (the stanza named below; a few files of some packages have other",
        "licences, see there). A redistributed or derived work must keep these credits and licences (GPL",
        "and LGPL: with the licence text and a way to get the source; CC BY-SA: share alike).",
        "",
        f"| style | {kind} | Debian package | upstream | copyright | licence (stanza) |",
        "|---|---|---|---|---|---|",
    ]
    for c in credits:
        holders = "; ".join(c.copyright).replace("|", "/")
        lines.append(
            f"| {c.theme} | {c.title} | {c.package} {c.version} | {c.source} | {holders} "
            f"| {c.license} (Files: {c.files}) |"
        )
    for c in credits:
        if c.comment:
            lines += ["", f"{c.theme}, from its copyright file:", "", *(f"    {x}" for x in c.comment)]
    return "\n".join(lines) + "\n"
