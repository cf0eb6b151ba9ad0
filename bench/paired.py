"""Paired per-case comparison of methods against DRC, over seeds, from `bench/train_eval.py` results.

Every method is scored on the same test cases (the benchmark's held-out pairs). For each case, the
joint hit is averaged over a method's seeds; the table gives the mean per-case difference against
the reference method with a 95 % bootstrap interval over cases, and how many cases the method wins
and loses. Unpaired means over seeds hide that two methods can fail on different cases, or that a
small mean gap is the same few cases every time.

    python bench/paired.py runs/seeds/stickers/results.jsonl [--against drc] [--markdown]

The last row of each run name counts (rerunning train_eval on a finished run appends a new row).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def load(path: Path) -> dict[str, dict[int, dict[tuple, int]]]:
    """`{method: {seed: {case key: joint 0/1}}}` from a results.jsonl (rows without cases are skipped)."""
    last: dict[str, dict] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            last[row["name"]] = row
    out: dict[str, dict[int, dict[tuple, int]]] = defaultdict(dict)
    for row in last.values():
        if "test_cases" not in row:
            continue
        seed = next((int(o.split("=", 1)[1]) for o in row["overrides"] if o.startswith("seed=")), 0)
        cases = row["test_cases"]
        out[row["method"]][seed] = {(c["user"], c["target"], c["reference"]): c["joint"] for c in cases}
    return dict(out)


def per_case(by_seed: dict[int, dict[tuple, int]]) -> dict[tuple, float]:
    """Each case's joint hit averaged over seeds (cases every seed scored)."""
    keys = set.intersection(*(set(c) for c in by_seed.values()))
    return {k: float(np.mean([c[k] for c in by_seed.values()])) for k in keys}


def compare(method: dict[tuple, float], ref: dict[tuple, float], n_boot: int = 10_000, seed: int = 0) -> dict:
    """Mean of method - ref over shared cases, its 95 % bootstrap interval, wins, losses, ties."""
    keys = sorted(set(method) & set(ref))
    if not keys:
        raise ValueError("the two methods share no test case")
    d = np.array([method[k] - ref[k] for k in keys])
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {
        "cases": len(keys), "diff": float(d.mean()), "ci": (float(lo), float(hi)),
        "wins": int((d > 0).sum()), "losses": int((d < 0).sum()), "ties": int((d == 0).sum()),
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path)
    p.add_argument("--against", default="drc")
    a = p.parse_args()
    runs = load(a.results)
    if a.against not in runs:
        raise SystemExit(f"paired: {a.results}: no run of {a.against!r} has per-case results")
    ref = per_case(runs[a.against])
    print(f"| method | seeds | cases | joint - {a.against} [95 %] | wins / losses / ties |")
    print("| --- | --- | --- | --- | --- |")
    for m in sorted(runs, key=lambda m: (m != a.against, m)):
        if m == a.against:
            continue
        c = compare(per_case(runs[m]), ref)
        lo, hi = c["ci"]
        diff = f"{c['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
        print(f"| {m} | {len(runs[m])} | {c['cases']} | {diff} | {c['wins']} / {c['losses']} / {c['ties']} |")


if __name__ == "__main__":
    main()
