"""Probes: learn a tiny synthetic labelled set (style = background colour, semantics = shape) in a few
seconds, predict with the documented shapes, and round-trip through save/load strictly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from drc.errors import CheckpointError, DrcError
from drc.eval.probes import ProbeConfig, ProbeNet, Probes, augment_for_probes, train_probes

BACKGROUNDS = {"red": (220, 60, 60), "green": (60, 180, 80), "blue": (60, 90, 220)}
SHAPES = ("circle", "square", "triangle")


def _draw(bg: tuple[int, int, int], shape: str, rng: np.random.Generator, size=(32, 32)) -> np.ndarray:
    h, w = size
    im = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(im)
    r = int(rng.integers(7, 11))
    cx, cy = int(rng.integers(r + 1, w - r - 1)), int(rng.integers(r + 1, h - r - 1))
    fg = tuple(int(v) for v in rng.integers(230, 256, 3))
    if shape == "circle":
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fg)
    elif shape == "square":
        d.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fg)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    return np.asarray(im)


def _dataset(n_per_pair: int, seed: int = 0, size=(32, 32)):
    rng = np.random.default_rng(seed)
    imgs, styles, sems = [], [], []
    for sname, bg in BACKGROUNDS.items():
        for shape in SHAPES:
            for _ in range(n_per_pair):
                imgs.append(_draw(bg, shape, rng, size))
                styles.append(sname)
                sems.append(shape)
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    return x, styles, sems


FAST = ProbeConfig(channels=8, steps=300, batch_size=32, lr=3e-3, warmup=10, precision="fp32", log_every=40)


@pytest.fixture(scope="module")
def trained():
    x, styles, sems = _dataset(12)
    perm = np.random.default_rng(1).permutation(len(x))
    train_idx, held_idx = perm[:81].tolist(), perm[81:].tolist()
    # a net this small gains nothing from a second thread, and on a shared, busy machine two
    # threads' synchronisation made this 8x slower (21 s vs 2.6 s)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        probes = train_probes(x, styles, sems, train_idx, held_idx, FAST, seed=0, progress=False)
    finally:
        torch.set_num_threads(threads)
    return probes, x, styles, sems, held_idx


def test_probes_learn_synthetic_factors(trained):
    probes, x, styles, sems, held = trained
    assert probes.styles == sorted(BACKGROUNDS) and probes.semantics == sorted(SHAPES)
    acc = probes.accuracy
    assert acc["n_heldout"] == len(held) == 27
    assert acc["style_acc"] >= 0.9, acc
    assert acc["semantic_acc"] >= 0.85, acc
    assert acc["seconds"] > 0
    # predictions on the held-out items agree with the reported accuracy
    out = probes.predict(x[held])
    hit = np.mean([p == styles[i] for p, i in zip(out["style"], held)])
    assert hit == pytest.approx(acc["style_acc"])


def test_predict_shapes_and_any_size(trained):
    probes = trained[0]
    imgs = torch.randint(0, 256, (5, 3, 48, 32), dtype=torch.uint8)  # non-square, other size: fine
    out = probes.predict(imgs, batch_size=2)
    assert len(out["style"]) == 5 and len(out["semantics"]) == 5
    assert out["feats"].shape == (5, probes.net.feat_dim)
    assert out["style_prob"].shape == (5, 3) and out["sem_prob"].shape == (5, 3)
    assert torch.allclose(out["style_prob"].sum(-1), torch.ones(5), atol=1e-5)
    assert set(out["style"]) <= set(probes.styles)


def test_save_load_round_trip_strict(trained, tmp_path):
    probes, x = trained[0], trained[1]
    probes.save(tmp_path / "p")
    back = Probes.load(tmp_path / "p")
    assert back.styles == probes.styles and back.semantics == probes.semantics
    assert back.accuracy == probes.accuracy
    assert back.config == probes.config
    a, b = probes.predict(x[:8]), back.predict(x[:8])
    assert torch.allclose(a["feats"], b["feats"]) and a["style"] == b["style"]
    # a net of another width does not load silently
    other = Probes(ProbeNet(3, 3, channels=16), probes.styles, probes.semantics, {}, ProbeConfig(channels=8))
    other.save(tmp_path / "bad")
    with pytest.raises(CheckpointError, match="mis-shaped"):
        Probes.load(tmp_path / "bad")
    with pytest.raises(DrcError, match="probe labels not found"):
        Probes.load(tmp_path / "missing")


def test_extra_views_are_used_and_checked():
    x, styles, sems = _dataset(2)
    calls = []

    def views(imgs: torch.Tensor) -> torch.Tensor:
        calls.append(len(imgs))
        return (255 - imgs).to(torch.uint8)  # any same-shape view

    cfg = ProbeConfig(channels=8, steps=3, batch_size=4, precision="fp32", warmup=1)
    idx = list(range(len(x)))
    p = train_probes(x, styles, sems, idx[:12], idx[12:], cfg, progress=False, extra_views=views)
    assert sum(calls) == 12  # applied once to the training images only, never to held-out ones
    assert p.accuracy["n_heldout"] == 6
    with pytest.raises(ValueError, match="shape"):
        crop = lambda t: t[:, :, :8]  # noqa: E731
        train_probes(x, styles, sems, idx[:12], idx[12:], cfg, progress=False, extra_views=crop)
    with pytest.raises(ValueError, match="both"):
        train_probes(x, styles, sems, idx[:12], idx[10:], cfg, progress=False)


def test_augment_is_deterministic_and_bounded():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    cfg = ProbeConfig()
    a = augment_for_probes(x, cfg, torch.Generator().manual_seed(0))
    b = augment_for_probes(x, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert a.shape == x.shape and a.min() >= -1 and a.max() <= 1
    assert not torch.equal(a, x)
