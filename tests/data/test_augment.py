"""Semantic-preserving augmentations: each op's contract on synthetic stickers.

A synthetic sticker: a flat canvas (optionally a frame: a dark border band around a coloured
backdrop), an orange disc with a black outline in the middle (the "character") and a small red
disc with a black ring and a white halo near a corner (the "symbol", whose colour is semantics).
Drawn 4x supersampled and averaged down, so edges are anti-aliased like rendered artwork.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from drc.data import regions as R
from drc.data.augment import (
    AUGMENTATIONS,
    EXCLUSIVE,
    RISKY,
    STYLE_CHANGING,
    AugmentConfig,
    augment,
    augment_batch,
    background_mask,
    get_augmentation,
    rgb_to_hsv,
    sample_ops,
)
from drc.errors import DrcError

CANVAS = (235, 240, 250)
BORDER = (30, 90, 60)
BACKDROP = (250, 200, 120)
BODY = (240, 150, 40)
LINE = (20, 20, 20)
SYMBOL = (220, 30, 40)
SS = 4


def _disc(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def sticker(h: int = 64, w: int = 64, framed: bool = False) -> dict[str, np.ndarray]:
    """The image and its ground-truth masks (at output resolution, from the supersampled drawing)."""
    H, W = h * SS, w * SS
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32) / SS
    img = np.empty((H, W, 3), np.float32)
    img[:] = CANVAS
    frame = np.zeros((H, W), bool)
    if framed:
        inset, band = 3, 3
        outer = (yy >= inset) & (yy < h - inset) & (xx >= inset) & (xx < w - inset)
        lo = inset + band
        inner = (yy >= lo) & (yy < h - lo) & (xx >= lo) & (xx < w - lo)
        img[outer] = BORDER
        img[inner] = BACKDROP
        frame = outer
    cy, cx, r = h / 2 + 4, w / 2, min(h, w) / 4
    ring = _disc(yy, xx, cy, cx, r + 2)
    img[ring] = LINE
    img[_disc(yy, xx, cy, cx, r)] = BODY
    sy, sx, sr = 12, w - 14, 7
    halo = _disc(yy, xx, sy, sx, sr + 3.5)
    img[halo] = (255, 255, 255)
    img[_disc(yy, xx, sy, sx, sr + 1.5)] = LINE
    img[_disc(yy, xx, sy, sx, sr)] = SYMBOL

    def down(a: np.ndarray) -> np.ndarray:
        return a.reshape(h, SS, w, SS, *a.shape[2:]).mean((1, 3))

    out = np.clip(down(img) + 0.5, 0, 255).astype(np.uint8)
    subject = down((ring | halo).astype(np.float32)) > 0.5
    return {
        "img": out,
        "subject": subject,
        "background": ~subject,
        "body": down(_disc(yy, xx, cy, cx, r - 3).astype(np.float32)) > 0.99,  # well inside the outline
        "body_full": down(_disc(yy, xx, cy, cx, r).astype(np.float32)) > 0.5,
        "symbol": down(_disc(yy, xx, sy, sx, sr - 2).astype(np.float32)) > 0.99,
        "line": down((ring & ~_disc(yy, xx, cy, cx, r)).astype(np.float32)) > 0.99,
        "frame": down(frame.astype(np.float32)) > 0.5,
    }


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def hue_of(img: np.ndarray, mask: np.ndarray) -> float:
    """Circular mean hue (turns) of the pixels in `mask`."""
    h, _, _ = rgb_to_hsv(img[mask].astype(np.float32)[None] / 255.0)
    ang = h[0] * 2 * np.pi
    return float(np.arctan2(np.sin(ang).mean(), np.cos(ang).mean()) / (2 * np.pi) % 1.0)


def hue_dist(a: float, b: float) -> float:
    return abs((a - b + 0.5) % 1.0 - 0.5)


def diff(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(-1)
    return float(d[mask].mean() if mask is not None else d.mean())


@pytest.fixture(scope="module")
def plain() -> dict[str, np.ndarray]:
    return sticker()


@pytest.fixture(scope="module")
def framed() -> dict[str, np.ndarray]:
    return sticker(framed=True)


def run(name: str, img: np.ndarray, seed: int = 0) -> np.ndarray:
    return get_augmentation(name)(img, np.random.default_rng(seed))


# ----------------------------------------------------------------------------- every op


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
@pytest.mark.parametrize("size", [(64, 64), (96, 64)])
def test_shape_dtype_and_input_untouched(name: str, size: tuple[int, int]) -> None:
    s = sticker(*size, framed=True)
    before = s["img"].copy()
    out = run(name, s["img"])
    assert out.shape == (*size, 3) and out.dtype == np.uint8
    assert np.array_equal(s["img"], before)  # ops never write into their input


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_deterministic_for_a_seed_and_varies_across_seeds(name: str, framed: dict) -> None:
    img = framed["img"]
    assert np.array_equal(run(name, img, 3), run(name, img, 3))
    outs = {run(name, img, seed).tobytes() for seed in range(6)}
    assert len(outs) >= (1 if name == "greyscale" else 2)  # greyscale has no parameters


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_changes_the_image(name: str, framed: dict) -> None:
    for seed in range(4):
        assert diff(run(name, framed["img"], seed), framed["img"]) > 0.5, seed


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_structure_kept_foreground_iou(name: str, plain: dict) -> None:
    """The subject's silhouette (what is not background) survives: semantics at the pixel level."""
    least = 0.6 if name == "jitter" else 0.85  # jitter moves the subject by a few pixels on purpose
    for seed in range(4):
        out = run(name, plain["img"], seed)
        # a texture overlay adds up to +-24 to a flat background: measure it with a wider tolerance
        wide = name == "texture_overlay"
        fg = ~(background_mask(out, tol=50, smooth_tol=14) if wide else background_mask(out))
        assert iou(fg, plain["subject"]) >= least, (seed, iou(fg, plain["subject"]))


