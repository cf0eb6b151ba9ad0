"""Tenants see only their own rows: another tenant's ids answer 404; a missing or wrong key 401."""

from __future__ import annotations

from serve_helpers import Served, files, png, wait_job


def test_missing_or_wrong_key_is_401(served: Served) -> None:
    c = served.client
    good = served.tenant()
    for headers in (
        {},
        {"Authorization": "Bearer drc_wrong"},
        {"Authorization": "Bearer " + good["Authorization"].split()[1] + "x"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic " + good["Authorization"].split()[1]},
        {"Authorization": good["Authorization"].split()[1]},  # the key without "Bearer"
    ):
        for method, path in (("GET", "/v1/users"), ("GET", "/v1/runs"), ("POST", "/v1/generate")):
            r = c.request(method, path, headers=headers, json={} if method == "POST" else None)
            assert r.status_code == 401, (headers, path, r.text)
            assert r.headers.get("www-authenticate") == "Bearer"
            assert "key" in r.json()["detail"]
    assert c.get("/v1/users", headers=good).status_code == 200


def test_other_tenants_ids_are_404(served: Served) -> None:
    c = served.client
    a, b = served.tenant("a"), served.tenant("b")
    uid = c.post("/v1/users", json={"name": "a-user"}, headers=a).json()["id"]
    hist = c.post(f"/v1/users/{uid}/history", files=files(png(1), png(2)), headers=a).json()
    ref = c.post("/v1/images", files={"file": ("r.png", png(3), "image/png")}, headers=a).json()["id"]
    job = wait_job(
        c, a, c.post("/v1/generate", json={"user_id": uid, "reference": ref, "n": 1}, headers=a).json()["id"]
    )
    assert job["status"] == "done"
    out = job["images"][0]["id"]
    b_user = c.post("/v1/users", json={"name": "b-user"}, headers=b).json()["id"]
    b_ref = c.post("/v1/images", files={"file": ("r.png", png(3), "image/png")}, headers=b).json()["id"]
    before = served.state()

    # B asks for A's things: every one answers 404, the same as an id that does not exist
    for method, path, kw in [
        ("GET", f"/v1/users/{uid}", {}),
        ("GET", f"/v1/users/{uid}/history", {}),
        ("POST", f"/v1/users/{uid}/history", {"files": files(png(4))}),
        ("DELETE", f"/v1/users/{uid}/history/{hist[0]['id']}", {}),
        ("DELETE", f"/v1/users/{uid}", {}),
        ("GET", f"/v1/images/{hist[0]['id']}", {}),
        ("GET", f"/v1/images/{out}", {}),
        ("GET", f"/v1/images/{ref}", {}),
        ("GET", f"/v1/jobs/{job['id']}", {}),
        ("GET", "/v1/jobs", {"params": {"user_id": uid}}),
        ("POST", "/v1/images", {"files": {"file": ("r.png", png(5), "image/png")}, "data": {"user_id": uid}}),
        ("POST", "/v1/generate", {"json": {"user_id": uid, "reference": b_ref}}),
        ("POST", "/v1/generate", {"json": {"user_id": b_user, "reference": ref}}),
        ("POST", "/v1/generate", {"json": {"history": [hist[0]["id"]], "reference": b_ref}}),
        ("DELETE", f"/v1/users/{b_user}/history/{hist[0]['id']}", {}),
    ]:
        r = c.request(method, path, headers=b, **kw)
        assert r.status_code == 404, (method, path, r.text)
        assert "not found" in r.json()["detail"]
        missing = path.replace(uid, "usr_000000000000000000000000")
        if missing != path and method == "GET":
            assert c.request(method, missing, headers=b).json()["detail"].endswith("not found")
    # B's lists hold only B's rows
    assert [u["id"] for u in c.get("/v1/users", headers=b).json()] == [b_user]
    assert c.get("/v1/jobs", headers=b).json() == []
    # nothing of A's changed, and A still sees all of it
    assert served.state() == before
    assert c.get(f"/v1/users/{uid}", headers=a).json()["history_count"] == 2
    assert c.get(f"/v1/images/{out}", headers=a).status_code == 200
