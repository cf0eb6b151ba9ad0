"""The service's front door, a plain ASGI middleware that runs before any route reads a byte of the body.

For every request it
1. refuses a declared `Content-Length` over the limit (413, nothing read);
2. on /v1 routes but the public ones, checks `Authorization: Bearer KEY` against the database (401,
   nothing read): a keyless upload costs the server its headers, not its body;
3. counts the body bytes actually received, chunked or not, and answers 413 the moment the count
   passes the limit (JSON bodies have a far smaller limit than uploads);
4. adds the security headers to every reply.

The key is looked up on every request, with no cache, so a revoked or rotated key stops working at
once in every process that shares the database.

(Plain ASGI, not Starlette's BaseHTTPMiddleware: that would cost every request an extra task, and
it hands the route a body the middleware already read.)
"""

from collections.abc import Callable
from typing import Any

import anyio.to_thread
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from drc.serve.auth import TenantRef, bearer_key

PUBLIC_V1 = frozenset({"/v1/health"})
JSON_TYPES = (b"application/json",)

# the studio and report pages load only their own scripts, styles and (blob:) images; /docs runs
# Swagger UI, whose page starts it with an inline script
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_CSP_DOCS = (
    "default-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; object-src 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class BodyTooLarge(HTTPException):
    """Raised by the counting `receive` when the body passes the limit (an HTTPException, so that
    FastAPI's body parsing lets it through instead of turning it into a 400)."""


def _reply(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class Gate:
    """Size limits, authentication and security headers for every HTTP request (see the module doc).

    `lookup(key)` -> the key's tenant or None; it queries the database, so it runs in a worker thread.
    """

    def __init__(
        self,
        app: Any,
        lookup: Callable[[str], TenantRef | None],
        max_bytes: int,
        max_json_bytes: int,
    ) -> None:
        self.app, self.lookup = app, lookup
        self.max_bytes, self.max_json_bytes = max_bytes, max_json_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send, _CSP_DOCS if scope["path"] == "/docs" else _CSP)
        headers = dict(scope["headers"])
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        limit = self.max_json_bytes if ctype in JSON_TYPES else self.max_bytes
        length = headers.get(b"content-length")
        if length is not None and not length.isdigit():
            await _reply(400, "bad Content-Length header")(scope, receive, send)
            return
        if length is not None and int(length) > limit:
            await _reply(413, _over(int(length), limit))(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith("/v1/") and path not in PUBLIC_V1:
            refusal = await self._authenticate(scope, headers.get(b"authorization"))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self._counted(scope, receive, send, limit)

    async def _authenticate(self, scope: dict, header: bytes | None) -> JSONResponse | None:
        """Put the tenant in the request's state; or the 401 to answer."""
        www = {"WWW-Authenticate": "Bearer"}
        key = bearer_key(header.decode("latin-1") if header is not None else None)
        if key is None:
            return _reply(401, "missing API key: send Authorization: Bearer KEY", www)
        if len(key) > 200 or "\x00" in key:
            return _reply(401, "unknown API key", www)
        tenant = await anyio.to_thread.run_sync(self.lookup, key)
        if tenant is None:
            return _reply(401, "unknown API key", www)
        scope.setdefault("state", {})["tenant"] = tenant
        return None

    async def _counted(self, scope: dict, receive: Any, send: Any, limit: int) -> None:
        """Run the app with a `receive` that counts body bytes; past `limit`, answer 413 (whatever
        the app makes of the exception, this reply replaces it, unless the app already replied)."""
        received, over, started = 0, False, False

        async def counting_receive() -> dict:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLarge(413, _over(received, limit, sent_so_far=True))
            return message

        async def guarded_send(message: dict) -> None:
            nonlocal started
            if over and not started:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not over or started:
                raise
        if over and not started:
            await _reply(413, _over(received, limit, sent_so_far=True))(scope, receive, send)


def _over(size: int, limit: int, sent_so_far: bool = False) -> str:
    if sent_so_far:
        return f"request body is over the limit of {limit} bytes ({size} bytes received when refused)"
    return f"request body of {size} bytes is over the limit of {limit} bytes"


def _with_headers(send: Any, csp: str) -> Any:
    extra = [*SECURITY_HEADERS, (b"content-security-policy", csp.encode())]

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped
