"""Reading a tenant's rows: an end user, an image, a job, a history; another tenant's id is not found."""

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from drc.serve.auth import TenantRef
from drc.serve.errors import not_found
from drc.serve.tables import EndUser, HistoryItem, Job, StoredImage

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def is_id(value: str) -> bool:
    """Could `value` be an id? Anything else (a NUL, 10 KB of text) is not looked up: it is not
    found, the same on SQLite and PostgreSQL (which rejects a NUL in a query with an error)."""
    return bool(_ID.match(value))


def get_user(s: Session, t: TenantRef, user_id: str) -> EndUser:
    u = s.get(EndUser, user_id) if is_id(user_id) else None
    if u is None or u.tenant_id != t.id:
        raise not_found("end user", user_id)
    return u


def get_image(s: Session, t: TenantRef, image_id: str) -> StoredImage:
    im = s.get(StoredImage, image_id) if is_id(image_id) else None
    if im is None or im.tenant_id != t.id:
        raise not_found("image", image_id)
    return im


def get_job(s: Session, t: TenantRef, job_id: str) -> Job:
    job = s.get(Job, job_id) if is_id(job_id) else None
    if job is None or job.tenant_id != t.id:
        raise not_found("job", job_id)
    return job


def user_history(s: Session, user_id: str) -> list[tuple[HistoryItem, StoredImage]]:
    q = (
        select(HistoryItem, StoredImage)
        .join(StoredImage, StoredImage.id == HistoryItem.image_id)
        .where(HistoryItem.user_id == user_id)
        .order_by(HistoryItem.position, HistoryItem.id)
    )
    return [(h, im) for h, im in s.execute(q).all()]
