"""Content-addressed image files: `ROOT/ab/cdef...png`, named by the SHA-256 of their bytes.

A file's path comes only from the hash of its content, never from anything a user typed (a file
name, an id), so no request can read or write outside ROOT. Identical images share one file; the
database rows that point at a file decide when it is removed (`delete` is called with the last one).
Writes go to a temporary file first and are renamed into place, so a crash never leaves a half file
under a valid name.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from drc.atomic import atomic_write_bytes

_SHA = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        if not _SHA.match(sha):  # a hash from our own database; anything else is a bug, not input
            raise ValueError(f"not a sha256 hex digest: {sha!r}")
        return self.root / sha[:2] / f"{sha[2:]}.png"

    def put(self, data: bytes) -> str:
        """Store `data` (PNG bytes); returns its SHA-256. Storing the same bytes twice is a no-op."""
        sha = hashlib.sha256(data).hexdigest()
        dest = self.path(sha)
        if dest.is_file():
            return sha
        atomic_write_bytes(dest, data, fsync=True)
        return sha

    def read(self, sha: str) -> bytes:
        return self.path(sha).read_bytes()

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def delete(self, sha: str) -> None:
        self.path(sha).unlink(missing_ok=True)

    def count(self) -> int:
        """Stored files (for tests and the status endpoint)."""
        return sum(1 for _ in self.root.glob("??/*.png"))
