"""bench/real_icons.py on a fake icon-theme tree: no apt package is needed.

Every theme of bench/icon_themes.py gets a folder with an index.theme and one icon per concept (one
theme as SVG, the others as PNG in the theme's own folder layout), plus a debian copyright file.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import icon_themes as it  # noqa: E402
import real_icons  # noqa: E402

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48" width="48" height="48">'
    '<rect x="8" y="8" width="32" height="32" fill="#{:06x}"/></svg>'
)


def fake_themes(root: Path, docs: Path) -> None:
    """A tiny installed copy of every theme: index.theme, one icon per concept, a copyright file.

    Colours differ per (theme, concept) so a wrong lookup would show in the images. Decoys with every
    concept's name at a larger size, in red, test what the index skips: status, action and symbolic icons.
    """
    for ti, t in enumerate(it.THEMES):
        base = root / t.folder
        base.mkdir(parents=True)
        (base / "index.theme").write_text(f"[Icon Theme]\nName={t.folder}\n")
        for ci, (_, names) in enumerate(it.CONCEPTS):
            colour = (35 * ti + 20, 7 * ci + 10, 200 - 5 * ci)
            if ti == 0:  # a scalable theme
                d = base / "scalable" / "apps"
                d.mkdir(parents=True, exist_ok=True)
                (d / f"{names[-1]}.svg").write_text(SVG.format(int.from_bytes(bytes(colour), "big")))
            else:  # a bitmap theme: a small drawing and a larger one of the same name
                for size, c in ((32, (0, 255, 0)), (48, colour)):
                    d = base / f"{size}x{size}" / "devices"
                    d.mkdir(parents=True, exist_ok=True)
                    Image.new("RGBA", (size, size), (*c, 255)).save(d / f"{names[0]}.png")
        for decoy in ("256x256/status", "256x256/actions", "256x256/apps/symbolic"):
            d = base / decoy
            d.mkdir(parents=True, exist_ok=True)
            for _, names in it.CONCEPTS:
                Image.new("RGBA", (8, 8), (255, 0, 0, 255)).save(d / f"{names[0]}.png")
        doc = docs / t.package
        doc.mkdir(parents=True)
        (doc / "copyright").write_text(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
            f"Source: https://example.org/{t.name}\n\n"
            f"Files: {t.files}\nCopyright: 2020 Artist {ti}\n           2021 Team {ti}\nLicense: GPL-3+\n\n"
            "Files: debian/*\nCopyright: 2022 Packager\nLicense: MIT\n"
        )
        with gzip.open(doc / "changelog.Debian.gz", "wt") as f:
            f.write(f"{t.package} (1.{ti}-1) unstable; urgency=low\n")


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    icons, docs = tmp_path / "icons", tmp_path / "doc"
    fake_themes(icons, docs)
    return icons, docs


def test_builds_a_held_out_set_from_a_fake_theme_tree(
    trees: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    icons, docs = trees
    out = tmp_path / "set"
    roots = ["--icon-root", str(icons), "--doc-root", str(docs)]
    args = ["--out", str(out), "--users", "120", "--size", "16", *roots]
    assert real_icons.main([*args, "--check"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    stats, check = lines
    n_pairs = len(it.THEMES) * len(it.CONCEPTS)
    assert stats["items"] == n_pairs and stats["users"] == 120 and check["check"] == "ok"
    assert check["test_targets_held_out"].split("/")[0] == check["test_targets_held_out"].split("/")[1]

    info = json.loads((out / "dataset.json").read_text())
    items = [json.loads(x) for x in (out / "items.jsonl").read_text().splitlines()]
    users = [json.loads(x) for x in (out / "users.jsonl").read_text().splitlines()]
    # every image is the theme's own drawing of the concept: the largest one, not a decoy
    by_pair = {(i["style"], i["semantics"]): i for i in items}
    for ti, t in enumerate(it.THEMES):
        for ci, (words, _) in enumerate(it.CONCEPTS):
            item = by_pair[(t.name, it.label(words))]
            px = Image.open(out / item["image"]).convert("RGB").getpixel((8, 8))
            want = (35 * ti + 20, 7 * ci + 10, 200 - 5 * ci)
            assert max(abs(a - b) for a, b in zip(px, want)) <= 3, (t.name, words, px)
    # ids name neither user, theme nor concept; users are not listed in split order
    for i in items:
        assert i["id"].startswith("icon") and i["style"] not in i["id"] and "user" not in i["id"]
    order = ["train", "valid", "test"].index
    splits = [u["split"] for u in users]
    by_id = [u["split"] for u in sorted(users, key=lambda u: u["id"])]
    assert splits != sorted(splits, key=order) and by_id != sorted(by_id, key=order)
    assert {tuple(p) for p in info["held_out"]} and info["made_by"] == real_icons.MADE_BY
    lic = (out / "LICENSES.md").read_text()
    for ti, t in enumerate(it.THEMES):
        assert f"| {t.name} | {t.title} | {t.package} 1.{ti}-1 |" in lic and f"Artist {ti}" in lic
    assert "MIT" not in lic  # the packaging stanza is not the artwork's licence
    assert Image.open(out / "contact_sheet.png").size[0] > 16 * len(it.CONCEPTS)

    # a rebuild into its own folder works; a folder of someone else's is refused
    assert real_icons.main(args) == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(SystemExit, match="not built by"):
        real_icons.main(["--out", str(mine), "--icon-root", str(icons), "--doc-root", str(docs)])
    assert (mine / "notes.txt").read_text() == "keep"


def test_a_missing_theme_names_its_package_and_the_apt_command(
    trees: tuple[Path, Path], tmp_path: Path
) -> None:
    icons, docs = trees
    gone = it.THEMES[3]
    (icons / gone.folder / "index.theme").unlink()
    out = tmp_path / "set"
    with pytest.raises(SystemExit) as e:
        real_icons.main(["--out", str(out), "--icon-root", str(icons), "--doc-root", str(docs)])
    msg = str(e.value)
    assert "\n" not in msg and f"apt-get install -y --no-install-recommends {gone.package}" in msg
    assert not out.exists()  # nothing written before the themes are found


def test_the_largest_drawing_wins_and_an_svg_with_text_only_without_another(tmp_path: Path) -> None:
    png = it.IconFile(tmp_path / "a.png", 96)
    svg_text = tmp_path / "a.svg"
    svg_text.write_text('<svg xmlns="http://www.w3.org/2000/svg"><text>A</text></svg>')
    assert it.best_file([png, it.IconFile(svg_text, it.VECTOR_SIZE)]) == png
    assert it.best_file([it.IconFile(svg_text, it.VECTOR_SIZE)]).path == svg_text
    big = it.IconFile(tmp_path / "b.png", 48)
    assert it.best_file([it.IconFile(tmp_path / "c.png", 22, 3), big]) == big
