"""The proof-of-concept KPIs of a tenant, per run: how end users react to the outputs (the share they
keep) and how much work an output saves (time to the first kept image, images generated per kept one).

They are read from two tables: `jobs` (what was generated: `images_done` per job) and `feedback` (the
verdict in force on each output, and since when it is kept). Every figure that divides by zero is
null: no verdicts yet is not a share of 0.

(No `from __future__ import annotations`: pydantic reads KpiRow's annotations at run time.)
"""

import csv
import io
import statistics
from collections import defaultdict

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from drc.serve.auth import TenantRef
from drc.serve.tables import DISCARD, KEEP, Feedback, Job, utc


class KpiRow(BaseModel):
    tenant_id: str
    tenant: str
    run: str
    jobs: int = Field(description="generate requests for the run")
    outputs: int = Field(description="images generated")
    judged: int = Field(description="outputs with a verdict in force (kept + discarded)")
    kept: int
    discarded: int
    kept_share_of_judged: float | None = Field(description="kept / judged: of the outputs users judged")
    kept_share_of_outputs: float | None = Field(description="kept / outputs: of every output generated")
    jobs_with_keep: int = Field(description="jobs with at least one kept output")
    median_s_to_first_keep: float | None = Field(
        description="median, over jobs_with_keep, of seconds from a job's creation to its first kept output"
    )
    outputs_per_kept: float | None = Field(description="outputs / kept: images generated per kept image")


def _ratio(a: float, b: float, digits: int = 4) -> float | None:
    return round(a / b, digits) if b else None


def kpi_rows(s: Session, t: TenantRef, run: str | None = None) -> list[KpiRow]:
    """The tenant's KPIs, one row per run it generated with (only `run` when given), by run name."""
    jobs_q = (
        select(Job.run, func.count(), func.coalesce(func.sum(Job.images_done), 0))
        .where(Job.tenant_id == t.id)
        .group_by(Job.run)
    )
    verdict_q = (
        select(Job.run, Feedback.verdict, func.count())
        .join(Job, Job.id == Feedback.job_id)
        .where(Feedback.tenant_id == t.id, Job.tenant_id == t.id)
        .group_by(Job.run, Feedback.verdict)
    )
    # one row per job with a kept output: its creation and its earliest output kept now
    first_q = (
        select(Job.run, Job.created_at, func.min(Feedback.kept_at))
        .join(Job, Job.id == Feedback.job_id)
        .where(Feedback.tenant_id == t.id, Job.tenant_id == t.id, Feedback.verdict == KEEP)
        .group_by(Job.id, Job.run, Job.created_at)
    )
    if run is not None:
        jobs_q, verdict_q, first_q = (q.where(Job.run == run) for q in (jobs_q, verdict_q, first_q))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {KEEP: 0, DISCARD: 0})
    for r, verdict, n in s.execute(verdict_q).all():
        counts[r][verdict] = int(n)
    waits: dict[str, list[float]] = defaultdict(list)
    for r, created, kept in s.execute(first_q).all():
        if kept is not None:
            waits[r].append((utc(kept) - utc(created)).total_seconds())
    rows = []
    for r, jobs, outputs in sorted(s.execute(jobs_q).all()):
        kept, discarded, outputs = counts[r][KEEP], counts[r][DISCARD], int(outputs)
        rows.append(
            KpiRow(
                tenant_id=t.id,
                tenant=t.name,
                run=r,
                jobs=int(jobs),
                outputs=outputs,
                judged=kept + discarded,
                kept=kept,
                discarded=discarded,
                kept_share_of_judged=_ratio(kept, kept + discarded),
                kept_share_of_outputs=_ratio(kept, outputs),
                jobs_with_keep=len(waits[r]),
                median_s_to_first_keep=round(statistics.median(waits[r]), 3) if waits[r] else None,
                outputs_per_kept=_ratio(outputs, kept, 3),
            )
        )
    return rows


def kpi_csv(rows: list[KpiRow]) -> str:
    """The rows as CSV with a header (KpiRow's field names); a null is an empty cell."""
    buf = io.StringIO()
    fields = list(KpiRow.model_fields)
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for row in rows:
        d = row.model_dump()
        w.writerow(["" if d[f] is None else d[f] for f in fields])
    return buf.getvalue()
