"""A small real-artwork set from desktop icon themes installed from Debian (issue 22: "a small real
set of your own from another source"), labelled style x semantics with held-out pairs.

    apt-get install -y --no-install-recommends tango-icon-theme oxygen-icon-theme breeze-icon-theme \\
        papirus-icon-theme elementary-xfce-icon-theme faenza-icon-theme yaru-theme-icon
    PYTHONPATH=src python bench/real_icons.py --out /work/data/icons_real --check

STYLE is the theme (its design team's drawing), SEMANTICS the concept (calculator, printer, audio
file, ...), found by its freedesktop icon names in the theme's own full-colour icons (never the
themes it inherits; no symbolic icons). Themes and concepts are in bench/icon_themes.py: 7 themes x
34 concepts = 238 images, one per (theme, concept), rendered at --size (64; 128 works too) on white.

The plan of users and the folder layout are bench/real_sets.py's (the built-in plan, held-out
test pairs, opaque ids `icon0123`, shuffled users).

Files: items.jsonl, users.jsonl, dataset.json, images/*.png, LICENSES.md (each theme's licence and
authors from /usr/share/doc/PACKAGE/copyright), contact_sheet.png (theme x concept, held-out cells
marked red) and sample40.png. --check loads the set with drc's reader and asserts the held-out test
design (foreign_sets.check). A theme that is not installed stops the build with the apt command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import foreign_sets
import icon_themes as it
import real_sets

from drc.data.benchmarks import common

MADE_BY = "bench/real_icons.py"
NAME = "icons_real"
INSTRUCTION = "a desktop icon"


def find_icons(icon_root: Path) -> dict[tuple[str, str], tuple[str, Path]]:
    """{(theme, concept label): (icon name, file)} for every theme and concept; a one-line error for
    a theme that is not installed or lacks a concept."""
    found = {}
    for t in it.THEMES:
        index = it.index_theme(it.theme_root(t, icon_root))
        for words, names in it.CONCEPTS:
            hit = it.resolve(index, names)
            if hit is None:
                raise SystemExit(
                    f"icon theme {t.name!r} ({icon_root / t.folder}) has none of {', '.join(names)} "
                    f"(concept {words!r}); is {t.package} complete?"
                )
            found[(t.name, it.label(words))] = (hit[0], hit[1].path)
    return found


def build(
    out: Path, n_users: int, seed: int, size: int, noisy_share: float, icon_root: Path, doc_root: Path
) -> dict[str, Any]:
    """Find, render and write the set; returns its counts."""
    t0 = time.perf_counter()
    themes = [t.name for t in it.THEMES]
    sems = [it.label(w) for w, _ in it.CONCEPTS]
    words = {it.label(w): w for w, _ in it.CONCEPTS}
    credits = [it.read_credit(t, doc_root) for t in it.THEMES]
    icons = find_icons(icon_root)
    title = {t.name: t.title for t in it.THEMES}
    pairs = [(t, s) for t in themes for s in sems]
    rs = real_sets.RealSet(
        name=NAME,
        made_by=MADE_BY,
        instruction=INSTRUCTION,
        id_prefix="icon",
        styles=themes,
        semantics=sems,
        images={(t, s): it.render_file(icons[(t, s)][1], size) for t, s in pairs},
        captions={(t, s): f"{common.with_article(words[s])} icon, {title[t]} style" for t, s in pairs},
        licenses=it.license_text(credits),
        info={
            "style": "theme: the icon theme's design team (line, shading, perspective, palette)",
            "semantic": "concept: the object the icon shows, by its freedesktop icon names",
            "icon_names": {f"{t}/{s}": icons[(t, s)][0] for t, s in pairs},
            "credits": [c.as_json() for c in credits],
            "description": (__doc__ or "").split("\n\n")[0],
        },
    )
    stats = real_sets.write(rs, out, n_users, seed, size, noisy_share)
    return {**stats, "themes": stats.pop("styles"), "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    real_sets.add_args(p)
    p.add_argument("--icon-root", type=Path, default=it.ICON_ROOT, help="where the themes are installed")
    p.add_argument("--check-only", action="store_true", help="verify an existing build; build nothing")
    a = p.parse_args(argv)
    real_sets.check_args(a)
    if not a.check_only:
        stats = build(a.out, a.users, a.seed, a.size, a.noisy_share, a.icon_root, a.doc_root)
        print(json.dumps(stats))
    if a.check or a.check_only:
        print(json.dumps({"check": "ok", **foreign_sets.check(a.out)}))
    return 0


if __name__ == "__main__":
    from drc.errors import DrcError

    try:
        sys.exit(main())
    except DrcError as e:  # bad arguments or a bad folder: one line, no traceback
        sys.exit(f"error: {e}")
