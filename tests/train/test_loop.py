"""The one training loop: schedule, resume, and data-parallel gradient averaging."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from drc.config import OptimConfig
from drc.loop.trainer import StepOutput, Trainer, lr_at


def test_lr_schedule_warms_up_then_decays() -> None:
    cfg = OptimConfig(steps=100, lr=1.0, warmup=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(99, cfg) == pytest.approx(0.1, abs=0.01)
    assert all(lr_at(i, cfg) >= lr_at(i + 1, cfg) for i in range(10, 99))


def _fit(ckpt: Path | None, steps: int, stop_after: int | None = None) -> nn.Linear:
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    cfg = OptimConfig(steps=steps, lr=0.05, warmup=2, ckpt_every=3, log_every=1)
    target = torch.tensor([[1.0, -2.0, 0.5, 3.0]])

    def step(i: int, rnd) -> StepOutput:
        if stop_after is not None and i >= stop_after:
            raise KeyboardInterrupt  # a crash in the middle of the stage
        x = torch.randn(8, 4, generator=rnd.torch_gen)
        return StepOutput(((model(x) - x @ target.T) ** 2).mean())

    tr = Trainer(
        "toy",
        {"m": model},
        list(model.parameters()),
        cfg,
        seed=1,
        device=torch.device("cpu"),
        precision="fp32",
        ckpt_dir=ckpt,
        config_hash="h",
        progress=False,
    )
    tr.fit(step)
    return model


def test_resume_after_crash_matches_uninterrupted(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "ckpt", steps=12, stop_after=7)
    resumed = _fit(tmp_path / "ckpt", steps=12)
    clean = _fit(None, steps=12)
    torch.testing.assert_close(resumed.weight, clean.weight)
    torch.testing.assert_close(resumed.bias, clean.bias)


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(100 + rank)  # different initial weights: the loop must sync them from rank 0
    model = nn.Linear(3, 1)
    cfg = OptimConfig(steps=5, lr=0.1, warmup=1, log_every=1)

    def step(i: int, rnd) -> StepOutput:
        x = torch.randn(4, 3, generator=rnd.torch_gen)  # each rank draws its own batch
        return StepOutput((model(x) - x.sum(1, keepdim=True)).pow(2).mean())

    Trainer(
        "ddp",
        {"m": model},
        list(model.parameters()),
        cfg,
        seed=0,
        device=torch.device("cpu"),
        precision="fp32",
        progress=False,
    ).fit(step)
    torch.save(model.state_dict(), f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_data_parallel_ranks_stay_identical(tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(2, 29541, str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt")
    b = torch.load(tmp_path / "rank1.pt")
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    # and training did move the weights away from rank 0's start
    torch.manual_seed(100)
    start = nn.Linear(3, 1).state_dict()
    assert not torch.equal(a["weight"], start["weight"])


def test_the_loop_imports_no_run_config() -> None:
    # the loop is shared by the stages and the probes: it must not pull in the run config's sections
    import subprocess
    import sys

    code = "import sys, drc.loop.trainer; print('drc.config' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
