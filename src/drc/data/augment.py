"""Semantic-preserving augmentations: change an image's STYLE, keep its SEMANTICS.

Stage 2 trains on `(H, y, r = A(y))`: the reference is an augmentation of the target, so the
generator can only take style from the history and semantics from `r` if `A` really moves the
style (palette, outline, background, frame, texture) and keeps what the image says (the intent
symbol, the pose, the motif). Every op works on one uint8 (H, W, 3) array with a numpy Generator
and returns a new uint8 (H, W, 3) array of the same size; non-square images are fine.

Which ops touch the semantics: on the benchmarks a symbol's identity is partly its colour (pink
heart, blue tear, orange flame), so the ops that move the colour of EVERY pixel (`RISKY`:
`hue_rotate`, `palette_remap`, `channel_permute`, `greyscale`) make a heart blue or grey; its shape
still says "heart", the colour cue is gone. `AugmentConfig.p_risky` sets how often a composition
may use them. The other ops work on detected regions or at low amplitude and keep symbol colours:
`background_swap` and `frame_replace` (the background found by `background_layers`), `recolour`
(the character's own connected body), `outline_change` (dark line art), `texture_overlay`,
`colour_grade`, `posterize`, `blur`, `jitter`.

Entry points: `AUGMENTATIONS` (name -> fn(img, rng)), `augment` (a random composition of 1-3 ops),
`augment_batch` (uint8 torch (B, 3, H, W)), `get_augmentation`, and `background_mask` /
`background_layers` (canvas, frame and backdrop of an image; also used by the tests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageFilter

from drc.errors import DrcError

Augmentation = Callable[[np.ndarray, np.random.Generator], np.ndarray]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


# ----------------------------------------------------------------------------- colour helpers


def _f32(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255.0


def _u8(x: np.ndarray) -> np.ndarray:
    """float in [0, 1] (any overshoot clipped) -> uint8."""
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _luma(x: np.ndarray) -> np.ndarray:
    """(H, W, 3) float or uint8 -> (H, W) float luma in the input's scale."""
    return x.astype(np.float32) @ _LUMA


