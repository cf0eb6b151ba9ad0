"""`drc.base_choice`: what a run starts from and why, the settings a base fixes, the base check's figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drc.base_choice import (
    FIT_DROP_DB,
    BaseChoice,
    adopt_base_config,
    choose_base,
    explicit_keys,
    own_figure,
    sample_ids,
    start_from,
)
from drc.config import RunConfig, build_config, save_yaml
from drc.errors import DrcError
from drc.pretrained import HERE
from drc.run_folder import RunInfo, RunPaths


def _finish(stage: Path) -> None:
    stage.mkdir(parents=True, exist_ok=True)
    (stage / "model.safetensors").write_bytes(b"")  # a stage counts as finished once its weights exist


def test_the_line_says_where_the_base_comes_from_and_why(tmp_path):
    paths, cfg = RunPaths(tmp_path / "R"), build_config("drc", "tiny")
    here = choose_base(None, None, None, paths, cfg, tmp_path, [])
    assert here.kind == "here" and here.line() == f"base: trained here on {tmp_path.resolve()} (no --base)"
    _finish(paths.tokenizer)
    assert "tokenizer reused from" in choose_base(None, None, None, paths, cfg, tmp_path, []).line()
    only_tok = choose_base(None, None, None, paths, cfg, tmp_path, [], pretrain=False)
    assert only_tok.kind == "reused" and "finished tokenizer already in the run" in only_tok.line()
    _finish(paths.pretrain)
    reused = choose_base(None, None, None, paths, cfg, tmp_path, [])
    assert reused.line() == (
        f"base: reused from {paths.root} (finished tokenizer and generator already in the run)"
    )
    adopted = ["data.image_height"]
    shipped = choose_base("stickers", HERE / "stickers", "stickers", paths, cfg, tmp_path, adopted)
    assert shipped.kind == "shipped"
    assert shipped.line() == (
        f"base: shipped 'stickers' ({(HERE / 'stickers').resolve()}): --base stickers; "
        "adopted its image size (1 settings differed)"
    )
    other = choose_base("B", tmp_path / "B", None, paths, cfg, tmp_path, [])
    assert other.kind == "run" and other.line().startswith(f"base: run folder {(tmp_path / 'B').resolve()}")


def test_a_base_fixes_its_model_config_and_image_size(tmp_path):
    save_yaml(build_config("drc", "default", overrides={"data.image_height": 96}), tmp_path / "config.yaml")
    tiny = build_config("drc", "tiny", overrides={"stage2.train.steps": 3})
    cfg, changed = adopt_base_config(tiny, tmp_path, explicit={"stage2.train.steps"})
    assert cfg.data.image_height == 96 and cfg.tokenizer == RunConfig().tokenizer
    assert cfg.generator == RunConfig().generator and "tokenizer.channels" in changed
    assert cfg.composer == tiny.composer and cfg.stage2.train.steps == 3  # the method's settings stay
    with pytest.raises(DrcError, match=r"B: its weights fix data.image_height=64 \(base: 96\)"):
        adopt_base_config(tiny, tmp_path, explicit={"data.image_height"}, ref="B")
    # a user's key equal to the base's value is no conflict
    same = build_config("drc", "tiny", overrides={"data.image_height": 96})
    assert adopt_base_config(same, tmp_path, explicit={"data.image_height"})[0].data.image_height == 96
    bare = tmp_path / "bare"
    bare.mkdir()
    assert adopt_base_config(tiny, bare, explicit=set()) == (tiny, [])


def test_explicit_keys_come_from_the_file_and_the_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("tokenizer:\n  channels: 8\nstage2:\n  train:\n    steps: 4\n")
    keys = explicit_keys(tmp_path / "c.yaml", {"data.image_width": "32"})
    assert keys == {"tokenizer.channels", "stage2.train.steps", "data.image_width"}


def test_the_sample_spreads_over_the_items():
    ids = [f"i{n}" for n in range(1000)]
    s = sample_ids(ids, 10)
    assert len(s) == 10 == len(set(s)) and s[0] == "i0" and s[-1] == "i999"
    assert sample_ids(ids[:5], 10) == ids[:5]


def test_the_base_figure_comes_from_the_shipped_meta_or_the_run(tmp_path):
    figure = own_figure(HERE / "stickers")
    assert figure is not None and 15 < figure[0] < 30 and figure[1] == "stickers/meta.json"
    run = tmp_path / "B"
    run.mkdir()
    assert own_figure(run) is None
    RunInfo("drc", "", "", stats={"tokenizer": {"psnr": 21.5}}).save(run / "run.json")
    assert own_figure(run) == (21.5, "B/run.json")
    RunInfo("drc", "", "", base_check={"base_psnr": 19.0}).save(run / "run.json")
    assert own_figure(run) == (19.0, "B/run.json (its base's)")


def test_a_base_run_on_the_same_folder_passes_on_its_verdict(tmp_path, capsys):
    data = str(tmp_path.resolve())
    base = tmp_path / "B"
    base.mkdir()
    check = {"data": data, "images": 9, "psnr": 10.0, "base_psnr": 20.0, "drop_db": 10.0,
             "threshold_db": FIT_DROP_DB, "fits": False, "base": "/somewhere/stickers"}  # fmt: skip
    RunInfo("drc", data, "", base_check=check).save(base / "run.json")
    paths = RunPaths(tmp_path / "R")
    info = RunInfo("drc", data, "")
    choice = BaseChoice("run", str(base.resolve()), "--base B")
    start_from(choice, base, None, paths, info, None, "auto", progress=False)  # nothing to reconstruct
    assert info.base_check["fits"] is False and info.base_check["from"] == f"{base}/run.json"
    assert info.base_check["base"] == str(base.resolve())
    assert "the base cannot draw these images" in capsys.readouterr().err  # said without progress
    assert json.loads(json.dumps(info.__dict__))["base_choice"]["line"] == choice.line()
