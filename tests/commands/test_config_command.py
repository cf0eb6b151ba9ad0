"""`drc config`: the resolved run config, printed so that it reads back to the same config."""

from __future__ import annotations

import yaml

from drc.cli import main
from drc.config import RunConfig, build_config, config_hash, from_dict


def test_the_printed_config_reads_back_to_the_one_train_would_run(capsys, tmp_path) -> None:
    argv = ["config", "entangled", "--preset", "tiny", "stage2.train.steps=7", "sample.renderer=draft"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    expected = build_config(
        "entangled", "tiny", overrides={"stage2.train.steps": 7, "sample.renderer": "draft"}
    )
    assert config_hash(from_dict(RunConfig, yaml.safe_load(out))) == config_hash(expected)
    # each setting with a fixed set of choices shows them
    assert 'renderer: "draft"  # generator | draft' in out
    assert 'history_sampling: "random"  # window | random' in out
    # and the file goes back in through --config unchanged
    path = tmp_path / "c.yaml"
    path.write_text(out)
    assert config_hash(build_config("entangled", "tiny", config_file=path)) == config_hash(expected)


def test_a_bad_override_is_one_line(capsys) -> None:
    assert main(["config", "stage2.history_sampling=rnd"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "drc config: error: unknown stage2.history_sampling 'rnd'; valid: window, random"
