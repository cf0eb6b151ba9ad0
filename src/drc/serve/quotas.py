"""Per-tenant quotas: queued jobs, images, stored bytes and end users, each the tenant's own (set with
`drc serve tenant limits`) or the service's default (config.Quotas). Past one, 429 with Retry-After.

The checks read counts and then the request writes, without a lock between: two requests racing at
the edge can pass a quota by one request's worth. A quota bounds what a tenant holds, not an exact
ledger, and the race costs no lock on every request.
"""

from __future__ import annotations

from dataclasses import fields, replace

from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from drc.serve.auth import TenantRef
from drc.serve.config import Quotas
from drc.serve.tables import QUEUED, RUNNING, EndUser, Job, StoredImage

RETRY_JOBS_S = 10  # a queued job is usually done within seconds
RETRY_STORAGE_S = 3600  # only a delete frees room


def effective(t: TenantRef, defaults: Quotas) -> Quotas:
    """The tenant's quotas: its own where set, else the default."""
    own = {f.name: getattr(t, f.name) for f in fields(Quotas) if getattr(t, f.name, None) is not None}
    return replace(defaults, **own)


def _refuse(message: str, retry_after: int) -> HTTPException:
    return HTTPException(429, message, {"Retry-After": str(retry_after)})


def check_jobs(s: Session, t: TenantRef, q: Quotas) -> None:
    waiting = s.scalar(
        select(func.count()).select_from(Job).where(Job.tenant_id == t.id, Job.status.in_((QUEUED, RUNNING)))
    )
    if int(waiting or 0) >= q.max_queued_jobs:
        raise _refuse(
            f"{waiting} jobs queued or running, the limit of {q.max_queued_jobs} for this tenant; "
            "retry when one has finished",
            RETRY_JOBS_S,
        )


def check_images(s: Session, t: TenantRef, q: Quotas, count: int, nbytes: int) -> None:
    """Room for `count` more images of `nbytes` bytes in all?"""
    have, size = s.execute(
        select(func.count(), func.coalesce(func.sum(StoredImage.size_bytes), 0)).where(
            StoredImage.tenant_id == t.id
        )
    ).one()
    if have + count > q.max_images:
        raise _refuse(
            f"the tenant holds {have} images; {count} more would pass its limit of {q.max_images}; "
            "delete some first",
            RETRY_STORAGE_S,
        )
    if size + nbytes > q.max_stored_bytes:
        raise _refuse(
            f"the tenant stores {size} bytes; {nbytes} more would pass its limit of "
            f"{q.max_stored_bytes}; delete some first",
            RETRY_STORAGE_S,
        )


def check_users(s: Session, t: TenantRef, q: Quotas) -> None:
    have = s.scalar(select(func.count()).select_from(EndUser).where(EndUser.tenant_id == t.id))
    if int(have or 0) >= q.max_end_users:
        raise _refuse(
            f"the tenant has {have} end users, its limit of {q.max_end_users}; delete some first",
            RETRY_STORAGE_S,
        )
