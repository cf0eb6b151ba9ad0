"""Loading trained models from their folders (model.yaml + model.safetensors, strictly).

Used by the run's stages (a resumed run reloads what it finished), the built-in backend (generation
and evaluation) and the tests; training (`drc.train.pretrain`) writes what these read.
"""

from __future__ import annotations

from pathlib import Path

import torch

from drc.config_io import from_dict, read_yaml
from drc.models.generator import Generator
from drc.models.generator_config import GeneratorConfig
from drc.models.tokenizer import VQTokenizer
from drc.models.tokenizer_config import TokenizerConfig
from drc.weights import load_module_weights


def load_tokenizer(directory: str | Path, device: torch.device | str = "cpu") -> VQTokenizer:
    """Strictly load a tokenizer saved by `train_tokenizer` (model.yaml + model.safetensors)."""
    cfg = from_dict(TokenizerConfig, read_yaml(Path(directory) / "model.yaml"))
    model = VQTokenizer(cfg)
    load_module_weights(model, directory)
    return model.to(device).eval()


def load_generator(directory: str | Path, device: torch.device | str = "cpu") -> Generator:
    """Strictly load a generator saved by `train_generator` (model.yaml + model.safetensors)."""
    cfg = from_dict(GeneratorConfig, read_yaml(Path(directory) / "model.yaml"))
    model = Generator(cfg)
    load_module_weights(model, directory)
    return model.to(device).eval()
