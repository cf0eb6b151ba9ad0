"""Runs the stages of one run in order, reusing whatever a previous invocation finished.

Run folder layout (one method per run)::

    RUN/
      config.yaml          the resolved RunConfig
      run.json             method, dataset path, instruction, timings per stage, stage stats
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

import dataclasses
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from drc.config import RunConfig, build_config, config_hash, load_yaml, save_yaml, to_dict
from drc.data.bank import ImageBank
from drc.data.manifest import Dataset, load_dataset
from drc.data.samples import Sample, make_samples
from drc.errors import DrcError
from drc.runtime import barrier, dist_info, resolve_device


@dataclass
class Prepared:
    """A dataset made ready for training: samples, decoded images, the instruction text."""

    ds: Dataset
    samples: list[Sample]
    bank: ImageBank
    instruction: str
    train_ids: list[str]
    user_of: dict[str, str]

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]


def instruction_for(ds: Dataset, cfg: RunConfig) -> str:
    """The coarse instruction: config, else the dataset's own, else a neutral default."""
    return cfg.data.instruction or str(ds.info.get("instruction") or "an image")


def prepare(
    data_dir: str | Path, cfg: RunConfig, cache: Path | None = None, ds: Dataset | None = None
) -> Prepared:
    """Load and validate a dataset (unless `ds` is given), build its samples, decode its images once."""
    ds = ds or load_dataset(data_dir, history_len=cfg.data.history_len)
    samples = make_samples(
        ds,
        history_len=cfg.data.history_len,
        seed=cfg.data.split_seed,
        valid_frac=cfg.data.valid_frac,
        test_frac=cfg.data.test_frac,
    )
    size = (cfg.data.image_height, cfg.data.image_width)
    # decoded images are cached; the cache is rebuilt when any image file or the size changes
    bank = ImageBank.cached(ds, size, cache) if cache is not None else ImageBank.from_dataset(ds, size)
    # Training images: every item that a training user interacted with. Items seen only by
    # valid/test users stay out of the tokenizer, the generator and both stages.
    train_users = {s.user for s in samples if s.split == "train"}
    train_ids: list[str] = []
    user_of: dict[str, str] = {}
    seen: set[str] = set()
    for u in ds.users:
        if u.id not in train_users:
            continue
        for iid in u.history:
            user_of.setdefault(iid, u.id)
            if iid not in seen:
                seen.add(iid)
                train_ids.append(iid)
    if not train_ids:
        raise DrcError(f"{ds.root}: no training users (every user is in the valid or test split)")
    return Prepared(ds, samples, bank, instruction_for(ds, cfg), train_ids, user_of)


# --------------------------------------------------------------------------- run folder


@dataclass
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def info(self) -> Path:
        return self.root / "run.json"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer"

    @property
    def pretrain(self) -> Path:
        return self.root / "pretrain"

    @property
    def generator(self) -> Path:
        return self.root / "generator"

    @property
    def composer(self) -> Path:
        return self.root / "composer"

    @property
    def tokens(self) -> Path:
        return self.root / "tokens.pt"

    def stage(self, name: str) -> Path:
        return self.root / "stages" / name


def _done(directory: Path, name: str = "model") -> bool:
    return (directory / f"{name}.safetensors").is_file()


@dataclass
class RunInfo:
    """What `run.json` records; updated after every stage."""

    method: str
    data: str
    instruction: str
    timings_s: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    base: str | None = None
    # {"requested", "used", "reason"} and {"threads", "reason"} of the latest invocation. A run may
    # resume on another kind of machine (config.yaml keeps "auto", not the dtype): its stages then
    # ran in different precisions, and this records the last one. Absent in older run.json files.
    precision: dict[str, str] = field(default_factory=dict)
    threads: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        if dist_info().is_main:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.__dict__, indent=1))
            tmp.replace(path)

    @staticmethod
    def load(path: Path) -> RunInfo:
        return RunInfo(**json.loads(path.read_text()))


def open_run(out: str | Path, cfg: RunConfig) -> RunPaths:
    """Create a run folder or reopen one written with the same config (else refuse)."""
    paths = RunPaths(Path(out))
    if paths.root.exists() and not paths.root.is_dir():
        raise DrcError(f"{paths.root}: exists and is not a folder")
    if paths.config.is_file():
        old = load_yaml(RunConfig, paths.config)
        if config_hash(old) != config_hash(cfg):
            diff = [k for k, v in _flat(to_dict(cfg)).items() if _flat(to_dict(old)).get(k) != v]
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


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        out.update(_flat(v, key) if isinstance(v, dict) else {key: v})
    return out


def _copy_dir(src: Path, dst: Path) -> None:
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


# --------------------------------------------------------------------------- stages


