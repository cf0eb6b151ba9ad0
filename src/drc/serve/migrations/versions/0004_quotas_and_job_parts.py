"""Per-tenant quotas (NULL: the service's default), and jobs served in parts: a job records how many
of its images are done, so that a big `explain` job is sampled a part per batch instead of alone.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

QUOTAS = ("max_queued_jobs", "max_images", "max_stored_bytes", "max_end_users")


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        for name in QUOTAS:
            batch.add_column(sa.Column(name, sa.BigInteger, nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("images_done", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("images_done")
    with op.batch_alter_table("tenants") as batch:
        for name in QUOTAS:
            batch.drop_column(name)
