"""Restarts lose nothing: a job left running is queued again and served, queued jobs are served, every
user, history and image file stays; an older database file is upgraded in place; a real SIGKILL mid-job."""

from __future__ import annotations

import io
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from PIL import Image
from serve_helpers import ServerProcess, create_tenant_cli, files, png, serve, wait_job
from sqlalchemy import MetaData, Table, insert, select

from drc.serve import db
from drc.serve.tables import QUEUED, RUNNING, Job, Tenant


def _seed(sv, h) -> dict:  # noqa: ANN001
    c = sv.client
    uid = c.post("/v1/users", json={"name": "alice"}, headers=h).json()["id"]
    hist = [
        x["id"]
        for x in c.post(f"/v1/users/{uid}/history", files=files(png(1), png(2), png(3)), headers=h).json()
    ]
    ref = c.post("/v1/images", files={"file": ("r.png", png(9), "image/png")}, headers=h).json()["id"]
    job = wait_job(
        c, h, c.post("/v1/generate", json={"user_id": uid, "reference": ref, "n": 2}, headers=h).json()["id"]
    )
    assert job["status"] == "done"
    ids = [*hist, ref, *(im["id"] for im in job["images"])]
    return {
        "uid": uid,
        "hist": hist,
        "ref": ref,
        "job": job["id"],
        "bytes": {i: c.get(f"/v1/images/{i}", headers=h).content for i in ids},
    }


def test_restart_requeues_running_jobs_and_keeps_everything(tmp_path: Path, tiny_model, db_url) -> None:  # noqa: ANN001
    data = tmp_path / "data"
    with serve(data, tiny_model, db_url) as sv:
        h = sv.tenant()
        seeded = _seed(sv, h)
        state = sv.state()
        with sv.service.sessions() as s:
            tenant_id = s.scalar(select(Tenant.id))
        base = dict(
            tenant_id=tenant_id,
            user_id=seeded["uid"],
            run="tiny",
            n=1,
            seed=0,
            prompt="a sticker",
            reference_id=seeded["ref"],
            history_ids=seeded["hist"],
        )
    # what a service killed mid-job leaves behind: one job running, one queued (written with the
    # service stopped, so no worker touched them)
    engine = db.make_engine(sv.config.database_url)
    with db.session_factory(engine).begin() as s:
        running, queued = Job(status=RUNNING, **base), Job(status=QUEUED, **base)
        s.add_all([running, queued])
    engine.dispose()

    with serve(data, tiny_model, db_url) as sv2:
        c = sv2.client
        r = wait_job(c, h, running.id)  # cut off by the stop: served again, once
        assert r["status"] == "done" and len(r["images"]) == 1 and r["retries"] == 1
        q = wait_job(c, h, queued.id)
        assert q["status"] == "done" and len(q["images"]) == 1  # a queued job is served after the restart
        assert q["retries"] == 0
        assert c.get(f"/v1/jobs/{seeded['job']}", headers=h).json()["status"] == "done"
        assert [u["id"] for u in c.get("/v1/users", headers=h).json()] == [seeded["uid"]]
        assert [x["id"] for x in c.get(f"/v1/users/{seeded['uid']}/history", headers=h).json()] == seeded[
            "hist"
        ]
        for i, content in seeded["bytes"].items():
            assert c.get(f"/v1/images/{i}", headers=h).content == content
        after = sv2.state()
        assert after["rows"]["images"] == state["rows"]["images"] + 2  # + the two jobs' outputs
        assert set(state["files"]) <= set(after["files"])


