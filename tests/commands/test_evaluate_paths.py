"""`drc eval` names its summary by dataset, so a second dataset never replaces the first one's."""

from __future__ import annotations

from pathlib import Path

import pytest

from drc.commands.evaluate import build_parser, sample_overrides, summary_path
from drc.errors import DrcError


def test_own_data_keeps_the_plain_name(tmp_path: Path) -> None:
    data = tmp_path / "stickers"
    data.mkdir()
    assert summary_path("RUN", str(data), "test", str(data)) == Path("RUN/eval/test_metrics.json")
    # the same folder reached through another spelling is still the run's own data
    assert summary_path("RUN", str(data / ".." / "stickers"), "valid", str(data)).name == "valid_metrics.json"


def test_other_data_gets_its_own_file(tmp_path: Path) -> None:
    own, other = tmp_path / "unlab", tmp_path / "stickers"
    a = summary_path("RUN", str(own), "test", str(own))
    b = summary_path("RUN", str(other), "test", str(own))
    assert a != b and b == Path("RUN/eval/test_metrics_stickers.json")
    assert summary_path("RUN", str(other), "test", None).name == "test_metrics_stickers.json"


def test_out_option_is_parsed() -> None:
    args = build_parser().parse_args(["--run", "r", "--data", "d", "--out", "x.json"])
    assert args.out == "x.json"


def test_set_takes_only_sampling_settings() -> None:
    args = build_parser().parse_args(["--run", "r", "--data", "d", "--set", "sample.draft_temperature=0.7"])
    assert sample_overrides(args.set) == {"sample.draft_temperature": "0.7"}
    assert args.variety_n == 4 and args.variety_cases == 16
    with pytest.raises(DrcError, match="data.image_height"):
        sample_overrides(["data.image_height=32"])
    with pytest.raises(DrcError, match="key=value"):
        sample_overrides(["sample.temperature"])
