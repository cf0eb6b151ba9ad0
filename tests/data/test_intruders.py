"""Noisy users in the built-in benchmarks: where intruders go, what they are, what stays the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drc.cli import main
from drc.data.benchmarks.intruders import add_intruders
from drc.data.benchmarks.posters import build as build_posters
from drc.data.benchmarks.stickers import build as build_stickers
from drc.data.manifest import Item, User, load_dataset
from drc.errors import DrcError

K = 5


def _users(path: Path) -> dict[str, dict]:
    return {u["id"]: u for u in map(json.loads, (path / "users.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def clean_and_noisy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("noisy")
    build_stickers(root / "clean", users=48, seed=3, noisy_share=0.0)
    build_stickers(root / "noisy", users=48, seed=3, noisy_share=0.3)
    return root / "clean", root / "noisy"


def test_noise_changes_only_the_chosen_users_first_k_positions(clean_and_noisy):
    clean, noisy = clean_and_noisy
    assert (clean / "items.jsonl").read_bytes() == (noisy / "items.jsonl").read_bytes()  # no item added
    cu, nu = _users(clean), _users(noisy)
    ds = load_dataset(noisy, check_images=False)
    held_out = {tuple(p) for p in json.loads((noisy / "dataset.json").read_text())["held_out"]}
    train_items = {i for u in cu.values() if u["split"] == "train" for i in u["history"]}
    changed = {uid for uid in cu if cu[uid]["history"] != nu[uid]["history"]}
    for split in ("train", "valid", "test"):  # the share holds in every split
        members = [uid for uid in cu if cu[uid]["split"] == split]
        assert sum(uid in changed for uid in members) == round(0.3 * len(members))
    for uid in changed:
        old, new = cu[uid]["history"], nu[uid]["history"]
        diff = [i for i, (a, b) in enumerate(zip(old, new)) if a != b]
        assert len(old) == len(new) and 1 <= len(diff) <= 2 and max(diff) < K  # never a target
        theme = ds.items[old[-1]].style
        for i in diff:
            intruder = ds.items[new[i]]
            assert intruder.style != theme and new[i] in train_items
            assert (intruder.style, intruder.semantics) not in held_out
        assert [ds.items[i].style for i in new].count(theme) > len(new) / 2  # the theme keeps the majority


def test_noisy_benchmarks_pass_data_check_and_report_their_noise(clean_and_noisy, tmp_path, capsys):
    _, noisy = clean_and_noisy
    assert main(["data", "check", str(noisy)]) == 0
    info = json.loads((noisy / "dataset.json").read_text())["noisy_users"]
    assert (
        info["share"] == 0.3 and info["count"] > 0 and info["count"] <= info["intruders"] <= 2 * info["count"]
    )
    stats = build_posters(tmp_path / "po", users=40, seed=1)  # on by default
    per = stats["users_per_split"]
    assert stats["noisy_users"] == sum(round(0.3 * n) for n in per.values())
    assert stats["noisy_test_users"] == round(0.3 * per["test"]) > 0
    assert main(["data", "check", str(tmp_path / "po")]) == 0
    capsys.readouterr()
    assert (
        main(["data", "stickers", "--out", str(tmp_path / "st"), "--users", "24", "--noisy-share", "0"]) == 0
    )
    assert "0 noisy users" in capsys.readouterr().out


def test_bad_share_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(DrcError, match="--noisy-share 1.5"):
        build_stickers(tmp_path / "x", users=24, noisy_share=1.5)
    assert not (tmp_path / "x").exists()


def test_add_intruders_is_seeded_and_skips_users_too_short_for_a_target():
    items = [Item(f"{t}{j}", f"{t}{j}.png", "", style=t, semantics=str(j)) for t in "ab" for j in range(7)]
    users = [
        User("u0", tuple(f"a{j}" for j in range(7)), "train"),
        User("u1", tuple(f"b{j}" for j in range(7)), "train"),
        User("u2", tuple(f"a{j}" for j in range(5)), "train"),  # k items, no target
    ]
    out1, placed1 = add_intruders(users, items, K, 1.0, np.random.default_rng(0))
    out2, placed2 = add_intruders(users, items, K, 1.0, np.random.default_rng(0))
    assert out1 == out2 and placed1 == placed2
    assert set(placed1) == {"u0", "u1"} and out1[2] == users[2]
    for u, new in zip(users[:2], out1[:2]):
        for p in placed1[u.id]:
            assert new.history[p][0] != u.history[-1][0]  # the other theme
