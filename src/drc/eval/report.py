"""The evaluation report: `report.json` (the data) and `report.html` (for people), side by side.

`write_report(out_dir, report, grids)` writes the dict exactly as given to report.json and renders
what it recognises into a self-contained HTML page (inline SVG charts, grid PNGs referenced
relatively from out_dir/grids/), which opens from disk with no server. Recognised keys (all
optional except "methods"; anything else is shown as JSON at the end, so nothing is hidden):

    title:        str
    dataset:      str | dict
    probes:       {"style_acc", "semantic_acc", "n_heldout", "seconds", ...}  held-out real accuracy
    methods:      {method: {metric: float, "<metric>_ci": [lo, hi], "n": int, ...}}
    breakdowns:   {"method": "drc", "history_length": {"1": {"joint_acc", "n"} | float, ...},
                   "style_theme": {theme: {"joint_acc", "n"} | float}, <other name>: {...}}
    timings:      {stage: seconds}
    environment:  {key: value}
    curves:       {stage: [{"step": int, "loss": float, <other>_loss: float, ...}, ...]}
    notes:        str | [str]
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from drc.atomic import atomic_write
from drc.atomic import atomic_write_text as _atomic_write
from drc.eval.metrics import SUMMARY_KEYS, worst_group
from drc.eval.plots import Grid, GridRow, bar_chart_svg, line_chart_svg, render_grid_png
from drc.eval.report_quality import QUALITY_COUNTS, quality_note

__all__ = ["Grid", "GridRow", "render_grid_png", "write_report", "render_html", "METRIC_ORDER"]

# table column order; later, unknown numeric metrics are appended in first-seen order
METRIC_ORDER = (
    *SUMMARY_KEYS,
    "sharpness_ratio",
    "variety",
    "real_variety",
    "variety_pixels",
    "real_variety_pixels",
    "clip_i",
    "clip_t",
    "dino",
    "fid",
    "n",
)
HIGHER_IS_BETTER = {
    "style_acc",
    "semantic_acc",
    "joint_acc",
    "hist_sim",
    "target_sim",
    "clip_i",
    "clip_t",
    "dino",
}
LOWER_IS_BETTER = {"collapse_rate", "fd", "fid"}  # and any "fid_<encoder>"
# ref_sim has no "better" side: similar to the reference is right for semantics, wrong for style;
# sharpness_ratio and variety are best near the real images' (1, real_variety), not at an extreme
KNOWN_KEYS = {
    "title",
    "dataset",
    "probes",
    "methods",
    "breakdowns",
    "timings",
    "timings_s",
    "environment",
    "curves",
    "notes",
    "explanations",
    "validation",
}

CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; font-size: 13px; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
td.best { font-weight: bold; background: #e3f4e1; }
td.worst { background: #fbe3e3; }
.ci { color: #777; font-size: 11px; }
.probe { background: #f6f8fc; border-left: 4px solid #1565c0; padding: 6px 10px; margin: 8px 0; }
img.grid { image-rendering: pixelated; max-width: 100%; border: 1px solid #ddd; }
pre { background: #f7f7f7; padding: 8px; overflow-x: auto; font-size: 12px; }
.charts svg { margin: 4px 12px 4px 0; }
"""


# ---------------------------------------------------------------------------- JSON


def _jsonable(o: Any) -> Any:
    """json.dump fallback: numpy / torch scalars and arrays, paths, dataclasses."""
    if hasattr(o, "detach"):
        o = o.detach().cpu().numpy()
    if hasattr(o, "tolist"):  # numpy arrays and scalars
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"report value of type {type(o).__name__} is not JSON-serialisable")


# ---------------------------------------------------------------------------- HTML pieces


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or not _is_num(v):
        return escape(str(v))
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        return "n/a"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


