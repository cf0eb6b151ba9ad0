"""Which tokenizer + pretrained generator a training run starts from, why, and whether it fits the data.

`drc train --base REF` takes a run folder or a shipped base's name (`stickers`, `posters`), resolved
by `drc.pretrained.resolve_run` as every command that takes a run does. The run adopts the base's
image size and model config (`adopt_base_config`): its weights were trained at that size with that
config, and a config file or `key=value` asking for another value of one of those keys is an error.

Before anything is copied or trained, the base's tokenizer encodes and decodes a spread sample of the
folder's training images (`domain_check`): the PSNR it reaches there, against the PSNR it reaches on
its own training data, tells whether the base can draw these images at all. A base whose tokenizer
cannot reconstruct them has a generator that draws only its own images (the shipped sticker base on
another artwork draws the built-in themes). The check warns and does not stop the run: it is a
necessary condition, not a sufficient one, calibrated on a few sets, and a false alarm must not block
a user who knows better. The warning is printed even with `--quiet` and repeated when `drc train`
ends; both figures are recorded in `run.json` (`base_check`), with the line saying where the base came
from (`base_choice`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from drc.config import RunConfig, from_dict, load_yaml, to_dict
from drc.config_io import flat_keys, read_yaml
from drc.errors import DrcError
from drc.run_folder import RunInfo, RunPaths, is_done

if TYPE_CHECKING:
    from drc.backends.base import VisualTokenizer
    from drc.data.prepare import Prepared

# Images of the folder the base's tokenizer reconstructs for the check (evenly spread over the
# training items): enough for a PSNR stable to about 0.1 dB, about a second on a CPU.
DOMAIN_SAMPLE = 256
# A base fits a folder when its tokenizer reconstructs the folder at most this many dB worse than
# its own training data. Measured on 256 spread training images (`drc.pretrained measure`), the
# shipped sticker base (19.77 dB on its benchmark) loses 0.96 dB on a sticker set of another seed,
# and 3.79 (stickers with emoji semantics: artwork it never saw), 4.95 (plain OpenMoji icons) and
# 7.01 dB (posters); the poster base (20.66 dB) loses 4.40 on icons and 6.51 on stickers.
FIT_DROP_DB = 2.5
# What a base's config fixes and a run on it takes over: the weights' shapes and the stages they
# came from, and the image size they were trained at.
ADOPTED_SECTIONS = ("tokenizer", "tokenizer_train", "generator", "generator_train")
ADOPTED_DATA = ("image_height", "image_width")


def explicit_keys(config_file: str | Path | None, overrides: dict[str, Any] | None) -> set[str]:
    """The dotted keys the user set: a config file's keys and the `key=value` overrides."""
    keys = set((overrides or {}).keys())
    if config_file is not None:
        keys |= set(flat_keys(read_yaml(config_file)))
    return keys


def _adopted(cfg: RunConfig) -> dict[str, Any]:
    """The flat values of the keys a run takes over from its base."""
    flat = flat_keys(to_dict(cfg))
    keep = tuple(f"{s}." for s in ADOPTED_SECTIONS)
    return {k: v for k, v in flat.items() if k.startswith(keep) or k in {f"data.{d}" for d in ADOPTED_DATA}}


def check_base_folder(base_dir: Path, ref: str | Path) -> None:
    """A base must hold a finished tokenizer and pretrained generator; a local folder that hides a
    shipped name (resolve_run prefers it) is named as such."""
    from drc.pretrained import HERE, SCENARIOS

    for sub in ("tokenizer", "pretrain"):
        if not is_done(base_dir / sub):
            hint = ""
            if str(ref) in SCENARIOS and base_dir.resolve() != (HERE / str(ref)).resolve():
                hint = f"; this folder hides the shipped base {str(ref)!r}: pass its path, {HERE / str(ref)}"
            missing = "(model.safetensors missing)"
            raise DrcError(f"{base_dir / sub}: base run has no finished {sub} {missing}{hint}")


def adopt_base_config(
    cfg: RunConfig, base_dir: Path, explicit: set[str], ref: str | Path = ""
) -> tuple[RunConfig, list[str]]:
    """`cfg` with the base's image size and model config; returns (config, the keys that changed).

    A key the user set explicitly (`explicit`) to another value than the base's is an error. A
    base without `config.yaml` (a folder of bare stages) is taken as it is.
    """
    if not (base_dir / "config.yaml").is_file():
        return cfg, []
    base = _adopted(load_yaml(RunConfig, base_dir / "config.yaml"))
    mine = _adopted(cfg)
    changed = [k for k, v in base.items() if mine.get(k) != v]
    conflicts = [k for k in changed if k in explicit]
    if conflicts:
        shown = ", ".join(f"{k}={mine[k]} (base: {base[k]})" for k in conflicts[:4])
        raise DrcError(
            f"--base {ref or base_dir}: its weights fix {shown}; drop these settings, or train without --base"
        )
    if not changed:
        return cfg, []
    data = to_dict(cfg)
    for key in changed:
        section, *rest = key.split(".")
        node = data[section]
        for part in rest[:-1]:
            node = node[part]
        node[rest[-1]] = base[key]
    return from_dict(RunConfig, data), changed


