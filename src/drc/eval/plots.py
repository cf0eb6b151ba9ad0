"""Pictures for the report: image grids as PNG (PIL) and charts as inline SVG (no matplotlib needed).

A grid has one row per test user: history images (oldest first, each with its importance weight
`w=0.31` and a bar under it) | reference | each method's output | target. SVG charts are plain
strings built here, so the HTML report opens in any browser with no server and no plotting library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# ---------------------------------------------------------------------------- image grids

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont
LABEL_W = 96  # left column: user id and caption
TITLE_H = 18
HEADER_H = 16
WEIGHT_H = 14  # band under history images: "w=0.31" and a bar
INFLUENCE_H = 14  # second band, when a row has leave-one-out influence: "i=0.12" and a bar
PAD = 4


@dataclass
class GridRow:
    """One test user's row. Images are uint8 (H, W, 3) arrays (a (3, H, W) array is accepted too)."""

    user: str
    history: list[np.ndarray]
    history_weights: list[float] | None
    reference: np.ndarray
    outputs: dict[str, np.ndarray]
    target: np.ndarray | None = None
    caption: str = ""
    # optional: each history image's leave-one-out influence (a second bar, scaled to the row's
    # largest) and which history images to mark (intruders: a red frame)
    history_influence: list[float] | None = None
    history_marked: list[bool] | None = None


@dataclass
class Grid:
    """A titled set of rows saved as `filename` (a .png name, relative to the report's grids/ folder)."""

    title: str
    rows: list[GridRow] = field(default_factory=list)
    filename: str = "grid.png"


def _hwc(img: np.ndarray) -> np.ndarray:
    a = img.detach().cpu().numpy() if hasattr(img, "detach") else np.asarray(img)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"grid images must be (H, W, 3) uint8, got shape {a.shape}")
    return np.ascontiguousarray(a.astype(np.uint8))


def grid_columns(grid: Grid) -> list[str]:
    """Column headers: h1..hK (K = longest history), reference, methods (first-seen order), target."""
    k = max((len(r.history) for r in grid.rows), default=0)
    methods: list[str] = []
    for r in grid.rows:
        methods.extend(m for m in r.outputs if m not in methods)
    cols = [f"h{i + 1}" for i in range(k)] + ["reference"] + methods
    if any(r.target is not None for r in grid.rows):
        cols.append("target")
    return cols


def _cell_size(grid: Grid, scale: int) -> tuple[int, int]:
    """(height, width) of one cell in pixels: the largest image in the grid times `scale`."""
    h = w = 1
    for r in grid.rows:
        imgs = [*r.history, r.reference, *r.outputs.values()] + ([r.target] if r.target is not None else [])
        for im in imgs:
            a = _hwc(im)
            h, w = max(h, a.shape[0]), max(w, a.shape[1])
    return h * scale, w * scale


