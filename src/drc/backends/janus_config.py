"""The Janus backend's constants, what its tokenizer is (its config; the generator's is the run's
`GeneratorConfig` with the VQ's shapes), and reading its model folder (`drc.backends.janus` loads
from it). Its run-config settings (`JanusOptions`) are `drc.backend_options`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import torch

from drc.errors import DrcError
from drc.precision import Precision

ADAPTER_KEY = "lora_"  # substring of every adapter parameter name (peft's lora_A / lora_B)
BOI, EOI = "<begin_of_image>", "<end_of_image>"
# the transformers releases the backend was checked against (the `janus` extra pins them)
TRANSFORMERS_CHECKED = ">=5.25,<5.26"
SAMPLE_TEXT = "a red sticker of a cat, smiling"  # round-tripped through the text tokenizer at load
CHUNK = 16  # images per VQ pass: a 384 px VQ activation is ~75 MB per image per layer in fp32


@dataclass
class JanusTokenizerConfig:
    """What the Janus VQ is, as the stages see it (`code_dim`, `codebook_size`)."""

    code_dim: int = 8
    codebook_size: int = 16384
    image_size: int = 384  # the VQ's native square side in pixels
    grid: int = 24  # cells per side: N = grid * grid


# --------------------------------------------------------------------------- the model folder


def weight_files(folder: Path) -> tuple[list[str], list[str]]:
    """(weight files present, what is missing) of a transformers model folder.

    A single `model.safetensors` / `pytorch_model.bin`, or a sharded one: the index and every shard
    it names.
    """
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (folder / single).is_file():
            return [single], []
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).is_file():
            try:
                shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            except (ValueError, KeyError, TypeError):
                return [], [f"a readable {index}"]
            missing = [s for s in shards if not (folder / s).is_file()]
            return ([index, *shards] if not missing else []), missing
    return [], ["model.safetensors (or model.safetensors.index.json and its shards)"]


def check_model_dir(model_dir: str | Path) -> Path:
    """The Janus folder, or a one-line DrcError naming what is missing from it."""
    if not str(model_dir):
        raise DrcError(
            "generator.backend=janus needs generator.model_dir=DIR: a local Janus / Janus-Pro folder "
            "in transformers format or DeepSeek's original one (nothing is downloaded)"
        )
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise DrcError(f"{folder}: Janus model folder not found (generator.model_dir)")
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    missing += weight_files(folder)[1]
    if not any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer.model")):
        missing.append("tokenizer.json (the text tokenizer)")
    if missing:
        raise DrcError(
            f"{folder}: not a complete Janus model folder; missing {', '.join(missing)} (write one with "
            "JanusForConditionalGeneration.save_pretrained and the processor's save_pretrained)"
        )
    try:
        model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    except ValueError as e:
        raise DrcError(f"{folder / 'config.json'}: not valid JSON ({e})") from None
    if model_type not in ("janus", "multi_modality"):
        raise DrcError(
            f"{folder / 'config.json'}: model_type is {model_type!r}, not 'janus' (transformers' Janus) "
            "or 'multi_modality' (DeepSeek's original Janus)"
        )
    return folder


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    table = {"bf16": torch.bfloat16, "fp32": torch.float32}
    if name not in table:
        raise DrcError(f"unknown janus.dtype {name!r}; valid: {', '.join(get_args(Precision))}")
    return table[name]
