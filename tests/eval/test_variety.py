"""Variety: image i of an evaluation request is image i of `drc generate`; identical outputs score 0;
`evaluate_run` reports sharpness_ratio, variety and real_variety."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

import drc.api as api
from drc.data.prepare import prepare
from drc.eval.evaluate import _cases, evaluate_run, sample_cases
from drc.eval.probes import ProbeConfig
from drc.eval.variety import output_variety, real_groups, sample_variants, variety_case_indices

QUICK = ProbeConfig(channels=8, steps=5, batch_size=8, precision="fp32", warmup=1)


def test_variants_follow_the_seeding_rule_and_copies_have_no_variety(
    tiny_drc_run: Path, tiny_stickers: Path
) -> None:
    model = api.load(tiny_drc_run, device="cpu")
    prep = prepare(tiny_stickers, model.config)
    cases = _cases(prep, "test", (5,), seed=0, max_samples=3)
    assert variety_case_indices(cases, 5, 2) == [0, 1]
    first, *_ = sample_cases(model, prep, cases, seed=0)
    v = sample_variants(model, prep, cases, seed=0, indices=[0, 1, 2])
    assert v.shape == (3, 3, *first.shape[1:]) and v.dtype == torch.uint8
    # image 0 of each request is the case's scored image (a batch of 9 rounds other than a batch of
    # 3, so one sampled token may flip: allow one case of three to differ)
    assert sum(torch.equal(v[i, 0], first[i]) for i in range(3)) >= 2
    # pixels as the features: the tiny tokenizer has so few codes that re-encoding maps these
    # different outputs to the same tokens
    feats = lambda x: x.flatten(1).float().numpy()  # noqa: E731
    # the run samples at temperature 0.7: images 1 and 2 are other images, at a distance > 0
    assert any(not torch.equal(v[i, j], v[i, 0]) for i in range(3) for j in (1, 2))
    feat_v, pix_v = output_variety(v[:, 0], v[:, 1:], feats)
    assert feat_v > 0 and pix_v > 0
    # the draft renderer decodes the draft's argmax: n copies, variety exactly 0
    model.config = dataclasses.replace(
        model.config, sample=dataclasses.replace(model.config.sample, renderer="draft")
    )
    d = sample_variants(model, prep, cases, seed=0, indices=[0, 1, 2])
    assert all(torch.equal(d[i, j], d[i, 0]) for i in range(3) for j in (1, 2))
    assert output_variety(d[:, 0], d[:, 1:], feats) == pytest.approx((0.0, 0.0), abs=1e-9)
    assert all(map(math.isnan, output_variety(d[:, 0], d[:, :0], feats)))  # n = 1: nothing to compare


def test_real_groups_hold_one_pair_each(tiny_stickers: Path) -> None:
    from drc.config import build_config

    prep = prepare(tiny_stickers, build_config("drc", "tiny"))
    groups = real_groups(prep, max_groups=5, per_group=3)
    assert 1 <= len(groups) <= 5
    for g in groups:
        assert 2 <= len(g) <= 3
        assert len({(prep.ds.items[i].style, prep.ds.items[i].semantics) for i in g}) == 1


def test_evaluate_run_reports_the_quality_metrics(
    tiny_drc_run: Path, tiny_stickers: Path, tmp_path: Path
) -> None:
    model = api.load(tiny_drc_run, device="cpu")
    res = evaluate_run(
        model, tiny_stickers, probe_cfg=QUICK, history_lens=(5,), max_samples=3, progress=False,
        max_loo_users=0, variety_n=3, variety_cases=2,
    )  # fmt: skip
    m = res["metrics"]
    assert 0 < m["sharpness_ratio"] < 10
    assert m["variety"] >= 0 and m["variety_n"] == 3 and m["variety_cases"] == 2
    assert m["real_variety"] >= 0
    assert m["variety_pixels"] >= 0 and m["real_variety_pixels"] > 0  # the benchmark jitters placement
    off = evaluate_run(
        model, tiny_stickers, probe_cfg=QUICK, history_lens=(5,), max_samples=3, progress=False,
        max_loo_users=0, variety_n=1, probe_cache=tmp_path / "probes",
    )  # fmt: skip
    assert math.isnan(off["metrics"]["variety"]) and off["metrics"]["variety_cases"] == 0
    # probes go where they are asked to (a shipped run's own folder may be read-only)
    assert any((tmp_path / "probes").iterdir())
