"""Runs the stages of one run in order, reusing whatever a previous invocation finished.

The run folder (layout, `run.json`) is `drc.run_folder`; the dataset preparation `drc.data.prepare`.
A stage is finished when its final weights exist (they are written atomically, last); a stage that
was interrupted resumes from its newest checkpoint. `base` lets many method runs share one
tokenizer and one pretrained generator (the demo trains eight methods on one base).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from drc.base_choice import adopt_base_config, check_base_folder, choose_base, explicit_keys, start_from
from drc.config import RunConfig, build_config, config_hash, from_dict, to_dict
from drc.data.manifest import load_dataset
from drc.data.prepare import Prepared, prepare
from drc.errors import DrcError, TrainingFailed
from drc.models.composers import composer_for
from drc.precision import resolve_device
from drc.pretrained import resolve_run
from drc.run_folder import RunInfo, RunPaths, copy_stage, is_done, open_run
from drc.runtime import barrier, dist_info

if TYPE_CHECKING:
    from drc.backends.base import TokenGenerator, VisualTokenizer
    from drc.train.token_bank import TokenBank

T = TypeVar("T")


def run_stage(
    done: bool, load: Callable[[], T], train: Callable[[], T], timings: dict[str, float], key: str
) -> T:
    """The one step of every stage: skip training if it is done (and `load` its result), else
    `train` (which saves what it trained) and record how long that took under `timings[key]`."""
    if done:
        return load()
    t0 = time.perf_counter()
    out = train()
    timings[key] = round(time.perf_counter() - t0, 2)
    return out


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
    from drc.models.inference import encode_images
    from drc.models.loading import load_generator, load_tokenizer
    from drc.train.pretrain import train_generator, train_tokenizer

    timings = info.timings_s if info is not None else {}
    stats = info.stats if info is not None else {}
    if base is not None:
        for sub in ("tokenizer", "pretrain"):
            src = base / sub
            if not is_done(src):
                raise DrcError(f"{src}: base run has no finished {sub} (model.safetensors missing)")
            if not is_done(paths.root / sub):
                copy_stage(src, paths.root / sub)
        # the token bank depends on the tokenizer, the data and the augmentation recipe: share the
        # base's (ensure_token_bank rebuilds it when the recipe differs)
        if (base / "tokens.pt").is_file() and not paths.tokens.is_file() and dist_info().is_main:
            shutil.copy2(base / "tokens.pt", paths.tokens)
        barrier()

    def tokenizer_stage() -> Any:
        tokenizer, stats["tokenizer"] = train_tokenizer(
            cfg, prep.bank.get(prep.train_ids), paths.tokenizer, device, progress=progress
        )
        return tokenizer

    def pretrain_stage() -> Any:
        images = prep.bank.get(prep.train_ids)
        tokens = encode_images(tokenizer, images, device=device, precision=cfg.precision)
        texts = [prep.ds.items[i].text for i in prep.train_ids]
        generator, stats["pretrain"] = train_generator(
            cfg, tokens, texts, paths.pretrain, device, progress=progress, coarse_text=prep.prompt
        )
        return generator

    load_tok = lambda: load_tokenizer(paths.tokenizer).to(device)  # noqa: E731
    tokenizer = run_stage(is_done(paths.tokenizer), load_tok, tokenizer_stage, timings, "tokenizer")
    tokenizer.eval()
    generator = None
    if pretrain or is_done(paths.pretrain):
        load_gen = lambda: load_generator(paths.pretrain).to(device)  # noqa: E731
        generator = run_stage(is_done(paths.pretrain), load_gen, pretrain_stage, timings, "pretrain")
    return tokenizer, generator


def bank_recipe(cfg: RunConfig, aug_ids: list[str]) -> str:
    """What a token bank's augmentations depend on besides the tokenizer and the images."""
    ids = hashlib.sha256("\n".join(aug_ids).encode()).hexdigest()[:16]
    return f"seed={cfg.seed} n_aug={cfg.stage2.n_augment} aug_ids={ids}"


def ensure_token_bank(
    paths: RunPaths, cfg: RunConfig, prep: Prepared, tokenizer: VisualTokenizer, device: torch.device
) -> TokenBank:
    """Visual tokens of every item and of `n_aug` augmentations of each (cached in tokens.pt)."""
    from drc.train.token_bank import TokenBank

    n_aug = cfg.stage2.n_augment
    recipe = bank_recipe(cfg, prep.train_ids)
    if paths.tokens.is_file():
        try:
            tb = TokenBank.load(paths.tokens)
            if tb.ids == prep.bank.ids and tb.recipe == recipe:
                return tb
        except Exception:  # noqa: BLE001 - stale cache: rebuild
            pass
    tb = TokenBank.build(
        prep.bank, tokenizer, prep.ds.items, n_aug=n_aug, seed=cfg.seed, device=device,
        precision=cfg.precision, aug_ids=prep.train_ids,
    )  # fmt: skip
    tb.recipe = recipe
    if dist_info().is_main:
        tb.save(paths.tokens)
    return tb


def stage1_fingerprint(cfg: RunConfig) -> str:
    """Hash of everything Stage 1 depends on (all but the method name and Stage 2's settings)."""
    from drc.config import Stage2Config

    # hashed as a dict: "" is no method, so no RunConfig can hold it
    return config_hash({**to_dict(cfg), "method": "", "stage2": to_dict(Stage2Config())})


