"""Shipped pretrained weights: the stand-in for the paper's pretrained LMM, and a trained DRC.

`src/drc/pretrained/<scenario>/` holds a tokenizer and a pretrained generator (text and draft
conditioned) that drc's own commands produced on the built-in benchmark's training split (README:
"Shipped weights"). The demo copies them instead of training them, when their configs match the
demo's; `drc demo --retrain` trains them from scratch instead. Where a trained DRC run was exported
too (`--method-run`), the folder is also a ready run: `config.yaml` + `composer/`, so that
`drc generate --run stickers ...` works straight after install (`examples/` holds a history and a
reference to try). Weights are stored as float16 safetensors to stay small; strict loading casts
them back to the model's float32.

    python -m drc.pretrained export --run BASE_RUN --scenario stickers [--method-run DRC_RUN]
    python -m drc.pretrained export --scenario stickers --composer-only --method-run DRC_RUN
    python -m drc.pretrained measure --scenario stickers --data BENCHMARK [--command TEXT]

`measure` stores the shipped tokenizer's reconstruction PSNR on its own benchmark in `meta.json`
(`reconstruction`); `drc train --base` compares a user's folder with it. An export keeps it only with
`--composer-only` (a new tokenizer needs measuring again).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from drc.config import RunConfig, config_hash, load_yaml
from drc.errors import DrcError
from drc.weights import atomic_save_tensors, read_tensors

HERE = Path(__file__).parent
SCENARIOS = ("stickers", "posters")


def _export_module(src: Path, dest: Path) -> None:
    if not (src / "model.safetensors").is_file():
        raise DrcError(f"{src}: no finished model.safetensors to export")
    dest.mkdir(parents=True, exist_ok=True)
    tensors = read_tensors(src / "model.safetensors")
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in tensors.items()}
    atomic_save_tensors(half, dest / "model.safetensors", meta={"format": "pt"})
    (dest / "model.yaml").write_text((src / "model.yaml").read_text())


def base_hashes(cfg: RunConfig) -> dict[str, str]:
    """What a shipped base must match: the tokenizer, generator and data configs."""
    return {
        "tokenizer": config_hash(cfg.tokenizer),
        "generator": config_hash(cfg.generator),
        "data": config_hash(cfg.data),
    }


def _export_method(method_run: Path, dest: Path) -> None:
    """A finished drc run's composer, config and run.json (+ examples from its data) into `dest`."""
    _export_module(method_run / "composer", dest / "composer")
    (dest / "config.yaml").write_text((method_run / "config.yaml").read_text())
    info = json.loads((method_run / "run.json").read_text())
    data = info.get("data")
    info.update(data="", base=None)
    (dest / "run.json").write_text(json.dumps(info, indent=1))
    if data:
        _export_examples(Path(data), load_yaml(RunConfig, method_run / "config.yaml"), dest / "examples")


def export(
    run: str | Path | None, scenario: str, command: str = "", method_run: str | Path | None = None,
    composer_only: bool = False, root: Path = HERE,
) -> Path:  # fmt: skip
    """Copy RUN's tokenizer and pretrained generator into the package as float16 weights.

    method_run: a finished drc run on top of RUN (same tokenizer and generator); its composer and
    config are exported too, which makes the scenario folder a run `drc generate` can load.
    composer_only: refresh only the shipped composer (and config, examples) from `method_run`, a run
    on the shipped base itself (its tokenizer, generator and data configs must match `meta.json`);
    the shipped tokenizer, generator and their provenance in `meta.json` stay as they are.
    """
    dest = root / scenario
    if composer_only:
        if method_run is None:
            raise DrcError("--composer-only needs --method-run")
        meta = json.loads((dest / "meta.json").read_text())
        if base_hashes(load_yaml(RunConfig, Path(method_run) / "config.yaml")) != meta.get("config_hashes"):
            msg = f"not trained on the shipped {scenario} tokenizer, generator and data"
            raise DrcError(f"{method_run}: {msg}")
        _export_method(Path(method_run), dest)
        meta["composer_command"] = command
        (dest / "meta.json").write_text(json.dumps(meta, indent=1))
        return dest
    if run is None:
        raise DrcError("export needs --run (the base run), or --composer-only with --method-run")
    run = Path(run)
    cfg = load_yaml(RunConfig, run / "config.yaml")
    for sub in ("tokenizer", "pretrain"):
        _export_module(run / sub, dest / sub)
    if method_run is not None:
        method_run = Path(method_run)
        mcfg = load_yaml(RunConfig, method_run / "config.yaml")
        if config_hash(mcfg.generator) != config_hash(cfg.generator):
            raise DrcError(f"{method_run}: its generator config differs from {run}'s")
        _export_method(method_run, dest)
    info = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
    meta = {
        "scenario": scenario,
        "command": command,
        "config_hashes": base_hashes(cfg),
        "stats": info.get("stats", {}),
        "timings_s": info.get("timings_s", {}),
    }
    (dest / "meta.json").write_text(json.dumps(meta, indent=1))
    return dest


