"""bench/real_fonts.py on a fake font tree made of the DejaVu fonts (fonts-dejavu-core), so that
none of the set's own font packages is needed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import real_fonts as rf  # noqa: E402

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
STAND_INS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf")

pytestmark = pytest.mark.skipif(
    not all((DEJAVU / f).is_file() for f in STAND_INS), reason="needs fonts-dejavu-core (DejaVu fonts)"
)


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    """Every face's file as a link to a DejaVu font (faces cycle through four), plus copyright files."""
    fonts, docs = tmp_path / "fonts", tmp_path / "doc"
    for k, face in enumerate(rf.FACES):
        path = fonts / face.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(DEJAVU / STAND_INS[k % len(STAND_INS)])
        doc = docs / face.package
        doc.mkdir(parents=True, exist_ok=True)
        (doc / "copyright").write_text(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
            f"Source: https://example.org/{face.package}\n\n"
            f"Files: {face.files}\nCopyright: 2019 Designer of {face.package}\nLicense: OFL-1.1\n\n"
            "Files: debian/*\nCopyright: 2022 Packager\nLicense: MIT\n"
        )
    return fonts, docs


def test_builds_a_held_out_set_of_every_face_and_character(
    trees: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fonts, docs = trees
    out = tmp_path / "set"
    roots = ["--font-root", str(fonts), "--doc-root", str(docs)]
    args = ["--out", str(out), "--users", "120", "--size", "32", *roots]
    assert rf.main([*args, "--check"]) == 0
    stats, check = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert stats["items"] == len(rf.FACES) * len(rf.CHARACTERS) and check["check"] == "ok"
    assert check["test_targets_held_out"].split("/")[0] == check["test_targets_held_out"].split("/")[1]

    items = [json.loads(x) for x in (out / "items.jsonl").read_text().splitlines()]
    px = {
        (i["style"], i["semantics"]): np.asarray(Image.open(out / i["image"]).convert("L"), float)
        for i in items
    }
    a, b = rf.FACES[0].name, rf.FACES[1].name  # DejaVu Sans and DejaVu Serif stand-ins
    # ink on white, black at its darkest, one scale per face: the widest character fills about 80%
    for (face, sem), img in px.items():
        assert img.shape == (32, 32) and img.max() > 250 and img.min() < 60, (face, sem)
    assert np.abs(px[(a, "letter_a")] - px[(a, "letter_b")]).mean() > 10  # characters differ
    assert np.abs(px[(a, "letter_g")] - px[(b, "letter_g")]).mean() > 5  # and so do faces
    assert (px[(a, "letter_i")] < 128).mean() < (px[(a, "letter_w")] < 128).mean()  # proportions kept
    for i in items:
        assert i["id"].startswith("font") and i["style"] not in i["id"]
    lic = (out / "LICENSES.md").read_text()
    for face in rf.FACES:
        assert f"| {face.name} | {face.title} | {face.package}" in lic
    assert "OFL-1.1" in lic and "MIT" not in lic and "typeface" in lic


def test_a_missing_font_names_its_file_and_the_apt_command(trees: tuple[Path, Path], tmp_path: Path) -> None:
    fonts, docs = trees
    gone = rf.FACES[5]
    (fonts / gone.file).unlink()
    out = tmp_path / "set"
    with pytest.raises(SystemExit) as e:
        rf.main(["--out", str(out), "--font-root", str(fonts), "--doc-root", str(docs)])
    msg = str(e.value)
    assert "\n" not in msg and gone.file in msg
    assert f"apt-get install -y --no-install-recommends {gone.package}" in msg
    assert not out.exists()  # nothing written before every face is read
