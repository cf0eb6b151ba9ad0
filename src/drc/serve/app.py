"""The FastAPI app: the versioned API under /v1 (OpenAPI docs at /docs), the studio page at / and the
run-report page at /report.

`create_app(cfg)` builds everything from a ServeConfig; on start-up (the app's lifespan) it upgrades
the database schema, queues again the jobs a stopped service left running, loads the served runs and
starts the queue worker. Every /v1 route but /v1/health needs `Authorization: Bearer KEY`, checked
by the Gate middleware before any body byte is read (gate.py), and sees only the key's tenant's rows:
another tenant's id answers 404 exactly as an id that never existed.

Bad input answers 4xx with `{"detail": "one line"}` and changes nothing: uploads are checked in full
before the first file is written, and a generate request before its job is created.

The routes are `APIRouter`s, one module per resource (routes_*.py); their dependencies (the
tenant, a database session, the service) are in auth.py and read the service from `app.state`.
"""

import contextlib
import functools
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from drc.serve import auth, routes_generate, routes_images, routes_kpis, routes_runs, routes_users
from drc.serve.config import ServeConfig
from drc.serve.errors import validation_detail
from drc.serve.gate import Gate
from drc.serve.service import Service

ROUTERS = (routes_runs, routes_users, routes_images, routes_generate, routes_kpis)
STATIC = Path(__file__).parent / "static"
log = logging.getLogger("drc.serve")


def _docs_page(app: FastAPI) -> None:
    """OpenAPI docs at /docs with Swagger UI from the swagger-ui-bundle-v2 package (the serve extra),
    so that the page works on a machine without internet; without the package, from FastAPI's CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html

    try:
        import swagger_ui_bundle

        assets = Path(swagger_ui_bundle.swagger_ui_path)
    except ImportError:
        assets = None
    if assets is not None and (assets / "swagger-ui-bundle.js").is_file():
        app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")
        urls = {
            "swagger_js_url": "/docs-assets/swagger-ui-bundle.js",
            "swagger_css_url": "/docs-assets/swagger-ui.css",
            "swagger_favicon_url": "/docs-assets/favicon-32x32.png",
        }
    else:
        urls = {}

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="drc serve: API", **urls
        )


def _error_replies(app: FastAPI) -> None:
    """Every error answers `{"detail": "one line"}`; an unexpected one says no more than that it failed."""

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        status, msg = validation_detail(list(exc.errors()))
        return JSONResponse({"detail": msg}, status_code=status)

    @app.exception_handler(Exception)
    async def _internal(_req: Request, exc: Exception) -> JSONResponse:
        # the tenant learns that it failed, not how: exception text can name files, queries, hosts
        log.error("drc serve: internal error", exc_info=exc)
        return JSONResponse({"detail": "internal error (the service log has the details)"}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


def _pages(app: FastAPI) -> None:
    """The studio at /, the run-report page at /report and their scripts and styles under /static."""

    @app.get("/", include_in_schema=False)
    def studio() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/report", include_in_schema=False)
    def report_page() -> FileResponse:
        return FileResponse(STATIC / "report.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")


# ---------------------------------------------------------------------- the app
def create_app(cfg: ServeConfig, models: dict[str, Any] | None = None) -> FastAPI:
    """The service for `cfg`. `models` (name -> loaded DrcModel) skips loading cfg.runs (tests
    share one loaded run across apps)."""
    svc = Service(cfg, models)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        import anyio.to_thread

        # sync routes run in anyio's thread pool; long-polls hold a thread each, so allow more than 40
        anyio.to_thread.current_default_thread_limiter().total_tokens = 200
        svc.start()
        try:
            yield
        finally:
            svc.stop()

    app = FastAPI(
        title="drc serve",
        version="1",
        summary="Personalized image generation (DRC) for many tenants and their end users",
        lifespan=lifespan,
        docs_url=None,  # served by _docs_page from local files: FastAPI's default loads Swagger UI from a CDN
        redoc_url=None,
    )
    _docs_page(app)
    app.state.service = svc  # what auth.service / auth.session read
    _error_replies(app)
    app.add_middleware(
        Gate,
        lookup=functools.partial(auth.lookup, svc.sessions),
        max_bytes=cfg.limits.max_request_bytes,
        max_json_bytes=cfg.limits.max_json_bytes,
    )
    _pages(app)
    for module in ROUTERS:
        app.include_router(module.router)
    return app