def edges(img: np.ndarray) -> np.ndarray:
    y = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    gx, gy = np.zeros_like(y), np.zeros_like(y)
    gx[:, 1:-1], gy[1:-1] = y[:, 2:] - y[:, :-2], y[2:] - y[:-2]
    return np.hypot(gx, gy)


@pytest.mark.parametrize("name", [n for n in AUGMENTATIONS if n != "jitter"])
@pytest.mark.parametrize("kind", ["plain", "framed"])
def test_structure_kept_edges(name: str, kind: str, plain: dict, framed: dict) -> None:
    """The subject's edges stay where they were (correlation of edge strength around it)."""
    s = plain if kind == "plain" else framed
    around = R._dilate4(R._dilate4(s["subject"]))
    before = edges(s["img"])[around]
    for seed in range(4):
        after = edges(run(name, s["img"], seed))[around]
        assert np.corrcoef(before, after)[0, 1] > 0.6, seed


@pytest.mark.parametrize("name", [n for n in AUGMENTATIONS if n not in RISKY])
@pytest.mark.parametrize("kind", ["plain", "framed"])
def test_symbol_colour_kept_by_non_risky_ops(name: str, kind: str, plain: dict, framed: dict) -> None:
    """Ops outside RISKY keep a colour-coded symbol's hue (a red heart stays red) and its place."""
    s = plain if kind == "plain" else framed
    red = hue_of(s["img"], s["symbol"])
    for seed in range(6):
        out = run(name, s["img"], seed)
        mask = s["symbol"]
        if name == "jitter":  # the symbol moved: find its red pixels, most of them must be there
            mask = np.abs(out.astype(int) - SYMBOL).max(-1) < 60
            assert mask.sum() >= 0.7 * s["symbol"].sum(), seed
        assert hue_dist(hue_of(out, mask), red) < 0.05, seed
        _, sat, _ = rgb_to_hsv(out[mask].astype(np.float32)[None] / 255.0)
        assert sat.mean() > 0.5, seed


# ----------------------------------------------------------------------------- each op's style factor


def test_background_mask_finds_canvas_frame_and_backdrop(plain: dict, framed: dict) -> None:
    assert iou(background_mask(plain["img"]), plain["background"]) > 0.95
    assert iou(background_mask(framed["img"]), framed["background"]) > 0.95


def test_background_mask_does_not_leak_into_a_same_coloured_subject() -> None:
    """A white face inside a black outline on a white background is not background."""
    s = sticker()
    img = s["img"].copy()
    img[s["body"]] = CANVAS
    mask = background_mask(img)
    assert not mask[s["body"]].any()


def test_background_swap_changes_the_border_keeps_the_subject(plain: dict, framed: dict) -> None:
    for s in (plain, framed):
        edge = np.zeros(s["img"].shape[:2], bool)
        edge[:2], edge[-2:], edge[:, :2], edge[:, -2:] = True, True, True, True
        for seed in range(5):
            out = run("background_swap", s["img"], seed)
            assert diff(out, s["img"], edge) > 20, seed
            assert diff(out, s["img"], s["body"]) < 1 and diff(out, s["img"], s["symbol"]) < 1
            assert diff(out, s["img"], s["line"]) < 1


def test_background_swap_replaces_the_backdrop_inside_a_frame(framed: dict) -> None:
    backdrop = framed["background"] & ~framed["frame"]
    inside = framed["background"] & framed["frame"]
    inner = inside & (np.abs(framed["img"].astype(int) - BACKDROP).max(-1) < 3)
    assert inner.sum() > 300
    for seed in range(5):
        out = run("background_swap", framed["img"], seed)
        assert diff(out, framed["img"], inner) > 20, seed
        assert backdrop.any()


def test_greyscale_has_zero_saturation(framed: dict) -> None:
    out = run("greyscale", framed["img"])
    assert (out.max(-1).astype(int) - out.min(-1)).max() == 0
    # luminance order is kept: the black outline stays darker than the orange body
    assert out[framed["line"]].mean() < out[framed["body"]].mean() - 50


@pytest.mark.parametrize("name", ["hue_rotate", "palette_remap", "channel_permute"])
def test_hue_ops_change_the_hue_histogram(name: str, framed: dict) -> None:
    def hist(img: np.ndarray) -> np.ndarray:
        h, s, _ = rgb_to_hsv(img.astype(np.float32) / 255.0)
        return np.bincount((h[s > 0.2] * 12).astype(int) % 12, minlength=12) / max((s > 0.2).sum(), 1)

    for seed in range(4):
        out = run(name, framed["img"], seed)
        assert np.abs(hist(out) - hist(framed["img"])).sum() > 0.5, seed


def test_channel_permute_is_a_permutation(framed: dict) -> None:
    out = run("channel_permute", framed["img"])
    assert np.array_equal(np.sort(out, -1), np.sort(framed["img"], -1))
    assert not np.array_equal(out, framed["img"])


def test_recolour_moves_the_body_hue_not_the_symbol_or_background(plain: dict) -> None:
    s = plain
    body = hue_of(s["img"], s["body"])
    for seed in range(5):
        out = run("recolour", s["img"], seed)
        assert hue_dist(hue_of(out, s["body"]), body) > 0.15, seed
        assert diff(out, s["img"], s["symbol"]) < 1
        assert diff(out, s["img"], s["background"] & ~R._dilate4(s["subject"])) < 1


def test_recolour_tints_a_grey_character() -> None:
    s = sticker()
    img = s["img"].copy()
    img[s["body_full"]] = (200, 200, 200)
    for seed in range(3):
        out = run("recolour", img, seed)
        _, sat, _ = rgb_to_hsv(out[s["body"]].astype(np.float32)[None] / 255.0)
        assert sat.mean() > 0.1, seed
        assert diff(out, img, s["symbol"]) < 1


