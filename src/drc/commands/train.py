"""`drc train [WHAT] --data DIR --out RUN [--preset P] [--config FILE] [--base RUN] [key=value ...]`.

WHAT is `all` (default: every stage of `drc`), `tokenizer`, `generator` (tokenizer + text-to-image
pretraining: the shared base), or a method name (drc, a baseline or an ablation) to train that
method's stages on top of the base (its own, or `--base`'s). Rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from drc.config import METHODS, PRESETS, RunConfig, load_yaml, parse_overrides
from drc.errors import DrcError, TrainingFailed

TARGETS = ("all", "tokenizer", "generator", *METHODS)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drc train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("what", nargs="?", default="all", help=f"one of: {', '.join(TARGETS)}")
    p.add_argument("--data", required=True, help="dataset folder (items.jsonl, users.jsonl, images)")
    p.add_argument(
        "--out", required=True, help="run folder (created; an existing run with the same config resumes)"
    )
    p.add_argument("--preset", default="default", choices=PRESETS)
    p.add_argument("--config", default=None, help="YAML file with config overrides")
    p.add_argument(
        "--base",
        default=None,
        help="run folder, or shipped base (stickers, posters), whose tokenizer and pretrained generator "
        "to start from; the run takes its image size and model config. A folder of that name wins.",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. stage2.train.steps=400")
    return p


def main(argv: list[str]) -> int:
    # argparse puts key=value words into `what` when WHAT is omitted: sort them out first
    words = [a for a in argv if "=" in a and not a.startswith("-")]
    rest = [a for a in argv if a not in words]
    args = build_parser().parse_args(rest)
    if args.what not in TARGETS:
        raise DrcError(f"unknown training target {args.what!r}; valid: {', '.join(TARGETS)}")
    from drc.pipeline import train_run

    method = "drc" if args.what in ("all", "tokenizer", "generator") else args.what
    stages: tuple[str, ...] = {
        "tokenizer": ("tokenizer",),
        "generator": ("tokenizer", "pretrain"),
    }.get(args.what, ("tokenizer", "pretrain", "method"))
    t0 = time.perf_counter()
    overrides = parse_overrides(words)
    try:
        paths = train_run(
            args.data,
            args.out,
            method=method,
            preset=args.preset,
            config_file=args.config,
            overrides=overrides,
            base=args.base,
            stages=stages,
            progress=not args.quiet,
        )
    except TrainingFailed as e:
        saved = Path(args.out) / "config.yaml"
        seed = load_yaml(RunConfig, saved).seed if saved.is_file() else 0
        print(failed_line(str(e), seed), file=sys.stderr)
        return e.exit_code
    if args.what in ("tokenizer", "generator"):
        gen = load_yaml(RunConfig, paths.config).generator
        if gen.backend != "builtin":
            # said even with --quiet: the command did not do what its name says, on purpose
            print(
                f"drc train: generator.backend={gen.backend} is pretrained ({gen.model_dir}): skipped "
                "tokenizer training and generator pretraining"
                + ("; built the token bank" if args.what == "generator" else "")
            )
    print(f"drc train: {args.what} finished in {time.perf_counter() - t0:.1f}s -> {paths.root}")
    _repeat_base_warning(paths.info)
    from drc.run_folder import RunInfo

    info = RunInfo.load(paths.info) if paths.info.is_file() else None
    if info is not None and info.status == "failed" and stages[-1] == "method":
        seed = load_yaml(RunConfig, paths.config).seed
        print(failed_line(info.failure or "see run.json", seed), file=sys.stderr)
        return TrainingFailed.exit_code
    return 0


def _repeat_base_warning(info_path: Path) -> None:
    """The base-check warning again, last: progress bars have scrolled the first one away."""
    from drc.base_choice import check_line
    from drc.run_folder import RunInfo

    check = RunInfo.load(info_path).base_check if info_path.is_file() else {}
    if check.get("fits") is False and "psnr" in check:
        print(f"drc train: {check_line(check)}", file=sys.stderr)


def failed_line(reason: str, cfg_seed: int) -> str:
    """The one line a failed run ends with."""
    return (
        f"drc train: FAILED: {reason}; try another seed (seed={cfg_seed + 1}) or a lower learning rate "
        "(stage2.train.lr); the run folder is kept and run.json says why"
    )
