"""Per-tenant quotas (429 with Retry-After past one), tenants served in turn, and big explain jobs
served in parts so that no job holds the queue."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import numpy as np
from PIL import Image
from serve_helpers import Served, files, png, serve, wait_job

from drc.cli import main
from drc.serve import db
from drc.serve.config import Quotas, WorkerConfig
from drc.serve.scheduling import FairQueue
from drc.serve.tables import QUEUED, Job, Tenant, utcnow


def _inputs(sv: Served, h: dict, k: int = 2) -> tuple[str, str]:
    c = sv.client
    uid = c.post("/v1/users", json={"name": "u"}, headers=h).json()["id"]
    assert (
        c.post(f"/v1/users/{uid}/history", files=files(*[png(i) for i in range(k)]), headers=h).status_code
        == 201
    )
    ref = c.post("/v1/images", files={"file": ("r.png", png(9), "image/png")}, headers=h).json()["id"]
    return uid, ref


def test_a_flooding_tenant_gets_429_while_another_tenants_job_finishes(
    tmp_path: Path, tiny_model, db_url
) -> None:  # noqa: ANN001
    with serve(tmp_path / "data", tiny_model, db_url, quotas=Quotas(max_queued_jobs=3)) as sv:
        a, b = sv.tenant("flood"), sv.tenant("calm")
        ua, ra = _inputs(sv, a)
        ub, rb = _inputs(sv, b)
        codes, retry = [], set()
        for i in range(20):
            r = sv.client.post(
                "/v1/generate", json={"user_id": ua, "reference": ra, "n": 8, "seed": i}, headers=a
            )
            codes.append(r.status_code)
            if r.status_code == 429:
                retry.add(r.headers["retry-after"])
                assert "limit of 3 for this tenant" in r.json()["detail"]
        assert set(codes) <= {202, 429} and codes[:3] == [202] * 3 and 429 in codes
        assert retry and all(v.isdigit() and int(v) > 0 for v in retry)
        r = sv.client.post("/v1/generate", json={"user_id": ub, "reference": rb, "n": 1}, headers=b)
        assert r.status_code == 202
        assert wait_job(sv.client, b, r.json()["id"], timeout=30)["status"] == "done"


def test_image_byte_and_user_quotas_and_the_cli_override(tmp_path: Path, tiny_model) -> None:  # noqa: ANN001
    data = tmp_path / "data"
    with serve(data, tiny_model, quotas=Quotas(max_images=4, max_end_users=1, max_stored_bytes=10**9)) as sv:
        h = sv.tenant("acme")
        c = sv.client
        uid = c.post("/v1/users", json={"name": "one"}, headers=h).json()["id"]
        r = c.post("/v1/users", json={"name": "two"}, headers=h)
        assert (
            r.status_code == 429 and r.headers["retry-after"].isdigit() and "limit of 1" in r.json()["detail"]
        )
        assert (
            c.post(f"/v1/users/{uid}/history", files=files(png(1), png(2), png(3)), headers=h).status_code
            == 201
        )
        before = sv.state()
        r = c.post(f"/v1/users/{uid}/history", files=files(png(4), png(5)), headers=h)
        assert r.status_code == 429 and "limit of 4" in r.json()["detail"]
        assert sv.state() == before  # nothing stored, not even the file
        ref = c.post("/v1/images", files={"file": ("r.png", png(9), "image/png")}, headers=h).json()["id"]
        r = c.post("/v1/generate", json={"user_id": uid, "reference": ref, "n": 1}, headers=h)
        assert r.status_code == 429  # its output would be the fifth image
        # the tenant's own quotas, set through the CLI, apply to the running service at once
        args = ["--max-images", "100", "--max-end-users", "5", "--max-stored-bytes", "1000"]
        assert main(["serve", "tenant", "limits", "acme", *args, "--data-dir", str(data)]) == 0
        assert c.post("/v1/users", json={"name": "two"}, headers=h).status_code == 201
        r = c.post(f"/v1/users/{uid}/history", files=files(png(4)), headers=h)
        assert r.status_code == 429 and "limit of 1000" in r.json()["detail"]  # bytes now
        assert (
            main(
                [
                    "serve",
                    "tenant",
                    "limits",
                    "acme",
                    "--max-stored-bytes",
                    "default",
                    "--data-dir",
                    str(data),
                ]
            )
            == 0
        )
        assert c.post(f"/v1/users/{uid}/history", files=files(png(4)), headers=h).status_code == 201


def _queue(url: str) -> tuple:
    engine = db.make_engine(url)
    db.upgrade(engine)
    return engine, db.session_factory(engine)


def test_tenants_are_served_in_turn_and_big_jobs_in_parts(tmp_path: Path, db_url) -> None:  # noqa: ANN001
    engine, sessions = _queue(db_url or f"sqlite:///{tmp_path / 'q.sqlite3'}")
    t0 = utcnow() - timedelta(minutes=1)
    with sessions.begin() as s:
        s.add_all([Tenant(id=f"ten_{x}", name=x, key_hash=x * 64) for x in "abc"])
        s.flush()

        def job(i: int, tenant: str, n: int = 1, explain: bool = False, k: int = 1) -> Job:
            return Job(
                id=f"job_{i:02d}",
                tenant_id=f"ten_{tenant}",
                run="tiny",
                status=QUEUED,
                n=n,
                seed=0,
                explain=explain,
                reference_id="r",
                history_ids=["h"] * k,
                created_at=t0 + timedelta(seconds=i),
            )

        # a floods six jobs first; b and c queue one each later; c's is an explain job of 4 x (1 + 3) rows
        s.add_all([job(i, "a") for i in range(6)] + [job(10, "b"), job(11, "c", n=4, explain=True, k=3)])
    queue, one_by_one = FairQueue(), WorkerConfig(batching=False, max_batch_images=8)
    order = []
    while True:
        with sessions.begin() as s:
            claims = queue.claim(s, {"tiny"}, one_by_one, None)
            for c in claims:  # done, or back to the queue when a part short of the last
                c.job.images_done = c.first + c.count
                c.job.status = "done" if c.last else QUEUED
            order += [(c.job.id, c.first, c.count) for c in claims]
        if not claims:
            break
    # a, b, c in turn; c's job in parts of 2 images (8 rows); a's flood does not hold b and c back
    assert order == [
        ("job_00", 0, 1),
        ("job_10", 0, 1),
        ("job_11", 0, 2),
        ("job_01", 0, 1),
        ("job_11", 2, 2),
        ("job_02", 0, 1),
        ("job_03", 0, 1),
        ("job_04", 0, 1),
        ("job_05", 0, 1),
    ]
    # with batching, a batch takes the tenants' jobs round-robin: not a's six first
    with sessions.begin() as s:
        s.add_all([job(20 + i, "a") for i in range(6)] + [job(30, "b"), job(31, "c")])
    with sessions.begin() as s:
        claims = FairQueue().claim(s, {"tiny"}, WorkerConfig(max_batch_images=4), None)
        assert [c.job.id for c in claims] == ["job_20", "job_30", "job_31", "job_21"]
    engine.dispose()


def test_an_explain_job_served_in_parts_matches_one_served_whole(tmp_path: Path, tiny_model) -> None:  # noqa: ANN001
    got = {}
    for name, batch in (("parts", 8), ("whole", 32)):
        with serve(
            tmp_path / name, tiny_model, worker=WorkerConfig(max_batch_images=batch, poll_s=0.2)
        ) as sv:
            h = sv.tenant()
            uid, ref = _inputs(sv, h, k=3)
            body = {"user_id": uid, "reference": ref, "n": 4, "seed": 7, "explain": True}
            job = wait_job(sv.client, h, sv.client.post("/v1/generate", json=body, headers=h).json()["id"])
            assert job["status"] == "done" and len(job["images"]) == 4
            pixels = [
                np.asarray(Image.open(io.BytesIO(sv.client.get(im["url"], headers=h).content)))
                for im in job["images"]
            ]
            got[name] = (job, pixels)
    parts, whole = got["parts"], got["whole"]
    assert parts[0]["batch_images"] <= 8 and whole[0]["batch_images"] == 16
    # image i has its own random stream whichever part it falls in (up to a rare token flipped by
    # the rounding of a differently sized batch)
    for a, b in zip(parts[1], whole[1]):
        assert (a == b).all(-1).mean() > 0.9
    for ea, eb in zip(parts[0]["history"], whole[0]["history"]):
        assert abs(ea["weight"] - eb["weight"]) < 1e-3
        assert abs(ea["influence"]["draft"] - eb["influence"]["draft"]) < 1e-3
        assert abs(ea["influence"]["pixel"] - eb["influence"]["pixel"]) < 0.1 * eb["influence"]["pixel"] + 1
