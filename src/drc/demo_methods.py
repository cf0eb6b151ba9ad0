"""The demo's method phase: train and evaluate each method on the shared base, one or several at once.

One method's work (`train_and_evaluate`): train its run on `OUT/base`, then evaluate it and cache
the result in `OUT/eval/<method>.pt` (a rerun loads the cache). Nothing is shared between methods
but files that are finished before the phase starts (the base, the probes, the image cache) and
DRC's Stage 1, which the ablations that share its settings copy once it is finished (else they
train their own, identical one).

Several at once (`jobs > 1`, CPU only): a composer is small (about a million parameters), so a
training step is many small operations and a second thread buys little; two processes of one thread
each do almost twice the work of one process of two. Measured on the 2-core AMX machine (posters,
DRC Stage 2 step, batch 16): 0.169 s/step with 2 threads; 0.196 s with 1 thread alone, 0.176 s with
1 thread while a second such process ran beside it. Every method still gets the same steps; only
the wall time changes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from drc.atomic import atomic_write


@dataclass(frozen=True)
class MethodJob:
    """Everything one method's work needs, as plain values (it crosses a process boundary)."""

    method: str
    data: str
    out: str
    preset: str
    overrides: dict[str, Any]
    seed: int
    device: str
    threads: int | None = None  # torch threads in a worker process; None: leave as set


def jobs_for(requested: int | None, n_methods: int, device: torch.device, threads: int) -> int:
    """How many methods run at once: `requested`, else one per thread on a CPU, one on a GPU."""
    if requested is not None:
        return max(1, min(requested, n_methods))
    if device.type != "cpu":
        return 1
    return max(1, min(threads, n_methods))


def train_and_evaluate(job: MethodJob, prep: Any = None, probes: Any = None, progress: bool = False) -> dict:
    """Train `job.method` on the base, evaluate it (or load its cached evaluation).

    Returns {"timings": {"train/<m>": s, "train/<m>/<stage>": s, "eval/<m>": s}}. `prep` and
    `probes` are loaded from `job.out` when not given (a worker process loads its own).
    """
    from drc.api import DrcModel
    from drc.eval.evaluate import evaluate_run
    from drc.pipeline import train_run

    if job.threads is not None:
        # train_run and DrcModel.load set the threads again from the environment: pin it there
        os.environ["DRC_NUM_THREADS"] = str(job.threads)
        torch.set_num_threads(job.threads)
    out, m = Path(job.out), job.method
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    run = out / "runs" / m
    share = out / "runs" / "drc" if m != "drc" else None
    train_run(
        job.data, run, method=m, preset=job.preset, overrides=job.overrides, base=out / "base",
        progress=progress, share_stage1=share,
    )  # fmt: skip
    timings[f"train/{m}"] = round(time.perf_counter() - t0, 2)
    info = json.loads((run / "run.json").read_text())
    for k, v in info.get("timings_s", {}).items():
        if k not in ("tokenizer", "pretrain"):
            timings[f"train/{m}/{k}"] = v
    cache = out / "eval" / f"{m}.pt"
    t0 = time.perf_counter()
    if not cache.is_file():
        if prep is None:
            prep, probes = _shared_inputs(job)
        model = DrcModel.load(run, device=job.device)
        res = evaluate_run(model, prep, probes=probes, seed=job.seed, progress=progress)
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache, lambda tmp: torch.save(res, tmp))
    timings[f"eval/{m}"] = round(time.perf_counter() - t0, 2)
    return {"timings": timings}


# a worker process evaluates several methods: it loads the shared inputs once, not once per method
_SHARED: dict[str, tuple[Any, Any]] = {}


def _shared_inputs(job: MethodJob) -> tuple[Any, Any]:
    """(prepared dataset, probes or None) of the demo in `job.out`, loaded once per process. Every
    method of a demo has the same data settings, so the first job's config serves them all."""
    if job.out not in _SHARED:
        from drc.config import build_config
        from drc.data.prepare import prepare
        from drc.eval.probes import Probes

        out = Path(job.out)
        prep = prepare(
            job.data, build_config(job.method, job.preset, overrides=job.overrides), cache=out / "images.pt"
        )
        probes = (
            Probes.load(out / "probes", job.device) if (out / "probes" / "probe.json").is_file() else None
        )
        _SHARED[job.out] = (prep, probes)
    return _SHARED[job.out]


def _worker(job: MethodJob) -> dict:
    return train_and_evaluate(job)


def run_methods(
    jobs: Sequence[MethodJob],
    parallel: int,
    prep: Any,
    probes: Any,
    progress: bool,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Run every job (in order when `parallel` is 1; else `parallel` worker processes, started with
    `spawn` so that no thread pool is forked); returns the merged timings."""
    timings: dict[str, float] = {}
    if parallel <= 1:
        for job in jobs:
            timings.update(train_and_evaluate(job, prep, probes, progress)["timings"])
        return timings
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=parallel, mp_context=ctx) as pool:
        # submitted in order: drc first, so its Stage 1 is done before the ablations that copy it
        futures = {pool.submit(_worker, job): job.method for job in jobs}
        for f in as_completed(futures):
            t = f.result()["timings"]  # a worker's DrcError is raised here, as in a sequential run
            timings.update(t)
            m = futures[f]
            if progress:
                log(f"[demo] {m}: trained in {t[f'train/{m}']:.0f}s, evaluated in {t[f'eval/{m}']:.0f}s")
    return timings
