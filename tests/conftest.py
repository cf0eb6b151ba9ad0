"""Test-wide settings: offline hubs, few threads, deterministic seeds."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# an OMP_NUM_THREADS of the user's makes drc.runtime.configure_threads (called by train_run, load,
# the demo) leave the count below alone, whatever the machine's core count
os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402

torch.set_num_threads(2)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_stickers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sticker benchmark shared by the end-to-end tests (built once per session)."""
    from drc.data.benchmarks.stickers import build

    out = tmp_path_factory.mktemp("bench") / "stickers"
    build(out, users=24, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_drc_run(tiny_stickers: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny-preset drc run on the tiny benchmark (trained once per session)."""
    from drc.pipeline import train_run

    out = tmp_path_factory.mktemp("runs") / "drc"
    train_run(tiny_stickers, out, method="drc", preset="tiny", progress=False)
    return out