def test_upgrade_of_an_older_database_keeps_rows(tmp_path: Path, tiny_model, db_url) -> None:  # noqa: ANN001
    """A database written by revision 0001 (before jobs recorded their batch) is upgraded on start-up."""
    from drc.serve.auth import hash_key
    from drc.serve.config import ServeConfig
    from drc.serve.storage import BlobStore

    cfg = ServeConfig(data_dir=tmp_path / "data", db_url=db_url)
    cfg.data_dir.mkdir(parents=True)
    engine = db.make_engine(cfg.database_url)
    db.upgrade(engine, "0001")
    assert db.current_revision(engine) == "0001"
    store = BlobStore(cfg.blob_dir)
    shas = [store.put(png(i)) for i in range(3)]
    key = "drc_old-key-0001"
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        # the tables as revision 0001 made them (no batch_images / sample_ms columns yet)
        meta = MetaData()
        t = {
            n: Table(n, meta, autoload_with=conn)
            for n in ("tenants", "end_users", "images", "history_items", "jobs")
        }
        assert "batch_images" not in t["jobs"].c
        conn.execute(
            insert(t["tenants"]),
            [{"id": "ten_old", "name": "old", "key_hash": hash_key(key), "created_at": now}],
        )
        conn.execute(
            insert(t["end_users"]),
            [{"id": "usr_old", "tenant_id": "ten_old", "name": "bob", "created_at": now}],
        )
        conn.execute(
            insert(t["images"]),
            [
                {
                    "id": f"img_old{i}",
                    "tenant_id": "ten_old",
                    "user_id": "usr_old",
                    "kind": "upload",
                    "sha256": sha,
                    "width": 64,
                    "height": 64,
                    "size_bytes": 1,
                    "created_at": now,
                }
                for i, sha in enumerate(shas)
            ],
        )
        conn.execute(
            insert(t["history_items"]),
            [
                {"user_id": "usr_old", "image_id": f"img_old{i}", "position": i, "created_at": now}
                for i in (0, 1)
            ],
        )
        conn.execute(
            insert(t["jobs"]),
            [
                {
                    "id": "job_old",
                    "tenant_id": "ten_old",
                    "user_id": "usr_old",
                    "run": "tiny",
                    "status": "done",
                    "n": 1,
                    "seed": 0,
                    "explain": False,
                    "reference_id": "img_old2",
                    "history_ids": ["img_old0", "img_old1"],
                    "weights": [0.4, 0.6],
                    "output_ids": ["img_old2"],
                    "created_at": now,
                }
            ],
        )
    engine.dispose()

    with serve(cfg.data_dir, tiny_model, db_url) as sv:
        head = ScriptDirectory.from_config(db.alembic_config(sv.service.engine)).get_current_head()
        assert db.current_revision(sv.service.engine) == head
        h = {"Authorization": f"Bearer {key}"}
        c = sv.client
        assert c.get("/v1/users/usr_old", headers=h).json()["history_count"] == 2
        assert [x["id"] for x in c.get("/v1/users/usr_old/history", headers=h).json()] == [
            "img_old0",
            "img_old1",
        ]
        job = c.get("/v1/jobs/job_old", headers=h).json()
        assert job["status"] == "done" and job["batch_images"] is None
        assert [e["weight"] for e in job["history"]] == [0.4, 0.6]
        assert c.get("/v1/images/img_old2", headers=h).content == png(2)
        # and the upgraded database takes new jobs
        new = c.post("/v1/generate", json={"user_id": "usr_old", "reference": "img_old2", "n": 1}, headers=h)
        assert wait_job(c, h, new.json()["id"])["batch_images"] == 1


def test_models_match_the_newest_migration(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from drc.serve.tables import Base

    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    db.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_sigkill_mid_job_then_restart(tmp_path: Path, served_run: Path) -> None:
    """The real thing: `drc serve` killed with SIGKILL while a job samples; the restarted service
    queues the job again and finishes it (each of its images once), and keeps every file."""
    data = tmp_path / "data"
    key = create_tenant_cli(data)
    h = {"Authorization": f"Bearer {key}"}
    server = ServerProcess(served_run, data)
    try:
        with httpx.Client(base_url=server.url, headers=h, timeout=30) as c:
            uid = c.post("/v1/users", json={"name": "k"}).json()["id"]
            hist = c.post(f"/v1/users/{uid}/history", files=files(*[png(i) for i in range(5)])).json()
            ref = c.post("/v1/images", files={"file": ("r.png", png(9), "image/png")}).json()["id"]
            # explained, 16 images: 16 x 6 sampling rows, long enough to be caught running
            job = c.post(
                "/v1/generate", json={"user_id": uid, "reference": ref, "n": 16, "explain": True}
            ).json()
            deadline = time.monotonic() + 60
            status = job["status"]
            while status == "queued" and time.monotonic() < deadline:
                status = c.get(f"/v1/jobs/{job['id']}").json()["status"]
            if status != "running":
                pytest.fail(f"the job was {status!r} before it could be killed running")
    finally:
        server.kill()
    files_before = {p.name for p in (data / "blobs").rglob("*.png")}

    server = ServerProcess(served_run, data)
    try:
        with httpx.Client(base_url=server.url, headers=h, timeout=30) as c:
            r = c.get(f"/v1/jobs/{job['id']}", params={"wait": 0}).json()
            deadline = time.monotonic() + 300
            while r["status"] in ("queued", "running") and time.monotonic() < deadline:
                r = c.get(f"/v1/jobs/{job['id']}", params={"wait": 20}).json()
            assert r["status"] == "done" and r["retries"] == 1, r
            assert len(r["images"]) == 16 and len({im["id"] for im in r["images"]}) == 16
            assert [x["id"] for x in c.get(f"/v1/users/{uid}/history").json()] == [x["id"] for x in hist]
            for x in hist:
                im = Image.open(io.BytesIO(c.get(x["url"]).content))
                assert im.size == (64, 64)
    finally:
        server.stop()
    assert files_before <= {p.name for p in (data / "blobs").rglob("*.png")}
