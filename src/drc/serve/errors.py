"""Errors as the API answers them: one line of `detail`."""

from typing import Any

from fastapi import HTTPException


def validation_detail(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """FastAPI's validation errors -> (status, one line). A body that is not JSON is a 400."""
    for e in errors:
        if e.get("type") == "json_invalid":
            ctx = e.get("ctx") or {}
            return (
                400,
                f"malformed JSON body: {printable(str(ctx.get('error', e.get('msg', 'invalid JSON'))))}",
            )
    parts = []
    for e in errors:
        loc = printable(".".join(str(x) for x in e.get("loc", ()) if x != "body"))
        msg = printable(str(e.get("msg", "invalid")))
        parts.append(f"{loc}: {msg}" if loc else msg)
    return 422, "; ".join(parts)


def printable(text: str) -> str:
    """`text` (a file name a client sent) safe inside a one-line message: control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def bad(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


def not_found(kind: str, id_: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{kind} {id_!r} not found")
