"""Engine, sessions, and the schema upgrade the service runs on start-up.

SQLite (a file in the data folder) by default; a PostgreSQL URL works unchanged
(`postgresql://user@host/db` is read with the psycopg 3 driver that the `serve` extra installs).
The schema is Alembic's: `upgrade(engine)` brings any older database file to the newest revision in
place, so a service started on an old file keeps all its rows.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
UPGRADE_LOCK = 0x6472635F73657276  # PostgreSQL advisory lock id held while upgrading ("drc_serv")


def normalize_url(url: str) -> str:
    """Pick the installed PostgreSQL driver: SQLAlchemy's default for `postgresql://` is psycopg2,
    which the serve extra does not install (psycopg 3 has binary wheels everywhere)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        # the worker thread and the request threads share the engine; WAL lets readers go on while the
        # worker writes, and busy_timeout makes a writer wait for the lock instead of failing at once
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            # in WAL mode NORMAL cannot corrupt the file; a power cut (not a process kill) may lose the
            # last commits, and it saves an fsync per commit on the request path
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: rows read in a request stay readable after its commit (for the reply)
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine):  # noqa: ANN201 - alembic is imported lazily
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (the newest by default); a no-op when it is there already."""
    from alembic import command

    if engine.dialect.name != "postgresql":  # SQLite: its file lock serializes the upgrade anyway
        command.upgrade(alembic_config(engine), revision)
        return
    # several processes (api and workers) may start at once: one upgrades, the others wait for it
    with engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(:k)"), {"k": UPGRADE_LOCK})
        try:
            command.upgrade(alembic_config(engine), revision)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": UPGRADE_LOCK})


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
