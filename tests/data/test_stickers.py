"""The sticker benchmark: determinism, counts, held-out pairs, format, labels, contact sheet, safety."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drc.data.benchmarks import common, stickers
from drc.data.manifest import load_dataset
from drc.errors import DrcError

USERS = 40  # the fewest that give every theme a train user and every held-out pair a test user (+ margin)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("stickers") / "ds"
    stats = stickers.build(out, users=USERS, seed=3)
    return out, stats


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_same_seed_same_bytes_other_seed_differs(built: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = built
    again = tmp_path / "again"
    stickers.build(again, users=USERS, seed=3)
    for f in ("items.jsonl", "users.jsonl", "dataset.json"):
        assert (out / f).read_bytes() == (again / f).read_bytes(), f
    items = _jsonl(out / "items.jsonl")
    for it in items[:: max(1, len(items) // 15)]:
        assert (out / it["image"]).read_bytes() == (again / it["image"]).read_bytes(), it["id"]
    other = tmp_path / "other"
    stickers.build(other, users=USERS, seed=4)
    assert (other / "users.jsonl").read_bytes() != (out / "users.jsonl").read_bytes()
    assert (other / items[0]["image"]).read_bytes() != (out / items[0]["image"]).read_bytes()


def test_loads_with_manifest_and_labels_are_consistent(built: tuple[Path, dict]) -> None:
    out, stats = built
    ds = load_dataset(out)
    assert ds.labelled
    assert ds.info["name"] == "stickers" and ds.info["instruction"] == "a sticker"
    assert len(ds.items) == stats["items"] and len(ds.users) == stats["users"] == USERS
    chars = {t.name: t.char_name for t in stickers.THEMES}
    for u in ds.users:
        # one theme per user, but for 1-2 intruders (noisy users) among the first k, never a target
        theme = ds.items[u.history[-1]].style
        odd = [j for j, i in enumerate(u.history) if ds.items[i].style != theme]
        assert len(odd) <= 2 and all(j < 5 for j in odd), f"user {u.id} changes theme at {odd}"
        for i in u.history:
            it = ds.items[i]
            assert it.text == f"a {chars[it.style]} sticker, {it.semantics}"  # also "a unicorn"
            assert it.style in ds.info["themes"] and it.semantics in ds.info["semantics"]
    with Image.open(ds.image_path(next(iter(ds.items)))) as im:
        assert im.size == (64, 64) and im.mode == "RGB"
    # several users share each theme that has train users; every user can give a k=5 window
    assert all(len(u.history) >= 6 for u in ds.users)
    per_theme = Counter(ds.items[u.history[0]].style for u in ds.users if u.split == "train")
    assert len(per_theme) == len(stickers.THEMES)


def test_held_out_pairs_only_in_test_targets(built: tuple[Path, dict]) -> None:
    out, _ = built
    ds = load_dataset(out)
    held = {tuple(p) for p in ds.info["held_out"]}
    assert held == set(common.choose_held_out(ds.info["themes"], ds.info["semantics"], 3))
    targets = set()
    for u in ds.users:
        pairs = [(ds.items[i].style, ds.items[i].semantics) for i in u.history]
        assert u.split in ("train", "valid", "test")
        if u.split == "test":
            assert len(pairs) == 6 and pairs[-1] in held
            assert not any(p in held for p in pairs[:-1]), u.id
            assert len({p[1] for p in pairs[:-1]}) == 5  # a varied history shows the style well
            targets.add(pairs[-1])
        else:
            assert not any(p in held for p in pairs), f"{u.split} user {u.id} sees a held-out pair"
    assert targets == held  # every held-out pair is tested


def test_counts_and_every_intent_in_every_theme() -> None:
    themes = [t.name for t in stickers.THEMES]
    intents = [i.name for i in stickers.INTENTS]
    assert len(themes) >= 8 and len(intents) >= 10
    held = common.choose_held_out(themes, intents, 0)
    assert 0.08 <= len(held) / (len(themes) * len(intents)) <= 0.16
    per_theme = Counter(t for t, _ in held)
    assert set(per_theme) == set(themes) and set(per_theme.values()) <= {1, 2}
    assert {s for _, s in held} == set(intents)  # every intent is held out somewhere
    # at the default size, train users cover every seen pair and test users every held-out pair
    plans = common.plan_users(themes, intents, held, stickers.DEFAULT_USERS, 0)
    train = {(p.theme, s) for p in plans if p.split == "train" for s in p.semantics}
    test = {(p.theme, p.semantics[-1]) for p in plans if p.split == "test"}
    assert train == set(itertools.product(themes, intents)) - set(held)
    assert test == set(held)
    lengths = [len(p.semantics) for p in plans if p.split != "test"]
    assert min(lengths) >= 8 and max(lengths) <= 12
    assert not any(a == b for p in plans for a, b in itertools.pairwise(p.semantics))  # no immediate repeats


def test_themes_and_intents_differ_at_token_resolution() -> None:
    """Every two themes (same intent) and every two intents (same theme) differ in 8x8-pixel block means:
    what a VQ tokenizer with 8x8 tokens keeps must still tell them apart."""
    themes = [t.name for t in stickers.THEMES]
    intents = [i.name for i in stickers.INTENTS]

    def token_means(t: str, s: str) -> np.ndarray:
        img = np.asarray(stickers.render(t, s, None, (64, 64))[0], np.float32)
        return img.reshape(8, 8, 8, 8, 3).mean((1, 3))  # (8, 8, 3): one colour per 8x8 token

    blocks = {(t, s): token_means(t, s) for t in themes for s in intents}

    def dist(a: tuple[str, str], b: tuple[str, str]) -> float:
        return float(np.abs(blocks[a] - blocks[b]).mean())

    worst_theme = min(dist((a, s), (b, s)) for s in intents for a, b in itertools.combinations(themes, 2))
    worst_intent = min(dist((t, a), (t, b)) for t in themes for a, b in itertools.combinations(intents, 2))
    assert worst_theme > 10.0 and worst_intent > 6.0, (worst_theme, worst_intent)


def test_jitter_keeps_items_alike_but_not_identical() -> None:
    a = np.asarray(stickers.render("sky_cat", "love", common.rng_for(0, 1), (64, 64))[0], np.float32)
    b = np.asarray(stickers.render("sky_cat", "love", common.rng_for(0, 2), (64, 64))[0], np.float32)
    c = np.asarray(stickers.render("sky_cat", "sad", common.rng_for(0, 1), (64, 64))[0], np.float32)
    assert 0 < np.abs(a - b).mean() < np.abs(a - c).mean()


def test_contact_sheet(built: tuple[Path, dict]) -> None:
    out, _ = built
    with Image.open(out / "contact_sheet.png") as im:
        w, h = im.size
        sheet = np.asarray(im.convert("RGB"))
    assert w >= 12 * 64 and h >= 12 * 64
    red = (sheet[..., 0] > 200) & (sheet[..., 1] < 30) & (sheet[..., 2] < 30)
    assert red.sum() > 18 * 20  # the held-out corner marks


def test_refuses_foreign_folder_and_rebuilds_in_place(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    with pytest.raises(DrcError, match="refusing"):
        stickers.build(foreign, users=USERS)
    assert (foreign / "notes.txt").read_text() == "precious"
    other_ds = tmp_path / "other"
    other_ds.mkdir()
    (other_ds / "dataset.json").write_text('{"name": "stickers"}')  # a user's dataset, not a build
    (other_ds / "items.jsonl").write_text("")
    with pytest.raises(DrcError, match="refusing"):
        stickers.build(other_ds, users=USERS)
    assert (other_ds / "items.jsonl").exists()
    with pytest.raises(DrcError, match="is a file"):
        stickers.build(foreign / "notes.txt", users=USERS)

    out = tmp_path / "ds"
    assert stickers.cli(["--out", str(out), "--users", "33", "--seed", "1", "--size", "32"]) == 0
    with Image.open(next((out / "images").iterdir())) as im:
        assert im.size == (32, 32)
    first = (out / "users.jsonl").read_bytes()
    stickers.build(out, users=USERS, seed=1)  # rebuilding a build is fine; old images are gone
    assert (out / "users.jsonl").read_bytes() != first
    assert len(list((out / "images").iterdir())) == len(load_dataset(out).items)
    (out / "images" / "extra.txt").write_text("x")  # someone put their own file in: stop touching it
    with pytest.raises(DrcError, match="images/extra.txt"):
        stickers.build(out, users=USERS, seed=1)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DrcError, match="too few"):
        stickers.build(tmp_path / "a", users=2)
    with pytest.raises(DrcError, match="square"):
        stickers.build(tmp_path / "b", users=USERS, size=(96, 64))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(DrcError, match="--size"):
        common.parse_size("big")


def test_cli_prints_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from drc.commands import data

    assert data.main(["stickers", "--out", str(tmp_path / "s"), "--users", "33", "--size", "32"]) == 0
    text = capsys.readouterr().out
    assert "33 users" in text and "12 themes x 12 semantics" in text and " s " in text
    assert "note:" not in text  # 33 users: every held-out pair tested, every theme trained


def test_tiny_build_for_smoke_tests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """24 users (the smoke-test size): fewer test users than held-out pairs, still a valid dataset."""
    assert stickers.cli(["--out", str(tmp_path / "t"), "--users", "24", "--size", "32"]) == 0
    assert "note: with 24 users, 8 held-out pairs have no test user and 0 themes" in capsys.readouterr().out
    ds = load_dataset(tmp_path / "t")
    held = {tuple(p) for p in ds.info["held_out"]}
    splits = Counter(u.split for u in ds.users)
    assert splits == {"train": 12, "valid": 2, "test": 10}
    for u in ds.users:
        pairs = [(ds.items[i].style, ds.items[i].semantics) for i in u.history]
        assert (pairs[-1] in held) == (u.split == "test") and not any(p in held for p in pairs[:-1])


def test_emoji_mode_labels_held_out_and_captions(tmp_path: Path) -> None:
    themes = [t.name for t in stickers.THEMES]
    subjects = [s for s, _ in stickers.SUBJECTS]
    assert len(subjects) >= 50 and len(set(subjects)) == len(subjects)
    held = common.choose_held_out(themes, subjects, 0)
    assert set(Counter(t for t, _ in held).values()) <= {7, 8} and len(set(held)) == len(held)
    img, text = stickers.render_subject("kraft_unicorn", "apple", None, (64, 64))
    assert img.size == (64, 64) and text == "a unicorn sticker with an apple"
    a = np.asarray(img, np.float32)
    b = np.asarray(stickers.render_subject("kraft_unicorn", "banana", None, (64, 64))[0], np.float32)
    assert np.abs(a - b).mean() > 2.0
    with pytest.raises(DrcError, match="too few"):  # the CLI route, stopped before any rendering
        stickers.cli(["--out", str(tmp_path / "e"), "--semantics", "emoji", "--users", "2"])
    with pytest.raises(DrcError, match="unknown sticker semantics"):
        stickers.build(tmp_path / "x", semantics="colour")
