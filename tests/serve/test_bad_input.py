"""Every bad input gets a clear 4xx and changes nothing stored (rows and files compared before/after)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import Served, bomb_png, files, png, serve

from drc.serve.config import Limits

# small limits, so that "over the limit" inputs stay small and fast
LIMITS = Limits(
    max_upload_bytes=20_000, max_history=6, max_n=4, max_prompt_chars=40, max_request_bytes=200_000
)


@pytest.fixture
def setup(tmp_path: Path, tiny_model, db_url) -> Iterator[tuple[Served, dict, str, str, str]]:  # noqa: ANN001
    """An app with a user holding 2 history images, an empty user, and a reference."""
    with serve(tmp_path / "data", tiny_model, db_url, limits=LIMITS) as sv:
        h = sv.tenant()
        c = sv.client
        uid = c.post("/v1/users", json={"name": "full"}, headers=h).json()["id"]
        assert c.post(f"/v1/users/{uid}/history", files=files(png(1), png(2)), headers=h).status_code == 201
        empty = c.post("/v1/users", json={"name": "empty"}, headers=h).json()["id"]
        ref = c.post("/v1/images", files={"file": ("r.png", png(3), "image/png")}, headers=h).json()["id"]
        yield sv, h, uid, empty, ref


def truncated_png() -> bytes:
    data = png(7, size=(64, 64), noise=True)
    return data[: len(data) // 2]


UPLOADS = {
    # name: (file bytes, status, words the message must contain)
    "not an image": (b"hello, this is not an image at all", 415, "not an image"),
    "empty file": (b"", 422, "empty file"),
    "truncated": (truncated_png(), 422, "truncated or corrupt"),
    "decompression bomb": (bomb_png(), 413, "over the limit of"),
    "over the size limit": (png(8, size=(128, 128), noise=True), 413, "over the limit of 20000 bytes"),
}


@pytest.mark.parametrize("case", list(UPLOADS))
def test_bad_upload_to_history_and_images(setup, case: str) -> None:  # noqa: ANN001
    sv, h, uid, _, _ = setup
    data, status, words = UPLOADS[case]
    before = sv.state()
    # alone, and after a good file in the same request: one bad file refuses the whole request
    for batch in ([data], [png(20), data]):
        r = sv.client.post(f"/v1/users/{uid}/history", files=files(*batch), headers=h)
        assert r.status_code == status, r.text
        assert words in r.json()["detail"]
    r = sv.client.post("/v1/images", files={"file": ("x.png", data, "image/png")}, headers=h)
    assert r.status_code == status and words in r.json()["detail"]
    assert sv.state() == before
    assert len(sv.client.get(f"/v1/users/{uid}/history", headers=h).json()) == 2


def test_too_many_history_images(setup) -> None:  # noqa: ANN001
    sv, h, uid, _, _ = setup
    before = sv.state()
    r = sv.client.post(f"/v1/users/{uid}/history", files=files(*[png(30 + i) for i in range(5)]), headers=h)
    assert r.status_code == 422 and "over the limit of 6" in r.json()["detail"]
    assert sv.state() == before
    # up to the limit is fine
    r = sv.client.post(f"/v1/users/{uid}/history", files=files(*[png(30 + i) for i in range(4)]), headers=h)
    assert r.status_code == 201


def test_request_body_over_limit(setup) -> None:  # noqa: ANN001
    sv, h, uid, _, _ = setup
    before = sv.state()
    big = [png(40 + i, size=(48, 48), noise=True) for i in range(40)]  # ~7 KB each, 280 KB in all
    r = sv.client.post(f"/v1/users/{uid}/history", files=files(*big), headers=h)
    assert r.status_code == 413 and "request body" in r.json()["detail"]
    assert sv.state() == before


def _generate_cases(uid: str, empty: str, ref: str) -> dict[str, tuple[object, int, str]]:
    ok = {"user_id": uid, "reference": ref}
    return {
        "empty user history": ({"user_id": empty, "reference": ref}, 422, "empty history"),
        "empty explicit history": ({"history": [], "reference": ref}, 422, "history: empty"),
        "explicit history over the limit": (
            {"history": [ref] * 7, "reference": ref},
            422,
            "over the limit of 6",
        ),
        "unknown run": ({**ok, "run": "nope"}, 422, "unknown run 'nope'"),
        "n over the limit": ({**ok, "n": 5}, 422, "outside 1..4"),
        "n zero": ({**ok, "n": 0}, 422, "outside 1..4"),
        "negative seed": ({**ok, "seed": -1}, 422, "seed"),
        "over-long prompt": ({**ok, "prompt": "x" * 41}, 422, "over the limit of 40"),
        "user and history": ({**ok, "history": [ref]}, 422, "exactly one of"),
        "neither user nor history": ({"reference": ref}, 422, "exactly one of"),
        "no reference": ({"user_id": uid}, 422, "reference"),
        "n not a number": ({**ok, "n": "many"}, 422, "n:"),
        "unknown field": ({**ok, "colour": "red"}, 422, "colour"),
        "body not an object": ([1, 2], 422, "valid dictionary"),
        "unknown reference": ({"user_id": uid, "reference": "img_000"}, 404, "image 'img_000' not found"),
        "unknown user": ({"user_id": "usr_000", "reference": ref}, 404, "end user 'usr_000' not found"),
    }


def test_bad_generate_requests(setup) -> None:  # noqa: ANN001
    sv, h, uid, empty, ref = setup
    before = sv.state()
    for name, (body, status, words) in _generate_cases(uid, empty, ref).items():
        r = sv.client.post("/v1/generate", json=body, headers=h)
        assert r.status_code == status, (name, r.text)
        detail = r.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail, name  # one line
        assert words in detail, (name, detail)
    assert sv.state() == before


@pytest.mark.parametrize(
    "raw", [b'{"user_id": "u", "reference": ', b"{'single': 'quotes'}", b"not json", b'{"n": 1,}']
)
def test_malformed_json(setup, raw: bytes) -> None:  # noqa: ANN001
    sv, h, _, _, _ = setup
    before = sv.state()
    for path in ("/v1/generate", "/v1/users"):
        r = sv.client.post(path, content=raw, headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["detail"].startswith("malformed JSON body")
    assert sv.state() == before


def test_bad_user_names(setup) -> None:  # noqa: ANN001
    sv, h, _, _, _ = setup
    before = sv.state()
    for name, words in (
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * 101, "over the limit"),
    ):
        r = sv.client.post("/v1/users", json={"name": name}, headers=h)
        assert r.status_code == 422 and words in r.json()["detail"]
    assert sv.state() == before


def test_upload_checks_directly() -> None:
    """The checks' order: size before decoding, the declared pixel count before any pixel is read."""
    from drc.serve.uploads import UploadError, check_upload

    lim = Limits(max_upload_bytes=10_000_000, max_pixels=1_000_000)
    with pytest.raises(UploadError) as e:
        check_upload(bomb_png(2000, 2000), lim)
    assert e.value.status == 413 and "4000000 pixels" in str(e.value)
    ok = check_upload(png(1, size=(300, 200)), Limits(store_max_side=100))
    assert (ok.width, ok.height) == (100, 67)  # stored shrunk, aspect kept
    # PIL's own bomb guard (over twice its MAX_IMAGE_PIXELS) also answers 413, not a 500
    with pytest.raises(UploadError) as e:
        check_upload(bomb_png(), Limits(max_pixels=10**12))
    assert e.value.status == 413


