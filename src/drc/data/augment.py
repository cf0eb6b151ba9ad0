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

Layout: this module holds the registry, the config and the composition; the ops themselves are in
`drc.data.augment_ops`, the background and line detection in `drc.data.regions`. Every public
name is importable from here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

# the ops and the region helpers live in their own modules; re-exported here, the public entry point
from drc.data.augment_ops import (
    background_swap,
    blur,
    channel_permute,
    colour_grade,
    frame_replace,
    greyscale,
    hue_rotate,
    jitter,
    outline_change,
    palette_remap,
    posterize,
    recolour,
    texture_overlay,
)
from drc.data.pixel_ops import hsv_to_rgb, rgb_to_hsv
from drc.data.regions import (
    background_layers,
    background_mask,
    border_colours,
    dark_mask,
    dominant_colours,
)
from drc.errors import DrcError

__all__ = [
    "AUGMENTATIONS",
    "EXCLUSIVE",
    "RISKY",
    "STYLE_CHANGING",
    "AugmentConfig",
    "Augmentation",
    "apply_ops",
    "augment",
    "augment_batch",
    "get_augmentation",
    "sample_ops",
    # ops
    "background_swap",
    "blur",
    "channel_permute",
    "colour_grade",
    "frame_replace",
    "greyscale",
    "hue_rotate",
    "jitter",
    "outline_change",
    "palette_remap",
    "posterize",
    "recolour",
    "texture_overlay",
    # regions and colour helpers
    "background_layers",
    "background_mask",
    "border_colours",
    "dark_mask",
    "dominant_colours",
    "hsv_to_rgb",
    "rgb_to_hsv",
]

Augmentation = Callable[[np.ndarray, np.random.Generator], np.ndarray]


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
