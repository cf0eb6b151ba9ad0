"""Scale out on PostgreSQL: one `drc serve --role api` and two `--role worker` processes share one
database and one data folder. Every job is done once, none lost; the jobs a worker killed mid-job
held are queued again and done by the other worker, which goes on."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from serve_helpers import ServerProcess, files, png
from sqlalchemy import func, select

from drc.serve import db
from drc.serve.auth import create_tenant
from drc.serve.tables import Job, StoredImage, WorkerRow


def _tenant(url: str, name: str) -> dict[str, str]:
    engine = db.make_engine(url)
    db.upgrade(engine)
    with db.session_factory(engine)() as s:
        _, key = create_tenant(s, name)
    engine.dispose()
    return {"Authorization": f"Bearer {key}"}


def _inputs(c: httpx.Client, h: dict) -> tuple[str, str]:
    uid = c.post("/v1/users", json={"name": "u"}, headers=h).json()["id"]
    r = c.post(f"/v1/users/{uid}/history", files=files(*[png(i) for i in range(5)]), headers=h)
    assert r.status_code == 201, r.text
    ref = c.post("/v1/images", files={"file": ("r.png", png(9), "image/png")}, headers=h).json()["id"]
    return uid, ref


def test_api_and_two_workers_share_one_postgresql(tmp_path: Path, served_run: Path, pg_cluster) -> None:  # noqa: ANN001
    url = pg_cluster.new_database()
    data = tmp_path / "data"
    a, b = _tenant(url, "a"), _tenant(url, "b")
    common = ("--db", url, "--max-batch", "8")
    api = ServerProcess(served_run, data, "--role", "api", *common)
    workers = [ServerProcess(served_run, data, "--role", "worker", *common, http=False) for _ in range(2)]
    engine = db.make_engine(url)
    sessions = db.session_factory(engine)
    try:
        with httpx.Client(base_url=api.url, timeout=60) as c:
            ua, ra = _inputs(c, a)
            ub, rb = _inputs(c, b)
            submitted = []  # (job id, headers, n)
            # a big explain job (16 x 6 rows, served in parts) and a stream of small ones from both tenants
            big = c.post(
                "/v1/generate", json={"user_id": ua, "reference": ra, "n": 16, "explain": True}, headers=a
            )
            submitted.append((big.json()["id"], a, 16))
            for i in range(12):
                h, u, r = (a, ua, ra) if i % 2 else (b, ub, rb)
                job = c.post(
                    "/v1/generate", json={"user_id": u, "reference": r, "n": 2, "seed": i}, headers=h
                )
                assert job.status_code == 202, job.text
                submitted.append((job.json()["id"], h, 2))
            # kill the worker that holds a running job, mid-job
            victim, deadline = None, time.monotonic() + 60
            while victim is None and time.monotonic() < deadline:
                with sessions() as s:
                    held = s.execute(
                        select(WorkerRow.pid)
                        .join(Job, Job.worker_id == WorkerRow.id)
                        .where(Job.status == "running")
                    ).first()
                victim = next((w for w in workers if held is not None and w.proc.pid == held[0]), None)
            if victim is None:
                pytest.fail("no job was seen running")
            with sessions() as s:
                killed_id = s.scalar(select(WorkerRow.id).where(WorkerRow.pid == victim.proc.pid))
            victim.kill()
            survivor = next(w for w in workers if w is not victim)
            with sessions() as s:  # what it held when it died (or what the survivor already took back)
                held_ids = set(
                    s.scalars(
                        select(Job.id).where(
                            ((Job.status == "running") & (Job.worker_id == killed_id)) | (Job.retries > 0)
                        )
                    )
                )
            # every job ends done: the killed worker's jobs are queued again for the survivor
            final, deadline = {}, time.monotonic() + 180
            while len(final) < len(submitted) and time.monotonic() < deadline:
                for jid, h, n in submitted:
                    if jid not in final:
                        j = c.get(f"/v1/jobs/{jid}", params={"wait": 5}, headers=h).json()
                        if j["status"] in ("done", "failed"):
                            final[jid] = (j, n)
            assert len(final) == len(submitted), "jobs left unfinished"
            done = [(j, n) for j, n in final.values() if j["status"] == "done"]
            assert [j["error"] for j, _ in final.values() if j["status"] != "done"] == []
            retried = {j["id"] for j, _ in done if j["retries"] > 0}
            # the jobs the victim held when it was killed were retried, once (a job it claimed after
            # the read above may have been, too)
            assert held_ids, "the killed worker held no job"
            assert held_ids <= retried and all(j["retries"] <= 1 for j, _ in done)
            for j, n in done:  # done once: exactly its images, all distinct
                assert len(j["images"]) == n and len({im["id"] for im in j["images"]}) == n
        with sessions() as s:
            outputs = s.scalar(
                select(func.count()).select_from(StoredImage).where(StoredImage.kind == "output")
            )
            done_ids = [j["id"] for j, _ in done]
            by_worker = dict(
                s.execute(
                    select(Job.worker_id, func.count()).where(Job.id.in_(done_ids)).group_by(Job.worker_id)
                ).all()
            )
            retried_workers = set(s.scalars(select(Job.worker_id).where(Job.id.in_(retried))))
        # every job's images stored once: nothing the killed worker sampled is stored twice
        assert outputs == sum(n for _, n in done)
        with sessions() as s:
            survivor_id = s.scalar(select(WorkerRow.id).where(WorkerRow.pid == survivor.proc.pid))
        assert by_worker.get(survivor_id, 0) > 0 and survivor.proc.poll() is None  # it went on
        assert retried_workers == {survivor_id}  # and did the killed worker's jobs
    finally:
        engine.dispose()
        for p in (*workers, api):
            if p.proc.poll() is None:
                p.stop()


def test_processes_wake_each_other_through_listen_notify(tmp_path: Path, tiny_model, pg_cluster) -> None:  # noqa: ANN001
    """An API process learns of a job finished by a worker in another service, and the worker of a
    job queued by the API, through PostgreSQL notifications (not only by polling)."""
    from serve_helpers import serve, wait_job

    url = pg_cluster.new_database()
    data = tmp_path / "data"  # one data folder: the worker reads the API's uploads
    with serve(data, tiny_model, url, role="api") as api, serve(data, tiny_model, url, role="worker") as wrk:
        assert api.service.worker is None
        for sv in (api, wrk):
            assert sv.service.listener.listening.wait(10)
        woken: list[str] = []
        done = api.service._job_done
        api.service._job_done = lambda ids: (woken.extend(ids), done(ids))
        kicks: list[int] = []
        kick = wrk.service.worker.notify
        wrk.service.worker.notify = lambda: (kicks.append(1), kick())
        h = api.tenant()
        c = api.client
        uid = c.post("/v1/users", json={"name": "u"}, headers=h).json()["id"]
        assert c.post(f"/v1/users/{uid}/history", files=files(png(1), png(2)), headers=h).status_code == 201
        ref = c.post("/v1/images", files={"file": ("r.png", png(3), "image/png")}, headers=h).json()["id"]
        r = c.post("/v1/generate", json={"user_id": uid, "reference": ref, "n": 2}, headers=h)
        job = wait_job(c, h, r.json()["id"])
        assert job["status"] == "done" and len(job["images"]) == 2
        deadline = time.monotonic() + 10
        while job["id"] not in woken and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job["id"] in woken  # the API process's waiters were woken by the worker's NOTIFY
        assert kicks  # the worker process was woken by the API's NOTIFY
