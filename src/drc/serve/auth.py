"""Tenants and their API keys.

A key is 256 random bits shown once, when the tenant is created (`drc serve tenant create NAME`);
the database keeps only its SHA-256. A plain hash suffices (no bcrypt or salt): a key is random, not
a password someone chose, so there is no dictionary to try against a stolen hash.
Every /v1 request carries `Authorization: Bearer KEY`; a missing or unknown key answers 401.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from drc.serve.models import Tenant

KEY_PREFIX = "drc_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_tenant(session: Session, name: str) -> tuple[Tenant, str]:
    """Add a tenant; returns it and its API key (which is not stored and cannot be shown again)."""
    name = name.strip()
    if not name:
        raise ValueError("a tenant needs a non-empty name")
    key = new_key()
    tenant = Tenant(name=name, key_hash=hash_key(key))
    session.add(tenant)
    session.commit()
    return tenant, key


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


class KeyCache:
    """Known keys' hashes -> tenant, so that a request costs no key look-up in the database once its
    key was seen. Only keys found are cached (a tenant created while the service runs is found on its
    first request); tenants are never deleted through the service, so an entry never goes stale."""

    def __init__(self) -> None:
        self._known: dict[str, TenantRef] = {}
        self._lock = threading.Lock()

    def lookup(self, session: Session, key: str) -> TenantRef | None:
        h = hash_key(key)
        with self._lock:
            ref = self._known.get(h)
        if ref is not None:
            return ref
        t = tenant_for_key(session, key)
        if t is None:
            return None
        ref = TenantRef(t.id, t.name)
        with self._lock:
            self._known[h] = ref
        return ref