def ensure_base(
    paths: RunPaths,
    cfg: RunConfig,
    prep: Prepared,
    device: torch.device,
    base: Path | None = None,
    progress: bool = True,
    info: RunInfo | None = None,
    pretrain: bool = True,
) -> tuple[Any, Any]:
    """Tokenizer and pretrained generator: copied from `base`, reused, or trained here.

    pretrain=False (`drc train tokenizer`): the tokenizer only; the generator is None unless a
    finished one is already there. A pretrained backend (`generator.backend=janus`) brings both,
    loaded from `generator.model_dir`: nothing is trained here (and `base` is not used).
    """
    if cfg.generator.backend != "builtin":
        from drc.backends import load_backend

        backend = load_backend(cfg, device, progress=progress and dist_info().is_main)
        return backend.tokenizer, backend.generator
    from drc.train.pretrain import (
        encode_images,
        load_generator,
        load_tokenizer,
        train_generator,
        train_tokenizer,
    )

    timings = info.timings_s if info is not None else {}
    stats = info.stats if info is not None else {}
    if base is not None:
        for sub in ("tokenizer", "pretrain"):
            src = base / sub
            if not _done(src):
                raise DrcError(f"{src}: base run has no finished {sub} (model.safetensors missing)")
            if not _done(paths.root / sub):
                _copy_dir(src, paths.root / sub)
        # the token bank depends only on the tokenizer and the data: share the base's
        if (base / "tokens.pt").is_file() and not paths.tokens.is_file() and dist_info().is_main:
            shutil.copy2(base / "tokens.pt", paths.tokens)
        barrier()
    if _done(paths.tokenizer):
        tokenizer = load_tokenizer(paths.tokenizer).to(device)
    else:
        t0 = time.perf_counter()
        images = prep.bank.get(prep.train_ids)
        tokenizer, st = train_tokenizer(cfg, images, paths.tokenizer, device, progress=progress)
        timings["tokenizer"] = round(time.perf_counter() - t0, 2)
        stats["tokenizer"] = st
    tokenizer.eval()
    if _done(paths.pretrain):
        generator = load_generator(paths.pretrain).to(device)
    elif not pretrain:
        generator = None
    else:
        t0 = time.perf_counter()
        images = prep.bank.get(prep.train_ids)
        tokens = encode_images(tokenizer, images, device=device, precision=cfg.precision)
        texts = [prep.ds.items[i].text for i in prep.train_ids]
        generator, st = train_generator(
            cfg, tokens, texts, paths.pretrain, device, progress=progress, coarse_text=prep.instruction
        )
        timings["pretrain"] = round(time.perf_counter() - t0, 2)
        stats["pretrain"] = st
    return tokenizer, generator


def ensure_token_bank(paths: RunPaths, cfg: RunConfig, prep: Prepared, tokenizer: Any, device: torch.device):
    """Visual tokens of every item and of `n_aug` augmentations of each (cached in tokens.pt)."""
    from drc.train.tokens import TokenBank

    n_aug = cfg.stage2.n_augment
    if paths.tokens.is_file():
        try:
            tb = TokenBank.load(paths.tokens)
            if tb.ids == prep.bank.ids and tb.aug_tokens.shape[1] == n_aug:
                return tb
        except Exception:  # noqa: BLE001 - stale cache: rebuild
            pass
    tb = TokenBank.build(
        prep.bank, tokenizer, prep.ds.items, n_aug=n_aug, seed=cfg.seed, device=device,
        precision=cfg.precision, aug_ids=prep.train_ids,
    )  # fmt: skip
    if dist_info().is_main:
        tb.save(paths.tokens)
    return tb


def composer_for(cfg: RunConfig, tokenizer: Any, generator: Any):
    """The composer of `cfg.method`, sized for this tokenizer and generator (training and loading)."""
    from drc.models.composers import build_composer

    return build_composer(
        cfg.method,
        cfg.composer,
        code_dim=tokenizer.config.code_dim,
        vocab=tokenizer.config.codebook_size,
        n_visual=generator.config.n_visual,
        history_len=cfg.data.history_len,
    )


def stage1_fingerprint(cfg: RunConfig) -> str:
    """Hash of everything Stage 1 depends on (all but the method name and Stage 2's settings)."""
    from drc.config import Stage2Config

    return config_hash(dataclasses.replace(cfg, method="", stage2=Stage2Config()))


