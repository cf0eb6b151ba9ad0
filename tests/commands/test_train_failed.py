"""`drc train` judges a run on its validation cases: a broken run says FAILED and exits non-zero."""

from __future__ import annotations

import json
from pathlib import Path

from drc.cli import main


def test_a_healthy_run_records_its_validation(tiny_drc_run: Path) -> None:
    info = json.loads((tiny_drc_run / "run.json").read_text())
    assert info["status"] == "ok" and info["failure"] is None
    v = info["validation"]
    assert v["cases"] > 0 and v["best_step"] > 0
    assert 0 <= v["acc"] <= 1 and v["ce"] < v["uniform_ce"]
    assert [e["step"] for e in v["evaluations"]][-1] == v["best_step"] or len(v["evaluations"]) > 1
    rows = [json.loads(x) for x in (tiny_drc_run / "stages/stage2/history.jsonl").read_text().splitlines()]
    assert any("valid_ce" in r for r in rows)


def test_a_learning_rate_of_10_ends_with_the_failed_run_message(
    tiny_stickers: Path, tiny_drc_run: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "broken"
    argv = ["train", "drc", "--data", str(tiny_stickers), "--out", str(out), "--base", str(tiny_drc_run)]
    argv += ["--preset", "tiny", "--quiet", "stage1.enabled=false"]
    argv += ["stage2.train.lr=10", "stage2.train.warmup=1"]
    assert main(argv) == 3
    failed = [line for line in capsys.readouterr().err.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("drc train: FAILED: ")
    assert "lower learning rate" in failed[0]
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "failed" and info["failure"] in failed[0]
    # the folder is kept, to look into. A learning rate of 10 either drives the loss to inf/nan (the
    # loop stops: no weights worth keeping) or leaves a finite composer that the validation judges
    # failed (its weights are saved); which one depends on the machine's matmul precision
    assert (out / "config.yaml").is_file()
    if "loss became" not in info["failure"]:
        assert (out / "composer" / "model.safetensors").is_file()
    # the same command again: the run is finished, and still reported as failed
    assert main(argv) == 3
    assert "FAILED" in capsys.readouterr().err