def test_outline_change_changes_dark_edges_only(plain: dict) -> None:
    s = plain
    far = s["body"] & ~R._box_mean(s["line"].astype(np.float32), 3).astype(bool)
    for seed in range(12):  # covers all three modes (recolour, thicken, soften)
        out = run("outline_change", s["img"], seed)
        assert diff(out, s["img"], s["line"] | R._dilate4(s["line"])) > 5, seed
        assert diff(out, s["img"], far) < 1, seed  # the body's interior, away from the line
        assert diff(out, s["img"], s["background"] & ~R._dilate4(R._dilate4(s["subject"]))) < 1, seed


def test_texture_overlay_textures_flat_regions(plain: dict) -> None:
    flat = plain["background"] & ~R._dilate4(R._dilate4(plain["subject"]))
    assert plain["img"][flat].std(0).max() < 1
    for seed in range(6):
        out = run("texture_overlay", plain["img"], seed)
        assert out[flat].astype(np.float32).std(0).max() > 3, seed
        assert np.abs(out.astype(int) - plain["img"]).max() <= 24  # low amplitude


def test_blur_lowers_high_frequency_energy(framed: dict) -> None:
    def lap_energy(img: np.ndarray) -> float:
        y = img.astype(np.float32).mean(-1)
        lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
        return float((lap**2).mean())

    for seed in range(4):
        assert lap_energy(run("blur", framed["img"], seed)) < 0.6 * lap_energy(framed["img"]), seed


def test_posterize_few_levels(framed: dict) -> None:
    out = run("posterize", framed["img"])
    assert max(len(np.unique(out[..., c])) for c in range(3)) <= 8


def test_frame_replace_changes_the_edge_keeps_the_centre(plain: dict) -> None:
    edge = np.zeros(plain["img"].shape[:2], bool)
    edge[:2], edge[-2:], edge[:, :2], edge[:, -2:] = True, True, True, True
    centre = np.zeros_like(edge)
    centre[8:-8, 8:-8] = True
    for seed in range(4):
        out = run("frame_replace", plain["img"], seed)
        assert diff(out, plain["img"], edge) > 10, seed
        assert diff(out, plain["img"], centre) == 0, seed


def test_colour_grade_is_mild(framed: dict) -> None:
    for seed in range(6):
        out = run("colour_grade", framed["img"], seed)
        assert 1 < diff(out, framed["img"]) < 60, seed


# ----------------------------------------------------------------------------- composition


def test_registry_lists() -> None:
    assert set(STYLE_CHANGING) <= set(AUGMENTATIONS) and set(RISKY) <= set(AUGMENTATIONS)
    required = {
        "palette_remap",
        "recolour",
        "greyscale",
        "texture_overlay",
        "background_swap",
        "outline_change",
        "blur",
        "hue_rotate",
    }
    assert required <= set(AUGMENTATIONS)
    assert "blur" not in STYLE_CHANGING and "background_swap" in STYLE_CHANGING


def test_get_augmentation_unknown_lists_valid_names() -> None:
    with pytest.raises(DrcError) as e:
        get_augmentation("sepia")
    assert "sepia" in str(e.value) and "background_swap" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"names": ("blur", "nope")}, ["nope", "greyscale"]),
        ({"names": ()}, ["empty"]),
        ({"names": ("blur", "blur")}, ["duplicates"]),
        ({"n_ops": (0, 2)}, ["n_ops"]),
        ({"n_ops": (3, 1)}, ["n_ops"]),
        ({"n_ops": (1, 2), "min_style_ops": 2}, ["min_style_ops"]),
        ({"p_risky": 1.5}, ["p_risky"]),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(DrcError) as e:
        AugmentConfig(**kwargs)
    assert all(w in str(e.value) for w in words)


