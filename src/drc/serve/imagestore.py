"""Uploads in, image files out: checking a request's uploads, storing them within the tenant's quotas,
and removing files no row points at any more. Shared by the user, image and retention code."""

from fastapi import UploadFile
from sqlalchemy.orm import Session

from drc.serve import quotas, uploads
from drc.serve.auth import TenantRef
from drc.serve.errors import bad, printable
from drc.serve.retention import remove_unreferenced
from drc.serve.service import Service
from drc.serve.tables import StoredImage
from drc.serve.uploads import CheckedImage


def read_uploads(svc: Service, files: list[UploadFile]) -> list[CheckedImage]:
    """Check every file before any is stored: one bad file refuses the whole request. The header
    checks and the request's pixel budget come first; the decodes run in the small decode pool."""
    limits = svc.config.limits
    if len(files) > limits.max_files_per_upload:
        raise bad(413, f"{len(files)} files in one upload, over the limit of {limits.max_files_per_upload}")
    blobs, labels, pixels = [], [], 0
    try:
        for i, f in enumerate(files):
            blobs.append(f.file.read(limits.max_upload_bytes + 1))  # a byte more tells "over the limit"
            labels.append(f"file {i + 1}" + (f" ({printable(f.filename[:80])})" if f.filename else ""))
            pixels += uploads.probe(blobs[-1], limits, labels[-1])
        if pixels > limits.max_request_pixels:
            raise bad(
                413,
                f"the images declare {pixels} pixels in all, over the limit of "
                f"{limits.max_request_pixels} per request",
            )
        return list(svc.decode_pool.map(uploads.decode, blobs, [limits] * len(blobs), labels))
    except uploads.UploadError as e:
        raise bad(e.status, str(e)) from e


def store_images(
    svc: Service, s: Session, t: TenantRef, checked: list[CheckedImage], user_id: str | None
) -> list[StoredImage]:
    """Store checked uploads (files, then rows; the caller commits), within the tenant's quotas."""
    q = quotas.effective(t, svc.config.quotas)
    quotas.check_images(s, t, q, len(checked), sum(len(c.png) for c in checked))
    rows = []
    for c in checked:
        sha = svc.store.put(c.png)
        rows.append(
            StoredImage(
                tenant_id=t.id,
                user_id=user_id,
                kind="upload",
                sha256=sha,
                width=c.width,
                height=c.height,
                size_bytes=len(c.png),
            )
        )
    s.add_all(rows)
    s.flush()
    return rows


def remove_files_unreferenced(svc: Service, s: Session, shas: set[str]) -> None:
    """Delete the files no image row points at any more (call after the rows' delete committed)."""
    remove_unreferenced(s, svc.store, shas)
