"""Generator backends: the visual tokenizer + generator pair the stages drive (`drc.backends.base`).

`generator.backend=builtin` (the default): drc's own `VQTokenizer` and `Generator`, trained by
`drc train` and stored in the run folder. `generator.backend=janus generator.model_dir=DIR`: a
pretrained Janus / Janus-Pro from a local folder (`drc.backends.janus`), with the run's adapters.
`load_backend` is the one place that tells them apart (used by `pipeline.ensure_base` and
`DrcModel.load`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from drc.backends.base import Backend, TokenGenerator, VisualTokenizer
from drc.errors import DrcError

if TYPE_CHECKING:
    from drc.config import RunConfig

__all__ = ["Backend", "TokenGenerator", "VisualTokenizer", "check_config", "load_backend"]


def check_config(cfg: RunConfig) -> None:
    """Fail fast (before a run folder is written or any data is read) on a backend config that
    cannot load: an unknown backend, a missing or incomplete model folder, an impossible setting."""
    if cfg.generator.backend == "janus":
        from drc.backends.janus import check_options

        check_options(cfg)


def load_backend(
    cfg: RunConfig, device: torch.device, run: str | Path | None = None, progress: bool = False
) -> Backend:
    """The tokenizer and generator of `cfg.generator.backend`, on `device`, in eval mode.

    builtin: from the run folder `run` (tokenizer/, and generator/ where the run has its own copy,
    else pretrain/). janus: the pretrained model in `generator.model_dir`; with `run`, plus the
    run's trained adapter weights (generator/model.safetensors), loaded strictly.
    """
    name = cfg.generator.backend
    if name == "builtin":
        if run is None:
            raise ValueError("the builtin backend is loaded from a run folder: pass run=")
        return _load_builtin(Path(run), device)
    from drc.backends.janus import load_janus
    from drc.weights import load_module_weights

    backend = load_janus(cfg, device, progress=progress)
    if run is not None:
        weights = Path(run) / "generator"
        if (weights / "model.safetensors").is_file():
            load_module_weights(backend.generator, weights)
        elif cfg.janus.lora_rank > 0:
            raise DrcError(
                f"{run}: run is not finished (generator/model.safetensors missing); rerun drc train"
            )
    return backend


def _load_builtin(run: Path, device: torch.device) -> Backend:
    from drc.models.loading import load_generator, load_tokenizer

    # a run whose generator stayed frozen generates with its pretrained one; the shipped runs keep
    # only that (pretrain/), a trained run has its own copy in generator/
    gen_dir = run / "generator" if (run / "generator" / "model.safetensors").is_file() else run / "pretrain"
    for d in (run / "tokenizer", gen_dir):
        if not (d / "model.safetensors").is_file():
            raise DrcError(
                f"{run}: run is not finished ({d.name}/model.safetensors missing); rerun drc train"
            )
    tokenizer = load_tokenizer(run / "tokenizer").to(device).eval()
    generator = load_generator(gen_dir).to(device).eval()
    return Backend("builtin", tokenizer, generator)
