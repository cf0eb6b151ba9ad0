"""`evaluate_run`: a case's generated image depends on the seed and the case, nothing else."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

import drc.api as api
from drc.eval.evaluate import evaluate_run
from drc.eval.probes import ProbeConfig

QUICK = ProbeConfig(channels=8, steps=5, batch_size=8, precision="fp32", warmup=1)


def _k5_images(result: dict) -> dict[tuple[str, str], torch.Tensor]:
    """The outputs at the full history length, by (user, target)."""
    return {
        (c.sample.user, c.sample.target): out
        for c, out in zip(result["cases"], result["outputs"])
        if c.k == 5
    }


def test_a_cases_image_does_not_depend_on_the_batch_or_the_other_cases(
    tiny_drc_run: Path, tiny_stickers: Path
) -> None:
    model = api.load(tiny_drc_run, device="cpu")
    run = dict(probe_cfg=QUICK, progress=False, max_loo_users=0)
    full = _k5_images(evaluate_run(model, tiny_stickers, history_lens=(1, 2, 5), **run))
    # another batch size, only the full history length, only the first samples
    small = dataclasses.replace(model.config.sample, batch_size=3)
    model.config = dataclasses.replace(model.config, sample=small)
    part = _k5_images(evaluate_run(model, tiny_stickers, history_lens=(5,), max_samples=4, **run))
    assert len(part) == 4 and set(part) <= set(full)
    # A batch of 3 is computed with other kernels than a batch of 32: a sampled token may flip where a
    # draw fell within rounding of a boundary (rare), so allow one case of four to differ. Under the
    # old per-batch streams every case drew from another stream and none matched.
    same = [torch.equal(image, full[key]) for key, image in part.items()]
    assert sum(same) >= 3, same
    # and the seed does reach the sampler: another seed draws other images
    other = _k5_images(evaluate_run(model, tiny_stickers, history_lens=(5,), max_samples=4, seed=1, **run))
    assert sum(not torch.equal(other[key], part[key]) for key in part) >= 2
