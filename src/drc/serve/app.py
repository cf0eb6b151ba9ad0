"""The FastAPI app: the versioned API under /v1 (OpenAPI docs at /docs), the studio page at / and the
run-report page at /report.

`create_app(cfg)` builds everything from a ServeConfig; on start-up (the app's lifespan) it upgrades
the database schema, marks jobs a stopped service left running as failed, loads the served runs and
starts the queue worker. Every /v1 route but /v1/health needs `Authorization: Bearer KEY` and sees
only the key's tenant's rows: another tenant's id answers 404 exactly as an id that never existed.

Bad input answers 4xx with `{"detail": "one line"}` and changes nothing: uploads are checked in full
before the first file is written, and a generate request before its job is created.

(No `from __future__ import annotations` here: FastAPI reads the routes' `Annotated[..., Depends()]`
parameters at run time, and the aliases DB and Auth are local to `create_app`.)
"""

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from drc.serve import db
from drc.serve.auth import KeyCache, TenantRef
from drc.serve.config import ServeConfig
from drc.serve.models import DONE, FAILED, QUEUED, EndUser, HistoryItem, Job, StoredImage, utc
from drc.serve.reports import Report, find_report, load_report
from drc.serve.storage import BlobStore
from drc.serve.uploads import UploadError, check_image

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("drc.serve")


# ---------------------------------------------------------------------- request and reply bodies
class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="a display name for the end user (need not be unique)")


class UserOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    history_count: int


class ImageOut(BaseModel):
    id: str
    url: str
    width: int
    height: int
    kind: str


class HistoryImageOut(ImageOut):
    position: int


class GenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run: str | None = Field(None, description="a served run's name; default: the first one served")
    user_id: str | None = Field(None, description="take the history from this end user (most recent last)")
    history: list[str] | None = Field(None, description="or: image ids, oldest first (from POST /v1/images)")
    reference: str = Field(description="image id of the reference: what to show")
    prompt: str | None = Field(None, description="instruction text; default: the run's own instruction")
    n: int = Field(4, description="images to generate")
    seed: int = Field(0, description="image i of the job is sampled from a stream seeded by (seed, i)")
    explain: bool = Field(False, description="also compute each history image's leave-one-out influence")


class ImageRef(BaseModel):
    id: str
    url: str


class HistoryEntryOut(BaseModel):
    image_id: str
    url: str
    weight: float | None
    influence: dict[str, float] | None


class JobOut(BaseModel):
    id: str
    status: str
    run: str
    user_id: str | None
    prompt: str | None
    n: int
    seed: int
    explain: bool
    reference: ImageRef
    history: list[HistoryEntryOut]
    images: list[ImageRef]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    batch_images: int | None = Field(None, description="rows of the sampling batch the job shared")
    sample_ms: float | None


def image_url(image_id: str) -> str:
    return f"/v1/images/{image_id}"


