"""Semantic-preserving augmentations: change an image's STYLE, keep its SEMANTICS.

Stage 2 trains on `(H, y, r = A(y))`: the reference is an augmentation of the target, so the
generator can only take style from the history and semantics from `r` if `A` really moves the
style (palette, outline, background, frame, texture) and keeps what the image says (the intent
symbol, the pose, the motif). Every op works on one uint8 (H, W, 3) array with a numpy Generator
and returns a new uint8 (H, W, 3) array of the same size; non-square images are fine.

Which ops touch the semantics: on the benchmarks a symbol's identity is partly its colour (red
heart, blue tear), so ops that move the hue of EVERY pixel (`hue_rotate`, `palette_remap`,
`channel_permute`) can make a heart blue; the shape still says "heart", but the colour cue is gone.
Ops that work on a detected region (`background_swap`, `frame_replace`, `recolour`'s dominant
foreground colour, `outline_change`'s dark lines) or are low-amplitude (`texture_overlay`,
`colour_grade`, `blur`, `posterize`) leave symbol colours readable. See `RISKY`.

Entry points: `AUGMENTATIONS` (name -> fn(img, rng)), `augment` (a random composition of 1-3 ops),
`augment_batch` (uint8 torch (B, 3, H, W)), `get_augmentation`, and `background_mask` (the
border-connected background region, also used by the tests).
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


def rgb_to_hsv(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) float in [0, 1] -> hue in [0, 1) (turns), saturation, value; each (H, W)."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(-1)
    c = v - x.min(-1)
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


def _flood(seeds: np.ndarray, eh: np.ndarray, ev: np.ndarray) -> np.ndarray:
    """Pixels connected to `seeds` through the graph whose edges are `eh` (H, W-1) between
    horizontal neighbours and `ev` (H-1, W) between vertical ones.

    Vectorised: label the maximal horizontal and vertical runs of connected pixels once, then
    alternately mark whole runs that contain a reached pixel. Each sweep crosses a run in one step,
    so this converges in about as many sweeps as the region's path has turns (a handful), instead
    of one step per pixel as a BFS or a repeated dilation would.
    """
    h, w = seeds.shape
    starts = np.ones((h, w), bool)
    starts[:, 1:] = ~eh
    lab_h = np.cumsum(starts.ravel()).reshape(h, w) - 1
    starts_v = np.ones((w, h), bool)
    starts_v[:, 1:] = ~ev.T
    lab_v = (np.cumsum(starts_v.ravel()).reshape(w, h) - 1).T
    n_h, n_v = int(lab_h[-1, -1]) + 1, int(lab_v.max()) + 1
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
    # work on the distinct colours (a flat background has one): the (U, U) matrix stays small
    packed, count = np.unique((b[:, 0] << 16) | (b[:, 1] << 8) | b[:, 2], return_counts=True)
    u = np.stack([packed >> 16, (packed >> 8) & 255, packed & 255], 1).astype(np.int16)
    close = np.abs(u[:, None, :] - u[None, :, :]).max(-1) <= tol  # (U, U)
    alive = np.ones(len(u), bool)
    out = []
    for _ in range(k):
        covered = (close * (count * alive)[None, :]).sum(1) * alive
        i = int(covered.argmax())
        if covered[i] < min_frac * n:
            break
        members = close[i] & alive
        out.append(np.repeat(u[members], count[members], axis=0).mean(0).round())
        alive &= ~members
    return np.array(out, np.int16).reshape(-1, 3)


def border_colours(img: np.ndarray, tol: int = 20, min_frac: float = 0.1, k: int = 3) -> np.ndarray:
    """The dominant colours of the image's outermost pixel ring (see `dominant_colours`)."""
    return dominant_colours(_border(img), tol, min_frac, k)


def _grow_region(x: np.ndarray, seeds: np.ndarray, allowed: np.ndarray, centres: np.ndarray, tol: int,
                 smooth_tol: int) -> np.ndarray:
    """Flood from `seeds` within `allowed`: neighbours are linked if both are within `tol` of one
    of `centres` (flat and 2-colour patterned regions) or differ by <= `smooth_tol` (gradients)."""
    cand = (np.abs(x[:, :, None, :] - centres[None, None]).max(-1) <= tol).any(-1)
    eh = (cand[:, 1:] & cand[:, :-1]) | (np.abs(x[:, 1:] - x[:, :-1]).max(-1) <= smooth_tol)
    ev = (cand[1:] & cand[:-1]) | (np.abs(x[1:] - x[:-1]).max(-1) <= smooth_tol)
    eh &= allowed[:, 1:] & allowed[:, :-1]
    ev &= allowed[1:] & allowed[:-1]
    return _flood(seeds & cand & allowed, eh, ev)


