"""User-facing errors.

Anything the user can fix (bad data, a missing run, a wrong flag) is raised as `DrcError`. The CLI
prints it as one line and exits with code 2, never with a traceback. Programming errors stay
ordinary exceptions so that they do show a traceback.
"""

from __future__ import annotations


class DrcError(Exception):
    """An error caused by the user's input; printed as one line, exit code 2."""

    exit_code = 2


class DataError(DrcError):
    """A dataset (or an image in it) is invalid. `problems` holds `file:line: problem` strings."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class TrainingFailed(DrcError):
    """A run trained to the end (or diverged) without a usable model; run.json says "failed"."""

    exit_code = 3


class CheckpointError(DrcError):
    """A checkpoint is corrupt, half-written, or belongs to another config."""
