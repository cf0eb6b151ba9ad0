"""The vendor-emoji benchmark on tiny fake `@iconify-json` tarballs (no network, no npm)."""

from __future__ import annotations

import io
import json
import stat
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drc.cli import main
from drc.data.benchmarks import emoji, iconify
from drc.data.manifest import load_dataset
from drc.data.samples import make_samples
from drc.errors import DrcError

SEEN = ("alpha", "beta", "gamma")
UNSEEN = ("delta",)
# concept keys the fake sets share; "alarmclock" is spelt "alarm-clock" by most sets and "alarmclock" by
# beta (fxemoji's way), "redapple" is an alias in gamma, "cloud" is "cloud-1" in delta (streamline's way)
WANTED = (
    "alarmclock", "redapple", "cloud", "ant", "bus", "cactus", "dog", "egg", "fish", "guitar", "hat",
    "igloo", "jar", "kite", "grinningface", "flaginhole", "onlyalpha",
)  # fmt: skip
SHARED = [w for w in WANTED if w not in ("grinningface", "flaginhole", "onlyalpha")]
COLOURS = {"alpha": "#d03030", "beta": "#30a040", "gamma": "#3050d0", "delta": "#c0a000"}
USERS = 48


def _body(vendor: str, i: int) -> str:
    """A vendor colour and a concept-dependent shape: enough for distinct, checkable pixels."""
    box = f'x="{2 + i % 5}" y="{2 + i % 7}" width="{10 + i % 4}" height="{8 + i % 5}"'
    return f'<rect {box} fill="{COLOURS[vendor]}"/>'


def _write_set(cache: Path, vendor: str, version: str = "1.0.0", spdx: str = "CC-BY-4.0") -> Path:
    names = {w: w for w in WANTED if not (w == "onlyalpha" and vendor != "alpha")}
    names["alarmclock"] = "alarmclock" if vendor == "beta" else "alarm-clock"
    names["redapple"] = "red-apple"
    names["grinningface"] = "grinning-face"
    names["flaginhole"] = "flag-in-hole"
    if vendor == "delta":
        names["cloud"] = "cloud-1"
    icons: dict = {}
    aliases: dict = {}
    for i, (key, name) in enumerate(sorted(names.items())):
        if vendor == "gamma" and key == "redapple":
            icons["apple-red"] = {"body": _body(vendor, i)}
            aliases[name] = {"parent": "apple-red"}
        else:
            icons[name] = {"body": _body(vendor, i)}
    icons["egg"] = {"body": _body(vendor, 99), "width": 24, "height": 12}  # a wide icon
    data = {"prefix": vendor, "icons": icons, "aliases": aliases, "width": 24, "height": 24}
    info = {
        "prefix": vendor,
        "name": f"{vendor.title()} Emoji",
        "author": {"name": f"{vendor} team", "url": f"https://example.org/{vendor}"},
        "license": {"title": spdx.replace("-", " "), "spdx": spdx, "url": f"https://example.org/{spdx}"},
    }
    meta = {"categories": {"Smileys & Emotion": ["grinning-face"], "Objects": ["jar"]}}
    pkg = {"name": f"@iconify-json/{vendor}", "version": version, "license": spdx}
    path = cache / f"iconify-json-{vendor}-{version}.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in (
            ("icons.json", data),
            ("info.json", info),
            ("metadata.json", meta),
            ("package.json", pkg),
        ):
            raw = json.dumps(obj).encode()
            ti = tarfile.TarInfo(f"package/{name}")
            ti.size = len(raw)
            tar.addfile(ti, io.BytesIO(raw))
    return path


@pytest.fixture(autouse=True)
def _no_npm(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """No test reaches the network: `npm` is not on PATH unless a test puts a fake one there."""
    monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("empty-bin")))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cache")
    for v in SEEN + UNSEEN:
        _write_set(root, v, spdx="MIT" if v == "beta" else "CC-BY-4.0")
    _write_set(root, "alpha", version="0.9.0")  # an older tarball: the newest is used
    return root


