"""Errors as the API answers them: one line of `detail`; a body over the limit refused before it is read."""

from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse


def validation_detail(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """FastAPI's validation errors -> (status, one line). A body that is not JSON is a 400."""
    for e in errors:
        if e.get("type") == "json_invalid":
            ctx = e.get("ctx") or {}
            return 400, f"malformed JSON body: {ctx.get('error', e.get('msg', 'invalid JSON'))}"
    parts = []
    for e in errors:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{loc}: {e.get('msg', 'invalid')}" if loc else str(e.get("msg", "invalid")))
    return 422, "; ".join(parts)


def bad(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


def not_found(kind: str, id_: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{kind} {id_!r} not found")


class BodyLimit:
    """Refuse a request whose Content-Length is over the limit before anything reads its body (a plain
    ASGI middleware: Starlette's BaseHTTPMiddleware would cost every request an extra task)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            msg, status = None, 0
            if length is not None and not length.isdigit():
                msg, status = "bad Content-Length header", 400
            elif length is not None and int(length) > self.max_bytes:
                msg, status = (
                    f"request body of {int(length)} bytes is over the limit of {self.max_bytes}",
                    413,
                )
            if msg is not None:
                await JSONResponse({"detail": msg}, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)