@dataclasses.dataclass
class BaseChoice:
    """Where a run's tokenizer and generator come from, and why (`run.json`'s `base_choice`)."""

    kind: str  # "shipped", "run" (--base), "reused" (already in the run), "here" (trained), "backend"
    path: str | None
    reason: str
    adopted: list[str] = dataclasses.field(default_factory=list)

    def line(self) -> str:
        where = {
            "shipped": f"shipped {Path(self.path or '').name!r} ({self.path})",
            "run": f"run folder {self.path}",
        }.get(self.kind, "")
        text = f"base: {where}: {self.reason}" if where else f"base: {self.reason}"
        if self.adopted:
            parts = dict.fromkeys(
                "image size" if k.startswith("data.") else k.split(".")[0] for k in self.adopted
            )
            text += f"; adopted its {', '.join(parts)} ({len(self.adopted)} settings differed)"
        return text


def choose_base(
    base: str | Path | None, base_dir: Path | None, shipped: str | None, paths: RunPaths, cfg: RunConfig,
    data_dir: str | Path, adopted: list[str], pretrain: bool = True,
) -> BaseChoice:  # fmt: skip
    """What `drc train` starts from (`base_dir`: `base` resolved; `shipped`: its shipped name;
    pretrain=False: the tokenizer only is asked for)."""
    if cfg.generator.backend != "builtin":
        g = cfg.generator
        unused = "; --base is not used" if base is not None else ""
        return BaseChoice("backend", g.model_dir, f"pretrained {g.backend} model in {g.model_dir} "
                          f"(generator.backend={g.backend}){unused}")  # fmt: skip
    if base_dir is not None:
        kind = "shipped" if shipped else "run"
        return BaseChoice(kind, str(base_dir.resolve()), f"--base {base}", adopted)
    data = Path(data_dir).resolve()
    if is_done(paths.tokenizer) and (is_done(paths.pretrain) or not pretrain):
        what = "tokenizer and generator" if is_done(paths.pretrain) else "tokenizer"
        why = f"finished {what} already in the run"
        return BaseChoice("reused", str(paths.root), f"reused from {paths.root} ({why})")
    if is_done(paths.tokenizer):
        return BaseChoice("here", str(paths.root), f"tokenizer reused from {paths.root}, generator "
                          f"trained here on {data} (no --base)")  # fmt: skip
    return BaseChoice("here", str(paths.root), f"trained here on {data} (no --base)")


def sample_ids(ids: list[str], n: int = DOMAIN_SAMPLE) -> list[str]:
    """Up to `n` of `ids`, evenly spread (not the first users' items only)."""
    if len(ids) <= n:
        return list(ids)
    return [ids[round(i * (len(ids) - 1) / (n - 1))] for i in range(n)]


def reconstruction_psnr(
    tokenizer: VisualTokenizer, images: torch.Tensor, device: torch.device, precision: str
) -> float:
    """PSNR (dB) of decode(encode(x)) against uint8 `images` (N, 3, H, W)."""
    from drc.train.pretrain import tokenizer_stats

    return float(tokenizer_stats(tokenizer, images, device, precision)["psnr"])


def own_figure(base_dir: Path) -> tuple[float, str] | None:
    """The base tokenizer's PSNR on its own training data, and where that figure comes from.

    A shipped base keeps it in `meta.json` (`reconstruction`); a run in `run.json`: its tokenizer
    stats when it trained the tokenizer, else the figure its own base check carried over.
    """
    meta = base_dir / "meta.json"
    if meta.is_file():
        rec = json.loads(meta.read_text()).get("reconstruction") or {}
        if "psnr" in rec:
            return float(rec["psnr"]), f"{base_dir.name}/meta.json"
    if (base_dir / "run.json").is_file():
        info = RunInfo.load(base_dir / "run.json")
        if "psnr" in info.stats.get("tokenizer", {}):
            return float(info.stats["tokenizer"]["psnr"]), f"{base_dir.name}/run.json"
        if info.base_check.get("base_psnr") is not None:
            return float(info.base_check["base_psnr"]), f"{base_dir.name}/run.json (its base's)"
    return None


