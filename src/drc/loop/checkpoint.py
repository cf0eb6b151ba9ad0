"""Crash-safe training checkpoints.

Layout of a checkpoint folder (one per training stage)::

    ckpt/
      step_000400/          a complete checkpoint: renamed into place only once fully written
        weights.safetensors   every module's parameters and buffers, keys "<module>.<param>"
        state.pt              optimizer, step, stateful objects (e.g. the importance sampler), log
        meta.json             step, config hash, sha256 of the two files above (written last)
      latest                the name of the newest complete checkpoint (replaced atomically)

A SIGKILL at any moment leaves either the previous checkpoint or the new one, never a half-written
one: files go to `.tmp-*` folders first, are fsynced, and only then renamed. Loading verifies the
checksums (a corrupt checkpoint is refused with a clear message) and the config hash (so is one
from another config).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from drc.errors import CheckpointError
from drc.weights import _fsync_dir, atomic_save_tensors, read_tensors


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class CheckpointManager:
    """Saves and finds the checkpoints of one training stage in `directory`."""

    def __init__(self, directory: str | Path, config_hash: str, keep: int = 2) -> None:
        self.dir = Path(directory)
        self.config_hash = config_hash
        self.keep = keep

    # ------------------------------------------------------------------ save
    def save(self, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"step_{step:07d}"
        final = self.dir / name
        tmp = self.dir / f".tmp-{name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        atomic_save_tensors(tensors, tmp / "weights.safetensors")
        with open(tmp / "state.pt", "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        meta = {
            "step": step,
            "config_hash": self.config_hash,
            "sha256": {n: _sha256(tmp / n) for n in ("weights.safetensors", "state.pt")},
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        _fsync_dir(tmp)
        if final.exists():  # a rerun that reached the same step again: replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(self.dir)
        latest_tmp = self.dir / f".latest-{os.getpid()}"
        latest_tmp.write_text(name)
        os.replace(latest_tmp, self.dir / "latest")
        _fsync_dir(self.dir)
        self._prune(keep_name=name)
        return final

    def _prune(self, keep_name: str) -> None:
        done = sorted(p for p in self.dir.glob("step_*") if p.is_dir())
        for p in done[: max(len(done) - self.keep, 0)]:
            if p.name != keep_name:
                shutil.rmtree(p, ignore_errors=True)
        for p in self.dir.glob(".tmp-*"):  # leftovers of a killed save
            if p.is_dir() and not p.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(p, ignore_errors=True)

    # ------------------------------------------------------------------ load
    def latest(self) -> Path | None:
        """The newest complete checkpoint, or None when there is none yet."""
        pointer = self.dir / "latest"
        if pointer.is_file():
            p = self.dir / pointer.read_text().strip()
            if p.is_dir():
                return p
        done = sorted(p for p in self.dir.glob("step_*") if (p / "meta.json").is_file())
        return done[-1] if done else None

    def load(self, path: str | Path) -> tuple[int, dict[str, torch.Tensor], dict[str, Any]]:
        """Verify and read one checkpoint: (step, tensors, state)."""
        path = Path(path)
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, json.JSONDecodeError):
            raise CheckpointError(f"{path}: corrupt checkpoint (meta.json missing or unreadable)") from None
        if meta.get("config_hash") != self.config_hash:
            raise CheckpointError(
                f"{path}: checkpoint was written by another config (hash {meta.get('config_hash')} vs "
                f"{self.config_hash}); use a new --out folder or the run's own config"
            )
        for name, digest in meta.get("sha256", {}).items():
            f = path / name
            if not f.is_file() or _sha256(f) != digest:
                raise CheckpointError(
                    f"{f}: corrupt checkpoint (checksum mismatch); delete {path} to go back"
                )
        tensors = read_tensors(path / "weights.safetensors")
        try:
            state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling failure means corrupt
            raise CheckpointError(f"{path / 'state.pt'}: corrupt checkpoint ({type(e).__name__})") from None
        return int(meta["step"]), tensors, state
