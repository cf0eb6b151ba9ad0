"""Fixtures of the service tests: the tiny run loaded once, apps on a real SQLite file or on a
throwaway PostgreSQL cluster, tenants with keys, and image bytes (good and bad)."""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

for _mod in ("fastapi", "sqlalchemy", "alembic", "httpx", "python_multipart"):
    pytest.importorskip(_mod, reason=f"the serve extra is not installed ({_mod}): pip install -e '.[serve]'")

from serve_helpers import Served, free_port, serve  # noqa: E402


# ---------------------------------------------------------------------- the run
@pytest.fixture(scope="session")
def served_run(request: pytest.FixtureRequest) -> Path:
    """The run the service tests serve: the session's tiny run, or DRC_SERVE_TEST_RUN where set (a
    finished run, such as the shipped src/drc/pretrained/stickers: it skips the training when
    iterating on these tests; docs/studio.png was taken with that shipped run)."""
    env = os.environ.get("DRC_SERVE_TEST_RUN")
    return Path(env) if env else request.getfixturevalue("tiny_drc_run")


@pytest.fixture(scope="session")
def tiny_model(served_run: Path):
    """The run loaded once; every app of the session serves this same object."""
    import drc.api as api

    return api.load(served_run, device="cpu")


# ---------------------------------------------------------------------- PostgreSQL
def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


@dataclass
class PgCluster:
    port: int
    user: str = "drc"
    created: list[str] = field(default_factory=list)

    def new_database(self) -> str:
        """A fresh empty database; returns its URL."""
        import psycopg

        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL server of its own in a temp folder, on a free loopback port; stopped at the end.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user (or
    `nobody`) and its commands run through runuser."""
    pytest.importorskip("psycopg", reason="psycopg (the serve extra's PostgreSQL driver) is not installed")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        import pwd

        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                owner = pwd.getpwnam(name)
                break
        if owner is None or not shutil.which("runuser"):
            pytest.skip("running as root without a postgres/nobody user or runuser to start PostgreSQL")
        prefix = ["runuser", "-u", owner.pw_name, "--"]
    root = Path(tempfile.mkdtemp(prefix="drc-pg-"))
    data = root / "data"
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    port = free_port()

    def pg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)

    r = pg(str(bindir / "initdb"), "-D", str(data), "-U", "drc", "--auth=trust", "-E", "UTF8", "--no-sync")
    if r.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed: {r.stderr.strip()[-500:]}")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    r = pg(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        opts,
        "-l",
        str(root / "log"),
        "-w",
        "-t",
        "60",
        "start",
    )
    if r.returncode != 0:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed: {r.stderr.strip()[-300:]} {log[-500:]}")
    try:
        yield PgCluster(port)
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """None (the default SQLite file in the data folder) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_cluster").new_database()


@pytest.fixture
def served(tmp_path: Path, tiny_model, db_url) -> Iterator[Served]:  # noqa: ANN001
    with serve(tmp_path / "data", tiny_model, db_url) as s:
        yield s