def test_sample_ops_counts_order_groups_and_style() -> None:
    rng = np.random.default_rng(0)
    cfg = AugmentConfig()
    order = list(AUGMENTATIONS)
    counts = set()
    for _ in range(300):
        ops = sample_ops(rng, cfg)
        counts.add(len(ops))
        assert 1 <= len(ops) <= 3 and len(set(ops)) == len(ops)
        assert ops == sorted(ops, key=order.index)
        assert any(o in STYLE_CHANGING for o in ops)
        assert all(len(g.intersection(ops)) <= 1 for g in EXCLUSIVE)
    assert counts == {1, 2, 3}
    only = AugmentConfig(names=("blur", "posterize"), n_ops=(2, 2))  # no style op available: still fine
    assert sorted(sample_ops(rng, only)) == ["blur", "posterize"]


def test_p_risky_controls_the_symbol_recolouring_ops() -> None:
    rng = np.random.default_rng(0)
    never = [sample_ops(rng, AugmentConfig(p_risky=0.0)) for _ in range(200)]
    assert not any(set(ops) & set(RISKY) for ops in never)
    always = [sample_ops(rng, AugmentConfig(p_risky=1.0)) for _ in range(200)]
    default = [sample_ops(rng, AugmentConfig()) for _ in range(400)]
    n_always = sum(bool(set(ops) & set(RISKY)) for ops in always) / 200
    n_default = sum(bool(set(ops) & set(RISKY)) for ops in default) / 400
    assert n_always > 0.4 and 0.03 < n_default < n_always / 2
    # only risky names given: they are used whatever p_risky says
    assert sample_ops(rng, AugmentConfig(names=("greyscale",), p_risky=0.0)) == ["greyscale"]


def test_augment_deterministic_and_changes_style(framed: dict) -> None:
    img = framed["img"]
    a = augment(img, np.random.default_rng(7))
    b = augment(img, np.random.default_rng(7))
    assert np.array_equal(a, b) and a.shape == img.shape and a.dtype == np.uint8
    outs = [augment(img, np.random.default_rng(s)) for s in range(10)]
    assert len({o.tobytes() for o in outs}) == 10
    assert all(diff(o, img) > 0.5 for o in outs)


def test_augment_rejects_bad_input() -> None:
    with pytest.raises(DrcError, match="uint8"):
        augment(np.zeros((8, 8, 3), np.float32), np.random.default_rng(0))
    with pytest.raises(DrcError, match="uint8"):
        augment(np.zeros((8, 8), np.uint8), np.random.default_rng(0))


def test_augment_batch(framed: dict, plain: dict) -> None:
    arr = np.stack([framed["img"], plain["img"], framed["img"]])
    t = torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()
    out = augment_batch(t, np.random.default_rng(1))
    again = augment_batch(t, np.random.default_rng(1))
    assert out.shape == t.shape and out.dtype == torch.uint8 and torch.equal(out, again)
    assert not torch.equal(out[0], out[2])  # one composition per image, not one per batch
    one = augment(framed["img"], np.random.default_rng(1))  # the batch draws image 0 first
    assert np.array_equal(out[0].permute(1, 2, 0).numpy(), one)
    with pytest.raises(DrcError, match="uint8"):
        augment_batch(t.float(), np.random.default_rng(0))
    assert augment_batch(t[:0], np.random.default_rng(0)).shape == (0, 3, 64, 64)


def test_edge_cases_do_not_crash() -> None:
    rng = np.random.default_rng(0)
    flat = np.full((16, 16, 3), 128, np.uint8)
    noise = np.random.default_rng(1).integers(0, 256, (20, 12, 3)).astype(np.uint8)
    tiny = np.random.default_rng(2).integers(0, 256, (3, 3, 3)).astype(np.uint8)
    for img in (flat, noise, tiny):
        for name, fn in AUGMENTATIONS.items():
            out = fn(img, rng)
            assert out.shape == img.shape and out.dtype == np.uint8, name


def test_fast_enough(framed: dict, plain: dict) -> None:
    """1000 64x64 images should take well under 5 s; 100 here, with margin for a busy machine."""
    rng = np.random.default_rng(0)
    imgs = [framed["img"], plain["img"]]
    start = time.process_time()
    for i in range(100):
        augment(imgs[i % 2], rng)
    assert time.process_time() - start < 1.5
