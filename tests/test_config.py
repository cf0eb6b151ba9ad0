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


def test_a_run_saved_before_style_pool_existed_loads_with_the_value_it_was_trained_with(tmp_path):
    import yaml

    from drc.config import RunConfig, load_yaml, save_yaml, to_dict

    path = tmp_path / "config.yaml"
    save_yaml(RunConfig(), path)
    assert load_yaml(RunConfig, path).composer.style_pool == RunConfig().composer.style_pool == 4
    old = to_dict(RunConfig())
    del old["composer"]["style_pool"]
    path.write_text(yaml.safe_dump(old))
    assert load_yaml(RunConfig, path).composer.style_pool == 1
