"""Jobs record how they were served: the rows of the sampling batch they shared and its wall time
(the load check and the tests read them to see that requests were batched).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("batch_images", sa.Integer, nullable=True))
        batch.add_column(sa.Column("sample_ms", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("sample_ms")
        batch.drop_column("batch_images")
