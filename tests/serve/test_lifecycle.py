"""Keys and data lifecycle: revoke and rotate take effect at once in a running server (another
process); DELETE /v1/images/{id}; generated images past the retention are purged, rows and files."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
from serve_helpers import ServerProcess, create_tenant_cli, files, png, serve, wait_job
from sqlalchemy import select, update

from drc.cli import main
from drc.serve.retention import purge_outputs
from drc.serve.tables import StoredImage, utcnow


def test_revoke_and_rotate_take_effect_at_once_in_a_running_server(
    tmp_path: Path, served_run: Path, capsys
) -> None:  # noqa: ANN001
    data = tmp_path / "data"
    old = create_tenant_cli(data, "acme")
    server = ServerProcess(served_run, data)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            auth = lambda k: {"Authorization": f"Bearer {k}"}  # noqa: E731
            assert c.get("/v1/users", headers=auth(old)).status_code == 200
            capsys.readouterr()
            assert main(["serve", "tenant", "rotate", "acme", "--data-dir", str(data)]) == 0
            new = capsys.readouterr().out.strip().splitlines()[-1]
            assert new.startswith("drc_") and new != old
            assert c.get("/v1/users", headers=auth(old)).status_code == 401  # the very next request
            assert c.get("/v1/users", headers=auth(new)).status_code == 200
            assert main(["serve", "tenant", "revoke", "acme", "--data-dir", str(data)]) == 0
            r = c.get("/v1/users", headers=auth(new))
            assert r.status_code == 401 and r.json()["detail"] == "unknown API key"
            assert main(["serve", "tenant", "list", "--data-dir", str(data)]) == 0
            assert "revoked" in capsys.readouterr().out
    finally:
        server.stop()
    assert main(["serve", "tenant", "revoke", "nobody", "--data-dir", str(data)]) == 2


def test_delete_image(served) -> None:  # noqa: ANN001
    c = served.client
    a, b = served.tenant("a"), served.tenant("b")
    uid = c.post("/v1/users", json={"name": "u"}, headers=a).json()["id"]
    hist = [
        x["id"] for x in c.post(f"/v1/users/{uid}/history", files=files(png(1), png(2)), headers=a).json()
    ]
    twin = c.post("/v1/images", files={"file": ("t.png", png(1), "image/png")}, headers=a).json()["id"]
    before = served.state()
    assert c.delete(f"/v1/images/{hist[0]}", headers=b).status_code == 404  # another tenant's: not found
    assert served.state() == before
    assert c.delete(f"/v1/images/{hist[0]}", headers=a).status_code == 204
    assert c.get(f"/v1/images/{hist[0]}", headers=a).status_code == 404
    assert [x["id"] for x in c.get(f"/v1/users/{uid}/history", headers=a).json()] == [hist[1]]
    assert len(served.state()["files"]) == len(before["files"])  # its file is the twin's too: kept
    assert c.get(f"/v1/images/{twin}", headers=a).status_code == 200
    assert c.delete(f"/v1/images/{twin}", headers=a).status_code == 204
    assert len(served.state()["files"]) == len(before["files"]) - 1  # the last row gone: the file too
    assert c.delete(f"/v1/images/{twin}", headers=a).status_code == 404


def test_outputs_past_the_retention_are_purged(tmp_path: Path, tiny_model) -> None:  # noqa: ANN001
    data = tmp_path / "data"
    with serve(data, tiny_model) as sv:
        h = sv.tenant()
        c = sv.client
        uid = c.post("/v1/users", json={"name": "u"}, headers=h).json()["id"]
        assert c.post(f"/v1/users/{uid}/history", files=files(png(1), png(2)), headers=h).status_code == 201
        ref = c.post("/v1/images", files={"file": ("r.png", png(3), "image/png")}, headers=h).json()["id"]
        jobs = [
            wait_job(
                c,
                h,
                c.post(
                    "/v1/generate", json={"user_id": uid, "reference": ref, "n": 2, "seed": s}, headers=h
                ).json()["id"],
            )
            for s in (1, 2)
        ]
        old_ids = [im["id"] for im in jobs[0]["images"]]
        with sv.service.sessions.begin() as s:  # the first job's outputs are three days old
            s.execute(
                update(StoredImage)
                .where(StoredImage.id.in_(old_ids))
                .values(created_at=utcnow() - timedelta(days=3))
            )
        assert purge_outputs(sv.service.sessions, sv.service.store, days=7) == 0
        files_before = sv.state()["files"]
    # a service started with a 2-day retention purges them (its worker does, at start and then hourly)
    with serve(data, tiny_model, retention_days=2) as sv:
        deadline = time.monotonic() + 30
        while (
            sv.client.get(f"/v1/images/{old_ids[0]}", headers=h).status_code != 404
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        for i in old_ids:
            assert sv.client.get(f"/v1/images/{i}", headers=h).status_code == 404
        for im in jobs[1]["images"]:  # the recent outputs stay, and every upload
            assert sv.client.get(im["url"], headers=h).status_code == 200
        assert len(sv.client.get(f"/v1/users/{uid}/history", headers=h).json()) == 2
        assert sv.client.get(f"/v1/images/{ref}", headers=h).status_code == 200
        assert sv.client.get(f"/v1/jobs/{jobs[0]['id']}", headers=h).json()["status"] == "done"  # record kept
        assert len(sv.state()["files"]) == len(files_before) - 2
        with sv.service.sessions() as s:
            assert not set(s.scalars(select(StoredImage.id).where(StoredImage.id.in_(old_ids))))
