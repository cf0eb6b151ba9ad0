"""`drc bench --quick --json`: runs in seconds and prints one JSON object with every measurement."""

from __future__ import annotations

import json

import pytest
import torch

from drc.cli import main as cli_main

KEYS = (
    "train_tokens_per_s",
    "gen_images_per_s_b1",
    "gen_images_per_s_b32",
    "matmul_gflops",
    "matmul_gflops_fp32",
    "matmul_gflops_bf16",
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
    # no bounds on speed here (timings belong in benchmarks): MFU is measured against the chosen
    # precision's own matmul peak, which for an emulated precision (bf16 forced on a CPU without bf16
    # instructions) is so low that MFU passes 1, and throughputs move with the machine's load
    # the precision auto picks here, why, and MFU measured against that precision's own peak
    assert res["precision"] in ("bf16", "fp32") and res["auto_precision"] == res["precision"]
    assert isinstance(res["precision_reason"], str) and res["precision_reason"]
    assert res["matmul_gflops"] == res[f"matmul_gflops_{res['precision']}"]
    assert res["threads"] == torch.get_num_threads() >= 1


def test_bench_forced_precision_says_what_auto_would_pick(capsys: pytest.CaptureFixture[str]) -> None:
    from drc.commands.bench import run_bench
    from drc.precision import resolve_precision

    auto, _ = resolve_precision("auto", torch.device("cpu"))
    forced = "fp32" if auto == "bf16" else "bf16"
    res = run_bench(True, torch.device("cpu"), forced)
    assert res["precision"] == forced and res["auto_precision"] == auto
    assert f"auto would pick {auto}" in res["precision_reason"]
    assert res["matmul_gflops"] == res[f"matmul_gflops_{forced}"]


def test_bench_rejects_an_unknown_precision(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["bench", "--quick", "--precision", "fp16"])
    assert "invalid choice" in capsys.readouterr().err


def test_bench_rejects_unknown_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["bench", "--nope"])
    assert "unrecognized arguments" in capsys.readouterr().err
