"""The practitioner's path through the CLI on a tiny run: generate, eval, and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drc.cli import main


def _first_user_and_ref(data: Path) -> tuple[str, Path]:
    user = json.loads((data / "users.jsonl").read_text().splitlines()[0])["id"]
    item = json.loads((data / "items.jsonl").read_text().splitlines()[-1])
    return user, data / item["image"]


def test_generate_writes_pngs_and_settings(
    tiny_drc_run: Path, tiny_stickers: Path, tmp_path: Path, capsys
) -> None:
    user, ref = _first_user_and_ref(tiny_stickers)
    out = tmp_path / "gen"
    rc = main(
        [
            "generate",
            "--run",
            str(tiny_drc_run),
            "--user",
            user,
            "--data",
            str(tiny_stickers),
            "--reference",
            str(ref),
            "--n",
            "3",
            "--seed",
            "7",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 3
    assert Image.open(pngs[0]).size == (64, 64)
    meta = json.loads((out / "generation.json").read_text())
    assert meta["seed"] == 7 and meta["n"] == 3
    assert len(meta["history_weights"]) == 5
    assert abs(sum(meta["history_weights"]) - 1.0) < 1e-3
    # same seed, same images (seeded sampling end to end)
    again = tmp_path / "gen2"
    assert (
        main(
            [
                "generate",
                "--run",
                str(tiny_drc_run),
                "--user",
                user,
                "--data",
                str(tiny_stickers),
                "--reference",
                str(ref),
                "--n",
                "3",
                "--seed",
                "7",
                "--out",
                str(again),
            ]
        )
        == 0
    )
    assert np.array_equal(np.asarray(Image.open(pngs[0])), np.asarray(Image.open(again / "000.png")))


def test_generate_refuses_to_overwrite_without_force(
    tiny_drc_run: Path, tiny_stickers: Path, tmp_path: Path, capsys
) -> None:
    user, ref = _first_user_and_ref(tiny_stickers)
    out = tmp_path / "gen"
    out.mkdir()
    (out / "000.png").write_bytes(b"precious")
    args = [
        "generate",
        "--run",
        str(tiny_drc_run),
        "--history",
        str(ref),
        str(ref),
        "--reference",
        str(ref),
        "--n",
        "1",
        "--out",
        str(out),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and "Traceback" not in err
    assert (out / "000.png").read_bytes() == b"precious"
    assert main([*args, "--force"]) == 0
    assert (out / "000.png").read_bytes() != b"precious"


@pytest.mark.parametrize(
    "case, needle",
    [
        ("missing_run", "run folder not found"),
        ("missing_reference", "reference image not found"),
        ("unknown_user", "unknown user"),
        ("unreadable_reference", "not an image"),
    ],
)
def test_generate_errors_are_one_line(
    case: str, needle: str, tiny_drc_run: Path, tiny_stickers: Path, tmp_path: Path, capsys
) -> None:
    user, ref = _first_user_and_ref(tiny_stickers)
    run = str(tiny_drc_run)
    if case == "missing_run":
        run = str(tmp_path / "nope")
    if case == "missing_reference":
        ref = tmp_path / "nope.png"
    if case == "unknown_user":
        user = "no-such-user"
    if case == "unreadable_reference":
        ref = tmp_path / "bad.png"
        ref.write_bytes(b"this is not a png")
    rc = main(
        [
            "generate",
            "--run",
            run,
            "--user",
            user,
            "--data",
            str(tiny_stickers),
            "--reference",
            str(ref),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert needle in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_eval_reports_metrics_in_range(tiny_drc_run: Path, tiny_stickers: Path, capsys) -> None:
    assert (
        main(
            [
                "eval",
                "--run",
                str(tiny_drc_run),
                "--data",
                str(tiny_stickers),
                "--quiet",
                "--max-samples",
                "6",
            ]
        )
        == 0
    )
    summary = json.loads((tiny_drc_run / "eval" / "test_metrics.json").read_text())
    m = summary["metrics"]
    for key in ("style_acc", "semantic_acc", "joint_acc", "collapse_rate"):
        assert 0.0 <= m[key] <= 1.0
    assert m["joint_acc"] <= min(m["style_acc"], m["semantic_acc"])
    assert -1.0 <= m["target_sim"] <= 1.0
    assert m["n"] == 6
    assert set(summary["by_history_len"]) == {"1", "2", "3", "5"}


def test_train_on_bad_dataset_is_one_line(tmp_path: Path, capsys) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "items.jsonl").write_text('{"id": "a", "image": "../escape.png", "text": "x"}\n')
    (data / "users.jsonl").write_text('{"id": "u", "history": ["a"]}\n')
    rc = main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--preset", "tiny"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "items.jsonl:1" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "tokenizer").exists()


def test_train_unknown_override_lists_valid_keys(tiny_stickers: Path, tmp_path: Path, capsys) -> None:
    rc = main(
        [
            "train",
            "--data",
            str(tiny_stickers),
            "--out",
            str(tmp_path / "r"),
            "--preset",
            "tiny",
            "stage2.train.stepz=3",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown config key 'stage2.train.stepz'" in err and "stage2.train.steps" in err


def test_train_refuses_a_foreign_nonempty_folder(tiny_stickers: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("do not touch")
    assert main(["train", "--data", str(tiny_stickers), "--out", str(out), "--preset", "tiny"]) == 2
    assert "refusing" in capsys.readouterr().err
    assert (out / "thesis.txt").read_text() == "do not touch"
    assert sorted(p.name for p in out.iterdir()) == ["thesis.txt"]


def test_train_tokenizer_trains_only_the_tokenizer(tiny_stickers: Path, tmp_path: Path) -> None:
    out = tmp_path / "tok"
    assert main(["train", "tokenizer", "--data", str(tiny_stickers), "--out", str(out), "--preset", "tiny",
                 "--quiet", "tokenizer_train.steps=3"]) == 0  # fmt: skip
    assert (out / "tokenizer" / "model.safetensors").is_file()
    assert not (out / "pretrain").exists() and not (out / "tokens.pt").exists()


def test_train_bad_choice_fails_before_anything_is_written(tiny_stickers: Path, tmp_path: Path, capsys):
    # history_sampling is read only when Stage 2 starts, after the base has trained: the config
    # check must catch it first
    out = tmp_path / "r"
    argv = ["train", "--data", str(tiny_stickers), "--out", str(out), "--preset", "tiny"]
    rc = main([*argv, "stage2.history_sampling=rnd"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown stage2.history_sampling 'rnd'; valid: window, random" in err and "Traceback" not in err
    assert not out.exists()


def test_train_run_checks_a_config_built_in_python(tiny_stickers: Path, tmp_path: Path) -> None:
    import dataclasses

    from drc.config import build_config
    from drc.errors import DrcError
    from drc.pipeline import train_run

    cfg = build_config("drc", "tiny")
    # a config built in Python cannot hold a bad choice at all: the dataclass refuses it when made
    with pytest.raises(DrcError, match="unknown Stage1Config.trainable 'everything'"):
        bad = dataclasses.replace(cfg, stage1=dataclasses.replace(cfg.stage1, trainable="everything"))
        train_run(tiny_stickers, tmp_path / "r", cfg=bad, progress=False)
    assert not (tmp_path / "r").exists()
