"""Waking other processes at once on PostgreSQL: LISTEN/NOTIFY.

With the API and the workers in several processes, a worker learns of a queued job, and an API
process of a finished one, through PostgreSQL notifications: `notify` in the writer's transaction
(delivered when it commits), a `Listener` thread in the reader. Polling the database every
`WorkerConfig.poll_s` stays underneath, so a lost connection costs latency, never a job. On SQLite
(one process) both are no-ops: the process's own worker wakes its own waiters.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

log = logging.getLogger("drc.serve")

QUEUED = "drc_serve_queued"  # payload: empty
DONE = "drc_serve_done"  # payload: finished job ids, comma-separated
_MAX_PAYLOAD = 7000  # PostgreSQL's limit is 8000 bytes


def notify(s: Session, channel: str, ids: list[str] | None = None) -> None:
    """Notify `channel` when the session's transaction commits (PostgreSQL only)."""
    if s.get_bind().dialect.name != "postgresql":
        return
    ids = list(ids or [])
    chunks = [""] if not ids else []
    while ids:  # a long list goes in several notifications
        part: list[str] = []
        while ids and len(",".join([*part, ids[0]])) <= _MAX_PAYLOAD:
            part.append(ids.pop(0))
        chunks.append(",".join(part or [ids.pop(0)]))
    for payload in chunks:
        s.execute(text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": payload})


class Listener:
    """A thread holding one connection that LISTENs on the channels of `callbacks` and calls
    `callbacks[channel](payload)` for each notification; it reconnects after an error."""

    def __init__(self, engine: Engine, callbacks: dict[str, Callable[[str], None]]) -> None:
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.callbacks = callbacks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drc-serve-listen", daemon=True)
        self.listening = threading.Event()  # set once LISTEN is in place (tests wait on it)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    for channel in self.callbacks:
                        conn.execute(f"LISTEN {channel}")  # our own constant names, not input
                    self.listening.set()
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=1.0):
                            self.callbacks[n.channel](n.payload)
            except Exception:  # noqa: BLE001 - polling covers the gap; retry the connection
                self.listening.clear()
                log.warning("drc serve: LISTEN connection lost; retrying", exc_info=True)
                self._stop.wait(1.0)
