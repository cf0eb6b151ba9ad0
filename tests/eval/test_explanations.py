"""`evaluate_run`'s explanation metrics on the tiny benchmark (30% noisy users by default)."""

from __future__ import annotations

from pathlib import Path

import pytest

import drc.api as api
from drc.eval.evaluate import evaluate_run
from drc.eval.probes import ProbeConfig

QUICK = ProbeConfig(channels=8, steps=5, batch_size=8, precision="fp32", warmup=1)


@pytest.fixture(scope="module")
def result(tiny_drc_run: Path, tiny_stickers: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    model = api.load(tiny_drc_run, device="cpu")
    return evaluate_run(model, tiny_stickers, probe_cfg=QUICK, history_lens=(1, 5), progress=False)


def test_noisy_and_clean_users_are_scored_apart(result: dict) -> None:
    m = result["metrics"]
    full = [r for r in result["records"] if r.extra["k"] == 5]
    assert 0 < m["n_noisy"] < len(full)
    noisy = [
        r for r in full if r.extra["user"] in {e["user"] for e in result["explanations"]["loo_examples"]}
    ]
    assert len(noisy) == m["influence_agreement_n"] or m["influence_agreement"] is None
    style_ok = [r.pred_style == r.user_style for r in full]
    assert 0 <= m["noisy_style_acc"] <= 1 and min(style_ok) <= m["noisy_style_acc"] <= max(style_ok)
    assert m["intruder_weight_ratio"] is not None and m["intruder_weight_ratio"] > 0  # drc has weights
    for key in ("theme_gap", "intent_gap"):
        assert 0 <= m[key] <= 1


def test_leave_one_out_examples_mark_the_intruders_by_their_style(result: dict, tiny_stickers: Path) -> None:
    from drc.data.manifest import load_dataset

    ds = load_dataset(tiny_stickers, check_images=False)
    examples = result["explanations"]["loo_examples"]
    assert examples, "the tiny benchmark has noisy test users"
    for e in examples:
        assert len(e["weights"]) == len(e["influence"]) == len(e["influence_draft"]) == len(e["history"]) == 5
        assert e["intruder"] == [ds.items[i].style != e["user_style"] for i in e["history"]]
        assert any(e["intruder"]) and not all(e["intruder"])
        assert all(0 <= x <= 1 for x in e["influence"] + e["influence_draft"])


def test_no_leave_one_out_users_skips_only_the_influence(
    result: dict, tiny_drc_run: Path, tiny_stickers: Path
) -> None:
    model = api.load(tiny_drc_run, device="cpu")
    r = evaluate_run(
        model, tiny_stickers, probe_cfg=QUICK, history_lens=(5,), progress=False, max_loo_users=0
    )
    m = r["metrics"]
    assert m["influence_agreement"] is None and m["influence_agreement_n"] == 0
    assert r["explanations"]["loo_examples"] == []
    assert m["n_noisy"] == result["metrics"]["n_noisy"]
    assert m["intruder_weight_ratio"] == pytest.approx(result["metrics"]["intruder_weight_ratio"])
