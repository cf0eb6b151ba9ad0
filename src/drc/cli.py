"""The `drc` command line: a thin layer over `drc.api` and the subcommand modules.

Each subcommand is a `main(argv) -> int` found through `COMMANDS`; user errors (`DrcError`) become
one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

from drc.errors import DataError, DrcError

# subcommand -> "module:function"; imported lazily so `drc data check` does not import torch models
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("drc.commands.data", "data subcommands: check, stickers, posters"),
    "train": ("drc.commands.train", "train a run: all stages, or one (tokenizer, generator, a method)"),
    "generate": ("drc.commands.generate", "generate images for a user or a list of history images"),
    "eval": ("drc.commands.evaluate", "evaluate a trained run on a dataset's test users"),
    "config": ("drc.commands.config", "print a resolved run config: every key, its value, its choices"),
    "demo": ("drc.commands.demo", "the main job: benchmark, every method, report"),
    "bench": ("drc.commands.bench", "measure training and generation speed on this machine"),
    "serve": ("drc.commands.serve", "the generation service: API, studio page, tenants (extra: serve)"),
}


def _usage() -> str:
    lines = ["usage: drc <command> [options]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `drc <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from drc import __version__

        print(f"drc {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"drc: unknown command {name!r}; valid commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    fn: Callable[[list[str]], int] = module.main
    try:
        return int(fn(rest) or 0)
    except DataError as e:
        for p in e.problems:
            print(p, file=sys.stderr)
        print(f"drc {name}: error: {e}", file=sys.stderr)
        return e.exit_code
    except DrcError as e:
        print(f"drc {name}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"drc {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
