"""`drc data check` through the real top-level CLI: exit codes, stdout/stderr, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from drc.cli import main


def test_valid_dataset(dataset_dir: Path, capsys) -> None:
    assert main(["data", "check", str(dataset_dir)]) == 0
    out, err = capsys.readouterr()
    assert out == "12 items, 6 users, 12 usable samples (k=5), labelled\n" and err == ""


def test_history_len_flag(dataset_dir: Path, capsys) -> None:
    assert main(["data", "check", str(dataset_dir), "--history-len", "2"]) == 0
    assert capsys.readouterr().out.strip() == "12 items, 6 users, 30 usable samples (k=2), labelled"
    assert main(["data", "check", "-k", "7", str(dataset_dir)]) == 2
    err = capsys.readouterr().err
    assert "users.jsonl: no user has a history of at least k+1 = 8 items" in err


def test_invalid_dataset_lists_every_problem(dataset_dir: Path, capsys) -> None:
    (dataset_dir / "img" / "green-dog.png").unlink()
    lines = (dataset_dir / "users.jsonl").read_text().splitlines()
    lines[1] = "{oops"
    (dataset_dir / "users.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["data", "check", str(dataset_dir)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    errs = err.splitlines()
    assert len(errs) == 3, err
    assert errs[0].startswith(f"{dataset_dir / 'users.jsonl'}:2: malformed JSON")
    assert errs[1].startswith(f"{dataset_dir / 'img' / 'green-dog.png'}: image not found")
    assert errs[2] == f"drc data: error: invalid dataset '{dataset_dir}': 2 problems"


def test_no_images_flag(dataset_dir: Path, capsys) -> None:
    (dataset_dir / "img" / "green-dog.png").unlink()
    assert main(["data", "check", "--no-images", str(dataset_dir)]) == 0
    assert "12 items" in capsys.readouterr().out


def test_bad_arguments(tmp_path: Path, capsys) -> None:
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "nowhere" in err and "Traceback" not in err
    (tmp_path / "file.txt").write_text("")
    assert main(["data", "check", str(tmp_path / "file.txt")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["data", "check"]) == 2
    err = capsys.readouterr().err
    assert "required: dir" in err and "usage: drc data check" not in err.splitlines()[0][:6]
    assert main(["data", "check", ".", "--history-len", "many"]) == 2
    assert "invalid int value: 'many'" in capsys.readouterr().err
    assert main(["data", "check", "--help"]) == 0
    assert "--history-len" in capsys.readouterr().out


def test_console_entry_point(dataset_dir: Path) -> None:
    """The installed way, `python -m drc data check`, in a fresh process: exit codes and no traceback."""
    ok = subprocess.run(
        [sys.executable, "-m", "drc", "data", "check", str(dataset_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0 and ok.stdout.startswith("12 items"), ok.stderr
    (dataset_dir / "items.jsonl").unlink()
    bad = subprocess.run(
        [sys.executable, "-m", "drc", "data", "check", str(dataset_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "items.jsonl: missing" in bad.stderr and "Traceback" not in bad.stderr
