"""`drc eval --run RUN --data DIR [--encoder PATH] [--split test] [--max-samples N]`."""

from __future__ import annotations

import argparse
import json


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drc eval", description=__doc__)
    p.add_argument("--run", required=True, help="a finished run folder")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--encoder", default=None, help="local CLIP or DINOv2 folder (transformers format)")
    p.add_argument("--split", default="test", choices=("test", "valid"))
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path

    import drc.api as api
    from drc.eval.evaluate import evaluate_run

    model = api.load(args.run, device=args.device)
    res = evaluate_run(
        model,
        args.data,
        encoder=args.encoder,
        split=args.split,
        max_samples=args.max_samples,
        seed=args.seed,
        progress=not args.quiet,
    )
    summary = {
        k: res[k] for k in ("metrics", "by_history_len", "by_theme", "worst_theme", "probes", "n_cases")
    }
    out = Path(args.run) / "eval"
    out.mkdir(exist_ok=True)
    (out / f"{args.split}_metrics.json").write_text(json.dumps(summary, indent=1, default=float))
    print(json.dumps(summary["metrics"], indent=1, default=float))
    print(f"drc eval: wrote {out / (args.split + '_metrics.json')}")
    return 0
