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
    del old["stage2"]["weight_supervision"]
    del old["composer"]["sem_window"]
    del old["composer"]["fusion_window"]
    del old["composer"]["draft_head"]
    del old["sample"]["draft_guide"]
    del old["stage2"]["content_weight"]
    path.write_text(yaml.safe_dump(old))
    loaded = load_yaml(RunConfig, path)
    assert loaded.composer.style_pool == 1
    # the weights of a run saved before the supervision existed were trained without it
    assert loaded.stage2.weight_supervision == 0.0 < RunConfig().stage2.weight_supervision
    # ... and a composer saved before the window existed read the whole reference
    assert loaded.composer.sem_window == 0
    # ... and one saved before the fusion's own window let the windows add up, with a linear head
    assert loaded.composer.fusion_window == -1 and loaded.composer.draft_head == "linear"
    # ... and sampled from the generator alone, as its reported results were measured
    assert loaded.sample.draft_guide == 0.0 < RunConfig().sample.draft_guide
    # ... and its composer was trained on the plain mean of the cells
    assert loaded.stage2.content_weight == 0.0 < RunConfig().stage2.content_weight


def test_the_old_instruction_key_fails_naming_data_prompt_but_a_saved_run_config_still_loads(tmp_path):
    import pytest
    import yaml

    from drc.config import RunConfig, load_yaml, to_dict
    from drc.errors import DrcError

    with pytest.raises(DrcError, match="renamed: use 'data.prompt'"):
        build_config("drc", overrides={"data.instruction": "a sticker"})
    path = tmp_path / "config.yaml"
    path.write_text("data:\n  instruction: a sticker\n")
    with pytest.raises(DrcError, match="renamed: use 'data.prompt'"):
        build_config("drc", config_file=path)
    old = to_dict(RunConfig())
    old["data"]["instruction"] = old["data"].pop("prompt") or "a sticker"
    path.write_text(yaml.safe_dump(old))
    assert load_yaml(RunConfig, path).data.prompt == "a sticker"


def _literal_settings(cls, prefix=""):
    """(dotted key, choices, value) of every `Literal` setting below dataclass `cls` (its defaults)."""
    import dataclasses
    import typing

    obj = cls() if isinstance(cls, type) else cls
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        key, value, tp = f"{prefix}{f.name}", getattr(obj, f.name), hints[f.name]
        if dataclasses.is_dataclass(value):
            yield from _literal_settings(value, key + ".")
        elif typing.get_origin(tp) is typing.Literal:
            yield key, typing.get_args(tp), value


def test_every_choice_setting_defaults_to_one_of_its_choices_and_rejects_others():
    import re

    import pytest

    from drc.config import RunConfig
    from drc.errors import DrcError

    settings = list(_literal_settings(RunConfig))
    keys = {k for k, _, _ in settings}
    # the settings that name one of a fixed set are all typed as such
    assert {
        "method", "preset", "device", "precision", "generator.backend", "stage1.trainable",
        "stage2.trainable", "stage2.history_sampling", "sample.renderer", "janus.dtype",
    } <= keys  # fmt: skip
    for key, options, default in settings:
        assert default in options, key
        for option in options:  # every choice is accepted as a dotted override
            assert build_config("drc", overrides={key: option}) is not None
        with pytest.raises(DrcError, match=re.escape(f"unknown {key} 'bogus'; valid: {', '.join(options)}")):
            build_config("drc", overrides={key: "bogus"})


def test_a_bad_choice_in_a_config_file_fails_when_the_config_is_built(tmp_path):
    import pytest

    from drc.errors import DrcError

    path = tmp_path / "c.yaml"
    path.write_text("sample:\n  renderer: drafts\n")
    with pytest.raises(DrcError, match="unknown sample.renderer 'drafts'; valid: generator, draft"):
        build_config("drc", config_file=path)
    # a saved config.yaml reused as a config file sets `method`: one the table lacks fails too
    path.write_text("method: drc_v2\n")
    with pytest.raises(DrcError, match="unknown method 'drc_v2'; valid: drc, entangled,"):
        build_config("drc", config_file=path)


def test_choices_reads_a_settings_annotation():
    import pytest

    from drc.config import SampleConfig, Stage2Config, choices

    assert choices(Stage2Config, "history_sampling") == ("window", "random")
    assert choices(SampleConfig, "renderer") == ("generator", "draft")
    assert choices(Stage2Config, "trainable") == ("composer", "composer+generator")
    with pytest.raises(TypeError, match="not a Literal"):
        choices(Stage2Config, "mask_ratio")


def test_a_choice_is_checked_on_replace_and_in_python():
    """Every Literal setting is checked when a config is made, also by `dataclasses.replace`."""
    import dataclasses

    import pytest

    from drc.backend_options import JanusOptions
    from drc.config import RunConfig, SampleConfig, Stage2Config
    from drc.errors import DrcError
    from drc.models.generator_config import GeneratorConfig

    cfg = RunConfig()
    with pytest.raises(DrcError, match=r"unknown Stage2Config.history_sampling 'bogus'; valid: window, rand"):
        dataclasses.replace(cfg.stage2, history_sampling="bogus")
    with pytest.raises(DrcError, match=r"unknown SampleConfig.renderer 'bogus'; valid: generator, draft"):
        SampleConfig(renderer="bogus")  # type: ignore[arg-type]
    with pytest.raises(DrcError, match=r"unknown GeneratorConfig.backend 'bogus'; valid: builtin, janus"):
        dataclasses.replace(cfg.generator, backend="bogus")
    with pytest.raises(DrcError, match=r"unknown RunConfig.method 'bogus'; valid: drc, "):
        dataclasses.replace(cfg, method="bogus")
    with pytest.raises(DrcError, match=r"unknown JanusOptions.dtype 'bogus'"):
        JanusOptions(dtype="bogus")  # type: ignore[arg-type]
    # the valid choices still go through
    assert dataclasses.replace(cfg.stage2, history_sampling="window").history_sampling == "window"
    assert isinstance(dataclasses.replace(cfg, generator=GeneratorConfig(backend="janus")), RunConfig)
    assert Stage2Config().trainable == "composer"
