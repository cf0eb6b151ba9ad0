"""Worker heartbeats, and taking back the running jobs of workers that stopped beating.

Each service process's worker has a row in `workers` whose `heartbeat_at` it refreshes every
`heartbeat_s`; a job it claims records its id. A job is only ever taken from its worker when the
worker's heartbeat is older than `stale_s` (or the worker row is gone), or when the worker ran on
this host and its process is gone (a kill -9 is seen at once, without waiting out `stale_s`): a second
process starting on the same database leaves the first one's running jobs alone.

A job taken back is queued again for any live worker (its finished parts are kept: a job served in
parts goes on from `images_done`), and counts a retry; one cut off more than `max_retries` times is
failed with the reason. A worker taken for dead that was only slow finds, when it finishes, that the
job is no longer its own, and stores nothing (worker.py): no job is done twice.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from drc.serve import pgnotify
from drc.serve.tables import FAILED, QUEUED, RUNNING, Job, WorkerRow, utc, utcnow

STOPPED_MESSAGE = "the worker serving this job stopped, {times} times; submit it again"


def stopped_message(times: int) -> str:
    """What a tenant reads on a job failed because its workers kept stopping."""
    return STOPPED_MESSAGE.format(times=times)


@dataclass
class Recovered:
    """The running jobs of stopped workers: queued again, or (out of retries) failed."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def register(sessions: sessionmaker[Session]) -> str:
    """Add this process's worker row; returns its id."""
    with sessions.begin() as s:
        row = WorkerRow(host=socket.gethostname()[:200], pid=os.getpid())
        s.add(row)
        s.flush()
        return row.id


def beat(sessions: sessionmaker[Session], worker_id: str) -> None:
    """Refresh the heartbeat (and re-add the row, had another process taken it for dead)."""
    with sessions.begin() as s:
        row = s.get(WorkerRow, worker_id)
        if row is None:
            s.add(WorkerRow(id=worker_id, host=socket.gethostname()[:200], pid=os.getpid()))
        else:
            row.heartbeat_at = utcnow()


def unregister(sessions: sessionmaker[Session], worker_id: str) -> None:
    with sessions.begin() as s:
        s.execute(delete(WorkerRow).where(WorkerRow.id == worker_id))


def recover(sessions: sessionmaker[Session], stale_s: float, max_retries: int = 1) -> Recovered:
    """Take back every running job whose worker stopped beating more than `stale_s` ago (or left no
    row, or none was recorded: a job of a service older than revision 0003): queue it again, or fail
    it when it was already retried `max_retries` times; drop those workers' rows."""
    cutoff = utcnow() - timedelta(seconds=stale_s)
    out = Recovered()
    with sessions.begin() as s:
        workers = s.execute(select(WorkerRow.id, WorkerRow.heartbeat_at, WorkerRow.host, WorkerRow.pid)).all()
        here = socket.gethostname()[:200]
        live = {w for w, at, host, pid in workers if utc(at) >= cutoff and (host != here or _alive(pid))}
        dead = [w for w, *_ in workers if w not in live]
        running = s.execute(select(Job.id, Job.worker_id, Job.retries).where(Job.status == RUNNING)).all()
        tries, gone = {}, set()
        for job_id, worker, retries in running:
            if worker not in live:
                tries[job_id] = (retries or 0) + 1
                gone.add(worker)
                (out.requeued if tries[job_id] <= max_retries else out.failed).append(job_id)
        # still held by the stopped worker: not requeued and already claimed by a live one meanwhile
        # (another worker's recover may have run between the read above and these updates)
        still_held = or_(Job.worker_id.in_(gone - {None}), Job.worker_id.is_(None))
        if out.requeued:
            s.execute(
                update(Job)
                .where(Job.id.in_(out.requeued), Job.status == RUNNING, still_held)
                .values(status=QUEUED, worker_id=None, retries=Job.retries + 1)
            )
            pgnotify.notify(s, pgnotify.QUEUED)  # wakes the worker processes
        for job_id in out.failed:  # each its own count in the message
            s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == RUNNING, still_held)
                .values(status=FAILED, error=stopped_message(tries[job_id]), finished_at=utcnow())
            )
        if out.failed:
            pgnotify.notify(s, pgnotify.DONE, out.failed)  # their waiters, in whichever API process
        if dead:
            s.execute(delete(WorkerRow).where(WorkerRow.id.in_(dead)))
    return out


def _alive(pid: int) -> bool:
    """Is process `pid` of this host running? (A reused pid reads as alive: then the heartbeat's age
    decides, as for a worker on another host.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # running, as another user
        return True
    return True
