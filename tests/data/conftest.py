"""Tiny datasets built in tmp_path: labelled (style x semantics grid), a few users per style."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drc.data.manifest import Item, User, write_dataset

STYLES = ("red", "green", "blue")
SEMANTICS = ("cat", "dog", "sun", "moon")
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 230)}


def build_dataset(
    root: Path,
    n_users: int = 6,
    history: int = 7,
    labelled: bool = True,
    info: dict | None = None,
    size: tuple[int, int] = (12, 10),
) -> Path:
    """One item per (style, semantics), a PNG each; user u has style STYLES[u % 3] and a history of
    `history` items of that style, cycling through the semantics (so items repeat, as re-interactions)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "img").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    items = []
    for st in STYLES:
        for sem in SEMANTICS:
            iid = f"{st}-{sem}"
            h, w = size
            arr = np.empty((h, w, 3), np.uint8)
            arr[:] = COLOURS[st]
            arr[: h // 2, : w // 2] = rng.integers(0, 256, (h // 2, w // 2, 3))  # some texture
            Image.fromarray(arr).save(root / "img" / f"{iid}.png")
            items.append(
                Item(
                    iid,
                    f"img/{iid}.png",
                    f"a {st} {sem}",
                    st if labelled else None,
                    sem if labelled else None,
                )
            )
    users = []
    for u in range(n_users):
        st = STYLES[u % len(STYLES)]
        hist = tuple(f"{st}-{SEMANTICS[(u + j) % len(SEMANTICS)]}" for j in range(history))
        users.append(User(f"u{u}", hist))
    write_dataset(root, items, users, info)
    return root


@pytest.fixture
def make_dataset():
    """The builder itself, for tests that need other sizes (tests import nothing from conftest)."""
    return build_dataset


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    return build_dataset(tmp_path / "ds", info={"name": "tiny", "instruction": "a sticker"})
