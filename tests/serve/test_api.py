"""The /v1 API end to end, with the real app and the tiny run, on a real SQLite file and on PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from serve_helpers import Served, files, png, serve, wait_job

from drc.serve.config import WorkerConfig


def _user_with_history(sv: Served, h: dict, k: int = 3) -> tuple[str, list[str], str]:
    c = sv.client
    r = c.post("/v1/users", json={"name": "alice"}, headers=h)
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    r = c.post(f"/v1/users/{uid}/history", files=files(*[png(10 + i) for i in range(k)]), headers=h)
    assert r.status_code == 201, r.text
    hist = [x["id"] for x in r.json()]
    r = c.post("/v1/images", files={"file": ("ref.png", png(99), "image/png")}, headers=h)
    assert r.status_code == 201, r.text
    return uid, hist, r.json()["id"]


def test_generate_job_with_weights_and_influence(served: Served) -> None:
    h = served.tenant()
    c = served.client
    uid, hist, ref = _user_with_history(served, h)
    # history listing keeps the upload order
    listed = c.get(f"/v1/users/{uid}/history", headers=h).json()
    assert [x["id"] for x in listed] == hist and [x["position"] for x in listed] == [0, 1, 2]
    assert c.get(f"/v1/users/{uid}", headers=h).json()["history_count"] == 3

    r = c.post(
        "/v1/generate", json={"user_id": uid, "reference": ref, "n": 2, "seed": 5, "explain": True}, headers=h
    )
    assert r.status_code == 202, r.text
    assert r.json()["status"] in ("queued", "running", "done")
    job = wait_job(c, h, r.json()["id"])
    assert job["status"] == "done", job
    assert job["run"] == "tiny" and job["prompt"] == "a sticker"
    assert [e["image_id"] for e in job["history"]] == hist
    weights = [e["weight"] for e in job["history"]]
    assert len(weights) == 3 and abs(sum(weights) - 1) < 1e-2 and all(w > 0 for w in weights)
    for e in job["history"]:  # leave-one-out influence: both distances, never negative
        assert set(e["influence"]) == {"pixel", "draft"}
        assert e["influence"]["pixel"] >= 0 and 0 <= e["influence"]["draft"] <= 1
    assert len(job["images"]) == 2
    # explained: 2 images + 3 left-out variants of 2 images each
    assert job["batch_images"] == 2 * (1 + 3)
    outs = []
    for im in job["images"]:
        r = c.get(im["url"], headers=h)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        arr = np.asarray(Image.open(io.BytesIO(r.content)))
        assert arr.shape == (64, 64, 3)
        outs.append(r.content)
    # the same request again: the same images (each image has its own seeded stream)
    r = c.post("/v1/generate", json={"user_id": uid, "reference": ref, "n": 2, "seed": 5}, headers=h)
    again = wait_job(c, h, r.json()["id"])
    assert again["status"] == "done" and again["explain"] is False
    assert all(e["influence"] is None for e in again["history"])
    # (equal up to a rare token flipped by the rounding of a differently sized batched matmul)
    for im, first in zip(again["images"], outs):
        a = np.asarray(Image.open(io.BytesIO(c.get(im["url"], headers=h).content)))
        b = np.asarray(Image.open(io.BytesIO(first)))
        assert (a == b).all(-1).mean() > 0.9
    # ?wait=S on the request itself: the reply comes when the job is done (200, not 202)
    r = c.post(
        "/v1/generate", json={"user_id": uid, "reference": ref, "n": 1}, params={"wait": 30}, headers=h
    )
    assert r.status_code == 200 and r.json()["status"] == "done" and len(r.json()["images"]) == 1
    # jobs are listed newest first
    listed_jobs = c.get("/v1/jobs", params={"user_id": uid}, headers=h).json()
    assert [j["id"] for j in listed_jobs] == [r.json()["id"], again["id"], job["id"]]


def test_explicit_history_and_delete(served: Served) -> None:
    h = served.tenant()
    c = served.client
    ids = [
        c.post("/v1/images", files={"file": (f"{i}.png", png(i), "image/png")}, headers=h).json()["id"]
        for i in range(4)
    ]
    r = c.post("/v1/generate", json={"history": ids[:3], "reference": ids[3], "n": 1}, headers=h)
    assert r.status_code == 202, r.text
    job = wait_job(c, h, r.json()["id"])
    assert job["status"] == "done" and job["user_id"] is None and len(job["images"]) == 1

    uid, hist, _ref = _user_with_history(served, h)
    before = served.state()
    assert c.delete(f"/v1/users/{uid}/history/{hist[1]}", headers=h).status_code == 204
    assert [x["id"] for x in c.get(f"/v1/users/{uid}/history", headers=h).json()] == [hist[0], hist[2]]
    assert c.get(f"/v1/images/{hist[1]}", headers=h).status_code == 404
    after = served.state()
    assert after["rows"]["images"] == before["rows"]["images"] - 1
    assert len(after["files"]) == len(before["files"]) - 1  # its file went with it (no one else used it)
    # a user's job, then delete the user: history, jobs, outputs and their files all go
    r = c.post("/v1/generate", json={"user_id": uid, "reference": _ref, "n": 2}, headers=h)
    done = wait_job(c, h, r.json()["id"])
    assert done["status"] == "done"
    assert c.delete(f"/v1/users/{uid}", headers=h).status_code == 204
    assert c.get(f"/v1/users/{uid}", headers=h).status_code == 404
    assert c.get(f"/v1/jobs/{done['id']}", headers=h).status_code == 404
    for im in done["images"]:
        assert c.get(im["url"], headers=h).status_code == 404
    final = served.state()
    assert final["rows"]["history_items"] == 0 and final["rows"]["end_users"] == 0
    # what is left: the 4 tenant-level uploads, the explicit job's output, and the reference (a
    # tenant-level upload, not tied to the user); every file left is referenced by a row
    assert final["rows"]["images"] == 4 + 1 + 1
    assert len(final["files"]) <= final["rows"]["images"]


def test_concurrent_requests_share_one_sampling_batch(tmp_path: Path, tiny_model, db_url) -> None:  # noqa: ANN001
    # a long gather window makes the batching deterministic: the requests below come well within it
    gather = WorkerConfig(gather_ms=1500, max_gather_ms=10_000, poll_s=0.2)
    with serve(tmp_path / "data", tiny_model, db_url, worker=gather) as sv:
        h = sv.tenant()
        uid, _, ref = _user_with_history(sv, h)
        ids = [
            sv.client.post(
                "/v1/generate", json={"user_id": uid, "reference": ref, "n": n, "seed": n}, headers=h
            ).json()["id"]
            for n in (1, 2, 3)
        ]
        jobs = [wait_job(sv.client, h, i) for i in ids]
        assert [j["status"] for j in jobs] == ["done"] * 3
        assert [j["batch_images"] for j in jobs] == [6, 6, 6]  # one batch of 1 + 2 + 3 rows
        assert len({j["started_at"] for j in jobs}) == 1
    with serve(tmp_path / "data2", tiny_model, db_url, worker=WorkerConfig(batching=False, poll_s=0.2)) as sv:
        h = sv.tenant()
        uid, _, ref = _user_with_history(sv, h)
        ids = [
            sv.client.post("/v1/generate", json={"user_id": uid, "reference": ref, "n": n}, headers=h).json()[
                "id"
            ]
            for n in (1, 2, 3)
        ]
        assert [wait_job(sv.client, h, i)["batch_images"] for i in ids] == [1, 2, 3]


def test_run_list_docs_and_pages(served: Served) -> None:
    h = served.tenant()
    c = served.client
    info = c.get("/v1/runs", headers=h).json()
    assert info["runs"][0]["name"] == "tiny" and info["runs"][0]["history_len"] == 5
    assert info["limits"]["max_n"] == 16
    assert c.get("/v1/health").json()["ok"] is True
    spec = c.get("/openapi.json").json()
    for path in ("/v1/generate", "/v1/jobs/{job_id}", "/v1/users/{user_id}/history", "/v1/images/{image_id}"):
        assert path in spec["paths"]
    assert c.get("/docs").status_code == 200
    page = c.get("/")
    assert page.status_code == 200 and "drc studio" in page.text
    assert c.get("/static/studio.js").status_code == 200
    assert "run report" in c.get("/report").text
    r = c.get("/v1/runs/tiny/report", headers=h)
    assert r.status_code == 404 and "no report.html" in r.json()["detail"]
    assert c.get("/v1/runs/nope/report", headers=h).status_code == 404
