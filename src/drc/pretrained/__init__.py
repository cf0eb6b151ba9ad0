"""Shipped pretrained weights: the stand-in for the paper's pretrained LMM.

`src/drc/pretrained/<scenario>/` holds a tokenizer and a text-to-image pretrained generator that
drc's own command produced on the built-in benchmark's training split (README: "Shipped weights").
The demo copies them instead of training them, when their configs match the demo's; `drc demo
--retrain` trains them from scratch instead. Weights are stored as float16 safetensors to stay
small; strict loading casts them back to the model's float32.

    python -m drc.pretrained export --run RUN --scenario stickers
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


def export(run: str | Path, scenario: str, command: str = "") -> Path:
    """Copy RUN's tokenizer and pretrained generator into the package as float16 weights."""
    run = Path(run)
    cfg = load_yaml(RunConfig, run / "config.yaml")
    dest = HERE / scenario
    for sub in ("tokenizer", "pretrain"):
        src = run / sub
        if not (src / "model.safetensors").is_file():
            raise DrcError(f"{src}: no finished model.safetensors to export")
        (dest / sub).mkdir(parents=True, exist_ok=True)
        tensors = read_tensors(src / "model.safetensors")
        half = {k: (v.half() if v.is_floating_point() else v) for k, v in tensors.items()}
        atomic_save_tensors(half, dest / sub / "model.safetensors", meta={"format": "pt"})
        (dest / sub / "model.yaml").write_text((src / "model.yaml").read_text())
    info = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
    meta = {
        "scenario": scenario,
        "command": command,
        "config_hashes": {
            "tokenizer": config_hash(cfg.tokenizer),
            "generator": config_hash(cfg.generator),
            "data": config_hash(cfg.data),
        },
        "stats": info.get("stats", {}),
        "timings_s": info.get("timings_s", {}),
    }
    (dest / "meta.json").write_text(json.dumps(meta, indent=1))
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m drc.pretrained")
    p.add_argument("action", choices=["export"])
    p.add_argument("--run", required=True)
    p.add_argument("--scenario", required=True, choices=["stickers", "posters"])
    p.add_argument("--command", default="", help="the command that trained RUN (recorded in meta.json)")
    args = p.parse_args(argv)
    print(export(args.run, args.scenario, args.command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