def domain_check(base_dir: Path, images: torch.Tensor, data_dir: str | Path, device: torch.device,
                 precision: str) -> dict[str, Any]:  # fmt: skip
    """Reconstruct `images` (the folder's sample) with the base's tokenizer; compare with its own figure.

    Returns `run.json`'s `base_check`: psnr, images, base_psnr (None when the base records none),
    base_psnr_from, drop_db, threshold_db, fits (None when there is nothing to compare with).
    """
    from drc.models.loading import load_tokenizer

    tokenizer = load_tokenizer(base_dir / "tokenizer").to(device)
    psnr = round(reconstruction_psnr(tokenizer, images, device, precision), 3)
    own = own_figure(base_dir)
    check: dict[str, Any] = {
        "data": str(Path(data_dir).resolve()), "images": len(images), "psnr": psnr,
        "base_psnr": own[0] if own else None, "base_psnr_from": own[1] if own else None,
        "threshold_db": FIT_DROP_DB,
    }  # fmt: skip
    if own is None:
        check.update(drop_db=None, fits=None)
    else:
        drop = round(own[0] - psnr, 3)
        check.update(drop_db=drop, fits=drop <= FIT_DROP_DB)
    return check


def measure_base(base_dir: Path, data_dir: str | Path, device: torch.device | None = None) -> dict[str, Any]:
    """The base tokenizer's PSNR on `data_dir` (its own training data, at its image size), measured as
    `domain_check` measures a folder: what a shipped base's `meta.json` keeps as `reconstruction`."""
    from drc.data.prepare import prepare
    from drc.models.loading import load_tokenizer

    cfg = load_yaml(RunConfig, base_dir / "config.yaml")
    dev = device or torch.device("cpu")
    prep = prepare(data_dir, cfg)
    images = prep.bank.get(sample_ids(prep.train_ids))
    tokenizer = load_tokenizer(base_dir / "tokenizer").to(dev)
    psnr = round(reconstruction_psnr(tokenizer, images, dev, cfg.precision), 3)
    return {"psnr": psnr, "images": len(images), "split": "train", "data": Path(data_dir).name}


def check_line(check: dict[str, Any]) -> str:
    """One line for `drc train`: the figures, and the verdict."""
    where = f"{check['psnr']:.1f} dB PSNR on {check['images']} training images of {check['data']}"
    if check["fits"] is None:
        return f"base check: its tokenizer reconstructs at {where} (the base records no figure of its own)"
    own = f"{check['base_psnr']:.1f} dB on its own data"
    if check["fits"]:
        return f"base check: its tokenizer reconstructs at {where}, against {own}: it fits"
    return (
        f"warning: the base cannot draw these images: its tokenizer reconstructs at {where}, against "
        f"{own} ({check['drop_db']:.1f} dB worse, more than {check['threshold_db']:g}); its generator "
        "will draw the base's own kind of images. Train from scratch (no --base) instead."
    )


def start_from(
    choice: BaseChoice, base_dir: Path | None, prep: Prepared, paths: RunPaths, info: RunInfo,
    device: torch.device, precision: str, progress: bool,
) -> None:  # fmt: skip
    """Say what the run starts from, check the base on the folder first, record both in `info`."""
    from drc.runtime import dist_info

    main = dist_info().is_main
    if base_dir is not None and choice.kind in ("shipped", "run"):
        if info.base_check.get("base") == choice.path and info.base_check.get("data") == info.data:
            check = info.base_check  # a resumed run: checked when it started
        elif (known := _known_check(base_dir, info.data)) is not None:
            check = known
        else:
            images = prep.bank.get(sample_ids(prep.train_ids))
            check = domain_check(base_dir, images, info.data, device, precision)
        info.base_check = {**check, "base": choice.path}
    elif choice.kind != "reused":  # a resumed run keeps the check of the base it started from
        info.base_check = {}
    line = choice.line()
    info.base_choice = {**dataclasses.asdict(choice), "line": line}
    if main and progress:
        print(line, file=sys.stderr)
    if main and info.base_check and "psnr" in info.base_check:
        verdict = check_line(info.base_check)
        if progress or info.base_check["fits"] is False:
            print(verdict, file=sys.stderr)  # the warning is said even with --quiet


def _known_check(base_dir: Path, data: str) -> dict[str, Any] | None:
    """The verdict a base run on this same folder already holds: it trained its tokenizer here (it
    fits), or it checked the base it came from here (that check carries over)."""
    if not (base_dir / "run.json").is_file():
        return None
    info = RunInfo.load(base_dir / "run.json")
    if not info.data or Path(info.data).resolve() != Path(data).resolve():
        return None
    if "tokenizer" in info.stats:
        return {"data": data, "skipped": "the base trained its tokenizer on this folder", "fits": True}
    if info.base_check.get("data") == data and "fits" in info.base_check:
        kept = {k: v for k, v in info.base_check.items() if k != "base"}
        return {**kept, "from": f"{base_dir}/run.json"}
    return None
