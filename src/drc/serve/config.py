"""The service's settings: where its data lives, which runs it serves, and the limits of a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from drc.precision import Device, Precision


@dataclass
class Limits:
    """What one request may ask for. Every bad input is refused with a 4xx before anything is stored."""

    max_upload_bytes: int = 8 * 1024 * 1024  # one uploaded image file
    # decoded size: a 40 KB PNG can declare 50000 x 50000 pixels (a decompression bomb); the header is
    # checked against this before any pixel is decoded
    max_pixels: int = 16_000_000
    # declared pixels of all the images of one request, summed from their headers before any is decoded
    max_request_pixels: int = 64_000_000
    # images decoded at once, across all requests: a decode costs ~0.05 s of CPU per megapixel
    decode_workers: int = 2
    max_history: int = 64  # stored history images per end user, and images in an explicit history
    max_files_per_upload: int = 32
    # a whole request body: a declared Content-Length over it is refused unread, and a body is refused
    # the moment the bytes received pass it (chunked bodies declare no length)
    max_request_bytes: int = 64 * 1024 * 1024
    max_json_bytes: int = 1024 * 1024  # a JSON body (a generate request is well under 10 KB)
    max_n: int = 16  # images per generate request
    max_prompt_chars: int = 200
    max_name_chars: int = 100  # end user and tenant names
    max_seed: int = 2**31 - 1
    # the stored copy of an upload is at most this many pixels on its longer side: runs draw at 64-96 px,
    # and keeping a 16-megapixel original would only cost disk and decode time
    store_max_side: int = 1024


@dataclass
class Quotas:
    """What one tenant may hold at once, unless `drc serve tenant limits` set its own. Past a quota a
    request answers 429 with Retry-After (queued jobs: until one finishes; the others: until the
    tenant deletes something)."""

    max_queued_jobs: int = 32  # jobs queued or running
    max_images: int = 100_000  # uploads and outputs
    max_stored_bytes: int = 5 * 1024**3
    max_end_users: int = 10_000


@dataclass
class WorkerConfig:
    """How the queue worker forms sampling batches."""

    batching: bool = True  # False: one job per sampling batch (the load check's baseline)
    max_batch_images: int = 32  # images (rows) of one sampling batch
    # gather a batch until no request has arrived for gather_ms (or it is full), waiting at most
    # max_gather_ms: requests sent together are sampled together (see Worker._gather)
    gather_ms: float = 5.0
    max_gather_ms: float = 50.0
    poll_s: float = 1.0  # also look at the database this often (jobs queued by another process)
    token_cache: int = 4096  # tokenized images kept per run (history images are reused across requests)
    max_wait_s: float = 30.0  # the longest `GET /v1/jobs/{id}?wait=S` holds a request open
    heartbeat_s: float = 5.0  # a worker writes its heartbeat this often (and looks for dead workers' jobs)
    # a worker silent this long is taken for dead: its running jobs are queued again for another
    # worker. Far above heartbeat_s, since a heartbeat may wait behind the database lock of a long write
    stale_s: float = 60.0
    # a job cut off by a stopped worker is queued again this many times; cut off once more, it fails
    # (a job that kills every worker that takes it must not take the whole pool down in turn)
    max_retries: int = 1
    purge_every_s: float = 3600.0  # how often old outputs are purged (with ServeConfig.retention_days)


@dataclass
class ServeConfig:
    """Everything `drc serve` needs; `runs` maps a run name (as requests name it) to its folder."""

    data_dir: Path = Path("drc_serve")
    db_url: str | None = None  # None: SQLite file data_dir/drc.sqlite3
    runs: dict[str, str] = field(default_factory=dict)
    device: Device = "auto"
    precision: Precision | None = None  # auto | bf16 | fp32 for sampling; None: each run's own (config.yaml)
    limits: Limits = field(default_factory=Limits)
    quotas: Quotas = field(default_factory=Quotas)
    # generated images older than this many days are deleted (rows and files); None: kept for good
    retention_days: float | None = None
    # all: API and queue worker in this process; api: the API only (workers elsewhere take its jobs);
    # worker: the queue worker only. Several processes share one database (PostgreSQL) and one
    # data folder (the image files: a shared folder when they run on several machines)
    role: Literal["all", "api", "worker"] = "all"
    worker: WorkerConfig = field(default_factory=WorkerConfig)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.data_dir / 'drc.sqlite3').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"
