"""The run folder: its layout (`RunPaths`), what `run.json` records (`RunInfo`), opening one.

Run folder layout (one method per run)::

    RUN/
      config.yaml          the resolved RunConfig
      run.json             method, dataset path, prompt, timings per stage, stage stats
      tokenizer/           VQ tokenizer: model.safetensors + model.yaml (+ ckpt/ while training)
      pretrain/            generator after text-to-image pretraining (+ ckpt/)
      tokens.pt            cached visual tokens of every item and of their augmentations
      stages/stage1/       Stage 1 checkpoints, history.jsonl, sampler.json, final weights
      stages/stage2/       Stage 2 likewise
      composer/            the method's composer: model.safetensors + model.yaml
      generator/           the generator the method generates with (fine-tuned in Stage 2)

A stage is finished when its final weights exist (they are written atomically, last); a stage that
was interrupted resumes from its newest checkpoint. `base` lets many method runs share one
tokenizer and one pretrained generator (the demo trains eight methods on one base).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drc.atomic import atomic_write_text
from drc.config import RunConfig, config_hash, load_yaml, save_yaml, to_dict
from drc.config_io import flat_keys
from drc.errors import DrcError
from drc.runtime import barrier, dist_info


@dataclass(frozen=True)
class RunPaths:
    """Where each part of a run folder lives (the layout in the module docstring)."""

    root: Path

    # the fixed entries, by attribute name (a table, so the layout has one home)
    FILES = {
        "config": "config.yaml",
        "info": "run.json",
        "tokenizer": "tokenizer",
        "pretrain": "pretrain",
        "generator": "generator",
        "composer": "composer",
        "tokens": "tokens.pt",
    }

    def __getattr__(self, name: str) -> Path:
        # only called for attributes not found the normal way: the entries of FILES
        if name in RunPaths.FILES:
            return self.root / RunPaths.FILES[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def stage(self, name: str) -> Path:
        return self.root / "stages" / name


def is_done(directory: Path, name: str = "model") -> bool:
    return (directory / f"{name}.safetensors").is_file()


@dataclass
class RunInfo:
    """What `run.json` records; updated after every stage."""

    method: str
    data: str
    prompt: str
    timings_s: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    base: str | None = None
    # {"requested", "used", "reason"} and {"threads", "reason"} of the latest invocation. A run may
    # resume on another kind of machine (config.yaml keeps "auto", not the dtype): its stages then
    # ran in different precisions, and this records the last one. Absent in older run.json files.
    precision: dict[str, str] = field(default_factory=dict)
    threads: dict[str, Any] = field(default_factory=dict)
    # where the tokenizer + generator came from and why, and the base's fit to the data (drc.base_choice)
    base_choice: dict[str, Any] = field(default_factory=dict)
    base_check: dict[str, Any] = field(default_factory=dict)
    # "ok", or "failed" with the reason in `failure` (a diverged loss, or a Stage 2 draft that does
    # not beat copying on the validation cases); `validation`: Stage 2's scores on those cases
    status: str = "ok"
    failure: str | None = None
    validation: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        if dist_info().is_main:
            atomic_write_text(path, json.dumps(self.__dict__, indent=1))

    @staticmethod
    def load(path: Path) -> RunInfo:
        data = json.loads(path.read_text())
        if "instruction" in data:  # run.json of before the rename (the prompt text)
            data.setdefault("prompt", data.pop("instruction"))
        return RunInfo(**data)


def open_run(out: str | Path, cfg: RunConfig) -> RunPaths:
    """Create a run folder or reopen one written with the same config (else refuse)."""
    paths = RunPaths(Path(out))
    if paths.root.exists() and not paths.root.is_dir():
        raise DrcError(f"{paths.root}: exists and is not a folder")
    if paths.config.is_file():
        old = load_yaml(RunConfig, paths.config)
        if config_hash(old) != config_hash(cfg):
            diff = [k for k, v in flat_keys(to_dict(cfg)).items() if flat_keys(to_dict(old)).get(k) != v]
            raise DrcError(
                f"{paths.root}: holds a run with another config (differs in {', '.join(diff[:5])}); "
                "use a new --out folder, or the same options to resume"
            )
    elif paths.root.is_dir() and any(paths.root.iterdir()):
        raise DrcError(f"{paths.root}: folder is not empty and holds no drc run; refusing to write into it")
    if dist_info().is_main:
        paths.root.mkdir(parents=True, exist_ok=True)
        save_yaml(cfg, paths.config)
    barrier()
    return paths


def copy_stage(src: Path, dst: Path) -> None:
    """Copy a finished stage folder's final files (not its checkpoints) atomically."""
    if not dist_info().is_main:
        return
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copy2(f, tmp / f.name)
    shutil.rmtree(dst, ignore_errors=True)
    tmp.replace(dst)
