"""`drc config [METHOD] [--preset P] [--config FILE] [key=value ...]`: print a resolved run config.

Prints the config that `drc train METHOD` with the same preset, file and overrides would run with
and save as `RUN/config.yaml`, every key with its value, and the choices of each setting that takes
one of a fixed set. Edit it and pass it back with `drc train --config FILE`.
"""

from __future__ import annotations

import argparse

from drc.config import METHODS, PRESETS, build_config, parse_overrides
from drc.config_io import annotated_yaml


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drc config", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("method", nargs="?", default="drc", help=f"one of: {', '.join(METHODS)}")
    p.add_argument("--preset", default="default", choices=PRESETS)
    p.add_argument("--config", default=None, help="YAML file with config overrides")
    p.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. stage2.train.steps=400")
    return p


def main(argv: list[str]) -> int:
    # as in `drc train`: key=value words go to the overrides even when METHOD is omitted
    words = [a for a in argv if "=" in a and not a.startswith("-")]
    args = build_parser().parse_args([a for a in argv if a not in words])
    cfg = build_config(args.method, args.preset, args.config, parse_overrides(words))
    print(f"# drc config {' '.join(argv)}")
    print("# the resolved run config; pass it back with `drc train --config FILE`")
    print(annotated_yaml(cfg))
    return 0
