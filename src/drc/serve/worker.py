"""The queue worker: jobs are rows in the database; one thread takes the oldest queued job, adds every
other queued job of the same run that fits into one sampling batch, and samples them together.

Why a database queue and not an in-memory one: a job survives a restart (a queued job is served
after it). A claimed job records its worker, and the worker beats (heartbeat.py): a job whose worker
stopped beating is queued again for another worker (failed after `max_retries`), at start-up and by
every live worker as it beats, so no job is lost or reported as running forever, and a second process
on the same database leaves the first one's jobs alone. A worker stores a job's outputs only while
the job is still its own. Any failure after a claim marks the claimed jobs failed and wakes their
waiters.
(Claims use `SELECT ... FOR UPDATE SKIP LOCKED` where the database has it, PostgreSQL, so a claim is
never taken twice; SQLite serializes writers anyway.)

With batching off (`WorkerConfig.batching = False`) every job is sampled on its own: the load check's
baseline.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable

import numpy as np
from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from drc.serve import heartbeat, pgnotify
from drc.serve.batcher import RunBatcher, SampleRequest
from drc.serve.config import WorkerConfig
from drc.serve.heartbeat import STOPPED_MESSAGE, recover, stopped_message  # noqa: F401 - this module's interface
from drc.serve.retention import purge_outputs
from drc.serve.scheduling import Claim, FairQueue
from drc.serve.storage import BlobStore
from drc.serve.tables import DONE, FAILED, QUEUED, RUNNING, Job, StoredImage, new_id, utc, utcnow

log = logging.getLogger("drc.serve")

# what a tenant reads when a job fails inside the service: the exception itself goes to the log only
INTERNAL_MESSAGE = "generation failed: an internal error (the service log has the details); submit it again"


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


class Worker:
    """Serves queued jobs in a background thread; `notify()` wakes it when a job is queued."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: BlobStore,
        batchers: dict[str, RunBatcher],
        cfg: WorkerConfig,
        on_done: Callable[[list[str]], None] | None = None,
        retention_days: float | None = None,
    ) -> None:
        self.sessions, self.store, self.batchers, self.config = sessions, store, batchers, cfg
        self.on_done = on_done  # called with the ids of jobs that finished (done or failed): wakes long-polls
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beater: threading.Thread | None = None
        self.id: str | None = None  # the workers row, once started
        self._queue = FairQueue()
        self.retention_days = retention_days

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.id = heartbeat.register(self.sessions)
        self._thread = threading.Thread(target=self._loop, name="drc-serve-worker", daemon=True)
        self._beater = threading.Thread(target=self._beat, name="drc-serve-heartbeat", daemon=True)
        self._thread.start()
        self._beater.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        for t in (self._thread, self._beater):
            if t is not None:
                t.join(timeout)
        if self.id is not None and self._thread is not None and not self._thread.is_alive():
            # stopped cleanly (no job of ours is running); else the row goes stale and the next
            # start-up fails what was left running
            heartbeat.unregister(self.sessions, self.id)

    def _beat(self) -> None:
        """Beat, fail dead workers' jobs, and purge old outputs when due (at once, then periodically)."""
        next_purge = time.monotonic()
        while True:
            if self.retention_days is not None and time.monotonic() >= next_purge:
                try:
                    n = purge_outputs(self.sessions, self.store, self.retention_days)
                    if n:
                        log.info("drc serve: %d output image(s) past retention deleted", n)
                except Exception:  # noqa: BLE001 - retried at the next purge
                    log.exception("drc serve: retention purge error")
                next_purge = time.monotonic() + self.config.purge_every_s
            if self._stop.wait(self.config.heartbeat_s):
                return
            try:
                heartbeat.beat(self.sessions, self.id)
                # another process's dead worker: its jobs come back to the queue
                got = heartbeat.recover(self.sessions, self.config.stale_s, self.config.max_retries)
                if got.requeued:
                    log.warning("drc serve: %d job(s) of a stopped worker queued again", len(got.requeued))
                    self.notify()
                if got.failed:
                    log.warning("drc serve: %d job(s) failed: their workers kept stopping", len(got.failed))
                    self._done(got.failed)
            except Exception:  # a database hiccup must not stop the heartbeat; the next beat retries
                log.exception("drc serve: heartbeat error")

    def _done(self, job_ids: list[str]) -> None:
        if self.on_done is not None and job_ids:
            self.on_done(job_ids)

    def notify(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.config.poll_s)
            self._wake.clear()
            try:
                while not self._stop.is_set() and self.step():
                    pass
            except Exception:  # a database hiccup must not kill the worker; the next poll retries
                log.exception("drc serve: worker error")
                time.sleep(self.config.poll_s)

    # ------------------------------------------------------------------ one batch
    def claim(self) -> list[Claim]:
        """Mark the next batch of queued jobs (or parts of jobs) running and return them (empty when
        none is queued); tenants take turns (scheduling.py)."""
        with self.sessions.begin() as s:
            return self._queue.claim(s, set(self.batchers), self.config, self.id)

    def step(self) -> bool:
        """Serve one batch; False when nothing was queued."""
        if not self._gather():
            return False
        claims = self.claim()
        if not claims:
            return self._queued()
        try:
            self._serve(claims)
        except Exception:  # noqa: BLE001 - whatever broke after the claim, no job may stay running
            log.exception("drc serve: batch failed")
            self._finish_failed([c.job for c in claims], INTERNAL_MESSAGE)
        return True

    def _serve(self, claims: list[Claim]) -> None:
        """Sample the claimed jobs and store their outputs (any exception: the caller fails them)."""
        batcher = self.batchers[claims[0].job.run]
        items, ok, gone = [], [], []
        with self.sessions() as s:
            images = self._images(s, [c.job for c in claims])
        for c in claims:
            try:
                items.append(self._item(images, c, batcher.history_len))
                ok.append(c)
            except LookupError as e:  # an input image was deleted while the job waited
                gone.append((c.job, str(e)))
        for job, err in gone:
            self._finish_failed([job], err)
        if not ok:
            return
        t0 = time.perf_counter()
        results = batcher.run(items)
        ms = (time.perf_counter() - t0) * 1000
        rows = sum(it.rows for it in items)
        log.debug("drc serve: %d job(s), %d rows sampled in %.0f ms", len(ok), rows, ms)
        self._finish_done(ok, results, rows, ms)

    def _gather(self) -> bool:
        """Wait, when batching, for requests arriving together to be queued together: until no job has
        come for `gather_ms` or the batch is full, at most `max_gather_ms`; False: nothing is queued.

        It deliberately does not wait longer for the clients the last batch served to come back: with
        32 closed-loop clients that would fill every batch, but the worker would idle while those
        replies go out and the next requests come in (0.5-0.9 s on 2 loaded cores), and throughput
        fell (measured 10.9 against 12.7 images/s). Left alone, the clients split into two groups
        whose turnarounds overlap the other group's sampling.
        """
        cfg = self.config
        start = time.monotonic()
        while True:
            with self.sessions() as s:
                count, rows, newest = s.execute(
                    select(func.count(), func.sum(Job.n), func.max(Job.created_at)).where(
                        Job.status == QUEUED
                    )
                ).one()
            if not count:
                return False
            if not cfg.batching or cfg.gather_ms <= 0 or int(rows or 0) >= cfg.max_batch_images:
                return True
            quiet = (utcnow() - utc(newest)).total_seconds() * 1000
            waited = (time.monotonic() - start) * 1000
            if quiet >= cfg.gather_ms or waited >= cfg.max_gather_ms:
                return True
            if self._stop.wait(min(cfg.gather_ms - quiet, cfg.max_gather_ms - waited) / 1000):
                return True

    def _queued(self) -> bool:
        with self.sessions() as s:
            return s.scalar(select(Job.id).where(Job.status == QUEUED).limit(1)) is not None

    @staticmethod
    def _images(s: Session, jobs: list[Job]) -> dict[str, StoredImage]:
        """Every input image row of the batch, in one query."""
        ids = {i for job in jobs for i in (*job.history_ids, job.reference_id)}
        return {im.id: im for im in s.scalars(select(StoredImage).where(StoredImage.id.in_(ids)))}

    @staticmethod
    def _item(found: dict[str, StoredImage], claim: Claim, k: int) -> SampleRequest:
        job = claim.job
        ids = [*job.history_ids, job.reference_id]
        missing = [i for i in ids if i not in found or found[i].tenant_id != job.tenant_id]
        if missing:
            raise LookupError(f"input image {missing[0]} was deleted before the job ran")
        return SampleRequest(
            history=[found[i].sha256 for i in job.history_ids][-k:],
            reference=found[job.reference_id].sha256,
            prompt=job.prompt or "",
            n=claim.count,
            seed=job.seed,
            explain=bool(job.explain),
            first=claim.first,
        )

    def _finish_failed(self, jobs: list[Job], error: str) -> None:
        with self.sessions.begin() as s:
            s.execute(
                update(Job)
                .where(Job.id.in_([j.id for j in jobs]), Job.status == RUNNING, Job.worker_id == self.id)
                .values(status=FAILED, error=error[:2000], finished_at=utcnow())
            )
            pgnotify.notify(s, pgnotify.DONE, [j.id for j in jobs])
        self._done([j.id for j in jobs])

    def _finish_done(self, claims: list[Claim], results: list, rows: int, ms: float) -> None:
        """Store every job's images and mark the jobs done (or, a part short of the last, queued
        again), in one transaction for the batch."""
        done = []
        for c, res in zip(claims, results):
            pngs = [png_bytes(im) for im in res.images]
            done.append((c, res, pngs, [self.store.put(p) for p in pngs]))
        finished = []
        with self.sessions.begin() as s:
            now = utcnow()
            ids = [c.job.id for c, *_ in done]
            current = {j.id: j for j in s.scalars(select(Job).where(Job.id.in_(ids)).with_for_update())}
            for c, res, pngs, shas in done:
                job, row = c.job, current.get(c.job.id)
                if row is None or row.status != RUNNING or row.worker_id != self.id:
                    # deleted (with its user) while it ran, or taken back from this worker (taken for
                    # dead: another worker serves it): its outputs go nowhere, nor do their files
                    for h in shas:
                        if s.scalar(select(StoredImage.id).where(StoredImage.sha256 == h).limit(1)) is None:
                            self.store.delete(h)
                    continue
                h, w = res.images[0].shape[:2]
                images = [
                    StoredImage(
                        id=new_id("img"),
                        tenant_id=job.tenant_id,
                        user_id=job.user_id,
                        kind="output",
                        sha256=sha,
                        width=w,
                        height=h,
                        size_bytes=len(p),
                        created_at=now,
                    )
                    for p, sha in zip(pngs, shas)
                ]
                s.add_all(images)
                row.output_ids = [*(row.output_ids or [] if c.first else []), *(im.id for im in images)]
                row.weights = res.weights
                row.influence = merge_influence(
                    row.influence if c.first else None, c.first, res.influence, c.count
                )
                row.images_done = c.first + c.count
                row.batch_images = rows
                row.sample_ms = round(((row.sample_ms or 0.0) if c.first else 0.0) + ms, 1)
                if c.last:
                    row.status, row.finished_at = DONE, now
                    finished.append(row.id)
                else:  # back to the queue for its next part, in its tenant's next turn
                    row.status, row.worker_id = QUEUED, None
                    pgnotify.notify(s, pgnotify.QUEUED)
            pgnotify.notify(s, pgnotify.DONE, finished)
        for _, _, pngs, _ in done:  # a user deleted meanwhile may have removed a shared file: put it back
            for p in pngs:
                self.store.put(p)
        self._done(finished)


def merge_influence(
    before: list[dict[str, float]] | None, n_before: int, part: list[dict[str, float]] | None, n_part: int
) -> list[dict[str, float]] | None:
    """The influence of a job's first n_before images merged with the next part's: the pixel distance
    is a mean over images (so an image-weighted mean); the draft distance does not depend on images."""
    if before is None or part is None:
        return part
    total = n_before + n_part
    return [
        {"pixel": round((b["pixel"] * n_before + p["pixel"] * n_part) / total, 3), "draft": p["draft"]}
        for b, p in zip(before, part)
    ]