def _dilate4(m: np.ndarray) -> np.ndarray:
    out = m.copy()
    out[1:] |= m[:-1]
    out[:-1] |= m[1:]
    out[:, 1:] |= m[:, :-1]
    out[:, :-1] |= m[:, 1:]
    return out


def _is_backdrop(region: np.ndarray, erode: int = 3, min_core: float = 0.03, min_span: float = 0.7) -> bool:
    """A region is a backdrop (the background inside a frame) if it is thick somewhere (something
    is left after eroding it by `erode` px) and spans most of the image in both directions; thin
    bands (frame borders, contour rings) and line art are not."""
    h, w = region.shape
    core = _box_mean(region.astype(np.float32), erode) > 0.999
    if core.sum() < min_core * h * w:
        return False
    ys, xs = np.nonzero(region)
    return (ys.max() - ys.min() + 1) >= min_span * h and (xs.max() - xs.min() + 1) >= min_span * w


def background_layers(img: np.ndarray, tol: int = 20, smooth_tol: int = 10, max_bands: int = 3) -> list[np.ndarray]:
    """The background as layers from the outside in: [(H, W) bool, ...], disjoint.

    Layer 1 is the region connected to the image border whose colour is near one of the dominant
    border colours, or changes smoothly from there (gradients). Connectivity is what makes this
    safe: a white face inside a black outline on a white background is not reached, because the
    outline cuts every path. A framed sticker is canvas / (shadow) / frame border / backdrop: so
    the next layers are grown the same way from the ring of pixels around what was found, and
    kept only if they end in a backdrop (`_is_backdrop`): thin bands followed by the character's
    contour or lines are dropped again, so a die-cut sticker's character is never peeled.
    """
    x = img.astype(np.int16)
    h, w = x.shape[:2]
    edge = np.zeros((h, w), bool)
    edge[0], edge[-1], edge[:, 0], edge[:, -1] = True, True, True, True
    centres = border_colours(img, tol)
    if len(centres) == 0:
        return []
    first = _grow_region(x, edge, np.ones((h, w), bool), centres, tol, smooth_tol)
    if not first.any():
        return []
    layers, bands, taken = [first], [], first.copy()
    if _is_backdrop(first) and first.mean() > 0.5:
        return layers  # a plain background around a subject: nothing inside to peel
    for _ in range(max_bands + 1):
        ring = _dilate4(taken) & ~taken
        centres = dominant_colours(x[ring], tol, 0.15)
        if len(centres) == 0:
            break
        region = _grow_region(x, ring, ~taken, centres, tol, smooth_tol)
        if not region.any():
            break
        if _is_backdrop(region):
            layers += bands + [region]
            break
        bands.append(region)
        taken |= region
    return layers


