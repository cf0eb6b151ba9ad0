"""Typed dataclass configs: the run config, presets, loading a saved run config.

Each model keeps its own config dataclass next to its module (nanoGPT style: `TokenizerConfig` in
`models/tokenizer.py`); `RunConfig` composes them with the training-stage configs into the single
resolved config that is saved with every run. YAML, dicts, dotted overrides and the hash are
`drc.config_io`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from drc.backend_options import BACKEND_SAMPLE, JanusOptions
from drc.config_io import (
    ChoiceChecked,
    apply_overrides,
    choices,
    config_hash,
    deep_merge,
    from_dict,
    parse_overrides,
    read_yaml,
    rename_saved_keys,
    save_yaml,
    to_dict,
    valid_keys,
)
from drc.errors import DrcError
from drc.loop.optim import OptimConfig
from drc.methods import METHOD_OVERRIDES, METHODS, MethodName
from drc.models.composer_config import ComposerConfig
from drc.models.generator_config import GeneratorConfig
from drc.models.tokenizer_config import TokenizerConfig
from drc.precision import Device, Precision

T = TypeVar("T")

# the generic machinery (dict / YAML / overrides / hash) lives in drc.config_io; named here too
__all__ = [
    "METHODS", "PRESETS", "PROBE_PRESETS", "OptimConfig", "DataConfig", "Stage1Config", "Stage2Config",
    "ValidationConfig", "SampleConfig", "RunConfig", "preset_overrides", "method_overrides", "stage2_optim",
    "load_yaml", "build_config",
    "apply_overrides", "choices", "config_hash", "from_dict", "parse_overrides", "save_yaml", "to_dict",
    "valid_keys",
]  # fmt: skip

Preset = Literal["tiny", "default"]
PRESETS: tuple[str, ...] = get_args(Preset)
# the demo's probe budget per preset (`drc.eval.probes.ProbeConfig` settings; why 300: bench/README.md,
# "Measurements behind the config defaults")
PROBE_PRESETS: dict[str, dict[str, Any]] = {"default": {"steps": 300}, "tiny": {"steps": 30, "channels": 8}}


# A setting that names one of a fixed set is typed `Literal[...]`: config_io checks it when a config is
# built, so a typo fails before anything is written. The choices have one home: the annotation, inline
# where one setting has them, a named alias where several share them; code reads them with `choices`.
Trainable = Literal["composer", "composer+generator"]


@dataclass
class DataConfig:
    """How a dataset folder becomes samples (docs/DESIGN.md section 3)."""

    # a sample: k history images and a reference, with the coarse prompt (text) used for Stage 2 and
    # evaluation, which names neither style nor semantics. An empty prompt means: take it from the
    # dataset's `dataset.json` ("instruction"), else "an image". ("instruction" names only the latent
    # tokens; config_io.RENAMED maps the saved key `data.instruction` here.)
    history_len: int = 5
    prompt: str = ""
    # every image is resized to this
    image_height: int = 64
    image_width: int = 64
    # users are split into train / valid / test
    split_seed: int = 0
    valid_frac: float = 0.1
    test_frac: float = 0.1


@dataclass
class Stage1Config(ChoiceChecked):
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
    trainable: Trainable = "composer"
    # weight of the frozen generator's token loss beside the dense draft loss (drc.train.losses)
    gen_weight: float = 0.0


@dataclass
class Stage2Config(ChoiceChecked):
    """Stage 2: personalized modeling from (history, augmented reference) to the target.

    Grouped by what a setting acts on: what trains, the reference, the history, the loss, the budget.
    """

    train: OptimConfig = field(default_factory=lambda: OptimConfig(steps=800, batch_size=16, lr=2e-3))
    # "composer" (the default) keeps the pretrained generator frozen, as the paper keeps its LMM: a
    # trained generator memorises the training images (measured: bench/README.md, "Measurements
    # behind the config defaults").
    trainable: Trainable = "composer"
    # -- the reference: semantic-preserving augmentations of the target (`augment`; `n_augment` of
    # them precomputed and tokenised per item), and a `real_reference_share` of real items with the
    # target's semantics in another style (only where labels exist). Methods that mask the target
    # instead (Pigeon; entangled and drc_no_augment) mask a `mask_ratio` share of its positions.
    augment: bool = True
    n_augment: int = 6
    real_reference_share: float = 0.5
    mask_ratio: float = 0.5
    # -- the history. "window": the k items before the target (docs/DESIGN.md); "random": k random
    # other training items of the same user, in interaction order. A fixed window lets the model
    # memorise window -> target and ignore the reference; a random draw cannot identify the target.
    history_sampling: Literal["window", "random"] = "random"
    # history-length dropout: this share of examples trains with a shortened history of
    # 1..min(max_short_history, k-1) images (cold-start users)
    history_dropout: float = 0.3
    max_short_history: int = 4
    # -- the loss. Weight of the frozen generator's token loss beside the dense draft loss
    # (drc.train.losses); cond_drop applies to that term (the generator learned its unconditional
    # rows in pretraining).
    gen_weight: float = 0.0
    cond_drop: float = 0.1
    # extra weight of the draft loss on content cells (where no visible history image has the
    # target's code: the reference's subject), beside 1 on every cell (drc.train.losses.content_weights).
    # Three quarters of a foreign set's cells are background and frame that the history already
    # shows; unweighted, the loss is spent there and the subject's few cells stay blurred
    # (bench/README.md, "Content cells and dropout in the composer"). Needs no labels.
    content_weight: float = 3.0
    # weight of the importance-weight supervision (drc.train.losses.weight_loss; labelled data only):
    # KL from "uniform over the history images that share the target's style label" to the weights.
    # Learned end to end from the draft loss alone, the weights stay blind on noisy histories:
    # averaging already washes one intruder out of the style features, so the draft loss barely
    # rewards spotting it (measured: bench/README.md, "Importance-weight supervision").
    weight_supervision: float = 1.0
    # -- the budget. Fairness: a method without Stage 1 (every baseline, drc_no_stage1) trains Stage 2
    # for stage1.train.steps more steps, so that every method gets the same number of composer updates
    match_budget: bool = True


@dataclass
class ValidationConfig(ChoiceChecked):
    """The validation split (`drc.data.heldout`) and what Stage 2 does with it (`drc.train.validation`).

    A section of its own, not part of `data`: the shipped bases are matched on the data config's hash,
    and the tokenizer and generator they hold see every training user's images either way.
    """

    # cases carved from training users, as a share of the training samples (about); 0 = no validation
    share: float = 0.08
    # evaluate every this many Stage 2 steps (0 = at each checkpoint, `stage2.train.ckpt_every`) and
    # at the last step; the composer ends with the weights of the evaluation with the lowest draft
    # cross-entropy on the cases
    every: int = 0
    # stop Stage 2 after this many evaluations in a row without a lower cross-entropy (0 = never)
    patience: int = 0
    # when a run is reported as failed (`drc train` exits with code 3; run.json "status": "failed"),
    # judged on the kept evaluation. "diverged": the draft got worse than the untrained composer and
    # than one code drafted everywhere, or its cross-entropy is not finite, or not below both
    # a uniform guess's (log of the codebook size) and the untrained composer's (an evaluation before
    # the first step). "copies": that, or its per-cell accuracy does not
    # beat copying the reference's tokens or the latest history image's by `margin` (a composer that
    # only copies has not learned to compose). "never": only record the scores.
    fail_if: Literal["never", "diverged", "copies"] = "copies"
    margin: float = 0.0


@dataclass
class SampleConfig(ChoiceChecked):
    """Sampling settings for generation and evaluation.

    temperature, top_k and cfg_scale default to the built-in generator's; another backend's own
    defaults (`BACKEND_SAMPLE`) replace them when the config is built (`build_config`), so a saved
    run config always holds the values it sampled with.
    """

    temperature: float = 0.7
    top_k: int = 32
    cfg_scale: float = 3.0
    batch_size: int = 32
    # the composer's draft as the generator reads it: logits / draft_temperature; 0 = its argmax,
    # one-hot (the form pretraining showed the generator)
    draft_temperature: float = 0.0
    # weight w of the composer's draft in sampling: each cell is drawn from p_gen * p_draft^w
    # (`drc.models.token_model.draft_guide`); 0 = the generator alone
    draft_guide: float = 1.0
    # "generator": the generator renders the image from the draft (the method); "draft": the
    # draft's argmax is decoded by the tokenizer with no generator (an ablation: what rendering adds)
    renderer: Literal["generator", "draft"] = "generator"


@dataclass
class RunConfig(ChoiceChecked):
    """Everything one run needs; saved resolved as `config.yaml` in the run folder."""

    method: MethodName = "drc"
    preset: Preset = "default"
    seed: int = 0
    device: Device = "auto"  # auto | cpu | cuda
    # auto | bf16 | fp32: the autocast dtype. auto = bf16 where the device multiplies in bf16 faster
    # than in fp32 (CUDA with native bf16, CPUs with AMX or avx512_bf16), fp32 elsewhere: see
    # drc.precision.resolve_precision. The choice and its reason are recorded in run.json.
    precision: Precision = "auto"
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
    validation: ValidationConfig = field(default_factory=ValidationConfig)
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
            # the tiny tokenizer uses a handful of codes: copying any image already scores ~0.99 per
            # cell, so accuracy tells nothing there; a diverged run still fails
            "validation.fail_if": "diverged",
            "sample.batch_size": 16,
            # the tiny composer drafts a handful of codes with certainty: guided by its draft, every
            # seed would draw the same image, and a tiny run exists to show the plumbing (seeds too)
            "sample.draft_guide": 0.0,
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


# Keys added after runs were saved, with the value those runs used: a saved run config holds every
# key of its day, so a missing one means "before the key existed", not "the current default".
SAVED_BEFORE = {
    ("composer", "style_pool"): 1,
    ("stage2", "weight_supervision"): 0.0,
    ("composer", "sem_window"): 0,
    ("composer", "fusion_window"): -1,
    ("composer", "draft_head"): "linear",
    ("sample", "draft_guide"): 0.0,
    ("stage2", "content_weight"): 0.0,
}


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Load dataclass `cls` from a YAML file (missing keys take their defaults; for a saved
    `RunConfig`, keys in `SAVED_BEFORE` take the value runs had before the key existed)."""
    data = read_yaml(path)
    if cls is RunConfig:
        data = rename_saved_keys(data)
        for (section, key), value in SAVED_BEFORE.items():
            if isinstance(data.get(section), dict) and key not in data[section]:
                data[section][key] = value
    return from_dict(cls, data)


def build_config(
    method: str = "drc",
    preset: str = "default",
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve a run config: defaults < preset < method < the backend's sampling defaults
    (`BACKEND_SAMPLE`, for the backend the result names) < config file < command-line overrides."""
    cfg = RunConfig()
    cfg = apply_overrides(cfg, {"preset": preset, **preset_overrides(preset)})
    cfg = apply_overrides(cfg, method_overrides(method))
    raw = None
    if config_file is not None:
        raw = read_yaml(config_file)
        from_dict(RunConfig, raw)  # validates keys and types, naming the bad one

    def on_top(base: RunConfig) -> RunConfig:
        # only the keys the file sets override the preset; a saved run config sets them all
        out = base if raw is None else from_dict(RunConfig, deep_merge(to_dict(base), raw))
        return apply_overrides(out, overrides) if overrides else out

    out = on_top(cfg)
    backend = BACKEND_SAMPLE.get(out.generator.backend)
    return on_top(apply_overrides(cfg, backend)) if backend else out
