"""Atomic writes: the one way drc writes a file that a reader or a resumed run may see.

`write(tmp)` fills a temporary file in the target's folder, which is then renamed over the target:
an interrupted run never leaves half a file behind, and a reader sees the old or the new file whole.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Path], Any], fsync: bool = False) -> None:
    """`write(tmp_path)` then rename over `path` (with fsync: the data is on disk before the rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes, fsync: bool = False) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data), fsync=fsync)