def test_strict_types_nul_and_lengths_same_on_both_databases(setup) -> None:  # noqa: ANN001
    """No coercion, no NUL, no unbounded string reaches the database: the same 4xx on SQLite and
    PostgreSQL (where a NUL in a query is an error, and was a 500)."""
    sv, h, uid, _, ref = setup
    c = sv.client
    ok = {"user_id": uid, "reference": ref}
    before = sv.state()
    cases = {
        "n true": ({**ok, "n": True}, "n: Input should be a valid integer"),
        "n a numeric string": ({**ok, "n": "2"}, "n: Input should be a valid integer"),
        "n a float": ({**ok, "n": 2.0}, "n: Input should be a valid integer"),
        "seed false": ({**ok, "seed": False}, "seed: Input should be a valid integer"),
        "explain 1": ({**ok, "explain": 1}, "explain: Input should be a valid boolean"),
        "prompt a number": ({**ok, "prompt": 5}, "prompt: Input should be a valid string"),
        "NUL in the prompt": ({**ok, "prompt": "a\x00b"}, "prompt: Value error, must not contain NUL"),
        "NUL in the run": ({**ok, "run": "t\x00"}, "run: Value error, must not contain NUL"),
        "NUL in the user id": ({"user_id": "usr\x00", "reference": ref}, "user_id: String should match"),
        "NUL in the reference": ({"user_id": uid, "reference": "img_\x00"}, "reference: String should match"),
        "NUL in a history id": ({"history": [ref, "i\x00"], "reference": ref}, "history.1: String should"),
        "10 KB user id": ({"user_id": "u" * 10_000, "reference": ref}, "user_id: String should have at most"),
        "10 KB run name": ({**ok, "run": "r" * 20_000}, "run: String should have at most"),
    }
    for name, (body, words) in cases.items():
        r = c.post("/v1/generate", json=body, headers=h)
        assert r.status_code == 422, (name, r.text)
        detail = r.json()["detail"]
        assert words in detail and "\n" not in detail and "\x00" not in detail, (name, detail)
    for name, words in (
        ("a\x00b", "must not contain NUL"),
        ("x" * 300, "over the limit of"),
        (True, "valid string"),
        (None, "valid string"),
    ):
        r = c.post("/v1/users", json={"name": name}, headers=h)
        assert r.status_code == 422 and words in r.json()["detail"], (name, r.text)
    # ids in paths and query strings: an id that cannot exist is not found, on either database
    for path in (
        "/v1/users/usr%00x",
        f"/v1/users/{'u' * 5000}",
        "/v1/images/img%00",
        "/v1/jobs/job%00",
        f"/v1/users/{uid}/history/img%00",
    ):
        r = c.get(path, headers=h) if "history" not in path else c.delete(path, headers=h)
        assert r.status_code == 404, (path, r.text)
    assert c.get("/v1/jobs", params={"user_id": "u\x00"}, headers=h).status_code == 404
    r = c.post(
        "/v1/images", files={"file": ("r.png", png(3), "image/png")}, data={"user_id": "u\x00"}, headers=h
    )
    assert r.status_code == 404
    r = c.post(
        f"/v1/users/{uid}/history", files=[("files", ("a\nb\x00.txt", b"nope", "text/plain"))], headers=h
    )
    assert r.status_code == 415 and "\n" not in r.json()["detail"]
    assert sv.state() == before


