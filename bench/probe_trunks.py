"""Probe accuracy on held-out real items: the shipped feature encoder's trunk vs a scratch CNN.

    nice -n 19 python bench/probe_trunks.py DATA [DATA ...] [--trunks shipped,scratch] [--threads 1]

For each labelled dataset folder, the probes are trained exactly as `drc eval` trains them
(`drc.eval.evaluate.probes_for`: the dataset's real items at the default run config's image size, 15 %
of them held out, no tokenizer views) with `ProbeConfig(trunk=...)` defaults, and one JSON line per
(dataset, trunk) is printed: style and semantics accuracy on the held-out items, their count, seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from drc.config import RunConfig
from drc.data.prepare import prepare
from drc.eval.evaluate import probes_for
from drc.eval.probes import ProbeConfig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", nargs="+")
    p.add_argument("--trunks", default="shipped,scratch")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for data in args.data:
        prep = prepare(data, RunConfig())
        for trunk in args.trunks.split(","):
            cfg = ProbeConfig(trunk=trunk)  # type: ignore[arg-type]
            probes = probes_for(prep, cfg, torch.device("cpu"), None, None, args.seed, progress=False)
            acc = probes.accuracy if probes is not None else {}
            row = {"data": Path(data).name, "trunk": trunk, "n_items": len(prep.bank.ids)}
            row.update({k: round(float(v), 4) for k, v in acc.items()})
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
