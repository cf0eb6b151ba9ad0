"""Tenants and their API keys.

A key is 256 random bits shown once, when the tenant is created (`drc serve tenant create NAME`);
the database keeps only its SHA-256. A plain hash suffices (no bcrypt or salt): a key is random, not
a password someone chose, so there is no dictionary to try against a stolen hash.
Every /v1 request carries `Authorization: Bearer KEY`; a missing or unknown key answers 401. The key
is looked up on every request (no cache), so `drc serve tenant revoke|rotate` takes effect at once
in every process sharing the database.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

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