def _columns(methods: dict[str, dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for m in methods.values():
        for k, v in m.items():
            if _is_num(v) and not k.endswith("_ci") and k not in seen and k not in QUALITY_COUNTS:
                seen.append(k)
    ordered = [k for k in METRIC_ORDER if k in seen and k != "n"]
    return ordered + [k for k in seen if k not in ordered and k != "n"] + (["n"] if "n" in seen else [])


def _direction(col: str) -> float:
    """+1 if higher is better, -1 if lower is better, 0 if neither."""
    if col in HIGHER_IS_BETTER:
        return 1.0
    if col in LOWER_IS_BETTER or col.startswith("fid_"):
        return -1.0
    return 0.0


def _best(methods: dict[str, dict[str, Any]], col: str) -> set[str]:
    """Methods holding the best finite value of `col` (ties all win); none for undirected columns."""
    sign = _direction(col)
    if sign == 0.0:
        return set()
    vals = {m: float(s[col]) for m, s in methods.items() if _is_num(s.get(col)) and math.isfinite(s[col])}
    if len(vals) < 2:
        return set()
    top = max(sign * v for v in vals.values())
    return {m for m, v in vals.items() if sign * v == top}


def methods_table(methods: dict[str, dict[str, Any]]) -> str:
    """methods x metrics table; the best value per directed column is bold on green; CIs under."""
    cols = _columns(methods)
    best = {c: _best(methods, c) for c in cols}
    arrows = {c: {1.0: " ↑", -1.0: " ↓"}.get(_direction(c), "") for c in cols}
    rows = [
        "<table class='methods'><tr><th>method</th>"
        + "".join(f"<th>{escape(c)}{arrows[c]}</th>" for c in cols)
        + "</tr>"
    ]
    for name, s in methods.items():
        cells = [f"<td>{escape(name)}</td>"]
        for c in cols:
            v = s.get(c)
            ci = s.get(f"{c}_ci")
            extra = ""
            if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_is_num(x) for x in ci):
                extra = f"<br><span class='ci'>[{_fmt(ci[0])}, {_fmt(ci[1])}]</span>"
            cls = " class='best'" if name in best[c] else ""
            cells.append(f"<td{cls}>{_fmt(v) if v is not None else ''}{extra}</td>")
        rows.append(f"<tr data-method='{escape(name)}'>" + "".join(cells) + "</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _cell(v: Any) -> str:
    if _is_num(v) or isinstance(v, str):
        return _fmt(v)
    return escape(json.dumps(v, default=_jsonable))


def _kv_table(d: dict[str, Any], key_name: str = "", value_name: str = "") -> str:
    head = f"<tr><th>{escape(key_name)}</th><th>{escape(value_name)}</th></tr>" if key_name else ""
    body = "".join(f"<tr><td>{escape(str(k))}</td><td>{_cell(v)}</td></tr>" for k, v in d.items())
    return f"<table>{head}{body}</table>"


def _group_value(v: Any, metric: str) -> tuple[float, Any]:
    if isinstance(v, dict):
        return float(v.get(metric, float("nan"))), v.get("n", "")
    return (float(v) if _is_num(v) else float("nan")), ""


def breakdown_section(name: str, groups: dict[str, Any], method: str, metric: str = "joint_acc") -> str:
    """A breakdown table (+ a bar chart); the worst group is named and shaded."""
    norm = {str(g): dict(zip((metric, "n"), _group_value(v, metric))) for g, v in groups.items()}
    worst = worst_group(norm, metric)
    title = name.replace("_", " ")
    out = [f"<h3>{escape(method)} {escape(metric)} by {escape(title)}</h3>"]
    if worst is not None and len(norm) > 1:
        value = _fmt(norm[worst][metric])
        out.append(f"<p>Worst {escape(title)}: <b>{escape(worst)}</b> ({metric} {value}).</p>")
    rows = "".join(
        f"<tr><td>{escape(g)}</td><td{' class=worst' if g == worst and len(norm) > 1 else ''}>"
        f"{_fmt(v[metric])}</td><td>{_fmt(v['n'])}</td></tr>"
        for g, v in norm.items()
    )
    out.append(f"<table><tr><th>{escape(title)}</th><th>{escape(metric)}</th><th>n</th></tr>{rows}</table>")
    out.append(
        "<div class='charts'>"
        + bar_chart_svg(
            list(norm),
            {metric: [v[metric] for v in norm.values()]},
            f"{method}: {metric} by {title}",
            y_max=1.0,
            width=max(320, 60 * len(norm) + 80),
            height=240,
        )
        + "</div>"
    )
    return "\n".join(out)


EXPLAIN_COLUMNS = (
    "joint_acc_clean", "joint_acc_noisy", "noisy_style_acc", "intruder_weight_ratio",
    "influence_agreement", "influence_agreement_draft", "theme_gap", "intent_gap", "cold_start_ratio",
)


def explanations_section(ex: dict[str, Any], methods: dict[str, dict[str, Any]]) -> str:
    """Explanation and fairness metrics per method, and the gaps' worst groups (`eval/explanations.py`)."""
    out = ["<h2>Explanations and fairness</h2>",
           "<p>Noisy users have 1-2 history items of another theme (intruders). "
           "<i>intruder_weight_ratio</i>: mean weight of intruders / of the user's own items (1 = blind); "
           "<i>influence_agreement</i>: Spearman correlation of weights and leave-one-out influence; "
           "gaps: max - min joint accuracy across themes / intents; "
           "cold start: joint(k=1) / joint(k=full).</p>"]
    head = "".join(f"<th>{escape(c)}</th>" for c in EXPLAIN_COLUMNS)
    rows = "".join(
        f"<tr><td>{escape(m)}</td>" + "".join(f"<td>{_fmt(v.get(c))}</td>" for c in EXPLAIN_COLUMNS) + "</tr>"
        for m, v in methods.items()
    )
    out.append(f"<table><tr><th>method</th>{head}</tr>{rows}</table>")
    for key, label in (("theme_gap", "themes"), ("intent_gap", "intents")):
        g = ex.get(key) or {}
        if g.get("worst"):
            worst, best = ", ".join(map(str, g["worst"])), str(g.get("best"))
            out.append(f"<p>{escape(str(ex.get('method', 'drc')))}, worst {label}: "
                       f"<b>{escape(worst)}</b>; best: {escape(best)}.</p>")
    return "\n".join(out)


def curves_section(curves: dict[str, list[dict[str, Any]]]) -> str:
    charts = []
    for stage, rows in curves.items():
        keys: list[str] = []
        for r in rows:
            keys.extend(k for k in r if "loss" in k and k not in keys and _is_num(r[k]))
        series = {
            k: [(float(r.get("step", i)), float(r[k])) for i, r in enumerate(rows) if _is_num(r.get(k))]
            for k in keys
        }
        charts.append(line_chart_svg(series, f"{stage} loss"))
    return "<div class='charts'>" + "\n".join(charts) + "</div>"


def _probe_line(p: dict[str, Any]) -> str:
    parts = []
    for k, label in (("style_acc", "style"), ("semantic_acc", "semantics")):
        if _is_num(p.get(k)):
            parts.append(f"{label} <b>{_fmt(p[k])}</b>")
    info = ", ".join(parts) or "not available"
    extra = []
    if _is_num(p.get("n_heldout")):
        extra.append(f"{p['n_heldout']} held-out real items")
    if _is_num(p.get("seconds")):
        extra.append(f"trained in {p['seconds']:.0f} s")
    tail = f" ({'; '.join(extra)})" if extra else ""
    return (
        f"<div class='probe'>Probe accuracy on held-out <i>real</i> items: {info}{tail}. Label metrics "
        f"below are only as trustworthy as these numbers.</div>"
    )


def render_html(report: dict[str, Any], grid_files: Sequence[tuple[str, str]] = ()) -> str:
    """The HTML page for `report`; `grid_files` are (title, relative png path) pairs."""
    title = str(report.get("title", "drc evaluation report"))
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if "dataset" in report:
        ds = report["dataset"]
        out.append(f"<p>Dataset: {escape(ds) if isinstance(ds, str) else _kv_table(ds)}</p>")
    out.append("<p>Raw numbers: <a href='report.json'>report.json</a></p>")
    notes = report.get("notes")
    if notes:
        for n in [notes] if isinstance(notes, str) else notes:
            out.append(f"<p class='note'>{escape(str(n))}</p>")
    methods = report.get("methods") or {}
    out.append("<h2>Results</h2>")
    if isinstance(report.get("probes"), dict):
        out.append(_probe_line(report["probes"]))
    if methods:
        out.append(methods_table(methods))
        out.append(quality_note(methods))
        names = list(methods)
        series = {k: [methods[m].get(k, float("nan")) for m in names] for k in ("joint_acc", "collapse_rate")}
        out.append(
            "<div class='charts'>"
            + bar_chart_svg(
                names,
                series,
                "joint accuracy and collapse rate per method",
                y_max=1.0,
                width=max(420, 90 * len(names) + 80),
            )
            + "</div>"
        )
    else:
        out.append("<p>No methods evaluated.</p>")
    bd = report.get("breakdowns") or {}
    if bd:
        method = str(bd.get("method", "drc"))
        out.append("<h2>Breakdowns</h2>")
        for name, groups in bd.items():
            if isinstance(groups, dict) and groups:
                out.append(breakdown_section(name, groups, method))
    if isinstance(report.get("explanations"), dict):
        out.append(explanations_section(report["explanations"], methods))
    if grid_files:
        out.append(
            "<h2>Samples</h2><p>Per test user: history (oldest first; <i>w</i> = DRC's importance "
            "weight of that history image) | reference | each method's output | target.</p>"
        )
        for gt, rel in grid_files:
            out.append(f"<h3>{escape(gt)}</h3><img class='grid' src='{escape(rel)}' alt='{escape(gt)}'>")
    if report.get("validation"):
        out.append("<h2>Validation: held-out pairs of training users (Stage 2 draft)</h2>")
        out.append(_kv_table({m: v.get("summary", v) for m, v in report["validation"].items()}))
    if report.get("curves"):
        out.append("<h2>Training curves</h2>" + curves_section(report["curves"]))
    if report.get("timings") or report.get("timings_s"):
        t = dict(report.get("timings") or report["timings_s"])
        nums = [v for v in t.values() if _is_num(v)]
        if nums and "total" not in t:
            t["total"] = float(sum(nums))
        out.append("<h2>Timings (seconds)</h2>" + _kv_table(t, "stage", "seconds"))
    if report.get("environment"):
        out.append("<h2>Environment</h2>" + _kv_table(report["environment"]))
    rest = {k: v for k, v in report.items() if k not in KNOWN_KEYS}
    if rest:
        out.append(
            "<h2>Other fields</h2><pre>" + escape(json.dumps(rest, indent=1, default=_jsonable)) + "</pre>"
        )
    out.append("</body></html>")
    return "\n".join(out)


def _png_name(name: str, i: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name) or f"grid_{i}"
    return stem if stem.lower().endswith(".png") else stem + ".png"


def write_report(
    out_dir: str | Path, report: dict[str, Any], grids: Sequence[Grid] = ()
) -> tuple[Path, Path]:
    """Write out_dir/report.json (exactly `report`), out_dir/grids/*.png and out_dir/report.html.
    Returns (json_path, html_path)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    _atomic_write(json_path, json.dumps(report, indent=1, default=_jsonable) + "\n")
    files: list[tuple[str, str]] = []
    used: set[str] = set()
    for i, g in enumerate(grids):
        name = _png_name(g.filename, i)
        while name in used:  # two grids with one filename must not overwrite each other
            name = name[:-4] + f"_{i}.png"
        used.add(name)
        path = out_dir / "grids" / name
        atomic_write(path, lambda tmp, g=g: render_grid_png(g).save(tmp, format="PNG"))
        files.append((g.title, f"grids/{name}"))
    html_path = out_dir / "report.html"
    _atomic_write(html_path, render_html(report, files))
    return json_path, html_path
