"""The generation routes: queue a job (POST /v1/generate), read it (long-poll with ?wait=), list jobs.

(No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time; Svc, DB
and Auth are the `Annotated[..., Depends()]` aliases of auth.py.)
"""

import time
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from drc.serve import pgnotify, quotas
from drc.serve.auth import DB, Auth, Svc, TenantRef
from drc.serve.errors import bad, not_found
from drc.serve.queries import get_image, get_user, is_id, user_history
from drc.serve.schemas import GenerateIn, JobOut, job_out
from drc.serve.service import Service
from drc.serve.tables import DONE, FAILED, QUEUED, Job

router = APIRouter(tags=["generate"])
WaitQuery = Annotated[
    float,
    Query(
        ge=0, description="seconds to wait for the job to finish (at most the service's worker.max_wait_s)"
    ),
]


def _checked_run(svc: Service, body: GenerateIn) -> str:
    """The run `body` asks for (the first served one by default), once its fields are within the limits."""
    limits = svc.config.limits
    run = body.run if body.run is not None else (svc.run_names[0] if svc.run_names else None)
    if run not in svc.batchers:
        raise bad(422, f"run: unknown run {run!r}; served: {', '.join(svc.run_names) or 'none'}")
    if not 1 <= body.n <= limits.max_n:
        raise bad(422, f"n: {body.n} is outside 1..{limits.max_n}")
    if not 0 <= body.seed <= limits.max_seed:
        raise bad(422, f"seed: {body.seed} is outside 0..{limits.max_seed}")
    if body.prompt is not None and len(body.prompt) > limits.max_prompt_chars:
        raise bad(422, f"prompt: {len(body.prompt)} characters, over the limit of {limits.max_prompt_chars}")
    if (body.user_id is None) == (body.history is None):
        raise bad(422, "give exactly one of user_id (the end user's history) and history (image ids)")
    return run


def _history(svc: Service, s: Session, t: TenantRef, body: GenerateIn) -> list[str]:
    """The history's image ids, oldest first: the end user's, or the ones given (each checked)."""
    if body.user_id is not None:
        u = get_user(s, t, body.user_id)
        history = [im.id for _, im in user_history(s, u.id)]
        if not history:
            raise bad(422, f"end user {u.id!r} has an empty history; upload history images first")
        return history
    history = list(body.history or [])
    if not history:
        raise bad(422, "history: empty; give at least one image id")
    limit = svc.config.limits.max_history
    if len(history) > limit:
        raise bad(422, f"history: {len(history)} images, over the limit of {limit}")
    for i in history:
        get_image(s, t, i)
    return history


@router.post("/v1/generate", status_code=202)
def generate(svc: Svc, body: GenerateIn, t: Auth, s: DB, response: Response, wait: WaitQuery = 0.0) -> JobOut:
    """Queue a generation (202); poll GET /v1/jobs/{id}, or pass ?wait=S to have the reply wait
    for the job (200 once it finished)."""
    run = _checked_run(svc, body)
    get_image(s, t, body.reference)
    history = _history(svc, s, t, body)
    q = quotas.effective(t, svc.config.quotas)
    quotas.check_jobs(s, t, q)
    quotas.check_images(s, t, q, body.n, 0)  # room for its outputs
    batcher = svc.batchers[run]
    job = Job(
        tenant_id=t.id,
        user_id=body.user_id,
        run=run,
        status=QUEUED,
        prompt=body.prompt if body.prompt is not None else batcher.model.prompt,
        n=body.n,
        seed=body.seed,
        explain=body.explain,
        reference_id=body.reference,
        history_ids=history[-batcher.history_len :],  # the most recent k, as the run was trained
    )
    s.add(job)
    pgnotify.notify(s, pgnotify.QUEUED)  # wakes worker processes when this commits
    s.commit()
    if svc.worker is not None:  # a worker of this process; another process's polls the queue
        svc.worker.notify()
    out = wait_for(svc, s, t, job.id, wait)
    if out.status in (DONE, FAILED):
        response.status_code = 200
    return out


def wait_for(svc: Service, s: Session, t: TenantRef, job_id: str, wait: float) -> JobOut:
    """The job, once it is done or failed or `wait` seconds (at most max_wait_s) have passed."""
    deadline = time.monotonic() + min(wait, svc.config.worker.max_wait_s)
    event = svc.waiter(job_id) if wait > 0 else None
    try:
        while True:
            s.expire_all()
            job = s.get(Job, job_id) if is_id(job_id) else None
            if job is None or job.tenant_id != t.id:
                raise not_found("job", job_id)
            left = deadline - time.monotonic()
            if job.status in (DONE, FAILED) or left <= 0 or event is None:
                return job_out(s, job)
            s.rollback()  # end the read transaction: the worker's commit must be visible next time
            # this process's worker sets the event after its commit (had it finished before we
            # registered, the read above would have seen it); a worker in another process sets
            # nothing, so the job is read again every poll_s
            event.wait(min(left, svc.config.worker.poll_s))
    finally:
        if event is not None:
            svc.drop_waiter(job_id)


@router.get("/v1/jobs/{job_id}")
def read_job(svc: Svc, job_id: str, t: Auth, s: DB, wait: WaitQuery = 0.0) -> JobOut:
    """The job's status; when done, its images and each history image's weight (and influence)."""
    return wait_for(svc, s, t, job_id, wait)


@router.get("/v1/jobs")
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
