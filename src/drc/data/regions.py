"""Where things are in an image: the background (canvas, frame, backdrop) and dark line art.

`background_layers` peels a sticker's background from the outside in (canvas, shadow, frame
border, backdrop), by colour and connectivity, and `background_mask` is their union. The region
ops of `drc.data.augment` (`background_swap`, `outline_change`, `recolour`) use them so that they
change the background or the line art and leave the subject alone; the tests use them to check
that. The pixel and colour helpers are `drc.data.pixel_ops`.
All functions take uint8 (H, W, 3) arrays (or (H, W) bool masks); any size, square or not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drc.data.pixel_ops import (
    _border,
    _box_mean,
    _cheb,
    _dilate4,
    _erode4,
    _flood,
    _label,
    _luma,
    _near,
    rgb_to_hsv,
)

# ----------------------------------------------------------------------------- colours


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


def _all_round(
    x: np.ndarray, ring: np.ndarray, centres: np.ndarray, tol: int, sectors: int = 16, min_cover: float = 0.4
) -> np.ndarray:
    """The centres whose colour is found all round the ring (in >= `min_cover` of `sectors` angular
    sectors about the image centre): a frame's border and backdrop go all round it, while the
    character or a symbol touches the frame only in a few places."""
    h, w = ring.shape
    ys, xs = np.nonzero(ring)
    turn = np.arctan2(ys - (h - 1) / 2, xs - (w - 1) / 2) / (2 * np.pi) + 0.5
    sector = (turn * sectors).astype(int) % sectors
    px = x[ys, xs]
    keep = [c for c in centres if len(np.unique(sector[_cheb(px, c) <= tol])) >= min_cover * sectors]
    return np.array(keep, np.int16).reshape(-1, 3)


# ----------------------------------------------------------------------------- background


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


def _grow_region(
    im: _Img,
    seeds: np.ndarray,
    allowed: np.ndarray,
    centres: np.ndarray,
    tol: int,
    major: np.ndarray | None = None,
) -> np.ndarray:
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
