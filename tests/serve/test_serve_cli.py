"""`drc serve tenant create|list` and `drc serve`'s one-line errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

from drc.cli import main


def test_tenant_create_prints_the_key_once_and_stores_only_its_hash(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    data = tmp_path / "data"
    assert main(["serve", "tenant", "create", "Acme Stickers", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    key = out[-1]
    assert key.startswith("drc_") and len(key) > 40 and "Acme Stickers" in out[0]
    db_bytes = b"".join(p.read_bytes() for p in data.glob("drc.sqlite3*"))
    assert key.encode() not in db_bytes  # the key itself is stored nowhere ...
    assert hashlib.sha256(key.encode()).hexdigest().encode() in db_bytes  # ... only its hash
    assert main(["serve", "tenant", "create", "Other", "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] != key
    assert main(["serve", "tenant", "list", "--data-dir", str(data)]) == 0
    listed = capsys.readouterr().out
    assert "Acme Stickers" in listed and "Other" in listed and key not in listed


def test_tenant_create_refuses_an_empty_name(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["serve", "tenant", "create", "  ", "--data-dir", str(tmp_path)]) == 2
    assert "must not be empty" in capsys.readouterr().err


def test_serve_unknown_run_is_one_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rc = main(["serve", "--run", str(tmp_path / "nope"), "--data-dir", str(tmp_path / "d"), "--port", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "run folder not found" in err


def test_serve_duplicate_run_names(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rc = main(
        ["serve", "--run", f"a={tmp_path}", "--run", f"a={tmp_path}", "--data-dir", str(tmp_path / "d")]
    )
    assert rc == 2 and "two runs named 'a'" in capsys.readouterr().err


def test_report_page_data_from_a_demo_layout(tmp_path: Path) -> None:
    """A run inside a demo's OUT/runs/<method>/ shows the demo's report: its charts, table and grids."""
    import numpy as np

    from drc.eval.report import Grid, GridRow, write_report
    from drc.serve.reports import find_report, load_report

    run = tmp_path / "demo" / "runs" / "drc"
    run.mkdir(parents=True)
    assert find_report(run) is None
    report = {
        "methods": {
            "drc": {"joint_acc": 0.5, "collapse_rate": 0.1},
            "entangled": {"joint_acc": 0.2, "collapse_rate": 0.6},
        },
        "breakdowns": {"method": "drc", "history_length": {"1": {"joint_acc": 0.3}, "5": {"joint_acc": 0.5}}},
    }
    img = np.zeros((8, 8, 3), np.uint8)
    row = GridRow(
        user="u1", history=[img, img], history_weights=[0.4, 0.6], reference=img, outputs={"drc": img}
    )
    grid = Grid(title="samples", rows=[row])
    write_report(tmp_path / "demo", report, [grid])
    rep = load_report(find_report(run))
    titles = [f["title"] for f in rep.figures]
    assert "joint accuracy and collapse rate per method" in titles
    assert any("history" in f["section"].lower() or "history" in f["title"].lower() for f in rep.figures)
    assert all(f["svg"].startswith("<svg") for f in rep.figures)
    assert rep.table is not None and "entangled" in rep.table
    assert len(rep.grids) == 1 and rep.grids[0][1].is_file()


def test_tenant_create_refuses_long_or_control_character_names(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    for name, words in (("x" * 300, "over the limit of 100"), ("a\nb", "control characters")):
        assert main(["serve", "tenant", "create", name, "--data-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err
