"""Saving and strictly loading module weights (safetensors + the resolved config beside them).

Loading is always strict: a mismatch names every missing, unexpected and mis-shaped key, the way
diffusers does, instead of silently leaving parameters at their random initial values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from drc.atomic import atomic_write
from drc.config_io import save_yaml
from drc.errors import CheckpointError


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save_tensors(
    tensors: dict[str, torch.Tensor], path: str | Path, meta: dict[str, str] | None = None
):
    """Write a safetensors file to a temporary name, fsync it, then rename it into place."""
    path = Path(path)
    # safetensors refuses shared or non-contiguous storage: give it plain copies
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(plain, str(tmp), metadata=meta), fsync=True)
    _fsync_dir(path.parent)


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a truncated or garbled file is a CheckpointError naming it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: corrupt weights file ({str(e).splitlines()[0]})") from None


def check_state_dict(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise CheckpointError naming missing, unexpected and mis-shaped keys, if any."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shaped = sorted(
        f"{k} (checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)})"
        for k in set(own) & set(state)
        if tuple(own[k].shape) != tuple(state[k].shape)
    )
    parts = []
    if missing:
        parts.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {', '.join(unexpected)}")
    if shaped:
        parts.append(f"mis-shaped keys: {', '.join(shaped)}")
    if parts:
        raise CheckpointError(f"{source}: weights do not match the model; " + "; ".join(parts))


def load_state_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Strict `load_state_dict` with an error message that names every offending key."""
    check_state_dict(module, state, source)
    module.load_state_dict(state, strict=True)


def save_module(module: nn.Module, directory: str | Path, config: Any, name: str = "model") -> Path:
    """Save `module` as `directory/name.safetensors` with its config as `directory/name.yaml`."""
    directory = Path(directory)
    save_yaml(config, directory / f"{name}.yaml")
    path = directory / f"{name}.safetensors"
    atomic_save_tensors(module.state_dict(), path, meta={"format": "pt"})
    return path


def load_module_weights(module: nn.Module, directory: str | Path, name: str = "model") -> nn.Module:
    """Strictly load `directory/name.safetensors` into `module`."""
    path = Path(directory) / f"{name}.safetensors"
    load_state_strict(module, read_tensors(path), str(path))
    return module