def _export_examples(data: Path, cfg: RunConfig, dest: Path) -> None:
    """A history and a reference to try the shipped run on: the first test user with a real reference.

    Writes `history_1.png` ... `history_k.png` (oldest first), `reference.png` and `README.txt`
    (what the target is: the history's style with the reference's semantics).
    """
    if not (data / "items.jsonl").is_file():
        return
    import shutil

    from drc.data.manifest import load_dataset
    from drc.data.samples import make_samples

    ds = load_dataset(data, check_images=False)
    samples = make_samples(ds, history_len=cfg.data.history_len, seed=cfg.data.split_seed,
                           valid_frac=cfg.data.valid_frac, test_frac=cfg.data.test_frac)  # fmt: skip
    test = sorted((s for s in samples if s.split == "test" and s.reference), key=lambda s: (s.user, s.target))
    if not test:
        return
    s = test[0]
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for i, iid in enumerate(s.history, 1):
        shutil.copy2(ds.image_path(iid), dest / f"history_{i}.png")
    shutil.copy2(ds.image_path(s.reference), dest / "reference.png")  # type: ignore[arg-type]
    target, ref = ds.items[s.target], ds.items[s.reference]  # type: ignore[index]
    (dest / "README.txt").write_text(
        f"history_1..{len(s.history)}.png: test user {s.user} of the built-in benchmark, "
        f"style {target.style}\nreference.png: {ref.semantics} in another style ({ref.style})\n"
        f"expected: {target.semantics} in the user's style ({target.style}); "
        "this pair was held out of training\n"
    )


def resolve_run(ref: str | Path, what: str = "run") -> tuple[Path, str | None]:
    """A run folder, or a shipped scenario's folder by its name: (folder, the shipped name or None).

    Every command that takes a run (`drc train --base`, `drc generate --run`, `drc eval --run`,
    `drc serve --run`, `drc.api.load`) resolves it here. A folder that exists wins over the shipped
    name, so that a user's own `stickers/` run is never shadowed by the package; neither existing is
    a one-line error that lists the shipped names. `what` names the argument in that error.
    """
    path = Path(ref)
    if path.exists():
        shipped = path.name in SCENARIOS and path.resolve() == (HERE / path.name).resolve()
        return path, path.name if shipped else None
    if str(ref) in SCENARIOS and (HERE / str(ref)).is_dir():
        return HERE / str(ref), str(ref)
    shipped = ", ".join(s for s in SCENARIOS if (HERE / s).is_dir())
    raise DrcError(f"{ref}: {what} folder not found, and not a shipped name (shipped: {shipped})")


def builtin_run(name: str | Path) -> Path | None:
    """The shipped run folder of scenario `name` ("stickers", "posters"), if it holds a composer."""
    d = HERE / str(name)
    if str(name) in SCENARIOS and (d / "composer" / "model.safetensors").is_file():
        return d
    return None


def measure(scenario: str, data: str | Path, command: str = "", root: Path = HERE) -> dict:
    """Store in `meta.json` the shipped tokenizer's PSNR on its own benchmark (`data`): the figure a
    run on this base compares the user's folder with (`drc.base_choice.domain_check`)."""
    from drc.base_choice import measure_base

    dest = root / scenario
    meta = json.loads((dest / "meta.json").read_text())
    rec = {**measure_base(dest, data), "command": command}
    meta["reconstruction"] = rec
    (dest / "meta.json").write_text(json.dumps(meta, indent=1))
    return rec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m drc.pretrained")
    p.add_argument("action", choices=["export", "measure"])
    p.add_argument("--data", default=None, help="measure: the scenario's benchmark (drc data SCENARIO)")
    p.add_argument("--run", default=None, help="the base run (tokenizer + pretrained generator) to ship")
    p.add_argument("--scenario", required=True, choices=["stickers", "posters"])
    p.add_argument("--command", default="", help="the command that trained RUN (recorded in meta.json)")
    p.add_argument("--method-run", default=None, help="a finished drc run on RUN whose composer to ship")
    p.add_argument(
        "--composer-only", action="store_true",
        help="refresh only the shipped composer from --method-run (a run on the shipped base)",
    )  # fmt: skip
    args = p.parse_args(argv)
    try:
        if args.action == "measure":
            if args.data is None:
                raise DrcError("measure needs --data (the scenario's benchmark folder)")
            print(json.dumps(measure(args.scenario, args.data, args.command)))
            return 0
        print(export(args.run, args.scenario, args.command, args.method_run, args.composer_only))
    except DrcError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
