"""Helpers of the service tests (imported by name: the test folders are not packages)."""

from __future__ import annotations

import contextlib
import io
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from drc.serve.app import create_app
from drc.serve.config import Limits, Quotas, ServeConfig, WorkerConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------- apps and clients
@dataclass
class Served:
    """A running app with its TestClient, config and tenants' keys."""

    client: TestClient
    config: ServeConfig
    app: object

    @property
    def service(self):  # noqa: ANN201
        return self.app.state.service

    def tenant(self, name: str = "acme") -> dict[str, str]:
        """A new tenant; returns its Authorization header."""
        from drc.serve.auth import create_tenant

        with self.service.sessions() as s:
            _, key = create_tenant(s, name)
        return {"Authorization": f"Bearer {key}"}

    def state(self) -> dict[str, object]:
        """Everything stored: row counts of every table and the set of image files."""
        from sqlalchemy import func, select

        from drc.serve.tables import EndUser, HistoryItem, Job, StoredImage, Tenant

        with self.service.sessions() as s:
            counts = {
                m.__tablename__: s.scalar(select(func.count()).select_from(m))
                for m in (Tenant, EndUser, StoredImage, HistoryItem, Job)
            }
        files = sorted(
            str(p.relative_to(self.config.blob_dir)) for p in self.config.blob_dir.rglob("*") if p.is_file()
        )
        return {"rows": counts, "files": files}


@contextlib.contextmanager
def serve(
    data_dir: Path,
    model,
    db_url: str | None = None,
    limits: Limits | None = None,
    worker: WorkerConfig | None = None,
    quotas: Quotas | None = None,
    retention_days: float | None = None,
    role: str = "all",
) -> Iterator[Served]:
    cfg = ServeConfig(
        data_dir=data_dir,
        db_url=db_url,
        limits=limits or Limits(),
        worker=worker or WorkerConfig(poll_s=0.2),
        quotas=quotas or Quotas(),
        retention_days=retention_days,
        role=role,
    )
    app = create_app(cfg, models={"tiny": model})
    with TestClient(app) as client:
        yield Served(client, cfg, app)


def wait_job(client: TestClient, headers: dict, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/jobs/{job_id}", params={"wait": 5}, headers=headers)
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in ("done", "failed") or time.monotonic() > deadline:
            return job


# ---------------------------------------------------------------------- images
def png(seed: int = 0, size: tuple[int, int] = (64, 64), noise: bool = False) -> bytes:
    """A small PNG: a coloured disc (or random noise, which compresses badly)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if noise:
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        im = Image.fromarray(arr)
    else:
        from PIL import ImageDraw

        im = Image.new("RGB", size, (255, 255, 255))
        c = tuple(int(x) for x in rng.integers(0, 256, 3))
        ImageDraw.Draw(im).ellipse((size[0] // 8, size[1] // 8, size[0] * 7 // 8, size[1] * 7 // 8), fill=c)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A ~100-byte PNG whose header declares width x height pixels (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def files(*blobs: bytes, field_name: str = "files") -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field_name, (f"img{i}.png", b, "image/png")) for i, b in enumerate(blobs)]


# ---------------------------------------------------------------------- `drc serve` as a process
class ServerProcess:
    """`python -m drc serve` on a free loopback port, as a person starts it; `kill()` is SIGKILL."""

    def __init__(self, run: Path, data_dir: Path, *extra: str, name: str = "drc", http: bool = True) -> None:
        import os
        import subprocess
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        cmd = [
            sys.executable,
            "-m",
            "drc",
            "serve",
            "--run",
            f"{name}={run}",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            *extra,
        ]
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        if http:
            self._wait_up()
        else:  # `--role worker`: no HTTP; it prints a line once its worker runs
            self._wait_for_line(" ready")

    def _wait_for_line(self, words: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while words not in self.log_path.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"drc serve did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def _wait_up(self, timeout: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"drc serve exited ({self.proc.returncode}): {self.log_path.read_text()[-2000:]}"
                )
            try:
                if httpx.get(self.url + "/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"drc serve did not answer within {timeout} s")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)
        self._log.close()

    def stop(self) -> None:
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._log.close()


def create_tenant_cli(data_dir: Path, name: str = "acme") -> str:
    """`drc serve tenant create NAME`; returns the printed key."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "drc", "serve", "tenant", "create", name, "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------------- the app behind a real socket
@contextlib.contextmanager
def uvicorn_app(app: object) -> Iterator[int]:
    """`app`, already started (its lifespan ran in a TestClient), served by uvicorn on a free
    loopback port in a thread; yields the port."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


def chunked_post(
    port: int,
    path: str,
    headers: dict[str, str],
    content_type: str,
    stop_after: int,
    chunk: int = 16384,
    prefix: bytes = b"",
) -> tuple[int, dict, int]:
    """POST an endless chunked body over a raw socket: `prefix`, then `x`s a chunk at a time, looking
    for the reply between chunks; stops when the reply comes or `stop_after` body bytes were sent.

    Returns (status, JSON body, body bytes sent before the reply was seen); status 0: no reply."""
    import json
    import select

    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    head += [f"Content-Type: {content_type}", *(f"{k}: {v}" for k, v in headers.items())]
    sent = 0
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        while sent < stop_after:
            # the server gets a moment to answer before the next chunk goes out
            if select.select([sock], [], [], 0.2)[0]:
                break
            piece = (prefix if sent == 0 else b"") + b"x" * chunk
            try:
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
                more = sock.recv(65536)
                if not more:
                    break
                data += more
    finally:
        sock.close()
    if not data:
        return 0, {}, sent
    status = int(data.split(b" ", 2)[1])
    body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
    return status, json.loads(body[: _length(data)] or b"{}"), sent


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0
