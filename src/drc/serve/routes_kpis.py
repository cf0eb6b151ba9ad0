"""The proof-of-concept routes: an end user's verdict on an output (POST /v1/jobs/{id}/feedback) and
the tenant's KPIs per run (GET /v1/kpis, as JSON or CSV; kpis.py computes them).

(No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time; Svc, DB
and Auth are the `Annotated[..., Depends()]` aliases of auth.py.)
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from drc.serve.auth import DB, Auth, TenantRef
from drc.serve.errors import bad
from drc.serve.kpis import KpiRow, kpi_csv, kpi_rows
from drc.serve.queries import get_job
from drc.serve.schemas import FeedbackIn, FeedbackOut, feedback_out
from drc.serve.tables import KEEP, Feedback, Job, utcnow

router = APIRouter(tags=["kpis"])
RunQuery = Annotated[str | None, Query(max_length=200, description="only this run")]


def _output_index(job: Job, image: int | str) -> int:
    outputs = job.output_ids or []
    if isinstance(image, int):
        if image >= len(outputs):
            raise bad(422, f"image: index {image} is past the job's {len(outputs)} output(s)")
        return image
    if image not in outputs:
        raise bad(422, f"image: {image!r} is not an output of job {job.id!r}")
    return outputs.index(image)


def _record(s: Session, t: TenantRef, job: Job, index: int, verdict: str) -> Feedback:
    """Set the verdict on output `index` (the last one wins) and commit."""
    now = utcnow()
    row = s.scalar(select(Feedback).where(Feedback.job_id == job.id, Feedback.image_index == index))
    if row is None:
        row = Feedback(
            tenant_id=t.id,
            job_id=job.id,
            image_index=index,
            image_id=job.output_ids[index],
            verdict=verdict,
            kept_at=now if verdict == KEEP else None,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
    else:
        if verdict != KEEP:
            row.kept_at = None
        elif row.verdict != KEEP:  # kept since now; a repeated keep does not move it
            row.kept_at = now
        row.verdict, row.updated_at = verdict, now
    s.commit()
    return row


@router.post("/v1/jobs/{job_id}/feedback")
def give_feedback(job_id: str, body: FeedbackIn, t: Auth, s: DB) -> FeedbackOut:
    """Keep or discard one output of a job (by index or image id); a later verdict replaces it."""
    job = get_job(s, t, job_id)
    index = _output_index(job, body.image)
    try:
        row = _record(s, t, job, index, body.verdict)
    except IntegrityError:  # a verdict on the same output committed in between: update it instead
        s.rollback()
        row = _record(s, t, get_job(s, t, job_id), index, body.verdict)
    return feedback_out(row)


def _rows(s: Session, t: TenantRef, run: str | None) -> list[KpiRow]:
    if run is not None and "\x00" in run:
        raise bad(422, "run: must not contain NUL characters")
    return kpi_rows(s, t, run)


def _as_csv(data: list[KpiRow]) -> Response:
    return Response(
        kpi_csv(data),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="kpis.csv"'},
    )


@router.get("/v1/kpis", response_model=list[KpiRow])
def kpis(t: Auth, s: DB, run: RunQuery = None, format: Literal["json", "csv"] = "json") -> Any:  # noqa: A002
    """The tenant's KPIs per run: outputs kept and discarded, the share kept, the median time to a
    job's first kept output, images generated per kept image (`?format=csv`: as CSV)."""
    data = _rows(s, t, run)
    return _as_csv(data) if format == "csv" else data


@router.get("/v1/kpis.csv", response_class=Response)
def kpis_csv(t: Auth, s: DB, run: RunQuery = None) -> Response:
    """The same rows as CSV, with a header."""
    return _as_csv(_rows(s, t, run))
