"""The augmentation ops: each is fn(img: uint8 (H, W, 3), rng: np.random.Generator) -> uint8 (H, W, 3).

What each op changes and keeps is in its docstring; which ones are risky for colour-coded
semantics, the registry and the random composition are in `drc.data.augment` (import the ops from
there). Region ops find the background and line art with `drc.data.regions`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from drc.data.pixel_ops import (
    _LUMA,
    _border,
    _box_mean,
    _cheb,
    _dilate4,
    _f32,
    _label,
    _luma,
    _shift,
    _u8,
    hsv_to_rgb,
    rgb_to_hsv,
)
from drc.data.regions import _fill_gaps, background_layers, background_mask, border_colours

# ----------------------------------------------------------------------------- random colours and patterns


def _random_colour(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
    """One RGB colour in [0, 1] with a uniform hue and saturation / value drawn from the ranges."""
    h = np.float32(rng.random())
    sv = np.float32(rng.uniform(*s)), np.float32(rng.uniform(*v))
    return hsv_to_rgb(np.array([[h]]), np.array([[sv[0]]]), np.array([[sv[1]]]))[0, 0]


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


# ----------------------------------------------------------------------------- global colour


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


# ----------------------------------------------------------------------------- regions


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


# ----------------------------------------------------------------------------- texture, blur, layout


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


def blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur, radius 0.5-1.0 px: soft edges instead of crisp ones; shapes stay (thin
    strokes, an anger mark or sparkles at 64 px, lose contrast but keep their colour)."""
    radius = float(rng.uniform(0.5, 1.0))
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)), dtype=np.uint8)


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