def _build(out: Path, cache: Path, seed: int = 1, **kw) -> dict:
    args = dict(users=USERS, seed=seed, size=32, cache=cache, vendors=SEEN, unseen=UNSEEN, concepts=WANTED)
    return emoji.build(out, **{**args, **kw})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("emoji") / "ds"
    return out, _build(out, cache)


def _users(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "users.jsonl").read_text(encoding="utf-8").splitlines()]


def test_names_shared_across_vendors(cache: Path) -> None:
    sets = emoji.load_sets(SEEN + UNSEEN, cache)
    # alias, "-1" variant and hyphen-less spelling all name one concept; a face (by category), a flag
    # (by name) and a concept one vendor lacks are dropped
    assert emoji.shared_concepts(sets, WANTED) == SHARED
    assert [s.version for s in sets] == ["1.0.0"] * 4
    assert sets[0].names["alarmclock"] == "alarm-clock" and sets[1].names["alarmclock"] == "alarmclock"
    assert emoji.concept_words("redapple", sets) == "red apple"
    assert iconify.normalise("Alarm-Clock") == iconify.normalise("alarmclock")


def test_held_out_pairs_never_in_training(built: tuple[Path, dict]) -> None:
    out, stats = built
    ds = load_dataset(out)
    held = {tuple(p) for p in ds.info["held_out"]}
    assert held and stats["held_out_untested"] == 0 and stats["themes_untrained"] == 0
    pair = lambda i: (ds.items[i].style, ds.items[i].semantics)  # noqa: E731
    for u in ds.users:
        if u.split != "test":
            assert not {pair(i) for i in u.history} & held, u.id
    targets = {pair(u.history[-1]) for u in ds.users if u.split == "test" and pair(u.history[-1])[0] in SEEN}
    assert targets == held  # every held-out pair is a target, and every seen-vendor target is held out
    for u in ds.users:
        if u.split == "test":  # a history never shows the user's own target pair
            assert pair(u.history[-1]) not in {pair(i) for i in u.history[:-1]}


def test_unseen_vendors_absent_from_training(built: tuple[Path, dict]) -> None:
    out, stats = built
    ds = load_dataset(out)
    rows = {r["id"]: r for r in _users(out)}
    unseen_users = [u for u in ds.users if ds.items[u.history[-1]].style in UNSEEN]
    assert unseen_users and stats["unseen_style_users"] == len(unseen_users)
    assert ds.info["unseen_vendors"] == list(UNSEEN)
    assert ds.info["unseen_style_users"] == [u.id for u in unseen_users]
    for u in ds.users:
        styles = {ds.items[i].style for i in u.history}
        assert rows[u.id].get("unseen_style", False) == (u in unseen_users)
        if u.split != "test":
            assert not styles & set(UNSEEN), u.id
    for u in unseen_users:
        target = ds.items[u.history[-1]]
        assert u.split == "test" and target.semantics in ds.info["unseen_targets"][target.style]
        for v in unseen_users:  # no unseen-style history shows a target pair of that vendor
            assert u.history[-1] not in v.history[:-1]


def test_samples_get_references_in_another_style(built: tuple[Path, dict]) -> None:
    ds = load_dataset(built[0])
    test = [s for s in make_samples(ds, history_len=5) if s.split == "test"]
    assert len(test) == sum(u.split == "test" for u in ds.users)
    held = [s for s in make_samples(ds, history_len=5) if s.split != "train"]
    for s in held:
        ref, target = ds.items[s.reference], ds.items[s.target]
        assert ref.semantics == target.semantics and ref.style != target.style
        assert ref.style in SEEN  # a reference never shows a style no training user has


