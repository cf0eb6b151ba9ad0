"""Vendor emoji sets from the `@iconify-json/*` npm packages: fetch once, read, render.

Each package is a tarball holding `package/icons.json` (IconifyJSON: a `prefix`, default `width` and
`height`, `icons` {name: {"body": SVG content, optional width/height/left/top}} and `aliases`
{name: {"parent": name, ...}}), `package/info.json` (set name, author, licence), `package/package.json`
(version, SPDX licence) and `package/metadata.json` (Unicode categories of the icons).

`fetch` runs `npm pack` once per package into a cache folder and reuses the tarball afterwards (no
npm and no network needed then); `load_set` reads one tarball with `tarfile`; `render_icon` turns an
icon into an RGB image on white with cairosvg.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from drc.errors import DrcError

SCOPE = "@iconify-json"
SVG_NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
_SETUP_HINT = "run `make setup` (it installs npm) or `apt-get install -y npm`"


def default_cache() -> Path:
    """$XDG_CACHE_HOME/drc/emoji, or ~/.cache/drc/emoji."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "drc" / "emoji"


def normalise(name: str) -> str:
    """A vendor's icon name as a concept key: lower case, letters and digits only.

    "alarm-clock" (twemoji), "alarmclock" (fxemoji) -> "alarmclock".
    """
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass
class IconSet:
    """One vendor's icon set as read from its npm tarball."""

    package: str  # "@iconify-json/twemoji"
    prefix: str  # "twemoji"
    title: str  # "Twitter Emoji"
    version: str  # the npm package's version
    set_version: str  # the artwork's own version where info.json gives one, else ""
    license_spdx: str
    license_title: str
    license_url: str
    author: str
    author_url: str
    tarball: str  # file name in the cache
    width: float
    height: float
    icons: dict[str, dict[str, Any]]
    aliases: dict[str, dict[str, Any]]
    categories: dict[str, str] = field(default_factory=dict)  # concept key -> Unicode category
    names: dict[str, str] = field(default_factory=dict)  # concept key -> icon or plain alias name

    def icon(self, key: str) -> dict[str, Any]:
        """The icon data (body and box) of concept `key`, following a plain alias."""
        name = self.names[key]
        if name in self.icons:
            return self.icons[name]
        return self.icons[self.aliases[name]["parent"]]

    def svg(self, key: str) -> str:
        """A standalone SVG document of concept `key`: the icon's own view box, widened to a square
        around its centre where it is not one (twemoji's watermelon is 36 x 25.22)."""
        d = self.icon(key)
        w, h = float(d.get("width", self.width)), float(d.get("height", self.height))
        side = max(w, h)
        left = float(d.get("left", 0)) - (side - w) / 2
        top = float(d.get("top", 0)) - (side - h) / 2
        box = f"{left:g} {top:g} {side:g} {side:g}"
        return f'<svg {SVG_NS} viewBox="{box}" width="{side:g}" height="{side:g}">{d["body"]}</svg>'

    def credit(self) -> dict[str, str]:
        """What the dataset records about this set: package, versions, licence, author."""
        return {
            "package": self.package,
            "version": self.version,
            "artwork_version": self.set_version,
            "title": self.title,
            "author": self.author,
            "author_url": self.author_url,
            "license": self.license_spdx,
            "license_title": self.license_title,
            "license_url": self.license_url,
            "tarball": self.tarball,
        }


def _index_names(icons: dict[str, Any], aliases: dict[str, Any]) -> dict[str, str]:
    """concept key -> icon name. Plain aliases (only a parent, no flip or rotation) count as names;
    a name ending in "-1" (streamline's first variant) also stands for the name without it."""
    plain = [
        a for a, d in aliases.items() if isinstance(d, dict) and set(d) == {"parent"} and d["parent"] in icons
    ]
    names: dict[str, str] = {}
    for n in sorted(icons) + sorted(plain):  # an icon's own name wins over an alias with the same key
        names.setdefault(normalise(n), n)
    for n in sorted(icons):
        if n.endswith("-1"):
            names.setdefault(normalise(n[:-2]), n)
    return names


def _member(tar: tarfile.TarFile, name: str, path: Path) -> Any:
    try:
        f = tar.extractfile(f"package/{name}")
    except KeyError:
        f = None
    if f is None:
        raise DrcError(f"{path}: no package/{name} in the tarball (not an @iconify-json package?)")
    try:
        return json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DrcError(f"{path}: package/{name} is not valid JSON ({e})") from None


