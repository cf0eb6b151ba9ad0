"""`drc train --base`: a shipped name works, the run says what it starts from and why, and a base that
cannot draw the folder's images is reported (before anything is trained) and recorded in run.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from drc.cli import main
from drc.config import RunConfig, load_yaml
from drc.errors import DrcError
from drc.pretrained import HERE, SCENARIOS, resolve_run
from drc.weights import read_tensors

# Stage 1 and 2 of the tiny preset on the shipped base's full-size generator: two steps each keep the
# end-to-end run to seconds (what is checked is the path, not what it learns)
FAST = ["stage1.train.steps=2", "stage2.train.steps=2", "stage2.n_augment=1"]


@pytest.fixture(scope="module")
def tiny_posters(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Posters: images the shipped sticker base never saw."""
    from drc.data.benchmarks.posters import build

    out = tmp_path_factory.mktemp("bench") / "posters"
    build(out, users=12, seed=0)
    return out


def _info(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def test_a_shipped_name_resolves_and_a_wrong_one_lists_the_shipped_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in SCENARIOS:
        assert resolve_run(name) == (HERE / name, name)
    # the shipped folder given by its path is still known as shipped
    assert resolve_run(HERE / "stickers") == (HERE / "stickers", "stickers")
    with pytest.raises(DrcError, match=r"nope: base folder not found.*shipped: stickers, posters"):
        resolve_run("nope", "base")
    Path("stickers").mkdir()  # a folder of that name here wins over the shipped base
    assert resolve_run("stickers") == (Path("stickers"), None)


def test_train_on_the_shipped_sticker_base_end_to_end(tiny_stickers, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--data", str(tiny_stickers), "--out", "R", "--base", "stickers", "--preset", "tiny"]
    assert main(argv + FAST) == 0
    err = capsys.readouterr().err
    line = f"base: shipped 'stickers' ({HERE / 'stickers'}): --base stickers; adopted its tokenizer"
    assert line in err
    assert "base check: its tokenizer reconstructs at" in err and "it fits" in err
    assert "cannot draw" not in err
    info = _info(Path("R"))
    assert info["base_choice"]["kind"] == "shipped" and info["base_choice"]["line"] in err
    check = info["base_check"]
    assert check["fits"] is True and check["images"] > 0 and check["drop_db"] < check["threshold_db"]
    meta = json.loads((HERE / "stickers" / "meta.json").read_text())
    assert check["base_psnr"] == meta["reconstruction"]["psnr"]
    # the run took over the base's model config (the tiny preset's differs) and its weights
    cfg = load_yaml(RunConfig, "R/config.yaml")
    shipped = load_yaml(RunConfig, HERE / "stickers" / "config.yaml")
    assert cfg.tokenizer == shipped.tokenizer and cfg.generator == shipped.generator
    assert cfg.composer.d_model == 32  # the method's own settings keep the preset
    a = read_tensors("R/tokenizer/model.safetensors")
    b = read_tensors(HERE / "stickers/tokenizer/model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    from drc.api import load

    model = load("R")
    assert model.image_size == (64, 64)


def test_a_base_that_cannot_draw_the_folder_is_reported_even_quiet(tiny_posters, tmp_path, capsys):
    run = tmp_path / "R"
    argv = ["train", "tokenizer", "--data", str(tiny_posters), "--out", str(run), "--base", "stickers"]
    assert main([*argv, "--quiet"]) == 0
    err = capsys.readouterr().err
    warnings = [ln for ln in err.splitlines() if "the base cannot draw these images" in ln]
    assert len(warnings) == 2 and warnings[-1].startswith("drc train: warning:")  # said, and said again last
    assert "Train from scratch (no --base)" in warnings[0]
    check = _info(run)["base_check"]
    assert check["fits"] is False and check["drop_db"] > check["threshold_db"]
    assert check["psnr"] < check["base_psnr"] and check["data"] == str(tiny_posters.resolve())
    assert _info(run)["base_choice"]["kind"] == "shipped"


def test_a_setting_the_base_fixes_cannot_be_asked_otherwise(tiny_stickers, tmp_path, capsys):
    argv = ["train", "--data", str(tiny_stickers), "--out", str(tmp_path / "R"), "--base", "posters"]
    assert main([*argv, "data.image_height=64"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "data.image_height=64 (base: 96)" in err
    assert not (tmp_path / "R").exists()  # refused before anything is written


def test_a_local_folder_that_hides_a_shipped_name_is_named(tiny_stickers, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("stickers").mkdir()
    assert main(["train", "--data", str(tiny_stickers), "--out", "R", "--base", "stickers"]) == 2
    err = capsys.readouterr().err
    assert "no finished tokenizer" in err
    assert f"hides the shipped base 'stickers': pass its path, {HERE}" in err
