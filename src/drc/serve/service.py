"""The service state the routes share: config, database, file store, the served runs and the worker."""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from drc.serve import db, pgnotify
from drc.serve.config import ServeConfig
from drc.serve.reports import Report, find_report, load_report
from drc.serve.storage import BlobStore

log = logging.getLogger("drc.serve")


class Service:
    """What the routes share: config, database, file store, the served runs and the worker."""

    def __init__(self, cfg: ServeConfig, models: dict[str, Any] | None = None) -> None:
        self.config = cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = db.make_engine(cfg.database_url)
        self.sessions = db.session_factory(self.engine)
        self.store = BlobStore(cfg.blob_dir)
        self._models = models
        self.batchers: dict[str, Any] = {}
        self.run_dirs: dict[str, Path] = {}
        self.worker = None
        self.listener = None
        # uploads decode here, a few at a time, not in the 200 request threads
        self.decode_pool = ThreadPoolExecutor(cfg.limits.decode_workers, thread_name_prefix="drc-decode")
        # long-polls: a request waiting for job J waits on waiters[J], which the worker sets when J
        # finishes; only that request wakes, not every waiting one
        self._waiters: dict[str, tuple[threading.Event, int]] = {}  # job id -> (event, requests waiting)
        self._waiters_lock = threading.Lock()

    @property
    def run_names(self) -> list[str]:
        return list(self._models) if self._models is not None else list(self.config.runs)

    def start(self) -> None:
        from drc.serve.batcher import RunBatcher
        from drc.serve.worker import Worker, recover

        db.upgrade(self.engine)
        got = recover(self.sessions, self.config.worker.stale_s, self.config.worker.max_retries)
        if got.requeued or got.failed:
            log.warning(
                "drc serve: jobs a stopped worker left running: %d queued again, %d failed (out of retries)",
                len(got.requeued),
                len(got.failed),
            )
        if self._models is None:
            import drc.api as api

            self._models = {
                name: api.load(path, device=self.config.device) for name, path in self.config.runs.items()
            }
        for name, model in self._models.items():
            self.batchers[name] = RunBatcher(
                model, self.store.read, self.config.worker.token_cache, self.config.precision
            )
            batcher = self.batchers[name]
            log.info(
                "drc serve: run %s samples in %s (%s)", name, batcher.precision, batcher.precision_reason
            )
            self.run_dirs[name] = Path(model.paths.root)
        if self.engine.dialect.name == "postgresql":  # other processes' queued and finished jobs
            self.listener = pgnotify.Listener(
                self.engine, {pgnotify.QUEUED: self._job_queued, pgnotify.DONE: self._done_notified}
            )
            self.listener.start()
        if self.config.role == "api":
            return  # the jobs this process queues are taken by worker processes
        self.worker = Worker(
            self.sessions,
            self.store,
            self.batchers,
            self.config.worker,
            on_done=self._job_done,
            retention_days=self.config.retention_days,
        )
        self.worker.start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.listener is not None:
            self.listener.stop()
        self.decode_pool.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()

    def _job_queued(self, _payload: str) -> None:
        if self.worker is not None:
            self.worker.notify()

    def _done_notified(self, payload: str) -> None:
        self._job_done([i for i in payload.split(",") if i])

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
