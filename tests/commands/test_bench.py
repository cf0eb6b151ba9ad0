"""`drc bench --quick --json`: runs in seconds and prints one JSON object with every measurement."""

from __future__ import annotations

import json

import pytest

from drc.cli import main as cli_main

KEYS = (
    "train_tokens_per_s",
    "gen_images_per_s_b1",
    "gen_images_per_s_b32",
    "matmul_gflops",
    "train_mfu",
    "gen_mfu",
    "kv_speedup",
    "peak_mem_mb",
)


def test_quick_bench_prints_one_json_line_with_all_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["bench", "--quick", "--json", "--device", "cpu"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    res = json.loads(out[-1])
    for k in KEYS:
        assert k in res, k
        assert isinstance(res[k], (int, float)) and res[k] > 0, (k, res[k])
    assert 0 < res["train_mfu"] < 1.5 and 0 < res["gen_mfu"] < 1.5
    assert res["gen_images_per_s_b32"] > res["gen_images_per_s_b1"]  # batching must pay off


def test_bench_rejects_unknown_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["bench", "--nope"])
    assert "unrecognized arguments" in capsys.readouterr().err
