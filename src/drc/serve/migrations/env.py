"""Alembic environment: runs the revisions on the engine `drc.serve.db.upgrade` passes in."""

from __future__ import annotations

from alembic import context

from drc.serve.tables import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table when it must
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