# ---------------------------------------------------------------------- the service state
class Service:
    """What the routes share: config, database, file store, the served runs and the worker."""

    def __init__(self, cfg: ServeConfig, models: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = db.make_engine(cfg.database_url)
        self.sessions = db.session_factory(self.engine)
        self.store = BlobStore(cfg.blob_dir)
        self.keys = KeyCache()
        self._models = models
        self.samplers: dict[str, Any] = {}
        self.run_dirs: dict[str, Path] = {}
        self.worker = None
        # long-polls: a request waiting for job J waits on waiters[J], which the worker sets when J
        # finishes; only that request wakes, not every waiting one
        self._waiters: dict[str, tuple[threading.Event, int]] = {}  # job id -> (event, requests waiting)
        self._waiters_lock = threading.Lock()

    @property
    def run_names(self) -> list[str]:
        return list(self._models) if self._models is not None else list(self.cfg.runs)

    def start(self) -> None:
        from drc.serve.sampler import RunSampler
        from drc.serve.worker import Worker, recover

        db.upgrade(self.engine)
        n = recover(self.sessions)
        if n:
            log.warning("drc serve: %d job(s) left running by a stopped service marked failed", n)
        if self._models is None:
            import drc.api as api

            self._models = {
                name: api.load(path, device=self.cfg.device) for name, path in self.cfg.runs.items()
            }
        for name, model in self._models.items():
            self.samplers[name] = RunSampler(
                model, self.store.read, self.cfg.worker.token_cache, self.cfg.precision
            )
            sampler = self.samplers[name]
            log.info(
                "drc serve: run %s samples in %s (%s)", name, sampler.precision, sampler.precision_reason
            )
            self.run_dirs[name] = Path(model.paths.root)
        self.worker = Worker(
            self.sessions, self.store, self.samplers, self.cfg.worker, on_done=self._job_done
        )
        self.worker.start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.engine.dispose()

    def _job_done(self, job_ids: list[str]) -> None:
        with self._waiters_lock:
            for i in job_ids:
                if i in self._waiters:
                    self._waiters[i][0].set()

    def waiter(self, job_id: str) -> threading.Event:
        """The event set when `job_id` finishes (register before reading the job's status)."""
        with self._waiters_lock:
            ev, n = self._waiters.get(job_id, (threading.Event(), 0))
            self._waiters[job_id] = (ev, n + 1)
            return ev

    def drop_waiter(self, job_id: str) -> None:
        with self._waiters_lock:
            ev, n = self._waiters[job_id]
            if n > 1:
                self._waiters[job_id] = (ev, n - 1)
            else:
                del self._waiters[job_id]

    def report(self, run: str) -> Report | None:
        path = find_report(self.run_dirs[run])
        return load_report(path) if path is not None else None


# ---------------------------------------------------------------------- errors
def _one_line(errors: list[dict[str, Any]]) -> tuple[int, str]:
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
        status, msg = _one_line(list(exc.errors()))
        return JSONResponse({"detail": msg}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    app.add_middleware(BodyLimit, max_bytes=limits.max_request_bytes)

    # ------------------------------------------------------------------ dependencies
    def session() -> Iterator[Session]:
        with svc.sessions() as s:
            yield s

    def tenant(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        s: Annotated[Session, Depends(session)],
    ) -> TenantRef:
        if creds is None or not creds.credentials:
            raise HTTPException(
                401, "missing API key: send Authorization: Bearer KEY", {"WWW-Authenticate": "Bearer"}
            )
        t = svc.keys.lookup(s, creds.credentials)
        if t is None:
            raise HTTPException(401, "unknown API key", {"WWW-Authenticate": "Bearer"})
        return t

    DB = Annotated[Session, Depends(session)]
    WaitQuery = Annotated[
        float,
        Query(ge=0, description=f"seconds to wait for the job to finish (at most {cfg.worker.max_wait_s:g})"),
    ]
    Auth = Annotated[TenantRef, Depends(tenant)]

    def get_user(s: Session, t: TenantRef, user_id: str) -> EndUser:
        u = s.get(EndUser, user_id)
        if u is None or u.tenant_id != t.id:
            raise not_found("end user", user_id)
        return u

    def get_image(s: Session, t: TenantRef, image_id: str) -> StoredImage:
        im = s.get(StoredImage, image_id)
        if im is None or im.tenant_id != t.id:
            raise not_found("image", image_id)
        return im

    def user_out(s: Session, u: EndUser) -> UserOut:
        count = s.scalar(select(func.count()).select_from(HistoryItem).where(HistoryItem.user_id == u.id))
        return UserOut(id=u.id, name=u.name, created_at=utc(u.created_at), history_count=int(count or 0))

    def image_out(im: StoredImage) -> ImageOut:
        return ImageOut(id=im.id, url=image_url(im.id), width=im.width, height=im.height, kind=im.kind)

    def history_rows(s: Session, user_id: str) -> list[tuple[HistoryItem, StoredImage]]:
        q = (
            select(HistoryItem, StoredImage)
            .join(StoredImage, StoredImage.id == HistoryItem.image_id)
            .where(HistoryItem.user_id == user_id)
            .order_by(HistoryItem.position, HistoryItem.id)
        )
        return [(h, im) for h, im in s.execute(q).all()]

    def read_uploads(files: list[UploadFile]) -> list[Any]:
        """Check every file before any is stored: one bad file refuses the whole request."""
        if len(files) > limits.max_files_per_upload:
            raise bad(
                413, f"{len(files)} files in one upload, over the limit of {limits.max_files_per_upload}"
            )
        checked = []
        for i, f in enumerate(files):
            data = f.file.read(limits.max_upload_bytes + 1)  # one byte more tells "over the limit"
            label = f"file {i + 1}" + (f" ({f.filename[:80]})" if f.filename else "")
            try:
                checked.append(check_image(data, limits, label))
            except UploadError as e:
                raise bad(e.status, str(e)) from e
        return checked

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

    def job_out(s: Session, job: Job) -> JobOut:
        weights = job.weights or [None] * len(job.history_ids)
        influence = job.influence or [None] * len(job.history_ids)
        return JobOut(
            id=job.id,
            status=job.status,
            run=job.run,
            user_id=job.user_id,
            prompt=job.prompt,
            n=job.n,
            seed=job.seed,
            explain=bool(job.explain),
            reference=ImageRef(id=job.reference_id, url=image_url(job.reference_id)),
            history=[
                HistoryEntryOut(image_id=i, url=image_url(i), weight=w, influence=inf)
                for i, w, inf in zip(job.history_ids, weights, influence)
            ],
            images=[ImageRef(id=i, url=image_url(i)) for i in job.output_ids or []],
            error=job.error,
            created_at=utc(job.created_at),
            started_at=utc(job.started_at),
            finished_at=utc(job.finished_at),
            batch_images=job.batch_images,
            sample_ms=job.sample_ms,
        )

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
                    "instruction": sampler.model.instruction,
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
        rows = history_rows(s, u.id)
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
            for h, im in history_rows(s, u.id)
        ]

    @app.delete("/v1/users/{user_id}/history/{image_id}", status_code=204, tags=["users"])
    def delete_history_image(user_id: str, image_id: str, t: Auth, s: DB) -> Response:
        """Remove one image from the history (and its file, when nothing else uses it)."""
        u = get_user(s, t, user_id)
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

    # ------------------------------------------------------------------ generation
    @app.post("/v1/generate", status_code=202, tags=["generate"])
    def generate(body: GenerateIn, t: Auth, s: DB, response: Response, wait: WaitQuery = 0.0) -> JobOut:
        """Queue a generation (202); poll GET /v1/jobs/{id}, or pass ?wait=S to have the reply wait
        for the job (200 once it finished)."""
        run = body.run if body.run is not None else (svc.run_names[0] if svc.run_names else None)
        if run not in svc.samplers:
            raise bad(422, f"run: unknown run {run!r}; served: {', '.join(svc.run_names) or 'none'}")
        if not 1 <= body.n <= limits.max_n:
            raise bad(422, f"n: {body.n} is outside 1..{limits.max_n}")
        if not 0 <= body.seed <= limits.max_seed:
            raise bad(422, f"seed: {body.seed} is outside 0..{limits.max_seed}")
        if body.prompt is not None and len(body.prompt) > limits.max_prompt_chars:
            raise bad(
                422, f"prompt: {len(body.prompt)} characters, over the limit of {limits.max_prompt_chars}"
            )
        if (body.user_id is None) == (body.history is None):
            raise bad(422, "give exactly one of user_id (the end user's history) and history (image ids)")
        get_image(s, t, body.reference)
        if body.user_id is not None:
            u = get_user(s, t, body.user_id)
            history = [im.id for _, im in history_rows(s, u.id)]
            if not history:
                raise bad(422, f"end user {u.id!r} has an empty history; upload history images first")
        else:
            history = list(body.history or [])
            if not history:
                raise bad(422, "history: empty; give at least one image id")
            if len(history) > limits.max_history:
                raise bad(422, f"history: {len(history)} images, over the limit of {limits.max_history}")
            for i in history:
                get_image(s, t, i)
        sampler = svc.samplers[run]
        job = Job(
            tenant_id=t.id,
            user_id=body.user_id,
            run=run,
            status=QUEUED,
            prompt=body.prompt if body.prompt is not None else sampler.model.instruction,
            n=body.n,
            seed=body.seed,
            explain=body.explain,
            reference_id=body.reference,
            history_ids=history[-sampler.history_len :],  # the most recent k, as the run was trained
        )
        s.add(job)
        s.commit()
        svc.worker.notify()
        out = wait_for(s, t, job.id, wait)
        if out.status in (DONE, FAILED):
            response.status_code = 200
        return out

    def wait_for(s: Session, t: TenantRef, job_id: str, wait: float) -> JobOut:
        """The job, once it is done or failed or `wait` seconds (at most max_wait_s) have passed."""
        deadline = time.monotonic() + min(wait, cfg.worker.max_wait_s)
        event = svc.waiter(job_id) if wait > 0 else None
        try:
            while True:
                s.expire_all()
                job = s.get(Job, job_id)
                if job is None or job.tenant_id != t.id:
                    raise not_found("job", job_id)
                left = deadline - time.monotonic()
                if job.status in (DONE, FAILED) or left <= 0 or event is None:
                    return job_out(s, job)
                s.rollback()  # end the read transaction: the worker's commit must be visible next time
                # the worker sets the event after its commit; had it finished before we registered,
                # the read above (made after registering) would have seen it
                event.wait(left)
        finally:
            if event is not None:
                svc.drop_waiter(job_id)

    @app.get("/v1/jobs/{job_id}", tags=["generate"])
    def read_job(job_id: str, t: Auth, s: DB, wait: WaitQuery = 0.0) -> JobOut:
        """The job's status; when done, its images and each history image's weight (and influence)."""
        return wait_for(s, t, job_id, wait)

    @app.get("/v1/jobs", tags=["generate"])
    def list_jobs(
        t: Auth,
        s: DB,
        user_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> list[JobOut]:
        """The tenant's most recent jobs (of one end user with ?user_id=)."""
        q = select(Job).where(Job.tenant_id == t.id)
        if user_id is not None:
            get_user(s, t, user_id)
            q = q.where(Job.user_id == user_id)
        return [job_out(s, j) for j in s.scalars(q.order_by(Job.created_at.desc()).limit(limit))]

    return app
