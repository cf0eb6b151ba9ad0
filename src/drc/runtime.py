"""Runtime helpers: distributed context, derived seeds, progress bars (device and precision are
`drc.precision`, threads `drc.threads`)."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm


def derived_seed(*parts: Any) -> int:
    """A 63-bit seed from any hashable parts (seed, stage name, step, rank ...).

    Seeding every training step from (seed, stage, step, rank) rather than from a running RNG makes
    a resumed run draw exactly what the uninterrupted one would have drawn, with no RNG state to
    save, and gives each distributed rank its own shard of randomness.
    """
    h = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


@dataclass
class StepRandom:
    """The random sources handed to one training step (all derived from `derived_seed`)."""

    torch_gen: torch.Generator
    np_rng: np.random.Generator

    @staticmethod
    def for_step(*parts: Any) -> StepRandom:
        s = derived_seed(*parts)
        torch.manual_seed(s)  # dropout and anything else that uses the global RNG
        g = torch.Generator().manual_seed(s)
        return StepRandom(g, np.random.default_rng(s))


@dataclass
class DistInfo:
    """Where this process stands in a (possibly single-process) data-parallel job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


def init_distributed(device: torch.device) -> DistInfo:
    """Join the torchrun job if this process was started by torchrun (gloo on CPU, NCCL on GPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return dist_info()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class Progress:
    """Progress of a loop on stderr, drawn by tqdm: a live bar on a terminal; elsewhere (logs) one line
    every `every` steps and at the end, in tqdm's format (`[name]: 50%|...| 10/20 [00:05<00:05, ...]`)."""

    def __init__(self, name: str, total: int, start: int = 0, enabled: bool = True, every: int = 50):
        self.name, self.total, self.start = name, max(total, 1), start
        self.enabled = enabled
        self.every = max(every, 1)
        self.t0 = time.perf_counter()
        self.bar: tqdm | None = None
        if enabled and sys.stderr.isatty():
            self.bar = tqdm(
                total=self.total, initial=start, desc=f"[{name}]", file=sys.stderr, mininterval=0.25,
                dynamic_ncols=True,
            )  # fmt: skip

    def close(self) -> None:
        """End a live bar's line (an interrupted loop); log lines need nothing."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def update(self, done: int, info: str = "") -> None:
        if not self.enabled:
            return
        final = done >= self.total
        if self.bar is not None:
            if info:
                self.bar.set_postfix_str(info, refresh=False)
            self.bar.update(done - self.bar.n)
            if final:
                self.bar.close()
            return
        if not final and done % self.every != 0:
            return
        elapsed = time.perf_counter() - self.t0
        rate = (done - self.start) / elapsed if elapsed > 0 else None
        line = tqdm.format_meter(
            done, self.total, elapsed, prefix=f"[{self.name}]", ascii=True, rate=rate, postfix=info or None,
            initial=self.start,
        )  # fmt: skip
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