def background_mask(img: np.ndarray, tol: int = 20, smooth_tol: int = 10) -> np.ndarray:
    """(H, W) bool: the union of `background_layers` (canvas, frame, backdrop)."""
    layers = background_layers(img, tol, smooth_tol)
    out = np.zeros(img.shape[:2], bool)
    for m in layers:
        out |= m
    return out


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
    """Give the dominant chromatic colour of the foreground (on stickers: the character's body) a
    new hue; the rest, including a differently coloured symbol, keeps its colours.

    The colour is found on a 24-bin hue histogram of the saturated, not-dark foreground pixels,
    weighted by saturation; pixels within about 22 degrees of it move, with a soft edge so
    anti-aliased pixels follow. Falls back to the whole image if there is no background.
    """
    x = _f32(img)
    h, s, v = rgb_to_hsv(x)
    fg = ~background_mask(img)
    if fg.sum() < 0.05 * fg.size:
        fg = np.ones_like(fg)
    chroma = fg & (s > 0.25) & (v > 0.3)
    if chroma.sum() < 8:  # nothing coloured to recolour: tint the foreground's greys instead
        tint = _random_colour(rng, (0.5, 0.9), (0.6, 1.0))
        out = np.where(fg[..., None], x * (0.6 + 0.4 * tint), x)
        return _u8(out)
    hist = np.bincount((h[chroma] * 24).astype(int) % 24, weights=s[chroma], minlength=24)
    hist = hist + 0.5 * (np.roll(hist, 1) + np.roll(hist, -1))  # a colour on a bin edge is one colour
    centre = (int(hist.argmax()) + 0.5) / 24
    dist = np.abs((h - centre + 0.5) % 1.0 - 0.5)  # circular hue distance in turns
    weight = np.clip((0.09 - dist) / 0.03, 0.0, 1.0) * np.clip((s - 0.1) / 0.15, 0.0, 1.0) * fg
    shift = np.float32(rng.uniform(0.2, 0.8))
    s2 = np.clip(s * np.float32(rng.uniform(0.7, 1.3)), 0.0, 1.0)
    new = hsv_to_rgb(h + shift, s2, v)
    return _u8(x + (new - x) * weight[..., None])


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

    Amplitude 8-22 of 255: flat regions get a visible texture, lines and symbols stay readable.
    """
    h, w = img.shape[:2]
    p = _pattern(str(rng.choice(_PATTERNS)), h, w, rng)
    amp = np.float32(rng.uniform(8.0, 22.0))
    tint = 1.0 + 0.3 * rng.uniform(-1, 1, 3).astype(np.float32)  # a coloured texture, not only grey
    out = img.astype(np.float32) + amp * p[..., None] * tint
    return (out + 0.5).clip(0, 255).astype(np.uint8)


def background_swap(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replace the border-connected background (`background_mask`) with a new flat colour,
    gradient or pattern. The subject, inside its outline, is untouched.

    Pixels of the subject's anti-aliased rim that still look like the old background are blended
    toward the new one by how close they are to it, so no halo of the old colour stays. If the image
    has no detectable background (under 3% of it), a new frame is drawn instead.
    """
    mask = background_mask(img)
    if mask.sum() < 0.03 * mask.size:
        return frame_replace(img, rng)
    h, w = img.shape[:2]
    x = _f32(img)
    old = x[mask].mean(0)
    new = _fill(h, w, rng, avoid=old).astype(np.float32)
    # rim: 1 pixel next to the background; weight = how much of the old colour it still holds
    near = ~mask & (_box_mean(mask.astype(np.float32), 1) > 0)
    sim = np.clip(1.0 - np.abs(x - old).max(-1) / 0.35, 0.0, 1.0) * near
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
    # soft darkness: 1 for black, 0 from luma 0.45 up, so anti-aliased line pixels change partly
    dark = np.clip((0.45 - y) / 0.3, 0.0, 1.0) * ~bg
    mode = str(rng.choice(["recolour", "thicken", "soften"]))
    if mode == "thicken":
        # each pixel next to a line takes the colour of its darkest 3x3 neighbour
        shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        stack = np.stack([_shift(x, dy, dx) for dy, dx in shifts])  # (9, H, W, 3)
        darkest = np.take_along_axis(stack, (stack @ _LUMA).argmin(0)[None, ..., None], 0)[0]
        grow = (_luma(darkest) < 0.2) & (y > 0.2)
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
    """Gaussian blur, radius 0.6-1.3 px: soft edges instead of crisp ones; shapes stay."""
    radius = float(rng.uniform(0.6, 1.3))
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)), dtype=np.uint8)


def frame_replace(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a new frame: a band of 2-4 px (square or rounded corners) in a new colour, optionally
    with a dark inner line. Only the outer few pixels (and the corners) change."""
    h, w = img.shape[:2]
    x = _f32(img)
    band = float(rng.integers(2, 5))
    radius = float(rng.choice([0.0, rng.uniform(4.0, min(h, w) / 5)]))
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
    """

    names: tuple[str, ...] = field(default_factory=lambda: tuple(AUGMENTATIONS))
    n_ops: tuple[int, int] = (1, 3)
    min_style_ops: int = 1

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
        if self.min_style_ops < 0 or self.min_style_ops > lo:
            raise DrcError(f"augment.min_style_ops must be in [0, n_ops[0]={lo}], got {self.min_style_ops}")


def sample_ops(rng: np.random.Generator, cfg: AugmentConfig) -> list[str]:
    """The op names of one composition, in application (registry) order."""
    n = int(rng.integers(cfg.n_ops[0], cfg.n_ops[1] + 1))
    style = [x for x in cfg.names if x in STYLE_CHANGING]
    chosen: list[str] = []

    def allowed(name: str) -> bool:
        return name not in chosen and not any(name in g and g.intersection(chosen) for g in EXCLUSIVE)

    for pool, count in ((style, min(cfg.min_style_ops, n)), (list(cfg.names), n)):
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
