"""Pixel, colour and connectivity helpers on uint8 (H, W, 3) arrays and (H, W) bool masks: shared by
the region finder (`drc.data.regions`) and the augmentation ops (`drc.data.augment_ops`)."""

from __future__ import annotations

import numpy as np

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


# ----------------------------------------------------------------------------- pixel and colour helpers


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


def _dilate4(m: np.ndarray) -> np.ndarray:
    """`m` grown by one pixel to its 4 neighbours."""
    out = m.copy()
    out[1:] |= m[:-1]
    out[:-1] |= m[1:]
    out[:, 1:] |= m[:, :-1]
    out[:, :-1] |= m[:, 1:]
    return out


def _erode4(m: np.ndarray) -> np.ndarray:
    """Pixels of `m` whose 4 neighbours are all in `m` (the image edge counts as in)."""
    p = np.pad(m, 1, mode="edge")
    return m & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]


def _border(a: np.ndarray) -> np.ndarray:
    """The pixels of the outermost ring of `a` (H, W, ...) -> (N, ...)."""
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


# ----------------------------------------------------------------------------- connectivity


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
