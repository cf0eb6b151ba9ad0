"""The validation split: held-out pairs of training users that no training sample shows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from drc.data.heldout import HELDOUT, carve_heldout
from drc.data.manifest import load_dataset
from drc.data.samples import make_samples


@pytest.fixture(scope="module")
def ds(tiny_stickers: Path):
    return load_dataset(tiny_stickers)


def _pair(ds, iid):
    return ds.items[iid].style, ds.items[iid].semantics


def test_heldout_pairs_are_unseen_by_training_and_never_a_test_pair(ds) -> None:
    base = make_samples(ds)
    out = carve_heldout(ds, base, history_len=5, share=0.1, seed=0)
    held = [s for s in out if s.split == HELDOUT]
    train = [s for s in out if s.split == "train"]
    assert held and train
    pairs = {_pair(ds, s.target) for s in held}
    shown = {_pair(ds, i) for s in train for i in (*s.history, s.target)}
    assert not pairs & shown  # no training sample shows a held-out pair, as target or in a history
    assert not pairs & {_pair(ds, s.target) for s in base if s.split != "train"}
    train_users = {s.user for s in base if s.split == "train"}
    for s in held:
        assert s.user in train_users and 1 <= len(s.history) <= 5
        assert all(_pair(ds, i) not in pairs for i in s.history)  # the history does not give it away
        # a composition of seen parts: the style and the semantics each stay in training
        style, sem = _pair(ds, s.target)
        assert any(p[0] == style for p in shown) and any(p[1] == sem for p in shown)
        # the reference: the target's semantics in another style, an image training shows
        ref = ds.items[s.reference]
        assert ref.semantics == sem and ref.style != style
        assert any(s.reference in (*t.history, t.target) for t in train)
    # valid and test samples are untouched, and the split depends only on the seed
    assert [s for s in out if s.split in ("valid", "test")] == [s for s in base if s.split != "train"]
    assert carve_heldout(ds, base, 5, 0.1, seed=0) == out
    assert 0 < len(held) <= 0.3 * len(train)


def test_share_zero_changes_nothing(ds) -> None:
    base = make_samples(ds)
    assert carve_heldout(ds, base, 5, 0.0, seed=0) == base


def test_unlabelled_data_holds_out_the_last_item_of_some_training_users(ds) -> None:
    items = {k: dataclasses.replace(v, style=None, semantics=None) for k, v in ds.items.items()}
    plain = dataclasses.replace(ds, items=items)
    base = make_samples(plain)
    out = carve_heldout(plain, base, 5, 0.1, seed=0)
    held = [s for s in out if s.split == HELDOUT]
    assert held
    users = {u.id: u for u in plain.users}
    for s in held:
        hist = users[s.user].history
        assert s.target == hist[-1] and s.history == tuple(hist[-6:-1]) and s.reference is None
        # the user still trains on their other items, never on the held-out one
        train = [t for t in out if t.split == "train" and t.user == s.user]
        assert train and all(s.target not in (*t.history, t.target) for t in train)
