"""The movie-poster benchmark: determinism, counts, held-out genres, format, labels, contact sheet."""

from __future__ import annotations

import itertools
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drc.data.benchmarks import common, posters
from drc.data.manifest import load_dataset
from drc.errors import DrcError

USERS = 40


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("posters") / "ds"
    stats = posters.build(out, users=USERS, seed=5)
    return out, stats


def test_same_seed_same_bytes(built: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = built
    again = tmp_path / "again"
    posters.build(again, users=USERS, seed=5)
    for f in ("items.jsonl", "users.jsonl", "dataset.json", "contact_sheet.png"):
        assert (out / f).read_bytes() == (again / f).read_bytes(), f
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    for it in items[:: max(1, len(items) // 15)]:  # grain noise included: it comes from the item's rng
        assert (out / it["image"]).read_bytes() == (again / it["image"]).read_bytes(), it["id"]


def test_format_labels_and_movies(built: tuple[Path, dict]) -> None:
    out, stats = built
    ds = load_dataset(out)
    assert ds.labelled and ds.info["name"] == "posters" and ds.info["instruction"] == "a movie poster"
    assert len(ds.items) == stats["items"] and len(ds.users) == USERS
    with Image.open(ds.image_path(next(iter(ds.items)))) as im:
        assert im.size == (64, 96) and im.mode == "RGB"  # PIL size is (W, H): portrait 96x64 (H x W)
    titles = {g.name: {t.title() for t, _ in g.movies} for g in posters.GENRES}
    styles_of_movie: dict[str, set[str]] = defaultdict(set)
    for u in ds.users:
        # one design theme per user, but for 1-2 intruders (noisy users) among the first k
        theme = ds.items[u.history[-1]].style
        odd = [j for j, i in enumerate(u.history) if ds.items[i].style != theme]
        assert len(odd) <= 2 and all(j < 5 for j in odd), f"user {u.id} changes theme at {odd}"
    for it in ds.items.values():
        m = re.fullmatch(r'a movie poster for "(.+)", an? (\w+) movie', it.text)
        assert m and m.group(2) == it.semantics and m.group(1) in titles[it.semantics], it.text
        styles_of_movie[m.group(1)].add(it.style)
    # the same movie shows up in several styles
    assert max(len(s) for s in styles_of_movie.values()) >= 3


def test_held_out_and_counts(built: tuple[Path, dict]) -> None:
    out, _ = built
    ds = load_dataset(out)
    assert len(ds.info["themes"]) >= 8 and len(ds.info["semantics"]) >= 12
    held = {tuple(p) for p in ds.info["held_out"]}
    targets = set()
    for u in ds.users:
        pairs = [(ds.items[i].style, ds.items[i].semantics) for i in u.history]
        if u.split == "test":
            assert pairs[-1] in held and not any(p in held for p in pairs[:-1])
            targets.add(pairs[-1])
        else:
            assert not any(p in held for p in pairs), u.id
    assert targets == held
    themes, genres = ds.info["themes"], ds.info["semantics"]
    plans = common.plan_users(themes, genres, sorted(held), posters.DEFAULT_USERS, 5)
    seen = {(p.theme, s) for p in plans if p.split == "train" for s in p.semantics}
    assert seen | held == set(itertools.product(themes, genres))  # every genre in every theme


def test_themes_and_genres_differ_at_token_resolution() -> None:
    themes = [t.name for t in posters.THEMES]
    genres = [g.name for g in posters.GENRES]

    def token_means(t: str, g: str) -> np.ndarray:
        img = np.asarray(posters.render(t, g, None, (96, 64))[0], np.float32)
        return img.reshape(12, 8, 8, 8, 3).mean((1, 3))  # (12, 8, 3): one colour per 8x8 token

    blocks = {(t, g): token_means(t, g) for t in themes for g in genres}
    d = lambda a, b: float(np.abs(blocks[a] - blocks[b]).mean())  # noqa: E731
    worst_theme = min(d((a, g), (b, g)) for g in genres for a, b in itertools.combinations(themes, 2))
    worst_genre = min(d((t, a), (t, b)) for t in themes for a, b in itertools.combinations(genres, 2))
    assert worst_theme > 15.0 and worst_genre > 5.0, (worst_theme, worst_genre)


def test_contact_sheet_and_size_option(built: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = built
    with Image.open(out / "contact_sheet.png") as im:
        assert im.width >= 12 * 64 and im.height >= 12 * 96
    small = tmp_path / "small"
    assert posters.cli(["--out", str(small), "--users", "33", "--size", "48x32"]) == 0
    with Image.open(next((small / "images").iterdir())) as im:
        assert im.size == (32, 48)


def test_refuses_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(DrcError, match="refusing.*photo.jpg"):
        posters.build(tmp_path, users=USERS)
    assert (tmp_path / "photo.jpg").read_bytes() == b"\xff\xd8"
