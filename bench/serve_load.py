"""Load check for `drc serve`: N concurrent clients on loopback, batching on and off.

    python bench/serve_load.py --run RUN [--clients 32] [--seconds 20] [--n 1] [--json]
    python bench/serve_load.py --run RUN --db postgresql://... --workers 1,2

For each mode (the worker batching queued jobs of a run into one sampling batch, and one job per
batch with `--no-batching`) it starts `drc serve` on 127.0.0.1 at a free port with a fresh data
folder, creates a tenant, an end user with a 5-image history and a reference, then runs `--clients`
concurrent clients for `--seconds` (after a short warm-up). Each client loops: POST /v1/generate?wait=30
(n images; the reply comes when the job is done), GET each output image. Latency is from the POST to
the last image downloaded. Everything is bounded: the clients stop at the deadline (a request in
flight then still completes, with a 60 s timeout), at most `--max-requests` requests per client,
and the server is stopped at the end. Nothing but 127.0.0.1 is contacted.

Each mode runs in each of `--precisions` (default auto and fp32: bf16 autocast pays off for batches
but costs at batch 1 with the default generator). Prints a table (images/s, p50/p95 latency, mean
rows per sampling batch) and the speed-up of the best batched row over the best one-at-a-time row.

With `--workers 1,2` it compares instead one `drc serve --role api` process with one and with two
`--role worker` processes sharing a PostgreSQL database (`--db`) and the data folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def drc_cmd() -> list[str]:
    return [sys.executable, "-m", "drc"]


def sample_images(run: Path, count: int) -> list[bytes]:
    """PNG bytes for the history and reference: the run's dataset images if found, else drawn shapes."""
    import io

    from PIL import Image, ImageDraw

    info = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
    data = Path(info.get("data") or "")
    files = sorted((data / "images").glob("*.png"))[:count] if str(data) and data.is_dir() else []
    if len(files) >= count:
        return [f.read_bytes() for f in files]
    out = []
    for i in range(count):
        im = Image.new("RGB", (64, 64), (255, 255, 255))
        ImageDraw.Draw(im).ellipse((8 + i, 8, 56 - i, 56), fill=(40 * i % 255, 120, 200))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


class Server:
    """`drc serve` in a subprocess on a free loopback port; stopped on exit."""

    def __init__(
        self,
        run: Path,
        data_dir: Path,
        batching: bool,
        max_batch: int,
        precision: str,
        db: str | None = None,
        workers: int = 0,
    ) -> None:
        """`workers` > 0: an `--role api` process and that many `--role worker` processes (sharing
        `db`, a PostgreSQL URL); 0: one process doing both."""
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        store = ["--data-dir", str(data_dir), *(["--db", db] if db else [])]
        key_out = subprocess.run(
            [*drc_cmd(), "serve", "tenant", "create", "bench", *store],
            check=True,
            capture_output=True,
            text=True,
        )
        self.key = key_out.stdout.strip().splitlines()[-1]
        args = [
            *drc_cmd(),
            "serve",
            "--run",
            f"bench={run}",
            *store,
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--max-batch",
            str(max_batch),
            "--precision",
            precision,
        ]
        if not batching:
            args.append("--no-batching")
        self.log = open(data_dir / "server.log", "w")  # noqa: SIM115 - closed in stop()
        self.workers = [
            subprocess.Popen([*args, "--role", "worker"], stdout=self.log, stderr=subprocess.STDOUT)
            for _ in range(workers)
        ]
        if workers:
            args += ["--role", "api"]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"drc serve exited with {self.proc.returncode}; see {data_dir / 'server.log'}"
                )
            try:
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit("drc serve did not start within 120 s")

    def stop(self) -> None:
        for proc in (self.proc, *self.workers):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.log.close()


async def client(
    http: httpx.AsyncClient,
    body: dict,
    deadline: float,
    max_requests: int,
    lat: list[float],
    counts: list[int],
    rows: list[int],
) -> None:
    for _ in range(max_requests):
        if time.monotonic() >= deadline:
            return
        t0 = time.perf_counter()
        r = await http.post("/v1/generate", json=body, params={"wait": 30})  # the reply waits for the job
        r.raise_for_status()
        job = r.json()
        while job["status"] in ("queued", "running"):
            r = await http.get(f"/v1/jobs/{job['id']}", params={"wait": 30})
            r.raise_for_status()
            job = r.json()
        if job["status"] != "done":
            raise RuntimeError(f"job failed: {job['error']}")
        for im in job["images"]:
            (await http.get(im["url"])).raise_for_status()
        lat.append(time.perf_counter() - t0)
        counts.append(len(job["images"]))
        rows.append(job["batch_images"])


