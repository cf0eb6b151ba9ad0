"""Probe accuracy on held-out real items: the shipped feature encoder's trunk vs a scratch CNN, and
probe settings chosen on a validation split.

    nice -n 19 python bench/probe_trunks.py DATA [DATA ...] [--trunks shipped,scratch] [--threads 1]
    python bench/probe_trunks.py DATA --valid --set steps=1500 channels=64    # a setting, on validation

For each labelled dataset folder, the probes are trained exactly as `drc eval` trains them
(`drc.eval.evaluate.probes_for`: the dataset's real items at the default run config's image size, 15 %
of them held out, no tokenizer views) with `ProbeConfig(trunk=..., **set)`, and one JSON line per
(dataset, trunk) is printed: style and semantics accuracy on the held-out items, their count, seconds.

`--valid` never reads the held-out items that `drc eval` reports: it trains on `drc eval`'s training
items less 15 % of them and scores on that 15 % (a validation split), so that a probe setting can be
chosen without looking at the items the probes are judged on.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

from drc.config import RunConfig
from drc.config_io import apply_overrides, parse_overrides
from drc.data.prepare import prepare
from drc.eval.evaluate import probes_for, split_probe_items
from drc.eval.probes import ProbeConfig, train_probes


def validation_accuracy(prep, cfg: ProbeConfig, seed: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Probe accuracy on 15 % of `drc eval`'s probe-training items, trained on the other 85 %."""
    items = [prep.ds.items[i] for i in prep.bank.ids]
    _, train = split_probe_items(len(items), seed)
    order = list(train)
    random.Random(f"probe-valid/{seed}").shuffle(order)
    n_val = max(1, len(order) * 15 // 100)
    probes = train_probes(
        prep.bank.images,
        [str(it.style) for it in items],
        [str(it.semantics) for it in items],
        sorted(order[n_val:]),
        sorted(order[:n_val]),
        cfg,
        seed=seed,
        progress=False,
    )
    return probes.accuracy


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", nargs="+")
    p.add_argument("--trunks", default="shipped,scratch")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--valid", action="store_true", help="score on a validation split of the training items")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="ProbeConfig overrides")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = parse_overrides(args.set)
    for data in args.data:
        prep = prepare(data, RunConfig())
        for trunk in args.trunks.split(","):
            cfg = apply_overrides(ProbeConfig(trunk=trunk), overrides)  # type: ignore[arg-type]
            if args.valid:
                acc = validation_accuracy(prep, cfg, args.seed)
            else:
                probes = probes_for(prep, cfg, torch.device("cpu"), None, None, args.seed, progress=False)
                acc = probes.accuracy if probes is not None else {}
            row = {"data": Path(data).name, "trunk": trunk, "n_items": len(prep.bank.ids), "set": overrides}
            row["split"] = "valid" if args.valid else "heldout"
            row.update({k: round(float(v), 4) for k, v in acc.items()})
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
