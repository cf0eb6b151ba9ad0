"""Threads: how many intra-op threads PyTorch uses (every usable physical core, unless told)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from drc.errors import DrcError


def _physical_cores(cpus: set[int], sysfs: str = "/sys/devices/system/cpu") -> int | None:
    """Distinct physical cores among the logical CPUs `cpus` (None if the topology is unreadable)."""
    cores = set()
    try:
        for c in cpus:
            topo = Path(sysfs) / f"cpu{c}" / "topology"
            cores.add(
                ((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip())
            )
    except OSError:
        return None
    return len(cores) or None


def _cgroup_cpus(root: str = "/sys/fs/cgroup") -> int | None:
    """The CPU quota of this container in whole CPUs (rounded up), or None when unlimited/unknown."""
    try:
        quota, period = (Path(root) / "cpu.max").read_text().split()[:2]  # cgroup v2
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int((Path(root) / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((Path(root) / "cpu" / "cpu.cfs_period_us").read_text())
        return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """Physical cores this process may run on: its affinity mask, capped by a container's CPU quota.

    Physical, not logical: two hyperthreads of one core share its vector units, so a second matmul
    thread on the sibling adds spin-waiting, not FLOPs (PyTorch's own default counts cores too).
    """
    try:
        cpus = set(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = set(range(os.cpu_count() or 1))
    n = _physical_cores(cpus) or len(cpus)
    quota = _cgroup_cpus()
    return max(1, min(n, quota) if quota else n)


def choose_threads(env: Mapping[str, str] | None = None, cores: int | None = None) -> tuple[int | None, str]:
    """(intra-op threads for this process, why); None means: leave PyTorch's setting alone.

    DRC_NUM_THREADS, when set, wins. An OMP_NUM_THREADS the user set is respected (None). Otherwise
    every usable core, divided among the LOCAL_WORLD_SIZE processes torchrun started on this machine,
    so that they do not oversubscribe it. torchrun itself sets OMP_NUM_THREADS=1 when it starts
    several processes and the user set nothing; that "1" is therefore taken as unset (a user who
    wants one thread per process says DRC_NUM_THREADS=1).
    """
    env = os.environ if env is None else env
    if env.get("DRC_NUM_THREADS"):
        raw = env["DRC_NUM_THREADS"]
        if not raw.isdigit() or int(raw) < 1:
            raise DrcError(f"DRC_NUM_THREADS must be a positive integer, got {raw!r}")
        return int(raw), f"DRC_NUM_THREADS={raw}"
    procs = env.get("LOCAL_WORLD_SIZE", "1")
    procs_n = int(procs) if procs.isdigit() and int(procs) > 0 else 1
    omp = env.get("OMP_NUM_THREADS")
    if omp and not (omp == "1" and procs_n > 1):
        return None, f"OMP_NUM_THREADS={omp} set by the user"
    cores = usable_cores() if cores is None else cores
    n = max(1, cores // procs_n)
    if procs_n > 1:
        return n, f"{cores} usable cores / {procs_n} local processes"
    return n, f"{cores} usable cores"


def configure_threads(env: Mapping[str, str] | None = None, cores: int | None = None) -> dict[str, Any]:
    """Apply `choose_threads` to PyTorch; returns {"threads", "reason"} for the records."""
    n, reason = choose_threads(env, cores)
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return {"threads": torch.get_num_threads(), "reason": reason}
