"""A practitioner's own folder without labels: check, train (tiny), generate and eval all work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from drc.cli import main


@pytest.fixture(scope="module")
def unlabelled(tiny_stickers: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny benchmark with its labels, splits and dataset.json removed: plain user data."""
    out = tmp_path_factory.mktemp("own") / "data"
    shutil.copytree(tiny_stickers / "images", out / "images")
    items = [json.loads(line) for line in (tiny_stickers / "items.jsonl").read_text().splitlines()]
    users = [json.loads(line) for line in (tiny_stickers / "users.jsonl").read_text().splitlines()]
    (out / "items.jsonl").write_text(
        "".join(json.dumps({"id": it["id"], "image": it["image"], "text": "an image"}) + "\n" for it in items)
    )
    (out / "users.jsonl").write_text(
        "".join(json.dumps({"id": u["id"], "history": u["history"]}) + "\n" for u in users)
    )
    return out


@pytest.mark.slow
def test_unlabelled_folder_end_to_end(unlabelled: Path, tmp_path: Path, capsys) -> None:
    assert main(["data", "check", str(unlabelled)]) == 0
    assert "unlabelled" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["train", "--data", str(unlabelled), "--out", str(run), "--preset", "tiny", "--quiet"]) == 0
    # Stage 1 ran on augmentation triplets (no labels to mine from)
    assert (run / "stages" / "stage1" / "composer.safetensors").is_file()
    hist = sorted((unlabelled / "images").glob("*.png"))[:3]
    out = tmp_path / "gen"
    assert (
        main(
            [
                "generate",
                "--run",
                str(run),
                "--history",
                *map(str, hist),
                "--reference",
                str(hist[-1]),
                "--n",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert len(list(out.glob("*.png"))) == 2
    assert main(["eval", "--run", str(run), "--data", str(unlabelled), "--quiet", "--max-samples", "4"]) == 0
    m = json.loads((run / "eval" / "test_metrics.json").read_text())["metrics"]
    assert m["joint_acc"] is None  # accuracies need labels
    assert -1.0 <= m["target_sim"] <= 1.0 and m["fd"] >= 0.0
