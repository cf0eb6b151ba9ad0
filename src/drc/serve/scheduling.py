"""Which queued jobs the next sampling batch takes: tenants in turn, and big jobs in parts.

- **Tenants in turn.** The batch starts with the oldest queued job of the tenant this worker served
  least recently (ties: the tenant whose oldest job waited longest), and fills up with queued jobs of
  the same run taken round-robin across tenants, each tenant's oldest first. A tenant that queues a
  hundred jobs gets one turn in each round like a tenant that queues one.
- **Big jobs in parts.** A job costs `n x (1 + L)` sampling rows when it explains an L-image history
  (its leave-one-out variants). One that does not fit the space left takes as many of its images as
  fit; the rest go back to the queue (`Job.images_done` says how far it got) and wait for their
  tenant's next turn, so no job holds a batch, or the queue, to itself. Image i of a job is sampled
  from its own random stream (seed, the job's inputs, i) whichever part it falls in.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from drc.serve.config import WorkerConfig
from drc.serve.tables import FAILED, QUEUED, RUNNING, Job, utc, utcnow


def rows_per_image(job: Job) -> int:
    """Sampling rows one image of the job costs: itself, and one per left-out variant when explaining."""
    k = len(job.history_ids)
    return 1 + (k if job.explain and k >= 2 else 0)


@dataclass
class Claim:
    """A claimed part of a job: its images first .. first + count - 1."""

    job: Job
    first: int
    count: int

    @property
    def rows(self) -> int:
        return self.count * rows_per_image(self.job)

    @property
    def last(self) -> bool:
        """Does this part finish the job?"""
        return self.first + self.count >= self.job.n


def _part(job: Job, space: int, at_least_one: bool) -> Claim | None:
    first = job.images_done or 0
    count = min(job.n - first, space // rows_per_image(job))
    if count < 1:
        if not at_least_one:
            return None
        count = 1  # a single image over the batch size still has to be served
    return Claim(job, first, count)


class FairQueue:
    """The claim of one worker: remembers which tenants it served when (a turn counter)."""

    def __init__(self) -> None:
        self._turn = 0
        self._last: dict[str, int] = {}  # tenant id -> turn it was last served in

    def claim(self, s: Session, runs: set[str], cfg: WorkerConfig, worker_id: str | None) -> list[Claim]:
        """Lock and mark running the next batch's jobs (inside the caller's transaction)."""
        heads = s.execute(
            select(Job.tenant_id, func.min(Job.created_at))
            .where(Job.status == QUEUED)
            .group_by(Job.tenant_id)
        ).all()
        tenants = [t for t, _ in sorted(heads, key=lambda r: (self._last.get(r[0], 0), utc(r[1])))]
        first = None
        for tenant in tenants:
            first = s.scalars(
                select(Job)
                .where(Job.status == QUEUED, Job.tenant_id == tenant)
                .order_by(Job.created_at, Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)  # another worker's claim: try the next tenant
            ).first()
            if first is not None:
                break
        if first is None:
            return []
        if first.run not in runs:
            first.status, first.error, first.finished_at = (
                FAILED,
                f"run {first.run!r} is not served",
                utcnow(),
            )
            return []
        claims = [_part(first, cfg.max_batch_images, at_least_one=True)]
        space = cfg.max_batch_images - claims[0].rows
        if cfg.batching and claims[0].last and space > 0:
            # each tenant's oldest jobs of the run (at most a batch's worth of tenants: each round
            # takes one job of each, and one round of that many fills any batch)
            more = [
                job
                for tenant in tenants[: cfg.max_batch_images]
                for job in s.scalars(
                    select(Job)
                    .where(
                        Job.status == QUEUED,
                        Job.run == first.run,
                        Job.tenant_id == tenant,
                        Job.id != first.id,
                    )
                    .order_by(Job.created_at, Job.id)
                    .limit(cfg.max_batch_images)
                    .with_for_update(skip_locked=True)
                )
            ]
            for job in _round_robin(more, tenants, after=first.tenant_id):
                c = _part(job, space, at_least_one=False)
                if c is None:
                    break  # a later job does not jump one that waits for space
                claims.append(c)
                space -= c.rows
                if not c.last or space <= 0:
                    break
        self._turn += 1
        now = utcnow()
        for c in claims:
            self._last[c.job.tenant_id] = self._turn
            c.job.status, c.job.worker_id = RUNNING, worker_id
            c.job.started_at = c.job.started_at or now
        return claims


def _round_robin(jobs: list[Job], tenants: list[str], after: str) -> list[Job]:
    """`jobs` (oldest first) reordered one per tenant per round, tenants in `tenants`' order
    starting after `after` (which the batch already served once)."""
    by_tenant: dict[str, list[Job]] = defaultdict(list)
    for j in jobs:
        by_tenant[j.tenant_id].append(j)
    order = [t for t in tenants if t in by_tenant]
    order += [t for t in by_tenant if t not in order]
    if after in order:
        i = order.index(after)
        order = order[i + 1 :] + order[: i + 1]
    out: list[Job] = []
    while any(by_tenant[t] for t in order):
        out.extend(by_tenant[t].pop(0) for t in order if by_tenant[t])
    return out