def test_images_licences_and_determinism(built: tuple[Path, dict], cache: Path, tmp_path: Path) -> None:
    out, stats = built
    assert stats["items"] == len(SHARED) * 4
    img = np.asarray(Image.open(out / "images" / "alpha-egg.png"))
    assert img.shape == (32, 32, 3) and (img[0] == 255).all() and (img[-1] == 255).all()  # wide: centred
    assert (img[12:20] != 255).any()
    lic = (out / "LICENSES.md").read_text(encoding="utf-8")
    info = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    for v in SEEN + UNSEEN:
        assert f"@iconify-json/{v}@1.0.0" in lic and f"{v} team" in lic
        assert info["vendors"][v]["version"] == "1.0.0"
    assert info["vendors"]["beta"]["license"] == "MIT" and "(MIT)" in lic
    # rebuilding into a previous build (LICENSES.md included) gives the same bytes
    _build(out, cache)
    again = tmp_path / "again"
    _build(again, cache)
    for f in ("items.jsonl", "users.jsonl", "dataset.json", "LICENSES.md", "images/gamma-redapple.png"):
        assert (out / f).read_bytes() == (again / f).read_bytes(), f


def _no_npm_path(tmp_path: Path, script: str | None) -> str:
    """A PATH with only a fake `npm` (running `script`), or none at all."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    if script is not None:
        npm = bin_ / "npm"
        npm.write_text(f"#!/bin/sh\n{script}\n")
        npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    return str(bin_)


ALL_DEFAULT = " ".join(f"@iconify-json/{v}" for v in emoji.SEEN_VENDORS + emoji.UNSEEN_VENDORS)


@pytest.mark.parametrize(
    ("script", "expect"),
    [
        (None, ("npm is not installed", "run `make setup`", "apt-get install -y npm", ALL_DEFAULT)),
        (
            "printf 'npm error code ENOTFOUND\\nnpm error network ENOTFOUND registry\\n' >&2; exit 1",
            ("offline", "npm error network ENOTFOUND registry", f"npm pack {ALL_DEFAULT}`"),
        ),
    ],
)
def test_offline_or_no_npm_says_what_to_run(tmp_path: Path, monkeypatch, capsys, script, expect) -> None:
    monkeypatch.setenv("PATH", _no_npm_path(tmp_path, script))
    empty = tmp_path / "cache"
    code = main(["data", "emoji", "--out", str(tmp_path / "out"), "--cache", str(empty), "--users", "40"])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert all(e in err for e in expect), err
    assert not (tmp_path / "out").exists()  # nothing written when the artwork is missing


def test_npm_fetches_only_missing_packages_once(tmp_path: Path, monkeypatch, cache: Path) -> None:
    log = tmp_path / "npm.log"
    # a fake npm: logs its arguments and "packs" each package by copying its tarball from `cache`
    copy = f"/bin/cp {cache}/iconify-json-${{p#@iconify-json/}}-1.0.0.tgz ."
    script = f'echo "$@" >> {log}; for p in "$@"; do case $p in @*) {copy};; esac; done'
    monkeypatch.setenv("PATH", _no_npm_path(tmp_path, script))
    mine = tmp_path / "cache"
    mine.mkdir()
    _write_set(mine, "alpha", version="2.0.0")
    paths = iconify.fetch(["alpha", "beta", "delta"], mine)
    assert [p.name for p in paths] == [
        f"iconify-json-{v}.tgz" for v in ("alpha-2.0.0", "beta-1.0.0", "delta-1.0.0")
    ]
    assert log.read_text().split() == [
        "pack",
        "@iconify-json/beta",
        "@iconify-json/delta",
        "--loglevel=error",
    ]
    iconify.fetch(["alpha", "beta", "delta"], mine)
    assert len(log.read_text().splitlines()) == 1  # all cached now: npm is not run again


def test_bad_arguments(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(DrcError, match="either seen or unseen"):
        _build(tmp_path / "a", cache, unseen=("alpha",))
    with pytest.raises(DrcError, match="square"):
        _build(tmp_path / "b", cache, size=(32, 48))
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for v in ("alpha", "gamma", "delta"):
        _write_set(wrong, v)
    (wrong / "g").mkdir()
    _write_set(wrong / "g", "gamma").rename(wrong / "iconify-json-beta-1.0.0.tgz")  # under another name
    with pytest.raises(DrcError, match="holds icon set 'gamma', expected 'beta'"):
        _build(tmp_path / "c", wrong)
    assert not (tmp_path / "c").exists()
