"""Config resolution: the training budget every method gets."""

from __future__ import annotations

from drc.config import build_config, stage2_optim


def test_methods_without_stage1_get_its_steps_in_stage2():
    drc = build_config("drc")
    ent = build_config("entangled")
    assert drc.stage1.enabled and not ent.stage1.enabled
    assert stage2_optim(drc).steps == drc.stage2.train.steps
    assert stage2_optim(ent).steps == ent.stage2.train.steps + ent.stage1.train.steps
    off = build_config("entangled", overrides={"stage2.match_budget": False})
    assert stage2_optim(off).steps == off.stage2.train.steps
