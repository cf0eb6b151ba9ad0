"""No stuck jobs: a failure anywhere after a claim fails the job and wakes its waiters; at start-up
only the running jobs of workers that stopped beating are failed, not those of a live process."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from serve_helpers import Served, files, png, serve, wait_job
from sqlalchemy import select

from drc.serve.models import RUNNING, Job, Tenant, WorkerRow, utcnow
from drc.serve.worker import INTERNAL_MESSAGE, STOPPED_MESSAGE


def _inputs(sv: Served, h: dict) -> tuple[str, str]:
    c = sv.client
    uid = c.post("/v1/users", json={"name": "u"}, headers=h).json()["id"]
    assert c.post(f"/v1/users/{uid}/history", files=files(png(1), png(2)), headers=h).status_code == 201
    ref = c.post("/v1/images", files={"file": ("r.png", png(3), "image/png")}, headers=h).json()["id"]
    return uid, ref


def _broken(*_args, **_kw):  # noqa: ANN002, ANN003, ANN202
    raise RuntimeError("secret: the database is db-7.internal")


@pytest.mark.parametrize("where", ["_images", "sampler", "_finish_done"])
def test_any_failure_after_claim_fails_the_job_and_wakes_waiters(
    served: Served, monkeypatch, where: str
) -> None:  # noqa: ANN001
    h = served.tenant()
    uid, ref = _inputs(served, h)
    worker = served.service.worker
    woken: list[str] = []
    on_done = worker.on_done
    monkeypatch.setattr(worker, "on_done", lambda ids: (woken.extend(ids), on_done(ids)))
    target = served.service.samplers["tiny"] if where == "sampler" else worker
    with monkeypatch.context() as m:
        m.setattr(target, "run" if where == "sampler" else where, _broken)
        r = served.client.post("/v1/generate", json={"user_id": uid, "reference": ref, "n": 1}, headers=h)
        job = wait_job(served.client, h, r.json()["id"])
    assert job["status"] == "failed" and job["error"] == INTERNAL_MESSAGE  # and not the exception's text
    assert job["id"] in woken  # the long-polls waiting for it were woken
    # the worker goes on
    r = served.client.post("/v1/generate", json={"user_id": uid, "reference": ref, "n": 1}, headers=h)
    assert wait_job(served.client, h, r.json()["id"])["status"] == "done"


def test_start_up_fails_only_jobs_of_workers_that_stopped_beating(tmp_path: Path, tiny_model, db_url) -> None:  # noqa: ANN001
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
                )
                for name, wid in (
                    ("live", first.service.worker.id),
                    ("remote", "wrk_remote"),
                    ("stale", "wrk_stale"),
                    ("killed", "wrk_killed"),
                    ("unknown worker", "wrk_gone"),
                    ("no worker", None),
                )
            }
            s.add_all(jobs.values())
        # a second service starts on the same database while the first one runs
        with serve(tmp_path / "data2", tiny_model, db_url or f"sqlite:///{data / 'drc.sqlite3'}") as second:
            got = {name: second.client.get(f"/v1/jobs/{j.id}", headers=h).json() for name, j in jobs.items()}
            assert got["live"]["status"] == "running" and got["remote"]["status"] == "running"
            for name in ("stale", "killed", "unknown worker", "no worker"):
                assert got[name]["status"] == "failed" and got[name]["error"] == STOPPED_MESSAGE, name
            with second.service.sessions() as s:
                assert set(s.scalars(select(WorkerRow.id))) == {
                    first.service.worker.id,
                    second.service.worker.id,
                    "wrk_remote",
                }
