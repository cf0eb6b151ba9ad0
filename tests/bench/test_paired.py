"""bench/paired.py: per-case pairing of methods over seeds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import paired  # noqa: E402


def _row(name: str, method: str, seed: int, hits: list[int]) -> dict:
    cases = [
        {"user": f"u{i}", "target": f"t{i}", "reference": f"r{i}", "joint": h} for i, h in enumerate(hits)
    ]
    return {"name": name, "method": method, "overrides": [f"seed={seed}"], "test_cases": cases}


def test_cases_pair_by_key_and_average_over_seeds(tmp_path: Path) -> None:
    rows = [
        _row("drc_s0", "drc", 0, [1, 1, 1, 0]),
        _row("drc_s1", "drc", 1, [1, 1, 0, 0]),
        _row("abl_s0", "abl", 0, [1, 0, 1, 1]),
        _row("abl_s0", "abl", 0, [1, 0, 0, 1]),  # a rescore of the same run: the last row counts
        {"name": "old", "method": "old", "overrides": ["seed=0"]},  # no per-case results: skipped
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs = paired.load(path)
    assert set(runs) == {"drc", "abl"} and set(runs["drc"]) == {0, 1}
    drc, abl = paired.per_case(runs["drc"]), paired.per_case(runs["abl"])
    assert drc[("u2", "t2", "r2")] == 0.5
    c = paired.compare(abl, drc, n_boot=2000)
    # per case: abl - drc = 0, -1, -0.5, +1
    assert c["cases"] == 4 and c["diff"] == pytest.approx(-0.125)
    assert (c["wins"], c["losses"], c["ties"]) == (1, 2, 1)
    assert c["ci"][0] <= c["diff"] <= c["ci"][1]


def test_methods_without_shared_cases_are_refused() -> None:
    with pytest.raises(ValueError, match="share no test case"):
        paired.compare({("a", "b", "c"): 1.0}, {("x", "y", "z"): 0.0})
