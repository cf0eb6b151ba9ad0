"""`drc demo --preset tiny`: the whole pipeline end to end. Asserts structure, not quality."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from drc.config import METHODS
from drc.demo import run_demo

KEYS = (
    "style_acc",
    "semantic_acc",
    "joint_acc",
    "collapse_rate",
    "hist_sim",
    "ref_sim",
    "target_sim",
    "fd",
    "n",
)


@pytest.mark.slow
def test_demo_tiny_writes_complete_reports(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    report = run_demo(out, preset="tiny", progress=False)
    saved = json.loads((out / "report.json").read_text())
    for key in ("preset", "dataset", "environment", "probes", "methods", "timings_s"):
        assert key in saved, key
    assert saved["preset"] == "tiny"
    assert set(saved["methods"]) == set(METHODS)
    for name, m in saved["methods"].items():
        for key in KEYS:
            assert key in m, (name, key)
        for key in ("style_acc", "semantic_acc", "joint_acc", "collapse_rate"):
            assert 0.0 <= m[key] <= 1.0, (name, key, m[key])
        assert m["n"] > 0
    assert 0.0 <= saved["probes"]["style_acc"] <= 1.0
    assert set(saved["breakdowns"]["history_length"]) == {"1", "2", "3", "5"}
    assert saved["breakdowns"]["worst_theme"] in saved["breakdowns"]["style_theme"]
    html = (out / "report.html").read_text()
    assert "<svg" in html and "main_grid.png" in html
    for name in METHODS:
        assert name in html
    grid = Image.open(out / "grids" / "main_grid.png")
    assert grid.width > grid.height > 0
    # a rerun with the same --out reuses every finished stage: no training, the same numbers
    again = run_demo(out, preset="tiny", progress=False)
    assert again["methods"] == report["methods"]
    assert again["timings_s"]["train/drc"] < report["timings_s"]["train/drc"]


def test_demo_refuses_a_foreign_folder(tmp_path: Path) -> None:
    from drc.errors import DrcError

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DrcError, match="refusing"):
        run_demo(tmp_path, preset="tiny", progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"
