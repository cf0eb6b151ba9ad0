"""The FastAPI app: the versioned API under /v1 (OpenAPI docs at /docs), the studio page at / and the
run-report page at /report.

`create_app(cfg)` builds everything from a ServeConfig; on start-up (the app's lifespan) it upgrades
the database schema, marks jobs a stopped service left running as failed, loads the served runs and
starts the queue worker. Every /v1 route but /v1/health needs `Authorization: Bearer KEY`, checked
by the Gate middleware before any body byte is read (gate.py), and sees only the key's tenant's rows:
another tenant's id answers 404 exactly as an id that never existed.

Bad input answers 4xx with `{"detail": "one line"}` and changes nothing: uploads are checked in full
before the first file is written, and a generate request before its job is created.

(No `from __future__ import annotations` here: FastAPI reads the routes' `Annotated[..., Depends()]`
parameters at run time, and the aliases DB and Auth are local to `create_app`.)
"""

import contextlib
import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from drc.serve import auth, uploads
from drc.serve.auth import TenantRef
from drc.serve.config import ServeConfig
from drc.serve.errors import bad, not_found, printable, validation_detail
from drc.serve.gate import Gate
from drc.serve.models import QUEUED, EndUser, HistoryItem, Job, StoredImage
from drc.serve.queries import get_image, get_user, is_id, user_history
from drc.serve.reports import find_report
from drc.serve.routes_generate import add_generate_routes
from drc.serve.schemas import HistoryImageOut, ImageOut, UserIn, UserOut, image_out, user_out
from drc.serve.service import Service

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


