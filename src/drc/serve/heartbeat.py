"""Worker heartbeats, and failing the running jobs of workers that stopped beating.

Each service process's worker has a row in `workers` whose `heartbeat_at` it refreshes every
`heartbeat_s`; a job it claims records its id. A job is only ever marked failed for being cut off
when its worker's heartbeat is older than `stale_s` (or the worker row is gone), or when the worker
ran on this host and its process is gone (a kill -9 is seen at once, without waiting out `stale_s`):
a second process starting on the same database leaves the first one's running jobs alone.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from drc.serve import pgnotify
from drc.serve.models import FAILED, RUNNING, Job, WorkerRow, utc, utcnow

STOPPED_MESSAGE = "the service stopped while this job was running; submit it again"


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


def recover(sessions: sessionmaker[Session], stale_s: float) -> list[str]:
    """Mark failed every running job whose worker stopped beating more than `stale_s` ago (or left
    no row, or none was recorded: a job of a service older than revision 0003); drop those workers'
    rows. Returns the ids of the jobs failed."""
    cutoff = utcnow() - timedelta(seconds=stale_s)
    with sessions.begin() as s:
        workers = s.execute(select(WorkerRow.id, WorkerRow.heartbeat_at, WorkerRow.host, WorkerRow.pid)).all()
        here = socket.gethostname()[:200]
        live = {w for w, at, host, pid in workers if utc(at) >= cutoff and (host != here or _alive(pid))}
        dead = [w for w, *_ in workers if w not in live]
        running = s.execute(select(Job.id, Job.worker_id).where(Job.status == RUNNING)).all()
        cut_off = [j for j, w in running if w not in live]
        if cut_off:
            s.execute(
                update(Job)
                .where(Job.id.in_(cut_off), Job.status == RUNNING)
                .values(status=FAILED, error=STOPPED_MESSAGE, finished_at=utcnow())
            )
            pgnotify.notify(s, pgnotify.DONE, cut_off)  # their waiters, in whichever API process
        if dead:
            s.execute(delete(WorkerRow).where(WorkerRow.id.in_(dead)))
    return cut_off


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
