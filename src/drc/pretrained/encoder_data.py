"""The feature encoder's training artwork: every icon of the installed vendor emoji sets, rendered once.

Style is the vendor; content is the icon's concept key (`iconify.normalise`d name) where at least
two vendors draw that concept, else none (the icon then only teaches style). The emoji benchmark's
unseen-style vendors are refused, so that its unseen-style check stays unseen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from drc.data.benchmarks import iconify
from drc.errors import DrcError

VENDORS = ("twemoji", "noto", "openmoji", "fluent-emoji-flat", "emojione", "fxemoji", "noto-v1")
HELD_OUT = ("streamline-emojis", "emojione-v1")  # the emoji benchmark's unseen-style vendors


@dataclass
class ArtSet:
    """Rendered training artwork: images uint8 (N, 3, S, S), style ids (N,), content ids (N,) with
    -1 where the concept is drawn by one vendor only."""

    images: Tensor
    styles: Tensor
    contents: Tensor
    style_names: list[str]
    content_names: list[str]
    credits: list[dict[str, str]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        torch.save(self.__dict__, path)

    @staticmethod
    def load(path: Path) -> ArtSet:
        return ArtSet(**torch.load(path, weights_only=False))


def icon_concepts(sets: Sequence[iconify.IconSet]) -> list[list[tuple[str, str | None]]]:
    """Per set: (icon name, shared concept key or None) for each of its icons (aliases drawn once).

    An icon's concept is, among the keys that name it, the one most vendors draw (ties: sorted first).
    """
    vendors_of = Counter(k for s in sets for k in set(s.names))
    out = []
    for s in sets:
        keys_of: dict[str, list[str]] = {}
        for key, name in s.names.items():
            icon = name if name in s.icons else s.aliases[name]["parent"]
            keys_of.setdefault(icon, []).append(key)
        rows: list[tuple[str, str | None]] = []
        for icon in sorted(s.icons):
            keys = sorted(keys_of.get(icon, [iconify.normalise(icon)]), key=lambda k: (-vendors_of[k], k))
            rows.append((icon, keys[0] if vendors_of[keys[0]] >= 2 else None))
        out.append(rows)
    return out


def _render(s: iconify.IconSet, icon: str, size: int) -> np.ndarray:
    # render by the icon's own name: a one-key view of the set keeps render_icon's square view box
    view = iconify.IconSet(**{**s.__dict__, "names": {"_": icon}})
    return np.asarray(iconify.render_icon(view, "_", size))


def render_art(
    vendors: Sequence[str] = VENDORS,
    cache: Path | None = None,
    size: int = 64,
    max_per_vendor: int | None = None,
) -> ArtSet:
    """Render every icon of each vendor's cached `@iconify-json` tarball (fetched with npm if missing)."""
    bad = sorted(set(vendors) & set(HELD_OUT))
    if bad:
        raise DrcError(f"vendors {', '.join(bad)} are the emoji benchmark's unseen styles: not for training")
    cache = cache or iconify.default_cache()
    sets = [iconify.load_set(p) for p in iconify.fetch(list(vendors), cache)]
    rows = icon_concepts(sets)
    content_names = sorted({c for r in rows for _, c in r if c is not None})
    cid = {c: i for i, c in enumerate(content_names)}
    imgs, styles, contents = [], [], []
    for v, (s, r) in enumerate(zip(sets, rows)):
        for icon, concept in r[:max_per_vendor]:
            imgs.append(_render(s, icon, size))
            styles.append(v)
            contents.append(cid[concept] if concept is not None else -1)
    images = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    return ArtSet(
        images, torch.tensor(styles), torch.tensor(contents), [s.prefix for s in sets], content_names,
        [s.credit() for s in sets],
    )  # fmt: skip
