"""The service's tables. Ids are random strings with a kind prefix (`usr_`, `img_`, `job_`), so they
cannot be guessed or enumerated; every row that a tenant can see carries its `tenant_id`, and every
query for one filters on it (another tenant's id answers 404, as if it did not exist).

The schema is created and changed only by the Alembic revisions in `migrations/versions`; these
classes must match the newest revision (a test compares them).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# job status values, in the order a job goes through them
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
# an end user's verdict on an output
KEEP, DISCARD = "keep", "discard"
VERDICTS = (KEEP, DISCARD)


def new_id(prefix: str) -> str:
    """A random id: 96 bits, URL-safe."""
    return f"{prefix}_{secrets.token_hex(12)}"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def utc(dt: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    """A customer of the service (an app, a team). Its API key is stored only as a SHA-256 hash."""

    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ten"))
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # revision 0004: quotas (None: the service's default, config.Quotas)
    max_queued_jobs: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_images: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_stored_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_end_users: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class EndUser(Base):
    """A tenant's end user: the person whose history says what style to draw in."""

    __tablename__ = "end_users"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("usr"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StoredImage(Base):
    """One image a tenant uploaded or a job produced. The pixels are a content-addressed file
    (`sha256`, see storage.py); two rows may share one file, which is removed with its last row."""

    __tablename__ = "images"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("img"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # the end user it belongs to (deleted with them); None for a tenant-level upload
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("end_users.id", ondelete="SET NULL"), index=True, nullable=True
    )
    kind: Mapped[str] = mapped_column(String(16), default="upload")  # upload | output
    sha256: Mapped[str] = mapped_column(String(64), index=True, nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HistoryItem(Base):
    """An image in an end user's history; `position` orders it (oldest first, gaps allowed)."""

    __tablename__ = "history_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("end_users.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    """A generate request. queued -> running -> done | failed; a job found `running` whose worker
    stopped beating was cut off by a stop: it is queued again (`retries` + 1) for another worker, and
    failed once it was cut off more than `WorkerConfig.max_retries` times (see heartbeat.recover)."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("job"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("end_users.id", ondelete="CASCADE"), index=True, nullable=True
    )
    run: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(16), index=True, default=QUEUED)
    prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    n: Mapped[int] = mapped_column(Integer, nullable=False)
    seed: Mapped[int] = mapped_column(Integer, nullable=False)
    explain: Mapped[bool] = mapped_column(Boolean, default=False)
    reference_id: Mapped[str] = mapped_column(String(40), nullable=False)
    history_ids: Mapped[list[str]] = mapped_column(JSON, nullable=False)  # the images used, oldest first
    weights: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    influence: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    output_ids: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # revision 0002: how the job was served (rows of the sampling batch it shared, its wall time)
    batch_images: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sample_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    # revision 0003: the worker that claimed it (a running job whose worker stopped beating is taken back)
    worker_id: Mapped[str | None] = mapped_column(String(40), index=True, nullable=True)
    # revision 0004: images sampled so far (a job too big for one batch is served in parts, see
    # scheduling.py; between parts it is queued again)
    images_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # revision 0005: times the job was queued again because the worker serving it stopped
    retries: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")


class Feedback(Base):
    """An end user's verdict on one output of a job: keep or discard (revision 0005). One row per
    (job, output index): a new verdict replaces the old one. `kept_at` is when the output became kept
    (None while discarded), so a job's time to its first kept image is min(kept_at) - created_at.
    `image_id` is not a foreign key: the verdict outlives a deleted or purged output image."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("job_id", "image_index", name="uq_feedback_job_image"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    image_index: Mapped[int] = mapped_column(Integer, nullable=False)  # in the job's outputs, from 0
    image_id: Mapped[str] = mapped_column(String(40), nullable=False)
    verdict: Mapped[str] = mapped_column(String(8), nullable=False)  # keep | discard
    kept_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WorkerRow(Base):
    """A live queue worker (one per service process); it beats every `WorkerConfig.heartbeat_s`."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("wrk"))
    host: Mapped[str] = mapped_column(String(200), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