def train_method(
    paths: RunPaths,
    cfg: RunConfig,
    prep: Prepared,
    tokenizer: Any,
    generator: Any,
    device: torch.device,
    progress: bool = True,
    info: RunInfo | None = None,
    share_stage1: Path | None = None,
):
    """Stage 1 (if enabled) and Stage 2 of `cfg.method`; returns (composer, generator).

    share_stage1: another run whose finished Stage 1 is reused when it was trained with the same
    Stage 1 settings (see `stage1_fingerprint`).
    """
    from drc.train.loop import write_history
    from drc.train.stage1 import train_stage1
    from drc.train.stage2 import train_stage2
    from drc.weights import load_module_weights, save_module

    timings = info.timings_s if info is not None else {}
    tb = ensure_token_bank(paths, cfg, prep, tokenizer, device)
    composer = composer_for(cfg, tokenizer, generator).to(device)
    if _done(paths.composer) and _done(paths.generator):
        load_module_weights(composer, paths.composer)
        load_module_weights(generator, paths.generator)
        return composer, generator
    train_samples = prep.split("train")
    s1 = paths.stage("stage1")
    if cfg.stage1.enabled:
        fingerprint = stage1_fingerprint(cfg)
        if share_stage1 is not None and not _done(s1, "composer"):
            other = share_stage1 / "stages" / "stage1"
            fp = other / "fingerprint.txt"
            if _done(other, "composer") and fp.is_file() and fp.read_text() == fingerprint:
                # Stage 1 does not depend on Stage 2's settings: an ablation that differs only there
                # (drc_no_augment) reuses drc's Stage 1 instead of training an identical one again
                _copy_dir(other, s1)
                timings["stage1"] = 0.0
        if _done(s1, "composer"):
            load_module_weights(composer, s1, "composer")
            load_module_weights(generator, s1, "generator")
        else:
            t0 = time.perf_counter()
            res = train_stage1(
                cfg,
                composer,
                generator,
                tb,
                prep.train_ids,
                prep.user_of,
                prep.instruction,
                s1,
                device,
                progress,
            )
            write_history(res, s1 / "history.jsonl")
            if dist_info().is_main:
                (s1 / "fingerprint.txt").write_text(fingerprint)
                save_module(composer, s1, cfg.composer, "composer")
                save_module(generator, s1, generator.config, "generator")
            timings["stage1"] = round(time.perf_counter() - t0, 2)
    s2 = paths.stage("stage2")
    if _done(s2, "composer"):
        load_module_weights(composer, s2, "composer")
        load_module_weights(generator, s2, "generator")
    else:
        t0 = time.perf_counter()
        res = train_stage2(
            cfg, composer, generator, tb, train_samples, prep.instruction, s2, device, progress
        )
        write_history(res, s2 / "history.jsonl")
        if dist_info().is_main:
            save_module(composer, s2, cfg.composer, "composer")
            save_module(generator, s2, generator.config, "generator")
        timings["stage2"] = round(time.perf_counter() - t0, 2)
    if dist_info().is_main:
        save_module(composer, paths.composer, cfg.composer)
        save_module(generator, paths.generator, generator.config)
    barrier()
    return composer, generator


def train_run(
    data_dir: str | Path,
    out: str | Path,
    method: str = "drc",
    preset: str = "default",
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    base: str | Path | None = None,
    stages: tuple[str, ...] = ("tokenizer", "pretrain", "method"),
    cfg: RunConfig | None = None,
    progress: bool = True,
    share_stage1: str | Path | None = None,
) -> RunPaths:
    """Train (or resume) one run: tokenizer, generator pretraining, then the method's stages."""
    cfg = cfg or build_config(method, preset, config_file, overrides)
    device = resolve_device(cfg.device)
    from drc.runtime import configure_threads, init_distributed, precision_record

    precision = precision_record(cfg.precision, device)  # an unknown precision fails before any writing
    threads = configure_threads()
    init_distributed(device)
    if progress and dist_info().is_main:
        p, t = precision, threads
        print(f"drc: {p['used']} ({p['reason']}); {t['threads']} threads ({t['reason']})", file=sys.stderr)
    ds = load_dataset(data_dir, history_len=cfg.data.history_len)  # bad data: fail before writing anything
    from drc.backends import check_config

    check_config(cfg)  # and a backend that cannot load (a missing model folder ...) likewise
    paths = open_run(out, cfg)
    info = RunInfo.load(paths.info) if paths.info.is_file() else RunInfo(cfg.method, str(data_dir), "")
    prep = prepare(data_dir, cfg, cache=paths.root / "images.pt", ds=ds)
    info.data, info.instruction = str(Path(data_dir).resolve()), prep.instruction
    info.base = str(base) if base is not None else None
    info.precision, info.threads = precision, threads
    torch.manual_seed(cfg.seed)
    base_dir = Path(base) if base else None
    pretrain = stages != ("tokenizer",)
    tokenizer, generator = ensure_base(paths, cfg, prep, device, base_dir, progress, info, pretrain=pretrain)
    if "pretrain" in stages:
        ensure_token_bank(paths, cfg, prep, tokenizer, device)
    info.save(paths.info)
    if "method" in stages:
        share = Path(share_stage1) if share_stage1 is not None else None
        train_method(paths, cfg, prep, tokenizer, generator, device, progress, info, share)
    info.save(paths.info)
    return paths
