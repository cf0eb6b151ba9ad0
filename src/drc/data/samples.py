"""Samples: sliding windows over each user's history, split by user into train / valid / test.

A sample is `k` consecutive history items and the item right after them (the target). All of a
user's samples share the user's split, so no test target was ever a training target of the same
user. On labelled data, valid/test samples get a *real* reference: another item with the target's
semantics in another style, which tests composition. Elsewhere (and for every train sample) the
reference is None and the caller uses a semantic-preserving augmentation of the target.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from drc.data.manifest import SPLITS, Dataset, User
from drc.errors import DrcError


@dataclass(frozen=True)
class Sample:
    user: str
    history: tuple[str, ...]  # k item ids, oldest first
    target: str
    split: str  # "train" | "valid" | "test"
    reference: str | None  # a real reference item (labelled valid/test); None -> augment the target


def split_users(
    users: Sequence[User], seed: int = 0, valid_frac: float = 0.1, test_frac: float = 0.1
) -> dict[str, str]:
    """user id -> "train" | "valid" | "test".

    A user's own `split` wins. The others are shuffled by `seed` (after sorting by id, so the file's
    order does not matter) and cut by the fractions, rounded; with 3 or more such users each
    non-zero fraction gets at least one user, so a tiny dataset still has something to evaluate.
    """
    if valid_frac < 0 or test_frac < 0 or valid_frac + test_frac >= 1:
        got = f"valid={valid_frac} test={test_frac}"
        raise DrcError(f"split fractions must be >= 0 and sum below 1, got {got}")
    out = {u.id: u.split for u in users if u.split is not None}
    free = sorted(u.id for u in users if u.split is None)
    random.Random(f"drc-split/{seed}").shuffle(free)
    n = len(free)

    def count(frac: float) -> int:
        c = round(n * frac)
        return max(c, 1) if frac > 0 and n >= 3 else c

    n_test, n_valid = count(test_frac), count(valid_frac)
    for i, uid in enumerate(free):
        out[uid] = "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
    return out


def user_style(ds: Dataset, user: User) -> str | None:
    """The user's style label: the most common style in their history (ties: the latest wins)."""
    styles = [ds.items[i].style for i in user.history if ds.items[i].style]
    if not styles:
        return None
    counts = Counter(styles)
    top = max(counts.values())
    return next(s for s in reversed(styles) if counts[s] == top)


def pick_reference(
    ds: Dataset,
    target_id: str,
    avoid_style: str | None,
    rng: random.Random,
    avoid_items: Collection[str] = (),
    trained_styles: Collection[str] | None = None,
) -> str | None:
    """An item with the target's semantics in another style, or None if the data has none.

    Excluded: the target itself, items of the target's style or of `avoid_style` (the user's), and
    `avoid_items` (the user's own history). Where `trained_styles` is given and some candidate has one
    of them, only those count: a reference's style should be one the model was trained on (the emoji
    benchmark has vendors that no training user has). Candidates are sorted before `rng` draws, so
    the choice depends only on the seed, not on dictionary order.
    """
    target = ds.items[target_id]
    if not target.semantics:
        return None
    avoid = set(avoid_items)
    candidates = sorted(
        it.id
        for it in ds.items.values()
        if it.semantics == target.semantics
        and it.id != target_id
        and it.id not in avoid
        and it.style
        and it.style != target.style
        and it.style != avoid_style
    )
    if trained_styles is not None:
        known = [i for i in candidates if ds.items[i].style in trained_styles]
        candidates = known or candidates
    return rng.choice(candidates) if candidates else None


def windows(history: Sequence[str], history_len: int) -> list[tuple[tuple[str, ...], str]]:
    """(history[i : i+k], history[i+k]) for every i: len(history) - k windows (none if shorter)."""
    k = history_len
    return [(tuple(history[i : i + k]), history[i + k]) for i in range(len(history) - k)]


def make_samples(
    ds: Dataset, history_len: int = 5, seed: int = 0, valid_frac: float = 0.1, test_frac: float = 0.1
) -> list[Sample]:
    """Every sample of the dataset, users in file order, windows oldest first."""
    if history_len < 1:
        raise DrcError(f"history length must be at least 1, got {history_len}")
    splits = split_users(ds.users, seed=seed, valid_frac=valid_frac, test_frac=test_frac)
    labelled = ds.labelled
    trained = {ds.items[i].style for u in ds.users if splits[u.id] == "train" for i in u.history}
    out: list[Sample] = []
    for user in ds.users:
        split = splits[user.id]
        assert split in SPLITS
        style = user_style(ds, user) if labelled else None
        for i, (hist, target) in enumerate(windows(user.history, history_len)):
            ref = None
            if labelled and split != "train":
                # seeded per (seed, user, window): a sample's reference does not depend on the others
                rng = random.Random(f"drc-ref/{seed}/{user.id}/{i}")
                ref = pick_reference(ds, target, style, rng, avoid_items=user.history, trained_styles=trained)
            out.append(Sample(user.id, hist, target, split, ref))
    return out