def load_set(path: Path) -> IconSet:
    """Read one `@iconify-json/*` tarball (`npm pack` output)."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            data = _member(tar, "icons.json", path)
            pkg = _member(tar, "package.json", path)
            info = _member(tar, "info.json", path)
            try:
                meta = _member(tar, "metadata.json", path)
            except DrcError:
                meta = {}
    except (OSError, tarfile.TarError) as e:
        raise DrcError(
            f"{path}: cannot read the tarball ({e}); delete it and build again to refetch"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("icons"), dict):
        raise DrcError(f"{path}: package/icons.json has no 'icons' object")
    icons, aliases = data["icons"], data.get("aliases") or {}
    lic, author = info.get("license") or {}, info.get("author") or {}
    cats: dict[str, str] = {}
    for cat, members in sorted((meta.get("categories") or {}).items()):
        for n in members:
            cats.setdefault(normalise(n), cat)
    return IconSet(
        package=str(pkg.get("name", "")),
        prefix=str(data.get("prefix", "")),
        title=str(info.get("name", data.get("prefix", ""))),
        version=str(pkg.get("version", "")),
        set_version=str(info.get("version", "")),
        license_spdx=str(lic.get("spdx") or pkg.get("license") or ""),
        license_title=str(lic.get("title") or pkg.get("license") or ""),
        license_url=str(lic.get("url", "")),
        author=str(author.get("name", "")),
        author_url=str(author.get("url", "")),
        tarball=path.name,
        width=float(data.get("width", 16)),
        height=float(data.get("height", 16)),
        icons=icons,
        aliases=aliases,
        categories=cats,
        names=_index_names(icons, aliases),
    )


def _cached(cache: Path, prefix: str) -> Path | None:
    """The newest cached tarball of `prefix` ("iconify-json-<prefix>-<version>.tgz"), if any."""
    pat = re.compile(rf"iconify-json-{re.escape(prefix)}-(\d[\w.+-]*)\.tgz")
    found = [p for p in cache.glob(f"iconify-json-{prefix}-*.tgz") if pat.fullmatch(p.name)]

    def version(p: Path) -> tuple[int, ...]:
        m = pat.fullmatch(p.name)
        return tuple(int(x) for x in re.findall(r"\d+", m.group(1) if m else ""))

    return max(found, key=version) if found else None


def fetch(prefixes: Sequence[str], cache: Path) -> list[Path]:
    """The tarballs of `@iconify-json/<prefix>` for each prefix: from `cache`, the missing ones
    fetched there once with a single `npm pack`."""
    cache.mkdir(parents=True, exist_ok=True)
    missing = [f"{SCOPE}/{p}" for p in prefixes if _cached(cache, p) is None]
    if missing:
        _npm_pack(missing, cache)
    return [_cached(cache, p) or cache / f"iconify-json-{p}.tgz" for p in prefixes]


def _npm_pack(packages: list[str], cache: Path) -> None:
    """`npm pack` the packages into `cache`; a one-line DrcError saying what to run when it fails."""
    names = " ".join(packages)
    npm = shutil.which("npm")
    if npm is None:
        raise DrcError(
            f"the emoji benchmark fetches {names} once with npm, and npm is not installed: {_SETUP_HINT}, "
            f"or put their `npm pack` tarballs into {cache}"
        )
    try:
        done = subprocess.run(
            [npm, "pack", *packages, "--loglevel=error"],
            cwd=cache,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        done = subprocess.CompletedProcess([npm], 1, "", str(e))
    left = [p for p in packages if _cached(cache, p.split("/")[-1]) is None]
    if done.returncode != 0 or left:
        names = " ".join(left or packages)
        raise DrcError(
            f"could not fetch {names} with `npm pack` (offline, or no such package?): {_npm_reason(done)}; "
            "when online, run "
            f"`cd {cache} && npm pack {names}` (or build again), then build offline from the cache"
        )


def _npm_reason(done: subprocess.CompletedProcess) -> str:
    """The telling line of npm's error output ("npm error 404 Not Found - GET ..."), else the exit code."""
    lines = [ln.strip() for ln in (done.stderr or done.stdout or "").splitlines() if ln.strip()]
    noise = re.compile(r"npm error (code \w+|\d+)$|complete log of this run")
    telling = [ln for ln in lines if not noise.search(ln)]
    return (telling or lines or [f"exit {done.returncode}"])[0]


def render_icon(icons: IconSet, key: str, size: int) -> Image.Image:
    """Concept `key` of `icons` as a `size` x `size` RGB image, composited on white."""
    import cairosvg

    png = cairosvg.svg2png(bytestring=icons.svg(key).encode("utf-8"), output_width=size, output_height=size)
    art = Image.open(io.BytesIO(png)).convert("RGBA")
    canvas = Image.new("RGBA", art.size, (255, 255, 255, 255))
    canvas.alpha_composite(art)
    return canvas.convert("RGB")
