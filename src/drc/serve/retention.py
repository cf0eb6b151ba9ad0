"""Retention: generated images older than `ServeConfig.retention_days` are deleted, rows and files.

Uploads (histories, references) stay: they are the tenant's own data, deleted through the API.
A job whose outputs were purged keeps its record (its image URLs answer 404). The worker runs the
purge at start-up and then every `WorkerConfig.purge_every_s`.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from drc.serve.storage import BlobStore
from drc.serve.tables import StoredImage, utcnow


def remove_unreferenced(s: Session, store: BlobStore, shas: set[str]) -> None:
    """Delete the files no image row points at any more (call after the rows' delete committed)."""
    for sha in shas:
        if s.scalar(select(StoredImage.id).where(StoredImage.sha256 == sha).limit(1)) is None:
            store.delete(sha)


def purge_outputs(sessions: sessionmaker[Session], store: BlobStore, days: float, batch: int = 500) -> int:
    """Delete output images created more than `days` ago; returns how many."""
    cutoff = utcnow() - timedelta(days=days)
    total = 0
    while True:  # in batches: one transaction never holds many thousand rows
        with sessions.begin() as s:
            rows = s.execute(
                select(StoredImage.id, StoredImage.sha256)
                .where(StoredImage.kind == "output", StoredImage.created_at < cutoff)
                .limit(batch)
            ).all()
            if not rows:
                return total
            s.execute(delete(StoredImage).where(StoredImage.id.in_([i for i, _ in rows])))
        with sessions() as s:
            remove_unreferenced(s, store, {sha for _, sha in rows})
        total += len(rows)
