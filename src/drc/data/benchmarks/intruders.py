"""Noisy users: a share of a benchmark's users get 1-2 items of another theme in their history.

Real histories are messy (a sticker fan keeps a few stickers of other sets). A built-in benchmark
gives every user one theme, so nothing there teaches the importance weights to tell the user's style
from an odd item, and nothing measures whether they do. `add_intruders` makes `share` of the users
(every split alike) *noisy*: 1 or 2 of their first `history_len` history positions are replaced by an
item of another theme (with the replaced item's semantics where one exists), an **intruder**. The
share holds in each split (rounded).

- The first `history_len` positions are history in every window and never a target, so a target
  always has the user's main theme, and a test user's single window holds the intruders.
- Intruders are existing items of *training* users (another theme's item, a seen theme x semantics
  pair): no item is added, so a tokenizer or generator trained on the benchmark's items stays valid,
  and no held-out pair can reach a history through an intruder.
- At most 2 intruders among `history_len` >= 5 positions: the user's theme keeps the majority, which is
  how the dataset format recognises it (`drc.data.samples.user_style`); intruders are the history
  items whose style label differs from it.

It draws from its own random stream, so the clean part of a benchmark (items, users, splits, held-out
pairs) is the same as without noise for the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from drc.data.manifest import Item, User
from drc.errors import DrcError

DEFAULT_SHARE = 0.3  # of the users, in every split
MAX_INTRUDERS = 2


def add_intruders(
    users: Sequence[User],
    items: Sequence[Item],
    history_len: int,
    share: float,
    rng: np.random.Generator,
) -> tuple[list[User], dict[str, list[int]]]:
    """`users` with intruders put into `share` of them; and {user id: intruder positions}.

    `items` must carry style labels (a benchmark's do). Positions are indices into the user's
    history (all < `history_len`).
    """
    if not 0.0 <= share <= 1.0:
        raise DrcError(f"--noisy-share {share} must be between 0 and 1")
    users = list(users)
    # the share of every split (rounded), so that the test split always has its noisy users
    by_split: dict[str | None, list[int]] = {}
    for ui, u in enumerate(users):
        by_split.setdefault(u.split, []).append(ui)
    if all(round(share * len(v)) == 0 for v in by_split.values()):
        return users, {}
    if history_len < 2 * MAX_INTRUDERS + 1:
        need = 2 * MAX_INTRUDERS + 1
        raise DrcError(f"noisy users need a history of at least {need} items, got {history_len}")
    style = {it.id: it.style for it in items}
    semantics = {it.id: it.semantics for it in items}
    # candidates: every item a training user holds, by theme (sorted: the draw depends only on the seed)
    pool: dict[str, list[str]] = {}
    for u in users:
        if u.split == "train":
            for iid in u.history:
                pool.setdefault(str(style[iid]), []).append(iid)
    pool = {t: sorted(set(ids)) for t, ids in sorted(pool.items())}
    out = list(users)
    placed: dict[str, list[int]] = {}
    chosen = []
    for split in sorted(by_split, key=str):
        members = by_split[split]
        chosen += [members[int(i)] for i in rng.permutation(len(members))[: round(share * len(members))]]
    for ui in sorted(chosen):
        u = users[ui]
        theme = str(style[u.history[-1]])  # the last item is a target: always the user's own theme
        others = [t for t in pool if t != theme]
        if not others or len(u.history) <= history_len:
            continue
        m = int(rng.integers(1, MAX_INTRUDERS + 1))
        positions = sorted(int(p) for p in rng.choice(history_len, m, replace=False))
        hist = list(u.history)
        for p in positions:
            t = others[int(rng.integers(len(others)))]
            # the replaced item's semantics where the other theme has it: a history keeps its mix
            # of semantics (a test user's stays distinct), only the style of that slot changes
            same = [i for i in pool[t] if semantics[i] == semantics[hist[p]]] or pool[t]
            hist[p] = same[int(rng.integers(len(same)))]
        out[ui] = User(u.id, tuple(hist), u.split)
        placed[u.id] = positions
    return out, placed


def intruder_mask(history: Sequence[str], items: dict[str, Item], main_style: str | None) -> list[bool]:
    """True for each history item whose style label is not the user's main style (None: all False)."""
    if main_style is None:
        return [False] * len(history)
    return [items[i].style is not None and items[i].style != main_style for i in history]
