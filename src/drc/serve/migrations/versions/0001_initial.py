"""The initial schema: tenants, end users, images, history items, jobs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# columns that several tables share (a migration is frozen: these are its own, not the models')
def _id() -> sa.Column:
    return sa.Column("id", sa.String(40), primary_key=True)


def _tenant_id() -> sa.Column:
    tenants = sa.ForeignKey("tenants.id", ondelete="CASCADE")
    return sa.Column("tenant_id", sa.String(40), tenants, nullable=False)


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "tenants",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        _created_at(),
    )
    op.create_index("ix_tenants_key_hash", "tenants", ["key_hash"], unique=True)
    op.create_table(
        "end_users",
        _id(),
        _tenant_id(),
        sa.Column("name", sa.String(200), nullable=False),
        _created_at(),
    )
    op.create_index("ix_end_users_tenant_id", "end_users", ["tenant_id"])
    op.create_table(
        "images",
        _id(),
        _tenant_id(),
        sa.Column(
            "user_id", sa.String(40), sa.ForeignKey("end_users.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        _created_at(),
    )
    op.create_index("ix_images_tenant_id", "images", ["tenant_id"])
    op.create_index("ix_images_user_id", "images", ["user_id"])
    op.create_index("ix_images_sha256", "images", ["sha256"])
    op.create_table(
        "history_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id", sa.String(40), sa.ForeignKey("end_users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("image_id", sa.String(40), sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        _created_at(),
    )
    op.create_index("ix_history_items_user_id", "history_items", ["user_id"])
    op.create_index("ix_history_items_image_id", "history_items", ["image_id"])
    op.create_table(
        "jobs",
        _id(),
        _tenant_id(),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("end_users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("run", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("prompt", sa.Text, nullable=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("explain", sa.Boolean, nullable=False),
        sa.Column("reference_id", sa.String(40), nullable=False),
        sa.Column("history_ids", sa.JSON, nullable=False),
        sa.Column("weights", sa.JSON, nullable=True),
        sa.Column("influence", sa.JSON, nullable=True),
        sa.Column("output_ids", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        _created_at(),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_jobs_tenant_id", "jobs", ["tenant_id"])
    op.create_index("ix_jobs_user_id", "jobs", ["user_id"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])


def downgrade() -> None:
    for table in ("jobs", "history_items", "images", "end_users", "tenants"):
        op.drop_table(table)
