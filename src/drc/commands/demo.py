"""`drc demo [--out DIR] [--preset tiny|default] [--scenario stickers|posters] [--retrain] [--jobs N]`."""

from __future__ import annotations

import argparse
import time

from drc.config import METHODS, PRESETS, parse_overrides


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drc demo", description=__doc__)
    p.add_argument("--out", default="demo_out", help="output folder (re-running reuses finished stages)")
    p.add_argument("--preset", default="default", choices=PRESETS)
    p.add_argument("--scenario", default="stickers", choices=("stickers", "posters"))
    p.add_argument(
        "--retrain", action="store_true", help="train the tokenizer and generator from scratch too"
    )
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument(
        "--jobs", type=int, default=None,
        help="methods trained at once (default: one per CPU thread, each on one thread; 1 on a GPU)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from drc.demo import run_demo

    t0 = time.perf_counter()
    report = run_demo(
        args.out,
        args.preset,
        args.scenario,
        args.retrain,
        tuple(args.methods),
        parse_overrides(args.set),
        progress=not args.quiet,
        jobs=args.jobs,
    )
    cols = ("style_acc", "semantic_acc", "joint_acc", "collapse_rate", "target_sim", "fd")
    print(f"\n{'method':<22}" + "".join(f"{c:>14}" for c in cols))
    for name, m in report["methods"].items():
        print(f"{name:<22}" + "".join(f"{_fmt(m.get(c)):>14}" for c in cols))
    if report.get("probes"):
        p = report["probes"]
        print(f"probes on held-out real items: style {p['style_acc']:.3f}, semantics {p['semantic_acc']:.3f}")
    print(f"drc demo: finished in {time.perf_counter() - t0:.0f}s; report: {args.out}/report.html")
    return 0


def _fmt(v: object) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)
