"""A served run's evaluation report, for the studio's second page.

`drc eval` and `drc demo` write `report.html` with inline SVG charts (joint accuracy per method, the
history-length curve, the per-theme breakdown, training curves) and sample grids as PNG files. The
service looks for it in the run folder, in its `eval/` folder, and, for a run inside a demo's
`OUT/runs/<method>/`, in the demo's `OUT/`. It hands the charts over as they are (they were written by
drc for this run, on the server, not by any user) and the grids by index, so no request names a file.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

_SVG = re.compile(r"<svg\b.*?</svg>", re.S)
_HEADING = re.compile(r"<h([23])>(.*?)</h\1>", re.S)
_TEXT = re.compile(r"<text\b[^>]*>(.*?)</text>", re.S)
_TABLE = re.compile(r"<table class='methods'>.*?</table>", re.S)
_GRID = re.compile(r"<img class='grid' src='([^']+)' alt='([^']*)'>")


@dataclass
class Report:
    path: Path
    title: str
    figures: list[dict[str, str]] = field(default_factory=list)  # {"section", "title", "svg"}
    table: str | None = None  # the methods table, HTML
    grids: list[tuple[str, Path]] = field(default_factory=list)  # (title, file)


def find_report(run_dir: str | Path) -> Path | None:
    run = Path(run_dir)
    candidates = [run / "report.html", run / "eval" / "report.html"]
    if run.parent.name == "runs":
        candidates.append(run.parent.parent / "report.html")
    return next((c for c in candidates if c.is_file()), None)


def load_report(path: Path) -> Report:
    text = path.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"<h1>(.*?)</h1>", text, re.S)
    rep = Report(path, html.unescape(m.group(1)) if m else "drc evaluation report")
    headings = [(h.start(), html.unescape(h.group(2))) for h in _HEADING.finditer(text)]
    for svg in _SVG.finditer(text):
        before = [h for pos, h in headings if pos < svg.start()]
        t = _TEXT.search(svg.group(0))
        rep.figures.append(
            {
                "section": before[-1] if before else "",
                "title": html.unescape(t.group(1)) if t else "",
                "svg": svg.group(0),
            }
        )
    table = _TABLE.search(text)
    rep.table = table.group(0) if table else None
    root = path.parent.resolve()
    for src, alt in _GRID.findall(text):
        f = (path.parent / html.unescape(src)).resolve()
        if f.is_file() and f.is_relative_to(root):  # a grid the report itself points at, inside it
            rep.grids.append((html.unescape(alt), f))
    return rep
