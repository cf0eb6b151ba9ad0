"""The front door on a real socket: a keyless chunked upload is refused before its body is read, an
oversized chunked body the moment the bytes received pass the limit; and the security headers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import Served, chunked_post, serve, uvicorn_app

from drc.serve.config import Limits

LIMIT = 256 * 1024
JSON_LIMIT = 32 * 1024
MULTIPART = "multipart/form-data; boundary=xyz"
FILE_PART = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n'


@pytest.fixture
def live(tmp_path: Path, tiny_model) -> Iterator[tuple[Served, int]]:  # noqa: ANN001
    with (
        serve(
            tmp_path / "data", tiny_model, limits=Limits(max_request_bytes=LIMIT, max_json_bytes=JSON_LIMIT)
        ) as sv,
        uvicorn_app(sv.app) as port,
    ):
        yield sv, port


def test_keyless_chunked_upload_is_refused_before_1_mb(live) -> None:  # noqa: ANN001
    sv, port = live
    before = sv.state()
    for headers in ({}, {"Authorization": "Bearer drc_wrong"}):
        status, body, sent = chunked_post(
            port, "/v1/images", headers, MULTIPART, stop_after=4 * 1024 * 1024, prefix=FILE_PART
        )
        assert status == 401, (status, body, sent)
        assert "key" in body["detail"]
        assert sent < 1024 * 1024
    assert sv.state() == before


def test_oversized_chunked_bodies_get_413_before_twice_the_limit(live) -> None:  # noqa: ANN001
    sv, port = live
    h = sv.tenant()
    before = sv.state()
    for path, ctype, limit, prefix in (
        ("/v1/images", MULTIPART, LIMIT, FILE_PART),
        ("/v1/users", "application/json", JSON_LIMIT, b'{"name": "'),
        ("/v1/generate", "application/json", JSON_LIMIT, b'{"prompt": "'),
    ):
        status, body, sent = chunked_post(
            port, path, h, ctype, stop_after=8 * limit, chunk=limit // 16, prefix=prefix
        )
        assert status == 413, (path, status, body, sent)
        assert f"over the limit of {limit} bytes" in body["detail"]
        assert limit < sent < 2 * limit, (path, sent)
    assert sv.state() == before
    # the public route needs no key, and a keyed small request still works
    import httpx

    assert httpx.get(f"http://127.0.0.1:{port}/v1/health").status_code == 200
    assert httpx.get(f"http://127.0.0.1:{port}/v1/users", headers=h).status_code == 200


def test_security_headers(tmp_path: Path, tiny_model) -> None:  # noqa: ANN001
    with serve(tmp_path / "data", tiny_model) as sv:
        h = sv.tenant()
        for path, headers in (
            ("/", {}),
            ("/v1/health", {}),
            ("/v1/users", h),
            ("/v1/users", {}),
            ("/docs", {}),
        ):
            r = sv.client.get(path, headers=headers)
            assert r.headers["x-content-type-options"] == "nosniff", path
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp, path
        assert "script-src" not in sv.client.get("/").headers["content-security-policy"]  # no inline scripts