async def load(
    url: str, key: str, body: dict, clients: int, seconds: float, warmup: float, max_requests: int
):
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:
        # warm-up: the first batches pay for lazy initialisation; not measured
        sink: list = [[], [], []]
        end = time.monotonic() + warmup
        await asyncio.gather(*(client(http, body, end, max_requests, *sink) for _ in range(clients)))
        lat: list[float] = []
        counts: list[int] = []
        rows: list[int] = []
        t0 = time.monotonic()
        await asyncio.gather(
            *(client(http, body, t0 + seconds, max_requests, lat, counts, rows) for _ in range(clients))
        )
        wall = time.monotonic() - t0
    return lat, counts, rows, wall


def measure(args: argparse.Namespace, batching: bool, precision: str, workers: int = 0) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="drc-serve-load-"))
    try:
        server = Server(Path(args.run), tmp, batching, args.max_batch, precision, args.db, workers)
        try:
            h = {"Authorization": f"Bearer {server.key}"}
            imgs = sample_images(Path(args.run), 6)
            with httpx.Client(base_url=server.url, headers=h, timeout=60) as c:
                user = c.post("/v1/users", json={"name": "load"}).raise_for_status().json()
                files = [("files", (f"h{i}.png", b, "image/png")) for i, b in enumerate(imgs[:5])]
                c.post(f"/v1/users/{user['id']}/history", files=files).raise_for_status()
                ref = c.post(
                    "/v1/images", files={"file": ("ref.png", imgs[5], "image/png")}
                ).raise_for_status()
            body = {"user_id": user["id"], "reference": ref.json()["id"], "n": args.n, "seed": 0}
            lat, counts, rows, wall = asyncio.run(
                load(server.url, server.key, body, args.clients, args.seconds, args.warmup, args.max_requests)
            )
        finally:
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    q = statistics.quantiles(lat, n=20) if len(lat) >= 2 else [lat[0]] * 19
    return {
        "batching": batching,
        "workers": workers or 1,
        "precision": precision,
        "clients": args.clients,
        "n": args.n,
        "requests": len(lat),
        "images": sum(counts),
        "seconds": round(wall, 2),
        "images_per_s": round(sum(counts) / wall, 2),
        "p50_ms": round(statistics.median(lat) * 1000, 1),
        "p95_ms": round(q[18] * 1000, 1),
        "mean_batch_rows": round(statistics.mean(rows), 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", required=True, help="a finished run folder")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=20.0, help="measured time per mode")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--n", type=int, default=1, help="images per request")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-requests", type=int, default=10_000, help="per client, per phase")
    p.add_argument(
        "--precisions",
        default="auto,fp32",
        help="sampling precisions to measure each mode in (comma-separated); the speed-up compares the\n"
        "best of each mode, so one-at-a-time serving is not judged by a precision that suits it badly",
    )
    p.add_argument("--db", default=None, help="a PostgreSQL URL (needed by --workers)")
    p.add_argument(
        "--workers",
        default=None,
        help="compare worker counts instead, e.g. 1,2: one `--role api` process and that many\n"
        "`--role worker` processes on --db, batching on, the first precision",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 600:
        p.error("--clients must be in 1..256 and --seconds in (0, 600]")
    if args.workers and not (args.db or "").startswith(("postgresql://", "postgres://")):
        p.error("--workers needs --db postgresql://... (workers in several processes share one PostgreSQL)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if args.workers:
        return compare_workers(args, [int(w) for w in args.workers.split(",")], precisions[0])
    results = [measure(args, batching, prec) for batching in (False, True) for prec in precisions]
    cols = ["batching", "precision", "clients", "images/s", "p50 latency", "p95 latency", "rows per batch"]
    print("| " + " | ".join([*cols, "requests"]) + " |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        mode = "on" if r["batching"] else "off"
        print(
            f"| {mode} | {r['precision']} | {r['clients']} | {r['images_per_s']} | {r['p50_ms']:.0f} ms "
            f"| {r['p95_ms']:.0f} ms | {r['mean_batch_rows']} | {r['requests']} |"
        )
    best_off = max(r["images_per_s"] for r in results if not r["batching"])
    best_on = max(r["images_per_s"] for r in results if r["batching"])
    speedup = best_on / max(best_off, 1e-9)
    print(f"batching speed-up (best precision each): {speedup:.1f}x images/s")
    if args.json:
        print(json.dumps({"results": results, "speedup": round(speedup, 2)}))
    return 0


def compare_workers(args: argparse.Namespace, counts: list[int], precision: str) -> int:
    results = [measure(args, True, precision, workers=w) for w in counts]
    print("| workers | clients | images/s | p50 latency | p95 latency | rows per batch | requests |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['workers']} | {r['clients']} | {r['images_per_s']} | {r['p50_ms']:.0f} ms "
            f"| {r['p95_ms']:.0f} ms | {r['mean_batch_rows']} | {r['requests']} |"
        )
    base = results[0]["images_per_s"]
    for r in results[1:]:
        ratio = r["images_per_s"] / max(base, 1e-9)
        print(f"{r['workers']} workers against {results[0]['workers']}: {ratio:.2f}x images/s")
    if args.json:
        print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
