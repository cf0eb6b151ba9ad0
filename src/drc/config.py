"""Typed dataclass configs: YAML load/save, dotted overrides, presets.

Each model keeps its own config dataclass next to its module (nanoGPT style: `TokenizerConfig` in
`models/tokenizer.py`); `RunConfig` composes them with the training-stage configs into the single
resolved config that is saved with every run. Unknown keys are rejected with the list of valid ones,
and overrides are parsed to the field's type, so `stage2.train.steps=abc` fails loudly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from drc.atomic import atomic_write_text
from drc.backends.janus import JanusOptions
from drc.errors import DrcError
from drc.methods import METHOD_OVERRIDES, METHODS
from drc.models.composer_config import ComposerConfig
from drc.models.generator import GeneratorConfig
from drc.models.tokenizer import TokenizerConfig

T = TypeVar("T")

PRESETS = ("tiny", "default")


@dataclass
class OptimConfig:
    """One training stage's optimisation settings (AdamW, warmup then cosine decay)."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-4
    min_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    log_every: int = 50
    ckpt_every: int = 200


@dataclass
class DataConfig:
    """How a dataset folder becomes samples (docs/DESIGN.md section 3)."""

    image_height: int = 64
    image_width: int = 64
    history_len: int = 5
    split_seed: int = 0
    valid_frac: float = 0.1
    test_frac: float = 0.1
    # The coarse instruction used for Stage 2 and evaluation; names neither style nor semantics.
    # Empty means: take it from the dataset's `dataset.json` ("instruction"), else "an image".
    instruction: str = ""


@dataclass
class Stage1Config:
    """Stage 1: disentanglement learning on triplets, with difficulty-aware importance sampling."""

    enabled: bool = True
    train: OptimConfig = field(default_factory=lambda: OptimConfig(steps=150, batch_size=16, lr=2e-3))
    # importance sampling: p_i ∝ (d_i + eps)^alpha, mixed with a `uniform_mix` share of uniform
    alpha: float = 1.0
    eps: float = 0.05
    uniform_mix: float = 0.2
    ema: float = 0.9
    # which parts train: "composer" (towers + fusion), "composer+generator". The generator stays
    # frozen by default, as the paper's LMM does: see Stage2Config.trainable for the measurement.
    trainable: str = "composer"
    # weight of the frozen generator's token loss beside the dense draft loss (drc.train.losses)
    gen_weight: float = 0.0


@dataclass
class Stage2Config:
    """Stage 2: personalized modeling from (history, augmented reference) to the target."""

    train: OptimConfig = field(default_factory=lambda: OptimConfig(steps=800, batch_size=16, lr=2e-3))
    augment: bool = True
    # share of references that are real items with the target's semantics in another style
    # (only where labels exist); the rest are semantic-preserving augmentations of the target.
    real_reference_share: float = 0.5
    # "composer" (the default) keeps the pretrained generator frozen, as the paper keeps its LMM.
    # Measured on the sticker benchmark (36 test users, held-out pairs; 400 steps): training the
    # generator too drove the Stage 2 loss to 0.17 (it memorised the ~1,000 training images) and
    # no test output showed the asked-for semantics (joint 0.000), while the frozen generator kept
    # its text-pretrained ability to compose unseen pairs (joint 0.139; 0.250 with 800 steps at
    # lr 2e-3, the defaults).
    trainable: str = "composer"
    # weight of the frozen generator's token loss beside the dense draft loss (drc.train.losses);
    # cond_drop applies to that term (the generator learned its unconditional rows in pretraining)
    gen_weight: float = 0.0
    cond_drop: float = 0.1
    # semantic-preserving augmentations precomputed (and tokenised) per item for references
    n_augment: int = 6
    # "window": the k items before the target (docs/DESIGN.md); "random": k random other training items
    # of the same user, in interaction order. A fixed window lets the model memorise
    # window -> target and ignore the reference; a random draw cannot identify the target.
    history_sampling: str = "random"
    # fairness: a method without Stage 1 (every baseline, drc_no_stage1) trains Stage 2 for
    # stage1.train.steps more steps, so that every method gets the same number of composer updates
    match_budget: bool = True


@dataclass
class SampleConfig:
    """Sampling settings for generation and evaluation."""

    temperature: float = 0.7
    top_k: int = 32
    cfg_scale: float = 1.5
    batch_size: int = 32
    # the composer's draft as the generator reads it: logits / draft_temperature; 0 = its argmax,
    # one-hot (the form pretraining showed the generator)
    draft_temperature: float = 0.0
    # "generator": the generator renders the image from the draft (the method); "draft": the
    # draft's argmax is decoded by the tokenizer with no generator (an ablation: what rendering adds)
    renderer: str = "generator"