def grid_size(grid: Grid, scale: int = 2) -> tuple[int, int]:
    """(width, height) of `render_grid_png(grid, scale)`."""
    ch, cw = _cell_size(grid, scale)
    n_cols = len(grid_columns(grid))
    wb = _band(grid)
    width = LABEL_W + n_cols * (cw + PAD) + PAD
    height = TITLE_H + HEADER_H + len(grid.rows) * (ch + wb + PAD) + PAD
    return width, height


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> str:
    """Cut `text` so it fits in `width` pixels (with an ellipsis)."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int, lines: int) -> list[str]:
    out: list[str] = []
    words = text.split()
    cur = ""
    for w in words:
        cand = (cur + " " + w).strip()
        if draw.textlength(cand, font=font) <= width or not cur:
            cur = cand
        else:
            out.append(cur)
            cur = w
    if cur:
        out.append(cur)
    if len(out) > lines:
        out = out[: lines - 1] + [" ".join(out[lines - 1 :])]
    return [_fit(draw, s, font, width) for s in out]


def render_grid_png(grid: Grid, scale: int = 2) -> Image.Image:
    """Draw the grid (labels in PIL's default font); size is `grid_size(grid, scale)`."""
    width, height = grid_size(grid, scale)
    ch, cw = _cell_size(grid, scale)
    cols = grid_columns(grid)
    k = sum(c.startswith("h") and c[1:].isdigit() for c in cols)
    wb = _band(grid)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    d.text((PAD, 3), _fit(d, grid.title, font, width - 2 * PAD), fill=(0, 0, 0), font=font)

    def x_of(col: int) -> int:
        return LABEL_W + PAD + col * (cw + PAD)

    for j, name in enumerate(cols):
        # inputs (history, reference) in blue, outputs in black: the eye finds the inputs at once
        colour = (40, 90, 160) if j <= k else (0, 0, 0)
        d.text((x_of(j), TITLE_H + 1), _fit(d, name, font, cw), fill=colour, font=font)
    for i, r in enumerate(grid.rows):
        y = TITLE_H + HEADER_H + i * (ch + wb + PAD)
        lines = _wrap(d, f"{r.user}  {r.caption}".strip(), font, LABEL_W - 2 * PAD, max(ch // 12, 1))
        for li, line in enumerate(lines):
            d.text((PAD, y + li * 12), line, fill=(0, 0, 0), font=font)
        cells: list[np.ndarray | None] = list(r.history) + [None] * (k - len(r.history)) + [r.reference]
        cells += [r.outputs.get(m) for m in cols[k + 1 :] if m != "target"]
        if "target" in cols:
            cells.append(r.target)
        for j, im in enumerate(cells):
            if im is None:
                d.rectangle((x_of(j), y, x_of(j) + cw - 1, y + ch - 1), fill=(235, 235, 235))
                continue
            a = _hwc(im)
            size = (a.shape[1] * scale, a.shape[0] * scale)
            pil = Image.fromarray(a).resize(size, Image.Resampling.NEAREST)
            canvas.paste(pil, (x_of(j), y))
        if r.history_weights is not None:
            ws = list(r.history_weights)
            top = max(ws) if ws else 0.0
            for j, w in enumerate(ws[: len(r.history)]):
                x0, yb = x_of(j), y + ch + 1
                bar = max(int(round(cw * min(max(w, 0.0), 1.0))), 1)
                # the most important history image gets the strong colour
                fill = (214, 96, 44) if w == top else (240, 170, 130)
                d.rectangle((x0, yb + 9, x0 + bar - 1, yb + 12), fill=fill)
                d.text((x0, yb - 2), f"w={w:.2f}", fill=(0, 0, 0), font=font)
        if r.history_influence is not None:
            inf = list(r.history_influence)
            top = max(inf) if inf and max(inf) > 0 else 1.0
            for j, v in enumerate(inf[: len(r.history)]):
                x0, yb = x_of(j), y + ch + 1 + WEIGHT_H
                bar = max(int(round(cw * min(max(v / top, 0.0), 1.0))), 1)
                d.rectangle((x0, yb + 9, x0 + bar - 1, yb + 12), fill=(40, 90, 160))
                d.text((x0, yb - 2), f"i={v:.2f}", fill=(40, 90, 160), font=font)
        for j, marked in enumerate((r.history_marked or [])[: len(r.history)]):
            if marked:
                box = (x_of(j) - 2, y - 2, x_of(j) + cw + 1, y + ch + 1)
                d.rectangle(box, outline=(200, 30, 30), width=2)
    return canvas


def _band(grid: Grid) -> int:
    """Height of the bands under the history images: weights, then influence."""
    band = WEIGHT_H if any(r.history_weights is not None for r in grid.rows) else 0
    return band + (INFLUENCE_H if any(r.history_influence is not None for r in grid.rows) else 0)


# ---------------------------------------------------------------------------- SVG charts

PALETTE = ("#2f7d32", "#c62828", "#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037", "#455a64")


def _num(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def bar_chart_svg(
    categories: list[str],
    series: dict[str, list[float]],
    title: str = "",
    y_max: float | None = None,
    width: int = 640,
    height: int = 280,
) -> str:
    """Grouped bar chart: one group per category, one bar per series; values printed on the bars.
    Non-finite values are drawn as an empty slot with "n/a"."""
    left, right, top, bottom = 44, 12, 28, 70
    pw, ph = width - left - right, height - top - bottom
    vals = [v for vs in series.values() for v in vs if isinstance(v, (int, float)) and math.isfinite(v)]
    ymax = y_max if y_max is not None else (max(vals) * 1.1 if vals and max(vals) > 0 else 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>',
    ]
    for t in range(5):
        yv = ymax * t / 4
        y = top + ph - ph * t / 4
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_num(yv)}</text>')
    n_cat, n_ser = max(len(categories), 1), max(len(series), 1)
    gw = pw / n_cat
    bw = gw * 0.8 / n_ser
    for ci, cat in enumerate(categories):
        gx = left + ci * gw + gw * 0.1
        for si, (_name, vs) in enumerate(series.items()):
            v = vs[ci] if ci < len(vs) else float("nan")
            x = gx + si * bw
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                parts.append(f'<text x="{x + bw / 2:.1f}" y="{top + ph - 3}" text-anchor="middle">n/a</text>')
                continue
            bh = ph * max(min(v / ymax, 1.0), 0.0)
            colour = PALETTE[si % len(PALETTE)]
            parts.append(
                f'<rect x="{x:.1f}" y="{top + ph - bh:.1f}" width="{bw * 0.92:.1f}" height="{bh:.1f}" '
                f'fill="{colour}"><title>{escape(cat)} {escape(_name)}: {v:.4f}</title></rect>'
            )
            parts.append(
                f'<text x="{x + bw / 2:.1f}" y="{top + ph - bh - 3:.1f}" text-anchor="middle" '
                f'font-size="9">{_num(v)}</text>'
            )
        cx = left + ci * gw + gw / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{top + ph + 12}" text-anchor="end" '
            f'transform="rotate(-30 {cx:.1f} {top + ph + 12})">{escape(cat)}</text>'
        )
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#333"/>')
    lx = left
    for si, name in enumerate(series):
        colour = PALETTE[si % len(PALETTE)]
        parts.append(f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="{height - 5}">{escape(name)}</text>')
        lx += 24 + 7 * len(name)
    parts.append("</svg>")
    return "\n".join(parts)


def line_chart_svg(
    series: dict[str, list[tuple[float, float]]],
    title: str = "",
    x_label: str = "step",
    log_y: bool | None = None,
    width: int = 480,
    height: int = 240,
) -> str:
    """Line chart of (x, y) series. `log_y=None` picks a log axis when positive values span more than
    a factor of 20 (loss curves usually do)."""
    left, right, top, bottom = 52, 12, 28, 40
    pw, ph = width - left - right, height - top - bottom
    pts = [(x, y) for s in series.values() for x, y in s if math.isfinite(x) and math.isfinite(y)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>',
    ]
    if not pts:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text></svg>')
        return "\n".join(parts)
    ys = [y for _, y in pts]
    if log_y is None:
        log_y = min(ys) > 0 and max(ys) / min(ys) > 20
    if log_y and min(ys) <= 0:
        log_y = False

    def fy(y: float) -> float:
        return math.log10(y) if log_y else y

    x0, x1 = min(x for x, _ in pts), max(x for x, _ in pts)
    y0, y1 = min(fy(y) for y in ys), max(fy(y) for y in ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def px(x: float) -> float:
        return left + pw * (x - x0) / (x1 - x0)

    def py(y: float) -> float:
        return top + ph - ph * (fy(y) - y0) / (y1 - y0)

    for t in range(5):
        v = y0 + (y1 - y0) * t / 4
        y = top + ph - ph * t / 4
        label = _num(10**v if log_y else v)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for t in range(5):
        v = x0 + (x1 - x0) * t / 4
        parts.append(f'<text x="{px(v):.1f}" y="{top + ph + 14}" text-anchor="middle">{_num(v)}</text>')
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">{escape(x_label)}'
        f"{' (log y)' if log_y else ''}</text>"
    )
    for si, (name, s) in enumerate(series.items()):
        good = [(x, y) for x, y in s if math.isfinite(x) and math.isfinite(y) and (y > 0 or not log_y)]
        if not good:
            continue
        colour = PALETTE[si % len(PALETTE)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in good)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{path}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        parts.append(f'<text x="{left + 6}" y="{top + 12 + 13 * si}" fill="{colour}">{escape(name)}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    parts.append("</svg>")
    return "\n".join(parts)
