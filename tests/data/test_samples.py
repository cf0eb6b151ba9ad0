"""Sliding-window samples, the seeded split by user, and real test references on labelled data."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from drc.data.manifest import Dataset, Item, User, load_dataset
from drc.data.samples import Sample, make_samples, pick_reference, split_users, user_style, windows
from drc.errors import DrcError


def _users(n: int, **splits: str) -> list[User]:
    return [User(f"user{i:03d}", ("a",), splits.get(f"user{i:03d}")) for i in range(n)]


def test_split_ratio_and_disjoint() -> None:
    users = _users(200)
    s = split_users(users, seed=0)
    assert set(s) == {u.id for u in users}  # every user in exactly one split (a dict: disjoint)
    assert Counter(s.values()) == {"train": 160, "valid": 20, "test": 20}
    assert split_users(users, seed=0) == s  # seeded
    assert split_users(list(reversed(users)), seed=0) == s  # file order does not matter
    other = split_users(users, seed=1)
    assert other != s and Counter(other.values()) == Counter(s.values())
    s2 = split_users(users, seed=0, valid_frac=0.25, test_frac=0.05)
    assert Counter(s2.values()) == {"train": 140, "valid": 50, "test": 10}


def test_split_honours_user_split() -> None:
    users = _users(200, user000="test", user001="valid", user002="train", user003="test")
    s = split_users(users, seed=0)
    assert (s["user000"], s["user001"], s["user002"], s["user003"]) == ("test", "valid", "train", "test")
    # the fractions apply to the 196 users without their own split
    c = Counter(v for k, v in s.items() if k not in ("user000", "user001", "user002", "user003"))
    assert c == {"train": 156, "valid": 20, "test": 20}
    # everyone pre-split: nothing is drawn
    assert split_users([User("x", (), "valid")]) == {"x": "valid"}


def test_split_small_and_bad_fractions() -> None:
    assert Counter(split_users(_users(5)).values()) == {"train": 3, "valid": 1, "test": 1}
    assert Counter(split_users(_users(2)).values()) == {"train": 2}
    assert Counter(split_users(_users(10), valid_frac=0.0).values()) == {"train": 9, "test": 1}
    with pytest.raises(DrcError, match="fractions"):
        split_users(_users(10), valid_frac=0.5, test_frac=0.5)


def test_windows() -> None:
    h = ("a", "b", "c", "d", "e", "f", "g")
    assert windows(h, 5) == [(("a", "b", "c", "d", "e"), "f"), (("b", "c", "d", "e", "f"), "g")]
    assert windows(h, 7) == [] and windows(h[:3], 5) == []
    assert len(windows(h, 1)) == 6


def test_make_samples_counts_and_windows(tmp_path: Path, make_dataset) -> None:
    ds = load_dataset(make_dataset(tmp_path / "d", n_users=30, history=9))
    samples = make_samples(ds, history_len=5, seed=0)
    assert len(samples) == 30 * 4 == ds.num_samples(5)
    by_user: dict[str, list[Sample]] = {}
    for s in samples:
        by_user.setdefault(s.user, []).append(s)
    for u in ds.users:
        got = by_user[u.id]
        assert [(s.history, s.target) for s in got] == windows(u.history, 5)
        assert len({s.split for s in got}) == 1  # split by user, never by sample
    assert len(make_samples(ds, history_len=3)) == 30 * 6
    assert Counter(s.split for s in samples) == {"train": 24 * 4, "valid": 3 * 4, "test": 3 * 4}
    assert make_samples(ds, seed=0) == samples  # deterministic
    with pytest.raises(DrcError):
        make_samples(ds, history_len=0)


def test_references_labelled(tmp_path: Path, make_dataset) -> None:
    ds = load_dataset(make_dataset(tmp_path / "d", n_users=30, history=8))
    samples = make_samples(ds, seed=3)
    assert all(s.reference is None for s in samples if s.split == "train")
    held = [s for s in samples if s.split != "train"]
    assert held and all(s.reference is not None for s in held)
    for s in held:
        ref, tgt = ds.items[s.reference], ds.items[s.target]
        user = ds.user(s.user)
        assert ref.semantics == tgt.semantics
        assert ref.style != tgt.style and ref.style != user_style(ds, user)
        assert s.reference != s.target and s.reference not in user.history
    # both other styles get used somewhere (a draw, not always the first candidate)
    assert len({ds.items[s.reference].style for s in held}) >= 2
    assert make_samples(ds, seed=3) == samples


def test_references_unlabelled(tmp_path: Path, make_dataset) -> None:
    ds = load_dataset(make_dataset(tmp_path / "d", n_users=12, labelled=False))
    samples = make_samples(ds)
    assert any(s.split == "test" for s in samples)
    assert all(s.reference is None for s in samples)


def _grid(items: list[tuple[str, str | None, str | None]]) -> Dataset:
    return Dataset(Path("."), {i: Item(i, f"{i}.png", "", st, se) for i, st, se in items}, [], {})


def test_pick_reference_rules() -> None:
    ds = _grid(
        [
            ("t", "red", "cat"),  # the target
            ("same_style", "red", "cat"),  # same semantics, but the target's style
            ("user_style", "green", "cat"),  # the user's style
            ("in_history", "blue", "cat"),  # would do, but the user has seen it
            ("other_sem", "yellow", "dog"),  # another style, wrong semantics
            ("good1", "blue", "cat"),
            ("good2", "pink", "cat"),
        ]
    )

    def pick(seed: int) -> str | None:
        return pick_reference(ds, "t", "green", random.Random(seed), avoid_items=("in_history",))

    assert {pick(i) for i in range(40)} == {"good1", "good2"}
    assert [pick(7)] * 3 == [pick(7) for _ in range(3)]  # the rng alone decides
    # no candidate left -> None
    assert pick_reference(ds, "other_sem", None, random.Random(0)) is None
    assert pick_reference(_grid([("t", None, None), ("x", "a", None)]), "t", None, random.Random(0)) is None


def test_pick_reference_prefers_trained_styles() -> None:
    ds = _grid(
        [("t", "red", "cat"), ("new", "unseen", "cat"), ("old", "blue", "cat"), ("x", "unseen", "dog")]
    )
    picks = {
        pick_reference(ds, "t", None, random.Random(i), trained_styles={"red", "blue"}) for i in range(20)
    }
    assert picks == {"old"}  # the style no training user has is passed over while another candidate exists
    # no candidate has a trained style: any of them rather than no reference
    assert {pick_reference(ds, "t", None, random.Random(i), trained_styles={"red"}) for i in range(20)} == {
        "new",
        "old",
    }
    assert pick_reference(ds, "x", None, random.Random(0), trained_styles={"red"}) is None  # none at all


def test_reference_none_when_semantics_unique(tmp_path: Path, make_dataset) -> None:
    ds = load_dataset(make_dataset(tmp_path / "d", n_users=10))
    # relabel so every semantics exists in one style only: no valid reference anywhere
    ds.items = {
        i: Item(i, it.image, "", it.style, f"{it.style}/{it.semantics}") for i, it in ds.items.items()
    }
    held = [s for s in make_samples(ds) if s.split != "train"]
    assert held and all(s.reference is None for s in held)
