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
    assert model.config.method == "drc" and model.image_size == (h, w)


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


def test_a_composer_only_export_keeps_the_shipped_base_and_its_provenance(tiny_drc_run, tmp_path):
    from drc.config import RunConfig, load_yaml
    from drc.errors import DrcError
    from drc.pretrained import base_hashes, export
    from drc.weights import read_tensors

    dest = tmp_path / "stickers"
    dest.mkdir()
    meta = {"scenario": "stickers", "command": "how the base was made", "stats": {"pretrain": {"steps": 7}}}
    (dest / "meta.json").write_text(json.dumps({**meta, "config_hashes": {"tokenizer": "other"}}))
    with pytest.raises(DrcError, match="not trained on the shipped stickers"):
        export(None, "stickers", method_run=tiny_drc_run, composer_only=True, root=tmp_path)
    assert not (dest / "composer").exists()  # nothing written on a mismatch
    hashes = base_hashes(load_yaml(RunConfig, tiny_drc_run / "config.yaml"))
    (dest / "meta.json").write_text(json.dumps({**meta, "config_hashes": hashes}))
    export(None, "stickers", "drc demo", method_run=tiny_drc_run, composer_only=True, root=tmp_path)
    saved = json.loads((dest / "meta.json").read_text())
    assert saved["stats"] == meta["stats"] and saved["command"] == meta["command"]
    assert saved["composer_command"] == "drc demo" and saved["config_hashes"] == hashes
    tensors = read_tensors(dest / "composer" / "model.safetensors")
    assert tensors and all(
        v.dtype.is_floating_point is False or str(v.dtype) == "torch.float16" for v in tensors.values()
    )
    assert (dest / "config.yaml").read_text() == (tiny_drc_run / "config.yaml").read_text()
    assert len(list((dest / "examples").glob("history_*.png"))) == 5
    assert not (dest / "tokenizer").exists()  # the base is not touched