def _cheb(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max_c |a_c - b_c| over the last (RGB) axis, broadcasting; spelt out because numpy's
    reduction over a length-3 last axis is several times slower."""
    d = np.abs(a - b)
    return np.maximum(np.maximum(d[..., 0], d[..., 1]), d[..., 2])


def _near(x: np.ndarray, colours: np.ndarray, tol: int) -> np.ndarray:
    """(...) bool: pixels of `x` (..., 3) within `tol` of any of `colours` (n, 3)."""
    out = np.zeros(x.shape[:-1], bool)
    for c in colours:
        out |= _cheb(x, c) <= tol
    return out


def rgb_to_hsv(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) float in [0, 1] -> hue in [0, 1) (turns), saturation, value; each (H, W)."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = np.maximum(np.maximum(r, g), b)
    c = v - np.minimum(np.minimum(r, g), b)
    s = np.where(v > 0, c / np.maximum(v, 1e-8), 0.0)
    cs = np.maximum(c, 1e-8)
    h = np.where(v == r, (g - b) / cs, np.where(v == g, 2.0 + (b - r) / cs, 4.0 + (r - g) / cs))
    h = np.where(c > 0, (h / 6.0) % 1.0, 0.0)
    return h.astype(np.float32), s.astype(np.float32), v.astype(np.float32)


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inverse of `rgb_to_hsv`: (H, W) each -> (H, W, 3) float in [0, 1]."""
    h6 = (h % 1.0) * 6.0
    k = (np.array([5.0, 3.0, 1.0], np.float32) + h6[..., None]) % 6.0
    return v[..., None] - (v * s)[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _random_colour(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
    """One RGB colour in [0, 1] with a uniform hue and saturation / value drawn from the ranges."""
    h = np.float32(rng.random())
    sv = np.float32(rng.uniform(*s)), np.float32(rng.uniform(*v))
    return hsv_to_rgb(np.array([[h]]), np.array([[sv[0]]]), np.array([[sv[1]]]))[0, 0]


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """a[y + dy, x + dx] with edge padding (same shape as `a`)."""
    h, w = a.shape[:2]
    pad = [(1, 1), (1, 1)] + [(0, 0)] * (a.ndim - 2)
    return np.pad(a, pad, mode="edge")[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def _box_mean(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window with edge padding; `a` is (H, W) or (H, W, C)."""
    h, w = a.shape[:2]
    pad = [(r + 1, r), (r + 1, r)] + [(0, 0)] * (a.ndim - 2)
    c = np.pad(a.astype(np.float32), pad, mode="edge").cumsum(0).cumsum(1)
    k = 2 * r + 1
    s = c[k : k + h, k : k + w] - c[:h, k : k + w] - c[k : k + h, :w] + c[:h, :w]
    return s / float(k * k)


# ----------------------------------------------------------------------------- patterns


_PATTERNS = ("stripes", "checker", "dots", "noise", "crosshatch")


def _pattern(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A (H, W) float pattern in [-1, 1]: a texture for overlays and background fills."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind in ("stripes", "crosshatch"):
        period = rng.uniform(3.0, 8.0)
        theta = rng.choice([0.0, 0.25, 0.5, 0.75]) * np.pi + rng.uniform(-0.1, 0.1)
        phase = rng.uniform(0, 2 * np.pi)
        p = np.sign(np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + phase))
        if kind == "crosshatch":  # the same stripes turned 90 degrees, drawn on top
            q = np.sign(np.sin(2 * np.pi * (yy * np.cos(theta) - xx * np.sin(theta)) / period))
            p = np.maximum(p, q)
        return p.astype(np.float32)
    if kind == "checker":
        cell = int(rng.integers(2, 7))
        return (((yy // cell + xx // cell) % 2) * 2 - 1).astype(np.float32)
    if kind == "dots":
        period = int(rng.integers(4, 9))
        radius = rng.uniform(0.8, period * 0.35)
        oy, ox = rng.integers(0, period, 2)
        dy = (yy + oy) % period - period / 2
        dx = (xx + ox) % period - period / 2
        return np.where(dy * dy + dx * dx <= radius * radius, 1.0, -1.0).astype(np.float32)
    if kind == "noise":
        return np.clip(rng.standard_normal((h, w)).astype(np.float32) / 2.0, -1.0, 1.0)
    raise ValueError(f"unknown pattern {kind!r}")


def _fill(h: int, w: int, rng: np.random.Generator, avoid: np.ndarray | None = None) -> np.ndarray:
    """A new (H, W, 3) float background: a flat colour, a 2-colour gradient or a 2-colour pattern.

    avoid: a colour in [0, 1] the fill's main colour must stay away from (the old background), so
    the swap is visible.
    """
    for _ in range(8):
        a = _random_colour(rng, (0.0, 0.9), (0.35, 1.0))
        if avoid is None or np.abs(a - avoid).max() > 0.3:
            break
    kind = rng.choice(["flat", "gradient", "pattern"], p=[0.4, 0.3, 0.3])
    if kind == "flat":
        return np.broadcast_to(a, (h, w, 3)).copy()
    b = np.clip(a + rng.uniform(-0.3, 0.3, 3).astype(np.float32), 0.0, 1.0)
    if kind == "gradient":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        theta = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(theta) + yy * np.sin(theta)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        return a + (b - a) * t[..., None]
    p = (_pattern(str(rng.choice(["stripes", "checker", "dots"])), h, w, rng) + 1.0) / 2.0
    return a + (b - a) * p[..., None]


# ----------------------------------------------------------------------------- regions


def _runs(eh: np.ndarray, ev: np.ndarray) -> tuple[np.ndarray, int, np.ndarray, int]:
    """Labels of the maximal horizontal and vertical runs of linked pixels, and their counts, for
    the graph whose edges are `eh` (H, W-1) between horizontal neighbours and `ev` (H-1, W)."""
    h, w = eh.shape[0], ev.shape[1]
    starts = np.ones((h, w), bool)
    starts[:, 1:] = ~eh
    lab_h = np.cumsum(starts.ravel()).reshape(h, w) - 1
    starts_v = np.ones((w, h), bool)
    starts_v[:, 1:] = ~ev.T
    lab_v = (np.cumsum(starts_v.ravel()).reshape(w, h) - 1).T
    return lab_h, int(lab_h[-1, -1]) + 1, lab_v, int(lab_v.max()) + 1


def _flood(seeds: np.ndarray, eh: np.ndarray, ev: np.ndarray, runs: tuple | None = None) -> np.ndarray:
    """Pixels connected to `seeds` through the graph of `eh` / `ev` (see `_runs`).

    Vectorised: alternately mark whole horizontal and vertical runs that contain a reached pixel.
    Each sweep crosses a run in one step, so this converges in about as many sweeps as the
    region's paths have turns (a handful), instead of one step per pixel as a BFS would.
    """
    lab_h, n_h, lab_v, n_v = runs if runs is not None else _runs(eh, ev)
    reached = seeds.copy()
    while True:
        run = np.zeros(n_h, bool)
        run[lab_h[reached]] = True
        grown = run[lab_h]
        run = np.zeros(n_v, bool)
        run[lab_v[grown]] = True
        grown = run[lab_v]
        if np.array_equal(grown, reached):
            return reached
        reached = grown


def _label(mask: np.ndarray) -> np.ndarray:
    """4-connected component labels of `mask` (each the smallest flat index in its component;
    -1 off the mask). Min-label propagation along whole runs, like `_flood`: a few sweeps."""
    h, w = mask.shape
    lab_h, n_h, lab_v, n_v = _runs(mask[:, 1:] & mask[:, :-1], mask[1:] & mask[:-1])
    big = h * w
    lab = np.where(mask, np.arange(big).reshape(h, w), big)
    # a horizontal run is contiguous in row-major order, a vertical one in column-major order,
    # so a run's minimum is one `minimum.reduceat` over the masked pixels in that order
    rh, rv = lab_h[mask], lab_v.T[mask.T]
    if not len(rh):
        return np.full((h, w), -1)
    starts_h = np.flatnonzero(np.r_[True, rh[1:] != rh[:-1]])
    starts_v = np.flatnonzero(np.r_[True, rv[1:] != rv[:-1]])
    while True:
        run = np.full(n_h, big)
        run[rh[starts_h]] = np.minimum.reduceat(lab[mask], starts_h)
        new = np.where(mask, run[lab_h], big)
        run = np.full(n_v, big)
        run[rv[starts_v]] = np.minimum.reduceat(new.T[mask.T], starts_v)
        new = np.where(mask, run[lab_v], big)
        if np.array_equal(new, lab):
            return np.where(mask, lab, -1)
        lab = new


def _main_parts(x: np.ndarray, region: np.ndarray, contact: np.ndarray, tol: int) -> np.ndarray:
    """The connected parts of `region` with the main colour of where it touches `contact`.

    A frame's backdrop touches the frame's border all round (the subject may cut it into several
    parts, all of the same colours or, for a gradient, the same hue); the character's own colour
    inside a line that merged into the frame's border has other colours, so its part is dropped.
    A part is kept if any of its inner pixels has that colour, or its hue.
    """
    if not region.any():
        return region
    inner = region & _erode4(region)
    # the main colours where the region meets the contact, from pixels inside a solid 3x3 block:
    # the anti-aliased seam along a slanted frame edge is thin and does not vote
    solid = region & (_box_mean(region.astype(np.float32), 1) > 0.999)
    reach = _dilate4(_dilate4(contact))
    voters = solid & reach if (solid & reach).any() else region & contact
    # one colour is enough: a 2-colour pattern's pieces hold both colours, so each has this one
    colours = dominant_colours(x[voters], tol, 0.25, 1)
    if not len(colours):
        return np.zeros_like(region)
    good = inner & _near(x, colours, tol)
    hc, sc, _ = rgb_to_hsv(colours[None].astype(np.float32) / 255.0)
    if sc[0, 0] > 0.15:  # a gradient backdrop cut into pieces: other colours, but the same hue
        h, s, _ = rgb_to_hsv(x[inner].astype(np.float32)[None] / 255.0)
        same = (np.abs((h[0] - hc[0, 0] + 0.5) % 1.0 - 0.5) < 0.05) & (s[0] > 0.15)
        good[inner] |= same
    eh, ev = region[:, 1:] & region[:, :-1], region[1:] & region[:-1]
    return _flood(good, eh, ev)


def _erode4(m: np.ndarray) -> np.ndarray:
    """Pixels of `m` whose 4 neighbours are all in `m` (the image edge counts as in)."""
    p = np.pad(m, 1, mode="edge")
    return m & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]


def _border(a: np.ndarray) -> np.ndarray:
    """The pixels of the outermost ring of `a` (H, W, ...) -> (N, ...)."""
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def dominant_colours(pixels: np.ndarray, tol: int = 20, min_frac: float = 0.1, k: int = 3) -> np.ndarray:
    """Up to `k` dominant colours (int16 (n, 3)) of `pixels` (N, 3), each covering >= `min_frac`.

    Greedy: the colour with the most pixels within `tol` (max channel difference) is a centre;
    drop those pixels; repeat. A 2-colour pattern gives two centres.
    """
    b = pixels.reshape(-1, 3).astype(np.int32)
    n = len(b)
    if n == 0:
        return np.zeros((0, 3), np.int16)
    # work on the distinct colours, binned to tol/3 per channel (a flat background has one; a
    # gradient a few dozen): the (U, U) matrix stays small. A bin stands for its middle.
    q = max(tol // 3, 1)
    qb = b // q
    packed, count = np.unique((qb[:, 0] << 16) | (qb[:, 1] << 8) | qb[:, 2], return_counts=True)
    u = (np.stack([packed >> 16, (packed >> 8) & 255, packed & 255], 1) * q + q // 2).astype(np.int16)
    close = _cheb(u[:, None, :], u[None, :, :]) <= tol  # (U, U)
    alive = np.ones(len(u), bool)
    out = []
    for _ in range(k):
        covered = (close * (count * alive)[None, :]).sum(1) * alive
        i = int(covered.argmax())
        if covered[i] < min_frac * n:
            break
        members = close[i] & alive
        out.append(u[i])  # a colour of the region (a mean could drift off a 2-colour pattern)
        alive &= ~members
    return np.array(out, np.int16).reshape(-1, 3)


def border_colours(img: np.ndarray, tol: int = 20, min_frac: float = 0.1, k: int = 3) -> np.ndarray:
    """The dominant colours of the image's outermost pixel ring (see `dominant_colours`)."""
    return dominant_colours(_border(img), tol, min_frac, k)


@dataclass
class _Img:
    """Per-image quantities the background search reuses across its layers."""

    x: np.ndarray  # (H, W, 3) int16
    smooth_h: np.ndarray  # (H, W-1) bool: horizontal neighbours within smooth_tol
    smooth_v: np.ndarray  # (H-1, W) bool

    @staticmethod
    def of(img: np.ndarray, smooth_tol: int) -> _Img:
        x = img.astype(np.int16)
        return _Img(x, _cheb(x[:, 1:], x[:, :-1]) <= smooth_tol, _cheb(x[1:], x[:-1]) <= smooth_tol)


def _grow_region(im: _Img, seeds: np.ndarray, allowed: np.ndarray, centres: np.ndarray, tol: int,
                 major: np.ndarray | None = None) -> np.ndarray:
    """Flood from `seeds` within `allowed`. Neighbours are linked if they differ by <= smooth_tol
    (gradients) or both are within `tol` of a centre: of the same centre, or of two `major` ones
    (a 2-colour pattern's colours link; a minor colour, a shadow's grey, links only to itself, so
    it cannot carry the flood from a symbol's white halo into its dark ring). Seeds must have a
    centre's colour. (Seeding by hue would reach a gradient's far end cut off by the subject, but
    also a flame poking out of an orange frame: a partly swapped gradient is the lesser harm.)"""
    idx = np.full(im.x.shape[:2], -1)
    for i, c in enumerate(centres):
        idx[(idx < 0) & (_cheb(im.x, c) <= tol)] = i
    cand = idx >= 0
    major = np.ones(len(centres), bool) if major is None else np.asarray(major, bool)
    big = cand & np.append(major, False)[idx]  # idx -1 picks the appended False

    def link(a: tuple, b: tuple) -> np.ndarray:
        return cand[a] & cand[b] & ((idx[a] == idx[b]) | (big[a] & big[b]))

    eh = (link(np.s_[:, 1:], np.s_[:, :-1]) | im.smooth_h) & allowed[:, 1:] & allowed[:, :-1]
    ev = (link(np.s_[1:], np.s_[:-1]) | im.smooth_v) & allowed[1:] & allowed[:-1]
    return _flood(seeds & cand & allowed, eh, ev)


def _dilate4(m: np.ndarray) -> np.ndarray:
    out = m.copy()
    out[1:] |= m[:-1]
    out[:-1] |= m[1:]
    out[:, 1:] |= m[:, :-1]
    out[:, :-1] |= m[:, 1:]
    return out


def _thick(region: np.ndarray, min_core: float = 0.008) -> bool:
    """Has a solid part: >= `min_core` of the image where a 7x7 window is >= 80% region (a dot
    pattern's dots are fine). Thin bands (frame borders, contour rings) and line art are not."""
    core = _box_mean(region.astype(np.float32), 3) >= 0.8
    return bool((core & region).sum() >= min_core * region.size)


def _spans(region: np.ndarray, min_span: float = 0.5) -> bool:
    """Spans >= `min_span` of the image both ways (a symbol is at most ~45% of it)."""
    h, w = region.shape
    ys, xs = np.nonzero(region)
    return bool(len(ys)) and (np.ptp(ys) + 1) >= min_span * h and (np.ptp(xs) + 1) >= min_span * w


def _all_round(x: np.ndarray, ring: np.ndarray, centres: np.ndarray, tol: int, sectors: int = 16,
               min_cover: float = 0.4) -> np.ndarray:
    """The centres whose colour is found all round the ring (in >= `min_cover` of `sectors` angular
    sectors about the image centre): a frame's border and backdrop go all round it, while the
    character or a symbol touches the frame only in a few places."""
    h, w = ring.shape
    ys, xs = np.nonzero(ring)
    turn = np.arctan2(ys - (h - 1) / 2, xs - (w - 1) / 2) / (2 * np.pi) + 0.5
    sector = (turn * sectors).astype(int) % sectors
    px = x[ys, xs]
    keep = [c for c in centres
            if len(np.unique(sector[_cheb(px, c) <= tol])) >= min_cover * sectors]
    return np.array(keep, np.int16).reshape(-1, 3)


def _holes(x: np.ndarray, mask: np.ndarray, tol: int = 40) -> np.ndarray:
    """The small islands left inside the background (a dot pattern's dots): parts of the
    non-background with no solid 7x7 block that are not connected to one, of a colour found all
    round the image, at least 6 compact dot-like ones of about one size, spread over half the image
    both ways.
    Everything the subject is made of has a solid block somewhere, or is a few pieces in one or two
    places (a symbol whose ring merged into the background), or a line of letters, and stays."""
    rest = ~mask
    solid = rest & (_box_mean(rest.astype(np.float32), 3) > 0.999)
    eh, ev = rest[:, 1:] & rest[:, :-1], rest[1:] & rest[:-1]
    small = rest & ~_flood(solid, eh, ev)
    if not small.any():
        return small
    # a pattern's islands share a colour and are spread all round; a symbol's thin pieces (a
    # sparkle whose outline merged into a dark backdrop) sit in one or two places and stay
    colours = _all_round(x, small, dominant_colours(x[small], tol, 0.3, 2), tol, min_cover=0.5)
    if not len(colours):
        return np.zeros_like(small)
    islands = small & (_near(x, colours, tol) | _dilate4(small & _near(x, colours, tol)))  # with rims
    # and they are many, of about one size: a pattern's dots, not the 2-4 pieces of a symbol
    _, inv, area = np.unique(_label(islands)[islands], return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    # dot-like: a compact blob that fills most of a near-square box (a letter does not)
    ys, xs = np.nonzero(islands)
    span_y = np.full(len(area), -1)
    span_x = np.full(len(area), -1)
    lo_y, lo_x = np.full(len(area), 1 << 30), np.full(len(area), 1 << 30)
    np.maximum.at(span_y, inv, ys)
    np.maximum.at(span_x, inv, xs)
    np.minimum.at(lo_y, inv, ys)
    np.minimum.at(lo_x, inv, xs)
    bh, bw = span_y - lo_y + 1, span_x - lo_x + 1
    fill = area / (bh * bw)
    dot = (fill >= 0.5) & (np.maximum(bh, bw) <= 1.7 * np.minimum(bh, bw)) & (area <= 2.5 * np.median(area))
    if dot.sum() < 6:
        return np.zeros_like(small)
    out = np.zeros_like(small)
    out[islands] = dot[inv]
    # spread over the image both ways, like a pattern; a line of letters (a title) is not
    if not _spans(out, 0.5):
        return np.zeros_like(small)
    return out


def background_layers(
    img: np.ndarray, tol: int = 20, smooth_tol: int = 10, max_bands: int = 3, min_subject: float = 0.07
) -> list[np.ndarray]:
    """The background as layers from the outside in: [(H, W) bool, ...], disjoint.

    Layer 1 is the region connected to the image border whose colour is near one of the dominant
    border colours, or changes smoothly from there (gradients). Connectivity is what makes this
    safe: a white face inside a black outline on a white background is not reached, because the
    outline cuts every path. A framed sticker is canvas / (shadow) / frame border / backdrop, so
    the next layers are grown the same way from the 2-pixel ring around what was found (its second
    pixel gives the colours: the first is anti-aliasing) and kept only if, within `max_bands` thin
    bands, the first solid region (`_thick`) spans most of the image (`_spans`): the backdrop.
    If what is left is no longer a solid subject (< `min_subject` of the image in solid parts),
    the peel went into the character (a die-cut sticker's colours) and only layer 1 is returned.
    """
    im = _Img.of(img, smooth_tol)
    x = im.x
    h, w = x.shape[:2]
    edge = np.zeros((h, w), bool)
    edge[0], edge[-1], edge[:, 0], edge[:, -1] = True, True, True, True
    centres = border_colours(img, tol)
    if len(centres) == 0:
        return []
    first = _grow_region(im, edge, np.ones((h, w), bool), centres, tol)
    if not first.any():
        return []
    # a plain background around a subject (or a die-cut sticker: its canvas is wide all round the
    # character, where a frame's canvas is a thin strip with corners): nothing inside to peel
    wide = ((_box_mean(first.astype(np.float32), 7) >= 0.95) & first).mean()
    if (first.mean() > 0.5 and _thick(first)) or (first.mean() > 0.4 and wide >= 0.15):
        return [first]
    layers, bands, taken = [first], [], first.copy()
    for _ in range(max_bands + 1):
        near = _dilate4(taken) | edge  # the image edge counts as outside: a frame may touch it
        ring = _dilate4(near) & ~taken
        # colours from the 2nd and 3rd pixel in: past the anti-aliased (or blurred) seam
        deep = (_dilate4(ring) | ring) & ~near & ~taken
        centres = _all_round(x, deep, dominant_colours(x[deep], tol, 0.08, 4), tol)
        if len(centres) == 0:
            break
        share = np.array([(_cheb(x[deep], c) <= tol).mean() for c in centres])
        grown = _grow_region(im, ring, ~taken, centres, tol, major=share >= 0.2)
        region = _main_parts(x, grown, ring, tol)
        if not region.any():
            break
        if _thick(region):  # the first solid region inside the bands: the backdrop, or stop
            if _spans(region):
                layers += bands + [region]
                layers[-1] = region | _holes(x, _fill_gaps(layers))
            break
        bands.append(region)
        taken |= region
    if len(layers) > 1 and not _thick(~_fill_gaps(layers), min_subject):
        return [first]  # peeled into the subject (a die-cut character's own colours): undo
    return layers


def _fill_gaps(layers: list[np.ndarray]) -> np.ndarray:
    """Union of the layers plus the 1-pixel anti-aliased seams between two of them (a pixel whose
    opposite neighbours lie in different layers; a thin line on one layer, a whisker, stays)."""
    lab = np.zeros(layers[0].shape, np.int8)
    for i, layer in enumerate(layers):
        lab[layer] = i + 1
    p = np.pad(lab, 1)
    up, down, left, right = p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]
    gap = ((up > 0) & (down > 0) & (up != down)) | ((left > 0) & (right > 0) & (left != right))
    return (lab > 0) | gap


def background_mask(img: np.ndarray, tol: int = 20, smooth_tol: int = 10) -> np.ndarray:
    """(H, W) bool: the union of `background_layers` (canvas, frame, backdrop)."""
    layers = background_layers(img, tol, smooth_tol)
    return _fill_gaps(layers) if layers else np.zeros(img.shape[:2], bool)


def dark_mask(img: np.ndarray, threshold: float = 70.0) -> np.ndarray:
    """(H, W) bool: near-black pixels (line art, outlines, dark symbol strokes)."""
    return _luma(img) < threshold


# ----------------------------------------------------------------------------- the ops


def hue_rotate(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate every hue by the same angle (60-300 degrees, so the change is visible); greys stay.

    Risky: it also turns a red heart blue. Shapes, luminance order and the outline are kept.
    """
    h, s, v = rgb_to_hsv(_f32(img))
    return _u8(hsv_to_rgb(h + np.float32(rng.uniform(1 / 6, 5 / 6)), s, v))


def palette_remap(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random smooth, monotonic hue curve (each hue moves by a different amount) plus a
    saturation and a brightness curve: a new palette, as a theme's palette remap gives.

    Risky like `hue_rotate` (symbol colours move too), but colours that differed stay different:
    the curve's slope is kept positive so the hue order around the circle is preserved.
    """
    h, s, v = rgb_to_hsv(_f32(img))
    offset = rng.uniform(0.1, 0.9)
    # h + offset + sum a_k sin(2 pi k h + phi_k) with sum 2 pi k |a_k| < 0.9: the slope stays > 0.1
    a1, a2 = rng.uniform(-1, 1, 2) * np.array([0.9 / (2 * np.pi) * 0.6, 0.9 / (4 * np.pi) * 0.4])
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    h2 = h + offset + a1 * np.sin(2 * np.pi * h + p1) + a2 * np.sin(4 * np.pi * h + p2)
    s2 = s ** np.float32(rng.uniform(0.6, 1.6))
    v2 = v ** np.float32(rng.uniform(0.8, 1.25))
    return _u8(hsv_to_rgb(h2.astype(np.float32), s2, v2))


def recolour(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give the main colour of the subject (on stickers: the character's body) a new hue; other
    colours, including a differently coloured symbol, stay.

    The colour is the peak of a 24-bin hue histogram of the saturated, not-dark, not-background
    pixels, weighted by nearness to the image centre (the character is centred, symbols sit at
    the sides). Pixels within about 22 degrees of it move, with a soft edge so
    anti-aliased pixels follow, but only in the character's own connected body (`_main_body`), so a
    symbol of the same hue (an orange flame by an orange fox) keeps its colour. If there is no such
    colour (a white or grey character), the subject's near-grey pixels are tinted instead.
    """
    x = _f32(img)
    hh, ww = img.shape[:2]
    h, s, v = rgb_to_hsv(x)
    fg = ~background_mask(img)
    if fg.sum() < 0.05 * fg.size:
        fg = np.ones_like(fg)
    yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float32)
    sigma = 0.25 * min(hh, ww)
    central = np.exp(-((yy - hh / 2) ** 2 + (xx - ww / 2) ** 2) / (2 * sigma**2))
    chroma = fg & (s > 0.25) & (v > 0.3)
    centre = None
    if chroma.sum() >= 8:
        bins = (h[chroma] * 24).astype(int) % 24
        # by area, not saturation: a vivid symbol must not outweigh a pastel character
        hist = np.bincount(bins, weights=central[chroma], minlength=24)
        hist = hist + 0.5 * (np.roll(hist, 1) + np.roll(hist, -1))  # a colour on a bin edge is one colour
        peak = int(hist.argmax())
        share = np.isin(bins, [(peak - 1) % 24, peak, (peak + 1) % 24]).sum() / fg.sum()
        # under ~a quarter of the subject, the peak may be a symbol (a blue tear by a white dog)
        centre = (peak + 0.5) / 24 if share >= 0.23 else None
    weight = np.zeros_like(s)
    if centre is not None:
        dist = np.abs((h - centre + 0.5) % 1.0 - 0.5)  # circular hue distance in turns
        weight = np.clip((0.09 - dist) / 0.03, 0.0, 1.0) * np.clip((s - 0.1) / 0.15, 0.0, 1.0) * fg
        weight *= _main_body(weight > 0.5, fg & (_luma(x) < 0.35), central_radius=0.25 * min(hh, ww))
    if weight.sum() < 8:  # no main hue: a white / grey character, tint its light neutral pixels
        tint = _random_colour(rng, (0.35, 0.8), (0.85, 1.0)).astype(np.float32)
        weight = fg * np.clip((0.3 - s) / 0.15, 0.0, 1.0) * np.clip((v - 0.3) / 0.2, 0.0, 1.0)
        return _u8(x + (x * tint - x) * weight[..., None])
    shift = np.float32(rng.uniform(0.2, 0.8))
    s2 = np.clip(s * np.float32(rng.uniform(0.7, 1.3)), 0.0, 1.0)
    new = hsv_to_rgb(h + shift, s2, v)
    return _u8(x + (new - x) * weight[..., None])


def _main_body(colour: np.ndarray, lines: np.ndarray, central_radius: float) -> np.ndarray:
    """(H, W) float in {0, 1}: the part of `colour` (a hue cluster) that forms the character.

    Pixels of the cluster joined through line art (`lines`: the character's inner lines link its
    parts) form components; the one holding most of the cluster is the character, if its centroid
    is within `central_radius` of the image centre (symbols sit at the sides, behind a white halo
    that no line crosses, so a symbol of the character's hue stays). Dilated by one pixel so the
    anti-aliased rim follows.
    """
    hh, ww = colour.shape
    lab = _label(colour | lines)
    ids, inv, _ = np.unique(lab[colour], return_inverse=True, return_counts=True)
    if not len(ids):
        return np.zeros((hh, ww), np.float32)
    best = ids[int(np.bincount(inv.reshape(-1)).argmax())]
    body = colour & (lab == best)
    ys, xs = np.nonzero(body)
    if np.hypot(ys.mean() - hh / 2, xs.mean() - ww / 2) > central_radius:
        return np.zeros((hh, ww), np.float32)
    return _dilate4(body).astype(np.float32)


def greyscale(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Luma copied to the three channels: zero saturation; shapes and contrast stay."""
    y = _luma(img)
    return np.repeat((y + 0.5).clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)


def channel_permute(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Permute R, G, B (never the identity). Risky: a red heart becomes green or blue."""
    perms = [(0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    return np.ascontiguousarray(img[..., list(perms[int(rng.integers(len(perms)))])])


def colour_grade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lift / gamma / gain per channel plus contrast: a film grade (warm, cool, faded, punchy).

    Mild: hues drift by a few degrees, so a red heart stays red.
    """
    x = _f32(img)
    tint = rng.uniform(-1, 1, 3).astype(np.float32)
    gamma = np.exp(0.25 * tint * rng.uniform(0.3, 1.0)).astype(np.float32)
    gain = (1.0 + 0.12 * rng.uniform(-1, 1, 3)).astype(np.float32)
    lift = (rng.uniform(0.0, 0.12) + 0.03 * rng.uniform(-1, 1, 3)).astype(np.float32)
    y = (x**gamma) * gain
    y = lift + (1.0 - lift) * y
    contrast = np.float32(rng.uniform(0.75, 1.3))
    return _u8((y - 0.5) * contrast + 0.5)


def posterize(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep 2-3 bits per channel (flat, banded colour); each level is the middle of its bin."""
    bits = int(rng.integers(2, 4))
    q = 256 >> bits
    return ((img // q) * q + q // 2).astype(np.uint8)


def texture_overlay(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add a low-amplitude pattern (stripes, checker, dots, grain, crosshatch) to every pixel.

    Amplitude 6-18 of 255 (x 0.7-1.3 per channel): flat regions get a visible texture, lines and
    symbols stay readable.
    """
    h, w = img.shape[:2]
    p = _pattern(str(rng.choice(_PATTERNS)), h, w, rng)
    amp = np.float32(rng.uniform(6.0, 18.0))
    tint = 1.0 + 0.3 * rng.uniform(-1, 1, 3).astype(np.float32)  # a coloured texture, not only grey
    out = img.astype(np.float32) + amp * p[..., None] * tint
    return (out + 0.5).clip(0, 255).astype(np.uint8)


def background_swap(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replace the background (`background_layers`) with new colours; the subject is untouched.

    A framed sticker gets a new backdrop (flat colour, gradient or pattern), a new frame border
    colour (bands within 3 px of the canvas) and a new canvas colour; one time in three they all
    become one new fill (the frame is gone). A plain background gets a new fill. The new colours
    keep the old local lightness (+-0.12, squeezed into [0.15, 0.85]), so a title or symbol on it
    stays legible. Pixels of the
    subject's anti-aliased rim that still look like the old backdrop are blended toward the new
    one by how close they are to it, so no halo of the old colour stays. If the image has no
    detectable background (under 3% of it), a new frame is drawn instead.
    """
    layers = background_layers(img)
    mask = _fill_gaps(layers) if layers else np.zeros(img.shape[:2], bool)
    if mask.sum() < 0.03 * mask.size:
        return frame_replace(img, rng)
    h, w = img.shape[:2]
    x = _f32(img)
    back = layers[-1]
    old = x[back].mean(0)
    new = _fill(h, w, rng, avoid=old).astype(np.float32)
    if len(layers) > 1:
        # the bands between canvas and backdrop change only near the canvas (a frame's border, a
        # shadow); deeper band pixels are left alone: if the peel went into the subject (its line
        # art, a symbol's ring), they are the subject
        outside = layers[0] | np.pad(np.zeros((h - 2, w - 2), bool), 1, constant_values=True)
        for _ in range(3):
            outside = _dilate4(outside)
        keep = mask & ~back & ~layers[0] & ~outside
        mask = mask & ~keep
        if rng.random() >= 1 / 3:  # else: one fill for all, the frame is gone
            band = _random_colour(rng, (0.2, 1.0), (0.1, 0.9)).astype(np.float32)
            new = np.where((mask & ~back)[..., None], band, new)
            canvas = _random_colour(rng, (0.0, 0.5), (0.75, 1.0)).astype(np.float32)
            new = np.where(layers[0][..., None], canvas, new)
    # keep the background's local lightness: whatever is drawn on it (a title, a symbol, line art)
    # keeps its contrast; hue, saturation and pattern are what change
    m = mask.astype(np.float32)
    cover = np.maximum(_box_mean(m, 2), 1e-6)
    old_y = _box_mean(_luma(x) * m, 2) / cover
    new_y = _box_mean(_luma(new) * m, 2) / cover
    # squeezed into [0.15, 0.85] so that a white or black background can take a colour at all
    target = 0.15 + 0.7 * np.clip(old_y + np.float32(rng.uniform(-0.12, 0.12)), 0.0, 1.0)
    new = np.clip(new + (target - new_y)[..., None], 0.0, 1.0)
    # rim: 1 pixel next to the backdrop; weight = how much of the backdrop's colour right there
    # (its 3x3 mean: a backdrop may have several colours) it still holds
    share = _box_mean(back.astype(np.float32), 1)
    near = ~mask & (share > 0)
    local = _box_mean(x * back[..., None], 1) / np.maximum(share, 1e-6)[..., None]
    sim = np.clip(1.0 - _cheb(x, local) / 0.35, 0.0, 1.0) * near
    alpha = np.maximum(mask.astype(np.float32), sim)[..., None]
    return _u8(x * (1.0 - alpha) + new * alpha)


def outline_change(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Change the line art: recolour it (a dark saturated colour), thicken it by one pixel, or
    soften it into a darker shade of the colour around it ("sel-out" lines).

    Only near-black pixels outside the background change (a dark background is not line art), so
    symbols keep their shape; black symbols (zzz, a note) get the new line colour.
    """
    x = _f32(img)
    y = _luma(x)
    bg = background_mask(img)
    # soft darkness: 1 for black, 0 from luma 0.45 up, so anti-aliased line pixels change partly;
    # and a dark line has no bright channel: a saturated red stroke (an anger mark) is not one
    dark = np.clip((0.45 - y) / 0.3, 0.0, 1.0) * np.clip((0.7 - x.max(-1)) / 0.35, 0.0, 1.0) * ~bg
    mode = str(rng.choice(["recolour", "thicken", "soften"]))
    if mode == "thicken":
        # each pixel next to a line takes the colour of its darkest 4-neighbour (a cross, not a
        # 3x3 square: diagonal growth makes blocky corners at this size)
        shifts = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
        stack = np.stack([_shift(x, dy, dx) for dy, dx in shifts])  # (5, H, W, 3)
        lum = stack @ _LUMA
        lum[np.stack([_shift(bg, dy, dx) for dy, dx in shifts])] = np.inf  # not from a dark backdrop
        darkest = np.take_along_axis(stack, lum.argmin(0)[None, ..., None], 0)[0]
        # not into vivid colour: a symbol's thin coloured strokes (an anger mark) would vanish
        _, sat, val = rgb_to_hsv(x)
        vivid = (sat > 0.45) & (val > 0.5)
        grow = (_luma(darkest) < 0.2) & (y > 0.2) & (lum.min(0) < 0.2) & ~vivid
        return _u8(np.where(grow[..., None], darkest, x))
    if mode == "recolour":
        colour = _random_colour(rng, (0.5, 1.0), (0.3, 0.6)).astype(np.float32)
        target = colour + x  # black -> colour, a half-black pixel keeps half its own colour
    else:  # soften: the mean non-dark colour around the line, darkened
        light = (y > 0.45).astype(np.float32)
        num = _box_mean(x * light[..., None], 2)
        den = _box_mean(light, 2)[..., None]
        around = np.where(den > 1e-3, num / np.maximum(den, 1e-3), x)
        target = around * np.float32(rng.uniform(0.35, 0.6))
    return _u8(x + (target - x) * dark[..., None])


def blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur, radius 0.5-1.0 px: soft edges instead of crisp ones; shapes stay (thin
    strokes, an anger mark or sparkles at 64 px, lose contrast but keep their colour)."""
    radius = float(rng.uniform(0.5, 1.0))
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)), dtype=np.uint8)


def frame_replace(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a new frame: a band of 2-4 px (square or rounded corners) in a new colour, optionally
    with a dark inner line. Only the outer few pixels (and the corners) change."""
    h, w = img.shape[:2]
    x = _f32(img)
    band = float(rng.integers(2, 5))
    radius = float(rng.choice([0.0, rng.uniform(1.0, max(min(h, w) / 5, 1.0))]))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # signed distance to a rounded rectangle inset by `band` (negative inside)
    qy = np.abs(yy + 0.5 - h / 2) - (h / 2 - band - radius)
    qx = np.abs(xx + 0.5 - w / 2) - (w / 2 - band - radius)
    d = np.hypot(np.maximum(qy, 0), np.maximum(qx, 0)) + np.minimum(np.maximum(qy, qx), 0) - radius
    colour = _random_colour(rng, (0.0, 0.9), (0.3, 1.0)).astype(np.float32)
    alpha = np.clip(d + 0.5, 0.0, 1.0)[..., None]  # 1 px anti-aliased edge
    out = x * (1 - alpha) + colour * alpha
    if rng.random() < 0.5:
        line = np.clip(1.0 - np.abs(d + 0.5), 0.0, 1.0)[..., None]
        out = out * (1 - line) + colour * 0.25 * line
    return _u8(out)


def jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small affine jitter: shift up to 3 px, scale 0.92-1.08, rotate up to 6 degrees; the uncovered
    border takes the dominant border colour. A layout nudge, not a style change."""
    h, w = img.shape[:2]
    ang = np.deg2rad(rng.uniform(-6, 6))
    sc = rng.uniform(0.92, 1.08)
    ty, tx = rng.uniform(-3, 3, 2)
    cy, cx = h / 2, w / 2
    # PIL wants the inverse map: output (x, y) -> input (a x + b y + c, d x + e y + f)
    cos, sin = np.cos(ang) / sc, np.sin(ang) / sc
    a, b, d, e = cos, sin, -sin, cos
    c = cx - a * (cx + tx) - b * (cy + ty)
    f = cy - d * (cx + tx) - e * (cy + ty)
    bc = border_colours(img)
    fill = tuple(int(v) for v in (bc[0] if len(bc) else _border(img).mean(0)))
    out = Image.fromarray(img).transform(
        (w, h), Image.Transform.AFFINE, (a, b, c, d, e, f), resample=Image.Resampling.BILINEAR, fillcolor=fill
    )
    return np.asarray(out, dtype=np.uint8)


# ----------------------------------------------------------------------------- registry


# Registry order is also the order ops are applied in a composition: region ops first (they
# detect the background / lines on the clean image), global colour next, texture and blur last.
AUGMENTATIONS: dict[str, Augmentation] = {
    "jitter": jitter,
    "background_swap": background_swap,
    "frame_replace": frame_replace,
    "outline_change": outline_change,
    "recolour": recolour,
    "hue_rotate": hue_rotate,
    "palette_remap": palette_remap,
    "channel_permute": channel_permute,
    "greyscale": greyscale,
    "colour_grade": colour_grade,
    "posterize": posterize,
    "texture_overlay": texture_overlay,
    "blur": blur,
}

# Meant to change the style strongly (a style probe should lose confidence on them).
STYLE_CHANGING: tuple[str, ...] = (
    "background_swap",
    "frame_replace",
    "outline_change",
    "recolour",
    "hue_rotate",
    "palette_remap",
    "channel_permute",
    "greyscale",
    "texture_overlay",
)

# Change the colour of every pixel, the symbol's included: a colour-coded symbol (red heart, blue
# tear) keeps its shape but may lose its colour cue. Leave them out where colour is semantics.
RISKY: tuple[str, ...] = ("hue_rotate", "palette_remap", "channel_permute", "greyscale")

# At most one op of each group in one composition: they all rewrite the global colour, so a second
# one would undo or hide the first (hue_rotate after greyscale does nothing).
EXCLUSIVE: tuple[frozenset[str], ...] = (
    frozenset({"hue_rotate", "palette_remap", "channel_permute", "greyscale"}),
    frozenset({"background_swap", "frame_replace"}),
)


def get_augmentation(name: str) -> Augmentation:
    """The op registered as `name`; DrcError listing the valid names otherwise."""
    try:
        return AUGMENTATIONS[name]
    except KeyError:
        raise DrcError(f"unknown augmentation {name!r}; valid: {', '.join(AUGMENTATIONS)}") from None


@dataclass
class AugmentConfig:
    """A random composition: `n_ops` (inclusive range) distinct ops drawn from `names`.

    min_style_ops: at least this many of the drawn ops are in STYLE_CHANGING (if `names` has any),
    so a reference never differs from its target only by a blur.
    p_risky: each composition may draw from RISKY (global recolourings that also recolour a
    colour-coded symbol) only with this probability; 0 never, 1 like any other op.
    """

    names: tuple[str, ...] = field(default_factory=lambda: tuple(AUGMENTATIONS))
    n_ops: tuple[int, int] = (1, 3)
    min_style_ops: int = 1
    p_risky: float = 0.25  # chance that a composition may use the RISKY ops (they recolour symbols)

    def __post_init__(self) -> None:
        self.names = tuple(self.names)
        self.n_ops = (int(self.n_ops[0]), int(self.n_ops[1]))
        if not self.names:
            raise DrcError("augment.names is empty; valid names: " + ", ".join(AUGMENTATIONS))
        for n in self.names:
            get_augmentation(n)
        if len(set(self.names)) != len(self.names):
            raise DrcError(f"augment.names has duplicates: {list(self.names)}")
        lo, hi = self.n_ops
        if not 1 <= lo <= hi:
            raise DrcError(f"augment.n_ops must be (lo, hi) with 1 <= lo <= hi, got {self.n_ops}")
        if not 0.0 <= self.p_risky <= 1.0:
            raise DrcError(f"augment.p_risky must be in [0, 1], got {self.p_risky}")
        if self.min_style_ops < 0 or self.min_style_ops > lo:
            raise DrcError(f"augment.min_style_ops must be in [0, n_ops[0]={lo}], got {self.min_style_ops}")


def sample_ops(rng: np.random.Generator, cfg: AugmentConfig) -> list[str]:
    """The op names of one composition, in application (registry) order."""
    n = int(rng.integers(cfg.n_ops[0], cfg.n_ops[1] + 1))
    names = list(cfg.names)
    if rng.random() >= cfg.p_risky and any(x not in RISKY for x in names):
        names = [x for x in names if x not in RISKY]
    style = [x for x in names if x in STYLE_CHANGING]
    chosen: list[str] = []

    def allowed(name: str) -> bool:
        return name not in chosen and not any(name in g and g.intersection(chosen) for g in EXCLUSIVE)

    for pool, count in ((style, min(cfg.min_style_ops, n)), (names, n)):
        while len(chosen) < count:
            options = [x for x in pool if allowed(x)]
            if not options:
                break
            chosen.append(options[int(rng.integers(len(options)))])
    order = list(AUGMENTATIONS)
    return sorted(chosen, key=order.index)


def _check_image(img: np.ndarray) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        got = f"{getattr(img, 'dtype', type(img).__name__)} {getattr(img, 'shape', '')}"
        raise DrcError(f"augment expects a uint8 (H, W, 3) image, got {got}")
    if min(img.shape[:2]) < 3:
        raise DrcError(f"augment needs an image of at least 3x3 pixels, got {img.shape[:2]}")


def apply_ops(img: np.ndarray, names: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """Apply the named ops in the given order."""
    _check_image(img)
    out = img
    for name in names:
        out = get_augmentation(name)(out, rng)
    return out


def augment(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig | None = None) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (H, W, 3): a random composition of `cfg.n_ops` ops.

    Deterministic given the rng's state (the composition and every op's parameters come from it).
    """
    cfg = cfg or AugmentConfig()
    return apply_ops(img, sample_ops(rng, cfg), rng)


def augment_batch(
    images: torch.Tensor, rng: np.random.Generator, cfg: AugmentConfig | None = None
) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> uint8 (B, 3, H, W) on the same device; one composition per image."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        got = f"{images.dtype} {tuple(images.shape)}"
        raise DrcError(f"augment_batch expects a uint8 (B, 3, H, W) tensor, got {got}")
    cfg = cfg or AugmentConfig()
    arr = images.detach().cpu().permute(0, 2, 3, 1).contiguous().numpy()
    out = np.stack([augment(a, rng, cfg) for a in arr]) if len(arr) else arr.copy()
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().to(images.device)
