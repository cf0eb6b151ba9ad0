"""A real SIGKILL during training, then a rerun: the run resumes and ends where an uninterrupted
run with the same seed ends (to within floating-point noise)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from drc.weights import read_tensors

STEPS = ["generator_train.steps=80", "generator_train.ckpt_every=10", "tokenizer_train.steps=20"]


def _cmd(data: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "drc",
        "train",
        "generator",
        "--data",
        str(data),
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--quiet",
        *STEPS,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tiny_stickers: Path, tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _cmd(tiny_stickers, killed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    ckpt = killed / "pretrain" / "ckpt"
    deadline = time.time() + 240
    # kill once at least two generator checkpoints exist, i.e. in the middle of pretraining
    while time.time() < deadline and proc.poll() is None:
        if len(list(ckpt.glob("step_*"))) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, (
        "training ended before it could be killed: " + proc.stderr.read().decode()[-500:]
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "pretrain" / "model.safetensors").exists()

    # the newest checkpoint is there and complete
    from drc.loop.checkpoint import CheckpointManager

    latest = CheckpointManager(ckpt, "").latest()
    assert latest is not None
    step = int(latest.name.split("_")[1])
    assert 0 < step < 80

    resumed = subprocess.run(
        _cmd(tiny_stickers, killed), env=_env(), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-1000:]

    clean = tmp_path / "clean"
    ref = subprocess.run(_cmd(tiny_stickers, clean), env=_env(), capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-1000:]

    a = read_tensors(killed / "pretrain" / "model.safetensors")
    b = read_tensors(clean / "pretrain" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-4, msg=lambda m, k=k: f"{k}: {m}")


def test_corrupt_checkpoint_is_refused(tmp_path: Path) -> None:
    from drc.errors import CheckpointError
    from drc.loop.checkpoint import CheckpointManager

    mgr = CheckpointManager(tmp_path, "abc")
    path = mgr.save(5, {"w": torch.ones(3)}, {"step": 5})
    mgr.load(path)  # intact: loads
    with open(path / "weights.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\xff\x00\xff")
    with pytest.raises(CheckpointError, match="corrupt checkpoint"):
        mgr.load(path)


def test_checkpoint_from_another_config_is_refused(tmp_path: Path) -> None:
    from drc.errors import CheckpointError
    from drc.loop.checkpoint import CheckpointManager

    path = CheckpointManager(tmp_path, "abc").save(1, {"w": torch.ones(2)}, {"step": 1})
    with pytest.raises(CheckpointError, match="another config"):
        CheckpointManager(tmp_path, "xyz").load(path)
