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
