"""`drc data check DIR [--history-len K] [--no-images]`: validate a dataset folder.

Valid: prints one summary line, exit 0. Invalid: raises DataError with every problem, which the
top-level CLI prints to stderr (one `file:line: problem` per line) before exiting with code 2.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from drc.data.manifest import load_dataset
from drc.errors import DrcError


class _Exit(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse that never calls sys.exit: bad flags raise DrcError (exit 2 like any user error),
    `--help` returns 0, so `drc.cli.main([...])` can be called from Python and tests."""

    def error(self, message: str) -> NoReturn:
        raise DrcError(f"{message} (usage: {self.format_usage().strip().removeprefix('usage: ')})")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            print(message, end="")
        raise _Exit(status)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="drc data check", description="Validate a dataset folder and print a summary.")
    p.add_argument("dir", help="dataset folder with items.jsonl and users.jsonl")
    p.add_argument(
        "--history-len",
        "-k",
        type=int,
        default=5,
        metavar="K",
        help="history length k; a user needs k+1 items for one sample (default 5)",
    )
    p.add_argument("--no-images", action="store_true", help="skip opening and decoding every image")
    return p


def cli(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except _Exit as e:
        return e.status
    ds = load_dataset(args.dir, history_len=args.history_len, check_images=not args.no_images)
    print(ds.summary(args.history_len))
    return 0
