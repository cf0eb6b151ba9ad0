"""Alembic migrations of the service database (see drc.serve.db.upgrade)."""
