"""`drc data check DIR`, `drc data stickers --out DIR`, `drc data posters --out DIR`,
`drc data emoji --out DIR`."""

from __future__ import annotations

import importlib

from drc.errors import DrcError

SUBCOMMANDS = {
    "check": ("drc.data.check", "validate a dataset folder and print a summary"),
    "stickers": ("drc.data.benchmarks.stickers", "build the OpenMoji sticker benchmark"),
    "posters": ("drc.data.benchmarks.posters", "build the movie-poster benchmark"),
    "emoji": ("drc.data.benchmarks.emoji", "build the vendor-emoji benchmark (real artwork, npm)"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: drc data {check,stickers,posters,emoji} ...")
        for name, (_, help_) in SUBCOMMANDS.items():
            print(f"  {name:<9} {help_}")
        return 0 if argv else 2
    if argv[0] not in SUBCOMMANDS:
        raise DrcError(f"unknown data command {argv[0]!r}; valid: {', '.join(SUBCOMMANDS)}")
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    return int(module.cli(argv[1:]) or 0)