@dataclass
class RunConfig:
    """Everything one run needs; saved resolved as `config.yaml` in the run folder."""

    method: str = "drc"
    preset: str = "default"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    # auto | bf16 | fp32: the autocast dtype. auto = bf16 where the device multiplies in bf16 faster
    # than in fp32 (CUDA with native bf16, CPUs with AMX or avx512_bf16), fp32 elsewhere: see
    # drc.runtime.resolve_precision. The choice and its reason are recorded in run.json.
    precision: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    tokenizer_train: OptimConfig = field(
        default_factory=lambda: OptimConfig(steps=800, batch_size=32, lr=1e-3, ckpt_every=200)
    )
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    generator_train: OptimConfig = field(
        default_factory=lambda: OptimConfig(steps=1000, batch_size=32, lr=1e-3, ckpt_every=200)
    )
    composer: ComposerConfig = field(default_factory=ComposerConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    sample: SampleConfig = field(default_factory=SampleConfig)
    # settings of the Janus backend (read only with generator.backend=janus; see drc.backends.janus)
    janus: JanusOptions = field(default_factory=JanusOptions)


# --------------------------------------------------------------------------- presets


def preset_overrides(preset: str) -> dict[str, Any]:
    """Dotted overrides that turn the default config into `preset`."""
    if preset == "default":
        return {}
    if preset == "tiny":
        # Small enough that the whole pipeline runs in about a minute on 2 CPU cores; quality is
        # not the point, structure is (the tiny-preset tests assert files and ranges only).
        return {
            "tokenizer.channels": 16,
            "tokenizer.codebook_size": 64,
            "tokenizer.code_dim": 16,
            "tokenizer_train.steps": 30,
            "tokenizer_train.batch_size": 16,
            "tokenizer_train.log_every": 10,
            "generator.n_layer": 2,
            "generator.d_model": 64,
            "generator.n_head": 2,
            "generator_train.steps": 30,
            "generator_train.batch_size": 16,
            "generator_train.log_every": 10,
            "composer.d_model": 32,
            "composer.n_heads": 2,
            "stage1.train.steps": 10,
            "stage1.train.batch_size": 4,
            "stage1.train.log_every": 5,
            "stage2.train.steps": 15,
            "stage2.train.batch_size": 4,
            "stage2.train.log_every": 5,
            "sample.batch_size": 16,
        }
    raise DrcError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")


def method_overrides(method: str) -> dict[str, Any]:
    """Dotted overrides that make `method` (a baseline or an ablation) out of the drc config."""
    if method not in METHOD_OVERRIDES:
        raise DrcError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    return {"method": method, **METHOD_OVERRIDES[method]}


def stage2_optim(cfg: RunConfig) -> OptimConfig:
    """Stage 2's optimisation settings, with Stage 1's steps added where Stage 1 does not run."""
    if cfg.stage2.match_budget and not cfg.stage1.enabled:
        return dataclasses.replace(cfg.stage2.train, steps=cfg.stage2.train.steps + cfg.stage1.train.steps)
    return cfg.stage2.train


# --------------------------------------------------------------------------- generic machinery


def to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass -> plain dict (tuples become lists so that YAML stays readable)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out[f.name] = to_dict(v)
        elif isinstance(v, tuple):
            out[f.name] = list(v)
        else:
            out[f.name] = v
    return out


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check / convert `value` to the annotated type `tp`; raise DrcError naming `where`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except DrcError:
                continue
        raise DrcError(f"{where}: {value!r} is not a valid {tp}")
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.strip("()[] ").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise DrcError(f"{where}: expected a list, got {value!r}")
        (elem, *rest) = typing.get_args(tp) or (Any,)
        return tuple(_coerce(v, elem, where) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise DrcError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise DrcError(f"{where}: expected an integer, got {value!r}")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise DrcError(f"{where}: expected an integer, got {value!r}") from None
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise DrcError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, (str, int, float)):
            raise DrcError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a (possibly partial) dict; unknown keys are an error."""
    if not isinstance(data, dict):
        raise DrcError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise DrcError(
            f"unknown config key {(where + '.' if where else '') + unknown[0]!r}; valid keys: "
            + ", ".join(valid_keys(cls, where))
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        tp = hints[name]
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, key)  # type: ignore[arg-type]
        else:
            kwargs[name] = _coerce(value, tp, key)
    return cls(**kwargs)


def valid_keys(cls: Any, prefix: str = "") -> list[str]:
    """All dotted leaf keys of dataclass `cls`."""
    out: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(valid_keys(tp, key))
        else:
            out.append(key)
    return out


def apply_overrides(cfg: T, overrides: dict[str, Any]) -> T:
    """Return a copy of `cfg` with dotted `key=value` overrides applied (typed, validated)."""
    data = to_dict(cfg)
    keys = set(valid_keys(type(cfg)))
    for key, value in overrides.items():
        if key not in keys:
            raise DrcError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(keys))}")
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    return from_dict(type(cfg), data)


def parse_overrides(items: list[str]) -> dict[str, str]:
    """`["a.b=1", "c=x"]` -> `{"a.b": "1", "c": "x"}`."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise DrcError(f"override {item!r} is not of the form key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def save_yaml(cfg: Any, path: str | Path) -> None:
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def _read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise DrcError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise DrcError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise DrcError(f"{path}: a config file must hold a mapping")
    return data


# Keys added after runs were saved, with the value those runs used: a saved run config holds every
# key of its day, so a missing one means "before the key existed", not "the current default".
SAVED_BEFORE = {("composer", "style_pool"): 1}


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Load dataclass `cls` from a YAML file (missing keys take their defaults; for a saved
    `RunConfig`, keys in `SAVED_BEFORE` take the value runs had before the key existed)."""
    data = _read_yaml(path)
    if cls is RunConfig:
        for (section, key), value in SAVED_BEFORE.items():
            if isinstance(data.get(section), dict) and key not in data[section]:
                data[section][key] = value
    return from_dict(cls, data)


def config_hash(cfg: Any) -> str:
    """Stable short hash of a config, used to refuse checkpoints from another config."""
    blob = json.dumps(to_dict(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def build_config(
    method: str = "drc",
    preset: str = "default",
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve a run config: defaults < preset < method < config file < command-line overrides."""
    cfg = RunConfig()
    cfg = apply_overrides(cfg, {"preset": preset, **preset_overrides(preset)})
    cfg = apply_overrides(cfg, method_overrides(method))
    if config_file is not None:
        raw = _read_yaml(config_file)
        from_dict(RunConfig, raw)  # validates keys and types, naming the bad one
        # only the keys the file sets override the preset; a saved run config sets them all
        cfg = from_dict(RunConfig, _deep_merge(to_dict(cfg), raw))
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return cfg


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return out
