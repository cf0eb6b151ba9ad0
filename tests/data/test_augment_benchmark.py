"""The augmentation contract on a real benchmark, measured by probes: keep semantics, change style.

A small sticker benchmark is built once per module, the style / semantics probes are trained on
three quarters of its items (`drc.eval.probes.train_probes`, the probes of the evaluation), and
every STYLE_CHANGING op is applied to the held-out quarter (100 images). Two numbers per op:

- semantic accuracy: the semantics probe's accuracy on the augmented images (the intent must still
  be readable);
- style drop: the style probe's mean probability of the image's ORIGINAL theme on the clean images
  minus the same on the augmented ones (the look must move away from its theme).

The probe never sees an augmented image in training, and it knows only the benchmark's 12 themes:
a new background or a recoloured character is out of its distribution, so part of its semantic
errors on augmented images is its own brittleness, not lost semantics (inspected by eye: the
symbols are intact). The thresholds below are therefore measured, not wished: each comment gives
the values measured with probe seeds 0, 1 and 2 (the test uses seed 0), and the threshold leaves a
margin under the lowest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from drc.data.augment import AUGMENTATIONS, RISKY, STYLE_CHANGING, AugmentConfig, augment
from drc.data.bank import ImageBank
from drc.data.benchmarks.stickers import build
from drc.data.manifest import load_dataset
from drc.eval.probes import ProbeConfig, Probes, train_probes

# 48 users (402 items) build as fast as 24 (197 items) and give the probe enough examples: with 24
# users its held-out semantic accuracy was 0.82-0.98 depending on the seed, with 48 it is 0.97-1.0
USERS = 48
# 500 steps of a 16-channel probe: ~17 s on one CPU thread; 300 steps left the held-out semantic
# accuracy at 0.79-0.90, 400 at 0.96-1.0
PROBE = ProbeConfig(channels=16, steps=500, batch_size=32, lr=3e-3, warmup=10)

NOT_RISKY = tuple(n for n in STYLE_CHANGING if n not in RISKY)
# the default composition without the risky ops, and the default itself (which may use them)
COMPOSITIONS = {"augment(p_risky=0)": AugmentConfig(p_risky=0.0), "augment": AugmentConfig()}

# Minimum semantic accuracy on augmented held-out images (measured: seed 0 / 1 / 2).
MIN_SEMANTIC = {
    # 0.86 / 0.86 / 0.70: a new backdrop is the probe's largest shift (each theme had one backdrop)
    "background_swap": 0.6,
    # 1.00 / 1.00 / 0.91
    "frame_replace": 0.8,
    # 1.00 / 0.99 / 0.93
    "outline_change": 0.85,
    # 0.86 / 0.89 / 0.72: the character's colour is new to the probe (poses are read off the face)
    "recolour": 0.6,
    # 1.00 / 1.00 / 0.97
    "texture_overlay": 0.85,
    # 0.91 / 0.95 / 0.85
    "augment(p_risky=0)": 0.75,
}

# Minimum style drop (measured: seed 0 / 1 / 2); the clean images' mean is 0.93 / 0.94 / 0.92.
MIN_STYLE_DROP = {
    "background_swap": 0.35,  # 0.60 / 0.54 / 0.63
    "frame_replace": 0.05,  # 0.14 / 0.09 / 0.18: only the outer few pixels change
    # 0.012 / 0.012 / 0.011: thin lines are a small part of a theme's look to this probe; it
    # lowers the confidence a little but consistently, so only that is asserted
    "outline_change": 0.004,
    "recolour": 0.2,  # 0.31 / 0.31 / 0.30
    # -0.001 / 0.001 / 0.001: the probe cannot see it (it is trained with noise augmentation, so it
    # ignores a low-amplitude texture by design); asserted only: it never looks MORE like its theme
    "texture_overlay": -0.01,
    "hue_rotate": 0.4,  # 0.72 / 0.62 / 0.75
    "palette_remap": 0.4,  # 0.69 / 0.65 / 0.72
    "channel_permute": 0.4,  # 0.67 / 0.56 / 0.69
    "greyscale": 0.4,  # 0.64 / 0.67 / 0.69
    "augment(p_risky=0)": 0.15,  # 0.29 / 0.26 / 0.26
    "augment": 0.18,  # 0.34 / 0.29 / 0.30
}


@dataclass
class Held:
    """The trained probes and the held-out images with their label indices."""

    probes: Probes
    images: torch.Tensor  # uint8 (N, 3, 64, 64)
    style_idx: torch.Tensor  # (N,) long: the original theme
    sem_idx: torch.Tensor  # (N,) long: the intent
    sem_acc: float  # on the clean images
    style_p: float  # mean probability of the original theme on the clean images

    def measure(self, images: torch.Tensor) -> tuple[float, float]:
        """uint8 (N, 3, H, W) -> (semantic accuracy, mean probability of the original theme)."""
        p = self.probes.predict(images)
        sem = (p["sem_prob"].argmax(-1) == self.sem_idx).float().mean().item()
        return sem, p["style_prob"][torch.arange(len(images)), self.style_idx].mean().item()


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Held:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine is shared; one thread is as fast for this small net
    try:
        root = tmp_path_factory.mktemp("stickers")
        build(root, users=USERS, seed=0)
        ds = load_dataset(root)
        bank = ImageBank.from_dataset(ds, (64, 64))
        items = [ds.items[i] for i in bank.ids]
        styles, semantics = [str(it.style) for it in items], [str(it.semantics) for it in items]
        order = list(range(len(items)))
        random.Random(0).shuffle(order)
        heldout, train = sorted(order[: len(order) // 4]), sorted(order[len(order) // 4 :])
        probes = train_probes(
            bank.images, styles, semantics, train, heldout, PROBE, device="cpu", progress=False, seed=0
        )
    finally:
        torch.set_num_threads(threads)
    style_idx = torch.tensor([probes.styles.index(styles[i]) for i in heldout])
    sem_idx = torch.tensor([probes.semantics.index(semantics[i]) for i in heldout])
    h = Held(probes, bank.images[heldout], style_idx, sem_idx, 0.0, 0.0)
    h.sem_acc, h.style_p = h.measure(h.images)
    return h


@pytest.fixture(scope="module")
def measured(held: Held) -> dict[str, tuple[float, float]]:
    """op or composition name -> (semantic accuracy, style drop) on the held-out images."""
    arr = held.images.permute(0, 2, 3, 1).numpy()
    out = {}
    for name in (*STYLE_CHANGING, *COMPOSITIONS):
        rng = np.random.default_rng(1)  # per op, so one op's numbers do not depend on the others
        if name in COMPOSITIONS:
            aug = np.stack([augment(a, rng, COMPOSITIONS[name]) for a in arr])
        else:
            aug = np.stack([AUGMENTATIONS[name](a, rng) for a in arr])
        sem, style_p = held.measure(torch.from_numpy(aug).permute(0, 3, 1, 2).contiguous())
        out[name] = (sem, held.style_p - style_p)
    return out


def test_probes_read_clean_heldout_images(held: Held) -> None:
    # everything below is measured by these probes: they must be right on clean images first
    assert held.probes.accuracy["style_acc"] > 0.9, held.probes.accuracy
    assert held.probes.accuracy["semantic_acc"] > 0.9, held.probes.accuracy
    assert held.probes.accuracy["n_heldout"] == len(held.images) >= 90
    assert held.style_p > 0.8  # confident: there is room for a drop


def test_thresholds_cover_the_registry() -> None:
    # a new STYLE_CHANGING op must get measured thresholds here, not slip through untested
    assert set(MIN_STYLE_DROP) == set(STYLE_CHANGING) | set(COMPOSITIONS)
    assert set(MIN_SEMANTIC) == set(NOT_RISKY) | {"augment(p_risky=0)"}


@pytest.mark.parametrize("name", [*NOT_RISKY, "augment(p_risky=0)"])
def test_keeps_semantics(measured: dict[str, tuple[float, float]], name: str) -> None:
    sem, _ = measured[name]
    assert sem >= MIN_SEMANTIC[name], f"{name}: semantic accuracy {sem:.3f} < {MIN_SEMANTIC[name]}"


@pytest.mark.parametrize("name", [*STYLE_CHANGING, *COMPOSITIONS])
def test_changes_style(measured: dict[str, tuple[float, float]], name: str) -> None:
    _, drop = measured[name]
    assert drop >= MIN_STYLE_DROP[name], f"{name}: style drop {drop:.3f} < {MIN_STYLE_DROP[name]}"


def test_non_risky_ops_change_style_on_average(measured: dict[str, tuple[float, float]]) -> None:
    # measured 0.21 / 0.19 / 0.22: two strong ops (background, character colour), one moderate
    # (frame), two the probe hardly sees (outline, texture)
    mean = float(np.mean([measured[n][1] for n in NOT_RISKY]))
    assert mean >= 0.12, mean


def test_risky_ops_are_the_ones_that_lose_semantics(measured: dict[str, tuple[float, float]]) -> None:
    # RISKY recolours the symbols too (a pink heart turns blue or grey): the probe reads 0.14-0.44
    # of them, against 0.70-1.0 for the other ops; measured gap of the means 0.62 / 0.60 / 0.63
    safe = np.mean([measured[n][0] for n in NOT_RISKY])
    risky = np.mean([measured[n][0] for n in RISKY])
    assert safe - risky >= 0.4, (safe, risky)
