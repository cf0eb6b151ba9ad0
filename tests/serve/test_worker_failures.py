"""No stuck jobs: a failure anywhere after a claim fails the job and wakes its waiters; at start-up
only the running jobs of workers that stopped beating are taken back (queued again, failed once out of
retries), not those of a live process; a worker whose job was taken back stores nothing for it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from serve_helpers import Served, files, png, serve, wait_job
from sqlalchemy import select

from drc.serve.tables import RUNNING, Job, StoredImage, Tenant, WorkerRow, utcnow
from drc.serve.worker import INTERNAL_MESSAGE, stopped_message


def _inputs(sv: Served, h: dict) -> tuple[str, str]:
    c = sv.client
    uid = c.post("/v1/users", json={"name": "u"}, headers=h).json()["id"]
    assert c.post(f"/v1/users/{uid}/history", files=files(png(1), png(2)), headers=h).status_code == 201
    ref = c.post("/v1/images", files={"file": ("r.png", png(3), "image/png")}, headers=h).json()["id"]
    return uid, ref


def _broken(*_args, **_kw):  # noqa: ANN002, ANN003, ANN202
    raise RuntimeError("secret: the database is db-7.internal")


@pytest.mark.parametrize("where", ["_images", "batcher", "_finish_done"])
def test_any_failure_after_claim_fails_the_job_and_wakes_waiters(
    served: Served, monkeypatch, where: str
) -> None:  # noqa: ANN001
    h = served.tenant()
    uid, ref = _inputs(served, h)
    worker = served.service.worker
    woken: list[str] = []
    on_done = worker.on_done
    monkeypatch.setattr(worker, "on_done", lambda ids: (woken.extend(ids), on_done(ids)))
    target = served.service.batchers["tiny"] if where == "batcher" else worker
    with monkeypatch.context() as m:
        m.setattr(target, "run" if where == "batcher" else where, _broken)
        r = served.client.post("/v1/generate", json={"user_id": uid, "reference": ref, "n": 1}, headers=h)
        job = wait_job(served.client, h, r.json()["id"])
    assert job["status"] == "failed" and job["error"] == INTERNAL_MESSAGE  # and not the exception's text
    assert job["id"] in woken  # the long-polls waiting for it were woken
    # the worker goes on
    r = served.client.post("/v1/generate", json={"user_id": uid, "reference": ref, "n": 1}, headers=h)
    assert wait_job(served.client, h, r.json()["id"])["status"] == "done"


def test_start_up_takes_back_only_jobs_of_stopped_workers(tmp_path: Path, tiny_model, db_url) -> None:  # noqa: ANN001
    data = tmp_path / "data"
    with serve(data, tiny_model, db_url) as first:
        h = first.tenant()
        uid, ref = _inputs(first, h)
        exited = subprocess.Popen([sys.executable, "-c", "pass"])
        exited.wait()
        here, old = socket.gethostname(), utcnow() - timedelta(hours=1)
        with first.service.sessions.begin() as s:
            tenant_id = s.scalar(select(Tenant.id))
            s.add_all(
                [
                    WorkerRow(id="wrk_remote", host="other-host", pid=1),  # beating, on another machine
                    WorkerRow(id="wrk_stale", host="other-host", pid=1, heartbeat_at=old),
                    WorkerRow(id="wrk_killed", host=here, pid=exited.pid),  # fresh beat, process gone
                ]
            )
            jobs = {
                name: Job(
                    tenant_id=tenant_id,
                    user_id=uid,
                    run="tiny",
                    n=1,
                    seed=0,
                    reference_id=ref,
                    history_ids=[ref],
                    status=RUNNING,
                    worker_id=wid,
                    retries=retries,
                )
                for name, wid, retries in (
                    ("live", first.service.worker.id, 0),
                    ("remote", "wrk_remote", 0),
                    ("stale", "wrk_stale", 0),
                    ("killed", "wrk_killed", 0),
                    ("unknown worker", "wrk_gone", 0),
                    ("no worker", None, 0),
                    ("out of retries", "wrk_killed", 1),  # cut off before: max_retries is 1
                )
            }
            s.add_all(jobs.values())
        # a second service starts on the same database while the first one runs
        with serve(tmp_path / "data2", tiny_model, db_url or f"sqlite:///{data / 'drc.sqlite3'}") as second:
            got = {name: second.client.get(f"/v1/jobs/{j.id}", headers=h).json() for name, j in jobs.items()}
            assert got["live"]["status"] == "running" and got["remote"]["status"] == "running"
            # queued again, and served by a live worker (either service's), each image once
            for name in ("stale", "killed", "unknown worker", "no worker"):
                assert got[name]["retries"] == 1 and got[name]["status"] != "failed", name
                done = wait_job(second.client, h, jobs[name].id)
                assert done["status"] == "done" and len(done["images"]) == 1, name
            out = got["out of retries"]
            assert out["status"] == "failed" and out["error"] == stopped_message(2)
            with second.service.sessions() as s:
                assert set(s.scalars(select(WorkerRow.id))) == {
                    first.service.worker.id,
                    second.service.worker.id,
                    "wrk_remote",
                }


def test_a_job_taken_back_from_a_slow_worker_is_not_stored_twice(served: Served, monkeypatch) -> None:  # noqa: ANN001
    """A worker taken for dead (its heartbeat late) whose job was given to another worker finds, when
    its sampling ends, that the job is no longer its own: it stores no outputs and leaves the job."""
    h = served.tenant()
    uid, ref = _inputs(served, h)
    batcher = served.service.batchers["tiny"]
    run = batcher.run
    taken: list[str] = []

    def slow_run(items):  # noqa: ANN001, ANN202
        out = run(items)
        with served.service.sessions.begin() as s:  # meanwhile: taken back, claimed by another worker
            job = s.scalars(select(Job).where(Job.status == RUNNING)).one()
            job.worker_id = "wrk_other"
            taken.append(job.id)
        return out

    monkeypatch.setattr(batcher, "run", slow_run)
    served.client.post("/v1/generate", json={"user_id": uid, "reference": ref, "n": 2}, headers=h)
    deadline = time.monotonic() + 60
    while not taken and time.monotonic() < deadline:
        time.sleep(0.05)
    assert taken
    time.sleep(1.0)  # the worker's commit (had the guard failed) is well past
    job = served.client.get(f"/v1/jobs/{taken[0]}", headers=h).json()
    assert job["status"] == "running" and job["images"] == []
    with served.service.sessions() as s:
        assert s.scalar(select(StoredImage.id).where(StoredImage.kind == "output")) is None
        s.get(Job, taken[0]).status = "failed"  # let the app stop without this job running
        s.commit()
