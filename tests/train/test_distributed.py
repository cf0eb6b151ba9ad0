"""Two CPU processes on loopback with torchrun (gloo): data-parallel training, rank 0 writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from drc.weights import read_tensors


@pytest.mark.slow
def test_torchrun_two_processes_train_and_resume(tiny_stickers: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        "--master_port=29533",
        "-m",
        "drc",
        "train",
        "generator",
        "--data",
        str(tiny_stickers),
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--quiet",
        "tokenizer_train.steps=10",
        "generator_train.steps=12",
        "generator_train.ckpt_every=6",
        "device=cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert first.returncode == 0, first.stderr[-2000:]
    model = out / "pretrain" / "model.safetensors"
    assert model.is_file()
    # only rank 0 wrote checkpoints: one writer means no stray per-rank temporaries
    assert not list((out / "pretrain" / "ckpt").glob(".tmp-*"))
    before = read_tensors(model)
    # a rerun finds every stage finished and leaves the weights as they are
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stderr[-2000:]
    after = read_tensors(model)
    assert all((before[k] == after[k]).all() for k in before)