def test_internal_errors_do_not_reach_the_tenant(setup, monkeypatch) -> None:  # noqa: ANN001
    from fastapi.testclient import TestClient

    sv, h, _, _, ref = setup

    def broken(_sha: str) -> bytes:
        raise RuntimeError("secret: /srv/drc/blobs is on host db-7")

    monkeypatch.setattr(sv.service.store, "read", broken)
    r = TestClient(sv.app, raise_server_exceptions=False).get(f"/v1/images/{ref}", headers=h)
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error (the service log has the details)"}


def test_pixel_budget_per_request_is_checked_before_any_decode(tmp_path: Path, tiny_model) -> None:  # noqa: ANN001
    # three headers of 9 MP each: each passes the per-image limit, together they pass the budget. The
    # bodies are not real images (a decode would fail with a 422): the 413 shows nothing was decoded
    lim = Limits(max_pixels=10_000_000, max_request_pixels=20_000_000)
    with serve(tmp_path / "data", tiny_model, limits=lim) as sv:
        h = sv.tenant()
        uid = sv.client.post("/v1/users", json={"name": "u"}, headers=h).json()["id"]
        before = sv.state()
        heads = [bomb_png(3000, 3000) for _ in range(3)]
        r = sv.client.post(f"/v1/users/{uid}/history", files=files(*heads), headers=h)
        assert r.status_code == 413, r.text
        assert "27000000 pixels in all, over the limit of 20000000" in r.json()["detail"]
        r = sv.client.post(f"/v1/users/{uid}/history", files=files(*heads[:2]), headers=h)
        assert r.status_code == 422 and "truncated or corrupt" in r.json()["detail"]  # within budget: decoded
        assert sv.state() == before


def test_decodes_run_in_the_small_bounded_pool(tmp_path: Path, tiny_model, monkeypatch) -> None:  # noqa: ANN001
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from drc.serve import uploads

    seen: list[tuple[str, int]] = []
    lock, active = threading.Lock(), [0]
    real = uploads.decode

    def tracked(*args):  # noqa: ANN002, ANN202
        with lock:
            active[0] += 1
            seen.append((threading.current_thread().name, active[0]))
        try:
            threading.Event().wait(0.02)  # long enough for concurrent requests to overlap
            return real(*args)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(uploads, "decode", tracked)
    with serve(tmp_path / "data", tiny_model, limits=Limits(decode_workers=2)) as sv:
        h = sv.tenant()
        uid = sv.client.post("/v1/users", json={"name": "u"}, headers=h).json()["id"]

        def upload(i: int) -> int:
            body = files(*[png(100 + 4 * i + j) for j in range(4)])
            return sv.client.post(f"/v1/users/{uid}/history", files=body, headers=h).status_code

        with ThreadPoolExecutor(6) as ex:
            assert list(ex.map(upload, range(6))) == [201] * 6
    assert len(seen) == 24
    assert all(name.startswith("drc-decode") for name, _ in seen)  # never in a request thread
    assert max(n for _, n in seen) <= 2
