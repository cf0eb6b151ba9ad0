"""Tenants and their API keys.

A key is 256 random bits shown once, when the tenant is created (`drc serve tenant create NAME`);
the database keeps only its SHA-256. A plain hash suffices (no bcrypt or salt): a key is random, not
a password someone chose, so there is no dictionary to try against a stolen hash.
Every /v1 request carries `Authorization: Bearer KEY`; a missing or unknown key answers 401. The key
is looked up on every request (no cache), so `drc serve tenant revoke|rotate` takes effect at once
in every process sharing the database.

The routes' dependencies live here too: `Auth` (the request's tenant, which the Gate middleware
looked up), `DB` (a database session) and `Svc` (the service), the last two read from
`request.app.state.service`, so that the route modules are plain `APIRouter`s that any app built by
`create_app` includes.

(No `from __future__ import annotations`: FastAPI reads the `Annotated[..., Depends()]` aliases of
the routes and `tenant`'s parameters at run time.)
"""

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from drc.serve.service import Service
from drc.serve.tables import Tenant

KEY_PREFIX = "drc_"
MAX_TENANT_NAME = 100


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_tenant(session: Session, name: str) -> tuple[Tenant, str]:
    """Add a tenant; returns it and its API key (which is not stored and cannot be shown again)."""
    name = name.strip()
    if not name:
        raise ValueError("tenant name must not be empty")
    if len(name) > MAX_TENANT_NAME:
        raise ValueError(f"tenant name: {len(name)} characters, over the limit of {MAX_TENANT_NAME}")
    if not name.isprintable():
        raise ValueError("tenant name: must not contain control characters (NUL, newline, ...)")
    key = new_key()
    tenant = Tenant(name=name, key_hash=hash_key(key))
    session.add(tenant)
    session.commit()
    return tenant, key


REVOKED = "revoked-"  # a key_hash starting so matches no key (a key's hash is 64 hex digits)


def rotate_key(session: Session, tenant: Tenant) -> str:
    """Give the tenant a new key (returned, shown once); the old one stops working at once."""
    key = new_key()
    tenant.key_hash = hash_key(key)
    session.commit()
    return key


def revoke_key(session: Session, tenant: Tenant) -> None:
    """The tenant's key stops working at once (its rows stay; `rotate_key` gives it a new key)."""
    tenant.key_hash = REVOKED + secrets.token_hex(20)  # unique, as the column must be
    session.commit()


def is_revoked(tenant: Tenant) -> bool:
    return tenant.key_hash.startswith(REVOKED)


def tenant_for_key(session: Session, key: str) -> Tenant | None:
    if not key.startswith(KEY_PREFIX):
        return None
    return session.scalar(select(Tenant).where(Tenant.key_hash == hash_key(key)))


def bearer_key(header: str | None) -> str | None:
    """The key of an `Authorization: Bearer KEY` header, or None."""
    if not header:
        return None
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


@dataclass(frozen=True)
class TenantRef:
    """Who a request is from: what the routes need of the tenant, detached from any session."""

    id: str
    name: str
    # the tenant's own quotas (None: the service's default), read with the key on every request
    max_queued_jobs: int | None = None
    max_images: int | None = None
    max_stored_bytes: int | None = None
    max_end_users: int | None = None


def lookup(sessions: sessionmaker[Session], key: str) -> TenantRef | None:
    """The tenant of `key`, read from the database on every call: no cache, so that a revoked or
    rotated key stops working at once in every process sharing the database (one indexed read)."""
    with sessions() as s:
        t = tenant_for_key(s, key)
        if t is None:
            return None
        return TenantRef(t.id, t.name, t.max_queued_jobs, t.max_images, t.max_stored_bytes, t.max_end_users)


# ---------------------------------------------------------------------- the routes' dependencies
def service(request: Request) -> Service:
    """The Service of the app serving `request` (`create_app` puts it in `app.state`)."""
    return request.app.state.service


def session(request: Request) -> Iterator[Session]:
    """A database session for one request, closed after the reply."""
    with service(request).sessions() as s:
        yield s


# only puts the scheme into the OpenAPI docs: the Gate middleware checks the key
_bearer = HTTPBearer(auto_error=False, description="the tenant's API key (`drc serve tenant create NAME`)")


def tenant(
    request: Request, _creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> TenantRef:
    """The request's tenant: the Gate middleware checked the key before the body was read and left
    the tenant in the request's state."""
    t = getattr(request.state, "tenant", None)
    if t is None:
        raise HTTPException(401, "missing API key", {"WWW-Authenticate": "Bearer"})
    return t


Svc = Annotated[Service, Depends(service)]
DB = Annotated[Session, Depends(session)]
Auth = Annotated[TenantRef, Depends(tenant)]
