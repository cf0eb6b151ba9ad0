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


@pytest.mark.slow
def test_methods_side_by_side_give_the_numbers_of_one_after_another(tmp_path: Path, monkeypatch) -> None:
    # one thread everywhere, so that only the scheduling differs (thread counts change float sums)
    monkeypatch.setenv("DRC_NUM_THREADS", "1")
    methods = ("drc", "entangled", "drc_no_augment")
    one = run_demo(tmp_path / "one", preset="tiny", methods=methods, progress=False, jobs=1)
    two = run_demo(tmp_path / "two", preset="tiny", methods=methods, progress=False, jobs=2)
    assert one["methods"] == two["methods"]
    assert "methods (2 at a time)" in two["timings_s"] and "methods (1 at a time)" in one["timings_s"]
    # drc_no_augment copied DRC's finished Stage 1 in the worker, as it does in one process
    assert two["timings_s"]["train/drc_no_augment/stage1"] == 0.0
    assert two["total_s"] >= two["timings_s"]["methods (2 at a time)"]


def test_jobs_follow_the_threads_on_a_cpu_and_stay_one_on_a_gpu() -> None:
    import torch

    from drc.demo_methods import jobs_for

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert jobs_for(None, 8, cpu, 2) == 2 and jobs_for(None, 8, cpu, 1) == 1
    assert jobs_for(None, 3, cpu, 16) == 3  # never more processes than methods
    assert jobs_for(None, 8, gpu, 16) == 1
    assert jobs_for(4, 8, gpu, 16) == 4 and jobs_for(0, 8, cpu, 2) == 1


def test_the_poster_demo_cuts_the_composer_budget_of_every_method_alike() -> None:
    from drc.config import build_config, stage2_optim
    from drc.demo import demo_overrides

    over = demo_overrides("posters", "default")
    steps = {}
    for m in METHODS:
        cfg = build_config(m, "default", overrides=over)
        steps[m] = (cfg.stage1.train.steps if cfg.stage1.enabled else 0) + stage2_optim(cfg).steps
    assert set(steps.values()) == {600}, steps  # composer updates: the same for every method
    assert (over["data.image_height"], over["data.image_width"]) == (96, 64)
    assert "stage2.train.steps" not in demo_overrides("stickers", "default")
    assert "stage2.train.steps" not in demo_overrides("posters", "tiny")  # the tiny preset keeps its own
    assert demo_overrides("posters", "default", {"stage2.train.steps": 7})["stage2.train.steps"] == 7
