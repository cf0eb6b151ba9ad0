"""The proof-of-concept KPIs: an end user keeps or discards each output (the last verdict wins), and
GET /v1/kpis gives per run the share kept, the median time to a job's first kept image and images
generated per kept image, computed here by hand on a scenario with a controlled clock; as CSV too.
Runs on SQLite and on a throwaway PostgreSQL cluster (the `served` fixture)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from serve_helpers import Served, files, png, wait_job
from sqlalchemy import select

from drc.serve import routes_kpis
from drc.serve.kpis import KpiRow
from drc.serve.tables import DONE, Feedback, Job, Tenant

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def _real_job(sv: Served, h: dict, n: int = 2) -> dict:
    c = sv.client
    uid = c.post("/v1/users", json={"name": "u"}, headers=h).json()["id"]
    assert c.post(f"/v1/users/{uid}/history", files=files(png(1), png(2)), headers=h).status_code == 201
    ref = c.post("/v1/images", files={"file": ("r.png", png(3), "image/png")}, headers=h).json()["id"]
    r = c.post("/v1/generate", json={"user_id": uid, "reference": ref, "n": n}, headers=h)
    job = wait_job(c, h, r.json()["id"])
    assert job["status"] == "done"
    return job


def test_feedback_last_verdict_wins_and_other_tenants_get_404(served: Served) -> None:
    c = served.client
    a, b = served.tenant("a"), served.tenant("b")
    job = _real_job(served, a)
    assert [im["verdict"] for im in job["images"]] == [None, None]
    url = f"/v1/jobs/{job['id']}/feedback"
    second = job["images"][1]["id"]

    r = c.post(url, json={"image": 0, "verdict": "keep"}, headers=a)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["image_index"] == 0 and first["image_id"] == job["images"][0]["id"]
    assert first["verdict"] == "keep" and first["kept_at"] is not None
    r = c.post(url, json={"image": second, "verdict": "discard"}, headers=a)  # by image id
    assert r.status_code == 200 and r.json()["image_index"] == 1 and r.json()["kept_at"] is None
    # changed: the last verdict wins, timestamped; the first verdict's time stays
    r = c.post(url, json={"image": 0, "verdict": "discard"}, headers=a)
    changed = r.json()
    assert changed["verdict"] == "discard" and changed["kept_at"] is None
    assert changed["created_at"] == first["created_at"] and changed["updated_at"] >= first["updated_at"]
    got = c.get(f"/v1/jobs/{job['id']}", headers=a).json()
    assert [im["verdict"] for im in got["images"]] == ["discard", "discard"]
    with served.service.sessions() as s:  # one row per output, not one per verdict
        assert len(s.scalars(select(Feedback).where(Feedback.job_id == job["id"])).all()) == 2

    # another tenant's job is not found, as a job that does not exist; nothing is recorded
    for h, path in ((b, url), (a, "/v1/jobs/job_000000000000000000000000/feedback")):
        r = c.post(path, json={"image": 0, "verdict": "keep"}, headers=h)
        assert r.status_code == 404 and "not found" in r.json()["detail"]
    assert c.post(url, json={"image": 0, "verdict": "keep"}).status_code == 401
    assert [im["verdict"] for im in c.get(f"/v1/jobs/{job['id']}", headers=a).json()["images"]] == [
        "discard",
        "discard",
    ]
    assert c.get("/v1/kpis", headers=b).json() == []  # b sees none of a's jobs or verdicts


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image": True, "verdict": "keep"}, "image"),  # strict: a bool is not index 1
        ({"image": 1.0, "verdict": "keep"}, "image"),
        ({"image": -1, "verdict": "keep"}, "image"),
        ({"image": 5, "verdict": "keep"}, "image"),  # past the job's two outputs
        ({"image": "img_not_an_output", "verdict": "keep"}, "image"),
        ({"image": "a b", "verdict": "keep"}, "image"),
        ({"image": 0, "verdict": "like"}, "verdict"),
        ({"image": 0, "verdict": "KEEP"}, "verdict"),
        ({"image": 0}, "verdict"),
        ({"image": 0, "verdict": "keep", "user": "x"}, "user"),
    ],
)
def test_bad_feedback_is_a_one_line_422(served: Served, body: dict, field: str) -> None:
    h = served.tenant()
    job = _real_job(served, h)
    r = served.client.post(f"/v1/jobs/{job['id']}/feedback", json=body, headers=h)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and field in detail
    with served.service.sessions() as s:
        assert s.scalars(select(Feedback)).all() == []


def test_malformed_feedback_json_is_400(served: Served) -> None:
    h = served.tenant()
    r = served.client.post(
        "/v1/jobs/job_x/feedback", content=b'{"image": 0,', headers={**h, "Content-Type": "application/json"}
    )
    assert r.status_code == 400 and "malformed JSON" in r.json()["detail"]


def _scenario_jobs(served: Served) -> dict[str, str]:
    """Finished jobs written straight to the database, created at known times."""
    with served.service.sessions.begin() as s:
        tenant_id = s.scalar(select(Tenant.id).where(Tenant.name == "shop"))
        jobs = {}
        made = (("j1", "r1", 4, 0), ("j2", "r1", 2, 100), ("j3", "r1", 3, 200), ("j4", "r2", 2, 0))
        for name, run, n, at in made:
            job = Job(
                tenant_id=tenant_id,
                run=run,
                status=DONE,
                n=n,
                seed=0,
                reference_id="img_ref",
                history_ids=["img_h"],
                output_ids=[f"img_{name}_{i}" for i in range(n)],
                images_done=n,
                created_at=T0 + timedelta(seconds=at),
            )
            s.add(job)
            s.flush()
            jobs[name] = job.id
    return jobs


def test_kpis_on_a_hand_made_scenario(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    c = served.client
    h = served.tenant("shop")
    other = served.tenant("other")
    jobs = _scenario_jobs(served)
    clock = {"now": T0}
    monkeypatch.setattr(routes_kpis, "utcnow", lambda: clock["now"])

    def verdict(at: float, job: str, image: int | str, v: str) -> None:
        clock["now"] = T0 + timedelta(seconds=at)
        r = c.post(f"/v1/jobs/{jobs[job]}/feedback", json={"image": image, "verdict": v}, headers=h)
        assert r.status_code == 200, r.text

    verdict(30, "j1", 0, "keep")
    verdict(40, "j1", 1, "discard")
    verdict(50, "j1", 0, "keep")  # kept again: still kept since 30
    verdict(130, "j2", "img_j2_1", "keep")
    verdict(160, "j2", 1, "discard")  # changed: j2 has no kept output any more
    verdict(190, "j2", 0, "keep")  # j2's first kept output now: 190 - 100 = 90 s
    verdict(200, "j2", 1, "keep")
    verdict(205, "j1", 3, "discard")
    verdict(210, "j3", 2, "keep")  # 210 - 200 = 10 s
    verdict(15, "j4", 0, "keep")  # run r2: 15 s

    # by hand, run r1: 3 jobs, 4 + 2 + 3 = 9 outputs; kept j1#0, j2#0, j2#1, j3#2 = 4; discarded j1#1,
    # j1#3 = 2; first keep after 30 (j1), 90 (j2), 10 (j3) s: median 30; 9 / 4 = 2.25 outputs per kept
    r1 = {
        "run": "r1",
        "tenant": "shop",
        "jobs": 3,
        "outputs": 9,
        "judged": 6,
        "kept": 4,
        "discarded": 2,
        "kept_share_of_judged": 0.6667,
        "kept_share_of_outputs": 0.4444,
        "jobs_with_keep": 3,
        "median_s_to_first_keep": 30.0,
        "outputs_per_kept": 2.25,
    }
    # run r2: 1 job, 2 outputs, 1 kept after 15 s
    r2 = {
        "run": "r2",
        "tenant": "shop",
        "jobs": 1,
        "outputs": 2,
        "judged": 1,
        "kept": 1,
        "discarded": 0,
        "kept_share_of_judged": 1.0,
        "kept_share_of_outputs": 0.5,
        "jobs_with_keep": 1,
        "median_s_to_first_keep": 15.0,
        "outputs_per_kept": 2.0,
    }
    got = c.get("/v1/kpis", headers=h)
    assert got.status_code == 200, got.text
    rows = got.json()
    assert [{k: row[k] for k in r1} for row in rows] == [r1, r2]
    assert {row["tenant_id"] for row in rows} == {rows[0]["tenant_id"]}
    only = c.get("/v1/kpis", params={"run": "r2"}, headers=h).json()
    assert [{k: row[k] for k in r2} for row in only] == [r2]
    assert c.get("/v1/kpis", params={"run": "nope"}, headers=h).json() == []
    assert c.get("/v1/kpis", headers=other).json() == []  # per tenant: the other tenant has none

    # a job with outputs but no verdict: shares and times are null, not 0
    _real_job(served, other, n=2)
    (fresh,) = c.get("/v1/kpis", headers=other).json()
    assert fresh["outputs"] == 2 and fresh["judged"] == 0 and fresh["kept_share_of_judged"] is None
    assert fresh["kept_share_of_outputs"] == 0.0 and fresh["median_s_to_first_keep"] is None
    assert fresh["outputs_per_kept"] is None

    # CSV: a header of the row's fields, then the same rows (null: an empty cell)
    for r in (c.get("/v1/kpis.csv", headers=h), c.get("/v1/kpis", params={"format": "csv"}, headers=h)):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(r.text)))
        assert table[0] == list(KpiRow.model_fields)
        assert len(table) == 3
        parsed = [dict(zip(table[0], line)) for line in table[1:]]
        assert [p["run"] for p in parsed] == ["r1", "r2"]
        assert int(parsed[0]["kept"]) == 4 and float(parsed[0]["median_s_to_first_keep"]) == 30.0
        assert float(parsed[0]["kept_share_of_judged"]) == 0.6667
        assert float(parsed[1]["outputs_per_kept"]) == 2.0
    empty = c.get("/v1/kpis.csv", params={"run": "nope"}, headers=h)
    assert empty.text.strip() == ",".join(KpiRow.model_fields)
    bad = c.get("/v1/kpis", params={"format": "xml"}, headers=h)
    assert bad.status_code == 422 and "format" in bad.json()["detail"]
    assert c.get("/v1/kpis", params={"run": "a\x00b"}, headers=h).status_code == 422
    assert c.get("/v1/kpis").status_code == 401
