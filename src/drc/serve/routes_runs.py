"""The service routes: health (no key), the served runs and their reports.

(No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time; Svc, DB
and Auth are the `Annotated[..., Depends()]` aliases of auth.py.)
"""

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse
from sqlalchemy import func, select

from drc.serve.auth import DB, Auth, Svc
from drc.serve.errors import bad, not_found
from drc.serve.reports import find_report
from drc.serve.service import Service
from drc.serve.tables import QUEUED, Job

router = APIRouter(tags=["service"])


def check_run(svc: Service, name: str) -> None:
    if name not in svc.batchers:
        raise not_found("run", name)


@router.get("/v1/health")
def health(svc: Svc, s: DB) -> dict[str, Any]:
    """Liveness, the served runs, and how many jobs wait (no key needed)."""
    queued = s.scalar(select(func.count()).select_from(Job).where(Job.status == QUEUED))
    return {"ok": True, "runs": svc.run_names, "queued": int(queued or 0)}


@router.get("/v1/runs")
def runs(svc: Svc, t: Auth) -> dict[str, Any]:
    """The served runs (image size, history length, whether a report is there) and the limits."""
    out = []
    for name, batcher in svc.batchers.items():
        h, w = batcher.model.image_size
        out.append(
            {
                "name": name,
                "image_size": [h, w],
                "history_len": batcher.history_len,
                "prompt": batcher.model.prompt,
                "precision": batcher.precision,
                "has_report": find_report(svc.run_dirs[name]) is not None,
            }
        )
    return {"runs": out, "limits": asdict(svc.config.limits)}


@router.get("/v1/runs/{run}/report")
def run_report(run: str, svc: Svc, t: Auth) -> dict[str, Any]:
    """The figures of the run's report.html (SVG charts, methods table, sample grids by index)."""
    check_run(svc, run)
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


@router.get("/v1/runs/{run}/report/grids/{index}", response_class=Response)
def run_report_grid(run: str, index: int, svc: Svc, t: Auth) -> Response:
    check_run(svc, run)
    rep = svc.report(run)
    if rep is None or not 0 <= index < len(rep.grids):
        raise bad(404, f"run {run!r} has no report grid {index}")
    return FileResponse(rep.grids[index][1], media_type="image/png")