def train_method(
    paths: RunPaths,
    cfg: RunConfig,
    prep: Prepared,
    tokenizer: VisualTokenizer,
    generator: TokenGenerator,
    device: torch.device,
    progress: bool = True,
    info: RunInfo | None = None,
    share_stage1: Path | None = None,
):
    """Stage 1 (if enabled) and Stage 2 of `cfg.method`; returns (composer, generator).

    share_stage1: another run whose finished Stage 1 is reused when it was trained with the same
    Stage 1 settings (see `stage1_fingerprint`).
    """
    from drc.loop.trainer import write_history
    from drc.train.stage1 import train_stage1
    from drc.train.stage2 import train_stage2
    from drc.weights import load_module_weights, save_module

    timings = info.timings_s if info is not None else {}
    tb = ensure_token_bank(paths, cfg, prep, tokenizer, device)
    composer = composer_for(cfg, tokenizer, generator).to(device)
    if is_done(paths.composer) and is_done(paths.generator):
        load_module_weights(composer, paths.composer)
        load_module_weights(generator, paths.generator)
        return composer, generator

    def load(directory: Path) -> Callable[[], None]:
        def load_both() -> None:
            load_module_weights(composer, directory, "composer")
            load_module_weights(generator, directory, "generator")

        return load_both

    def save(res: Any, directory: Path, extra: dict[str, str] | None = None) -> None:
        write_history(res, directory / "history.jsonl")
        if dist_info().is_main:
            for name, text in (extra or {}).items():
                (directory / name).write_text(text)
            save_module(composer, directory, cfg.composer, "composer")
            save_module(generator, directory, generator.config, "generator")

    s1 = paths.stage("stage1")
    if cfg.stage1.enabled:
        fingerprint = stage1_fingerprint(cfg)
        if share_stage1 is not None and not is_done(s1, "composer"):
            other = share_stage1 / "stages" / "stage1"
            fp = other / "fingerprint.txt"
            if is_done(other, "composer") and fp.is_file() and fp.read_text() == fingerprint:
                # Stage 1 does not depend on Stage 2's settings: an ablation that differs only there
                # (drc_no_augment) reuses drc's Stage 1 instead of training an identical one again
                copy_stage(other, s1)
                timings["stage1"] = 0.0

        def stage1() -> None:
            res = train_stage1(
                cfg, composer, generator, tb, prep.stage_ids, prep.user_of, prep.prompt, s1, device,
                progress,
            )  # fmt: skip
            save(res, s1, {"fingerprint.txt": fingerprint})

        run_stage(is_done(s1, "composer"), load(s1), stage1, timings, "stage1")
    s2 = paths.stage("stage2")

    def stage2() -> None:
        from drc.train.validation import judge, validator_for

        train = prep.split("train")
        validator = validator_for(cfg, prep, tb, composer, generator, s2)
        if info is not None:
            info.status, info.failure = "ok", None
        res = train_stage2(cfg, composer, generator, tb, train, prep.prompt, s2, device, progress, validator)
        if validator is not None and info is not None:
            info.validation = validator.finish()  # the composer now holds the best evaluation's weights
            v = cfg.validation
            failure = judge(info.validation, v.fail_if, v.margin, composer.uses_reference)
            if failure is not None:
                info.status, info.failure = "failed", failure
        save(res, s2)

    run_stage(is_done(s2, "composer"), load(s2), stage2, timings, "stage2")
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
    # a config built in Python is checked as one built from flags and files is (types, choices)
    if cfg is None:
        cfg = build_config(method, preset, config_file, overrides)
        explicit = explicit_keys(config_file, overrides)
    else:
        cfg, explicit = from_dict(RunConfig, to_dict(cfg)), set()
    base_dir, shipped, adopted = None, None, []
    if base is not None and cfg.generator.backend == "builtin":
        # a run folder or a shipped name; the run takes over the base's image size and model config
        base_dir, shipped = resolve_run(base, "base")
        check_base_folder(base_dir, base)
        cfg, adopted = adopt_base_config(cfg, base_dir, explicit, base)
    device = resolve_device(cfg.device)
    from drc.precision import precision_record
    from drc.runtime import init_distributed
    from drc.threads import configure_threads

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
    info.data, info.prompt = str(Path(data_dir).resolve()), prep.prompt
    info.base = str(base) if base is not None else None
    info.precision, info.threads = precision, threads
    pretrain = stages != ("tokenizer",)
    choice = choose_base(base, base_dir, shipped, paths, cfg, data_dir, adopted, pretrain)
    start_from(choice, base_dir, prep, paths, info, device, cfg.precision, progress)  # checked first
    torch.manual_seed(cfg.seed)
    tokenizer, generator = ensure_base(paths, cfg, prep, device, base_dir, progress, info, pretrain=pretrain)
    if "pretrain" in stages:
        ensure_token_bank(paths, cfg, prep, tokenizer, device)
    info.save(paths.info)
    if "method" in stages:
        share = Path(share_stage1) if share_stage1 is not None else None
        try:
            train_method(paths, cfg, prep, tokenizer, generator, device, progress, info, share)
        except FloatingPointError as e:  # the loop's non-finite loss: the weights diverged
            info.status, info.failure = "failed", str(e)
            info.save(paths.info)
            raise TrainingFailed(str(e)) from None
    info.save(paths.info)
    return paths