# ---------------------------------------------------------------------- the app
def create_app(cfg: ServeConfig, models: dict[str, Any] | None = None) -> FastAPI:
    """The service for `cfg`. `models` (name -> loaded DrcModel) skips loading cfg.runs (tests
    share one loaded run across apps)."""
    svc = Service(cfg, models)
    limits = cfg.limits

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
        docs_url=None,  # served below from local files: FastAPI's default loads Swagger UI from a CDN
        redoc_url=None,
    )
    _docs_page(app)
    app.state.service = svc
    bearer = HTTPBearer(auto_error=False, description="the tenant's API key (`drc serve tenant create NAME`)")

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

    app.add_middleware(
        Gate,
        lookup=functools.partial(auth.lookup, svc.sessions),
        max_bytes=limits.max_request_bytes,
        max_json_bytes=limits.max_json_bytes,
    )

    # ------------------------------------------------------------------ dependencies
    def session() -> Iterator[Session]:
        with svc.sessions() as s:
            yield s

    def tenant(
        request: Request, _creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> TenantRef:
        # the Gate middleware checked the key before the body was read and left the tenant here;
        # `bearer` only puts the scheme into the OpenAPI docs
        t = getattr(request.state, "tenant", None)
        if t is None:
            raise HTTPException(401, "missing API key", {"WWW-Authenticate": "Bearer"})
        return t

    DB = Annotated[Session, Depends(session)]
    WaitQuery = Annotated[
        float,
        Query(ge=0, description=f"seconds to wait for the job to finish (at most {cfg.worker.max_wait_s:g})"),
    ]
    Auth = Annotated[TenantRef, Depends(tenant)]

    def read_uploads(files: list[UploadFile]) -> list[Any]:
        """Check every file before any is stored: one bad file refuses the whole request. The header
        checks and the request's pixel budget come first; the decodes run in the small decode pool."""
        if len(files) > limits.max_files_per_upload:
            raise bad(
                413, f"{len(files)} files in one upload, over the limit of {limits.max_files_per_upload}"
            )
        blobs, labels, pixels = [], [], 0
        try:
            for i, f in enumerate(files):
                blobs.append(f.file.read(limits.max_upload_bytes + 1))  # a byte more tells "over the limit"
                labels.append(f"file {i + 1}" + (f" ({printable(f.filename[:80])})" if f.filename else ""))
                pixels += uploads.probe(blobs[-1], limits, labels[-1])
            if pixels > limits.max_request_pixels:
                raise bad(
                    413,
                    f"the images declare {pixels} pixels in all, over the limit of "
                    f"{limits.max_request_pixels} per request",
                )
            return list(svc.decode_pool.map(uploads.decode, blobs, [limits] * len(blobs), labels))
        except uploads.UploadError as e:
            raise bad(e.status, str(e)) from e

    def store_images(s: Session, t: TenantRef, checked: list[Any], user_id: str | None) -> list[StoredImage]:
        rows = []
        for c in checked:
            sha = svc.store.put(c.png)
            rows.append(
                StoredImage(
                    tenant_id=t.id,
                    user_id=user_id,
                    kind="upload",
                    sha256=sha,
                    width=c.width,
                    height=c.height,
                    size_bytes=len(c.png),
                )
            )
        s.add_all(rows)
        s.flush()
        return rows

    def remove_files_unreferenced(s: Session, shas: set[str]) -> None:
        """Delete the files no image row points at any more (call after the rows' delete committed)."""
        for sha in shas:
            if s.scalar(select(StoredImage.id).where(StoredImage.sha256 == sha).limit(1)) is None:
                svc.store.delete(sha)

    def check_run(name: str) -> None:
        if name not in svc.samplers:
            raise not_found("run", name)

    # ------------------------------------------------------------------ pages
    @app.get("/", include_in_schema=False)
    def studio() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/report", include_in_schema=False)
    def report_page() -> FileResponse:
        return FileResponse(STATIC / "report.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # ------------------------------------------------------------------ service
    @app.get("/v1/health", tags=["service"])
    def health(s: DB) -> dict[str, Any]:
        """Liveness, the served runs, and how many jobs wait (no key needed)."""
        queued = s.scalar(select(func.count()).select_from(Job).where(Job.status == QUEUED))
        return {"ok": True, "runs": svc.run_names, "queued": int(queued or 0)}

    @app.get("/v1/runs", tags=["service"])
    def runs(t: Auth) -> dict[str, Any]:
        """The served runs (image size, history length, whether a report is there) and the limits."""
        out = []
        for name, sampler in svc.samplers.items():
            h, w = sampler.model.image_size
            out.append(
                {
                    "name": name,
                    "image_size": [h, w],
                    "history_len": sampler.history_len,
                    "prompt": sampler.model.prompt,
                    "precision": sampler.precision,
                    "has_report": find_report(svc.run_dirs[name]) is not None,
                }
            )
        from dataclasses import asdict

        return {"runs": out, "limits": asdict(limits)}

    @app.get("/v1/runs/{run}/report", tags=["service"])
    def run_report(run: str, t: Auth) -> dict[str, Any]:
        """The figures of the run's report.html (SVG charts, methods table, sample grids by index)."""
        check_run(run)
        rep = svc.report(run)
        if rep is None:
            raise bad(404, f"run {run!r} has no report.html (run `drc eval` or `drc demo` to make one)")
        return {
            "run": run,
            "title": rep.title,
            "figures": rep.figures,
            "table": rep.table,
            "grids": [
                {"title": g, "url": f"/v1/runs/{run}/report/grids/{i}"} for i, (g, _) in enumerate(rep.grids)
            ],
        }

    @app.get("/v1/runs/{run}/report/grids/{index}", tags=["service"], response_class=Response)
    def run_report_grid(run: str, index: int, t: Auth) -> Response:
        check_run(run)
        rep = svc.report(run)
        if rep is None or not 0 <= index < len(rep.grids):
            raise bad(404, f"run {run!r} has no report grid {index}")
        return FileResponse(rep.grids[index][1], media_type="image/png")

    # ------------------------------------------------------------------ end users and history
    @app.post("/v1/users", status_code=201, tags=["users"])
    def create_user(body: UserIn, t: Auth, s: DB) -> UserOut:
        name = body.name.strip()
        if not name:
            raise bad(422, "name: must not be empty")
        if len(name) > limits.max_name_chars:
            raise bad(422, f"name: {len(name)} characters, over the limit of {limits.max_name_chars}")
        u = EndUser(tenant_id=t.id, name=name)
        s.add(u)
        s.commit()
        return user_out(s, u)

    @app.get("/v1/users", tags=["users"])
    def list_users(t: Auth, s: DB) -> list[UserOut]:
        users = s.scalars(select(EndUser).where(EndUser.tenant_id == t.id).order_by(EndUser.created_at)).all()
        return [user_out(s, u) for u in users]

    @app.get("/v1/users/{user_id}", tags=["users"])
    def read_user(user_id: str, t: Auth, s: DB) -> UserOut:
        return user_out(s, get_user(s, t, user_id))

    @app.delete("/v1/users/{user_id}", status_code=204, tags=["users"])
    def delete_user(user_id: str, t: Auth, s: DB) -> Response:
        """Delete the end user with their history, jobs, generated images and every file of them."""
        u = get_user(s, t, user_id)
        images = s.scalars(select(StoredImage).where(StoredImage.user_id == u.id)).all()
        shas = {im.sha256 for im in images}
        s.execute(delete(HistoryItem).where(HistoryItem.user_id == u.id))
        s.execute(delete(Job).where(Job.user_id == u.id))
        s.execute(delete(StoredImage).where(StoredImage.user_id == u.id))
        s.delete(u)
        s.commit()
        remove_files_unreferenced(s, shas)
        return Response(status_code=204)

    @app.post("/v1/users/{user_id}/history", status_code=201, tags=["users"])
    def add_history(
        user_id: str,
        t: Auth,
        s: DB,
        files: Annotated[list[UploadFile], File(description="images, oldest first")],
    ) -> list[HistoryImageOut]:
        """Append images to the end user's history, in the order given (the last is the most recent)."""
        u = get_user(s, t, user_id)
        rows = user_history(s, u.id)
        if len(rows) + len(files) > limits.max_history:
            raise bad(
                422,
                f"history would hold {len(rows) + len(files)} images, over the limit of {limits.max_history} "
                f"(it has {len(rows)}); delete some first",
            )
        checked = read_uploads(files)
        images = store_images(s, t, checked, u.id)
        pos = max((h.position for h, _ in rows), default=-1) + 1
        items = [HistoryItem(user_id=u.id, image_id=im.id, position=pos + i) for i, im in enumerate(images)]
        s.add_all(items)
        s.commit()
        return [
            HistoryImageOut(**image_out(im).model_dump(), position=h.position) for h, im in zip(items, images)
        ]

    @app.get("/v1/users/{user_id}/history", tags=["users"])
    def list_history(user_id: str, t: Auth, s: DB) -> list[HistoryImageOut]:
        u = get_user(s, t, user_id)
        return [
            HistoryImageOut(**image_out(im).model_dump(), position=h.position)
            for h, im in user_history(s, u.id)
        ]

    @app.delete("/v1/users/{user_id}/history/{image_id}", status_code=204, tags=["users"])
    def delete_history_image(user_id: str, image_id: str, t: Auth, s: DB) -> Response:
        """Remove one image from the history (and its file, when nothing else uses it)."""
        u = get_user(s, t, user_id)
        if not is_id(image_id):
            raise not_found("history image", image_id)
        item = s.scalar(
            select(HistoryItem).where(HistoryItem.user_id == u.id, HistoryItem.image_id == image_id)
        )
        if item is None:
            raise not_found("history image", image_id)
        im = s.get(StoredImage, image_id)
        s.delete(item)
        sha = None
        if im is not None and im.tenant_id == t.id:
            sha = im.sha256
            s.delete(im)
        s.commit()
        if sha:
            remove_files_unreferenced(s, {sha})
        return Response(status_code=204)

    # ------------------------------------------------------------------ images
    @app.post("/v1/images", status_code=201, tags=["images"])
    def upload_image(
        t: Auth,
        s: DB,
        file: Annotated[UploadFile, File(description="a PNG, JPEG, WebP, GIF or BMP image")],
        user_id: Annotated[
            str | None, Form(description="tie the image to an end user (deleted with them)")
        ] = None,
    ) -> ImageOut:
        """Upload an image (a reference, or an explicit history) without adding it to a history."""
        if user_id:
            get_user(s, t, user_id)
        checked = read_uploads([file])
        (im,) = store_images(s, t, checked, user_id or None)
        s.commit()
        return image_out(im)

    @app.get(
        "/v1/images/{image_id}",
        tags=["images"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    def download_image(image_id: str, t: Auth, s: DB) -> Response:
        im = get_image(s, t, image_id)
        try:
            data = svc.store.read(im.sha256)
        except FileNotFoundError as e:
            raise bad(410, f"image {image_id!r}: its file is gone") from e
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    add_generate_routes(app, svc, DB, Auth, WaitQuery)
    return app
