"""The shipped runs: `drc generate --run stickers|posters` works straight after install."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from drc.api import load
from drc.cli import main
from drc.pretrained import HERE, builtin_run

SIZES = {"stickers": (64, 64), "posters": (96, 64)}


@pytest.mark.parametrize("scenario", ["stickers", "posters"])
def test_shipped_run_generates_from_its_examples(scenario, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no folder named like the scenario here: the shipped run is meant
    run = builtin_run(scenario)
    assert run == HERE / scenario
    examples = sorted((run / "examples").glob("history_*.png"))
    assert len(examples) == 5 and (run / "examples" / "reference.png").is_file()
    out = tmp_path / "gen"
    argv = ["generate", "--run", scenario, "--history", *map(str, examples)]
    argv += ["--reference", str(run / "examples" / "reference.png"), "--n", "2", "--out", str(out)]
    assert main(argv) == 0
    meta = json.loads((out / "generation.json").read_text())
    assert len(meta["images"]) == 2 and len(meta["history_weights"]) == 5
    h, w = SIZES[scenario]
    for name in meta["images"]:
        assert Image.open(out / name).size == (w, h)
    model = load(scenario)
    assert model.cfg.method == "drc" and model.image_size == (h, w)


def test_a_folder_named_like_a_scenario_wins_over_the_shipped_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("stickers").mkdir()
    with pytest.raises(Exception, match="config.yaml missing"):
        load("stickers")


def test_the_default_demo_config_still_fits_the_shipped_bases():
    # a renamed or added config key changes the hash and would make `drc demo` retrain the base
    from drc.config import build_config
    from drc.demo import SCENARIOS, shipped_base

    for scenario, (_, (h, w), _) in SCENARIOS.items():
        cfg = build_config("drc", "default", overrides={"data.image_height": h, "data.image_width": w})
        assert shipped_base(scenario, cfg) is not None, scenario
