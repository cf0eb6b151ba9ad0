"""`drc eval --run RUN --data DIR [--encoder PATH] [--split test] [--max-samples N] [--out FILE]
[--max-loo-users 24] [--variety-n 4] [--variety-cases 16] [--set sample.KEY=VALUE ...]`.

`--set` changes how the run samples for this evaluation only (e.g. `sample.draft_temperature=1.0`:
sampled drafts); the run folder is not touched, and the settings used are saved in the summary.

The summary goes to `--out`, else `RUN/eval/SPLIT_metrics.json` for the run's own training data
and `RUN/eval/SPLIT_metrics_DATANAME.json` for any other dataset folder, so that evaluating a run
on a second dataset never replaces the first one's results. RUN may be a shipped run's name
(`stickers`, `posters`): its summary then goes under `./eval_NAME/`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drc eval", description=__doc__)
    p.add_argument("--run", required=True, help="a finished run folder, or a shipped one: stickers, posters")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--encoder", default=None, help="local CLIP or DINOv2 folder (transformers format)")
    p.add_argument("--split", default="test", choices=("test", "valid"))
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="summary JSON file (default: under RUN/eval/, see above)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--max-loo-users", type=int, default=24, help="noisy users given leave-one-out influence (0: none)"
    )
    p.add_argument("--variety-n", type=int, default=4, help="images per request for `variety` (< 2: none)")
    p.add_argument("--variety-cases", type=int, default=16, help="requests for `variety` (0: none)")
    p.add_argument(
        "--set", nargs="*", default=[], metavar="sample.KEY=VALUE", help="sampling overrides (this eval only)"
    )
    return p


def sample_overrides(items: list[str]) -> dict[str, str]:
    """`--set` items as overrides; only `sample.*` keys: the rest of a trained run is fixed."""
    from drc.config_io import parse_overrides
    from drc.errors import DrcError

    over = parse_overrides(items)
    bad = [k for k in over if not k.startswith("sample.")]
    if bad:
        raise DrcError(f"--set {bad[0]}: drc eval only changes sample.* settings of a trained run")
    return over


def summary_path(run: str, data: str, split: str, info_data: str | None) -> Path:
    """Where the summary goes by default (see the module docstring)."""
    own = info_data is not None and Path(data).resolve() == Path(info_data).resolve()
    name = f"{split}_metrics.json" if own else f"{split}_metrics_{Path(data).resolve().name}.json"
    return Path(run) / "eval" / name


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    import drc.api as api
    from drc.eval.evaluate import evaluate_run
    from drc.pretrained import resolve_run
    from drc.run_folder import RunInfo

    over = sample_overrides(args.set)
    model = api.load(args.run, device=args.device)
    if over:
        from drc.config_io import apply_overrides

        model.config = apply_overrides(model.config, over)
    info_data = RunInfo.load(model.paths.info).data if model.paths.info.is_file() else None
    out = Path(args.out) if args.out else summary_path(args.run, args.data, args.split, info_data)
    shipped = resolve_run(args.run)[1]
    probe_cache = None
    if shipped is not None:
        # a shipped run: nothing into the package (it may be read-only), nor into ./NAME/, which
        # would then hide the shipped run
        if not args.out:
            out = Path(f"eval_{shipped}") / out.name
        probe_cache = Path(f"eval_{shipped}") / "probes"
    res = evaluate_run(
        model,
        args.data,
        encoder=args.encoder,
        split=args.split,
        max_samples=args.max_samples,
        seed=args.seed,
        progress=not args.quiet,
        variety_n=args.variety_n,
        max_loo_users=args.max_loo_users,
        variety_cases=args.variety_cases,
        probe_cache=probe_cache,
    )
    summary = {
        k: res[k] for k in ("metrics", "by_history_len", "by_theme", "worst_theme", "probes", "n_cases")
    }
    summary["data"] = str(Path(args.data).resolve())
    summary["split"] = args.split
    summary["sample"] = dataclasses.asdict(model.config.sample)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1, default=float))
    print(json.dumps(summary["metrics"], indent=1, default=float))
    print(f"drc eval: wrote {out}")
    return 0
