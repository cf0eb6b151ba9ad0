"""`drc serve --run RUN [--run NAME=RUN ...] [--db URL] [--host 127.0.0.1] [--port 8000]
[--data-dir DIR]`: the generation service (API under /v1, docs at /docs, the studio at /).

`drc serve tenant create NAME [--db URL] [--data-dir DIR]` adds a tenant and prints its API key, once
(only its hash is stored). `drc serve tenant list` lists tenants. `drc serve tenant limits TENANT
[--max-queued-jobs N] [--max-images N] [--max-stored-bytes N] [--max-end-users N]` shows or sets a
tenant's quotas (`default`: the service's). `drc serve tenant revoke|rotate TENANT` revokes the
tenant's key or prints a new one; either takes effect at once in every running process.
Needs the `serve` extra: `pip install -e ".[serve]"`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from drc.errors import DrcError

DEFAULT_DATA_DIR = "drc_serve"


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help=f"images and the SQLite file (default ./{DEFAULT_DATA_DIR})",
    )
    p.add_argument(
        "--db", default=None, help="database URL (default: SQLite in --data-dir; postgresql://... works)"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drc serve", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument(
        "--run",
        action="append",
        required=True,
        metavar="[NAME=]RUN",
        help="a finished run folder (or a shipped run's name) to serve; repeatable. Requests name it by\n"
        "NAME, by default the folder's name",
    )
    _store_args(p)
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        choices=["auto", "bf16", "fp32"],
        default=None,
        help="sampling precision (default: each run's own, normally auto: bf16 where the device\n"
        "multiplies faster in bf16)",
    )
    p.add_argument("--no-batching", action="store_true", help="sample every job on its own (for comparison)")
    p.add_argument("--max-batch", type=int, default=32, help="images per sampling batch (default 32)")
    p.add_argument(
        "--retention-days",
        type=float,
        default=None,
        help="delete generated images older than this many days (default: keep them)",
    )
    p.add_argument(
        "--role",
        choices=["all", "api", "worker"],
        default="all",
        help="all: API and queue worker (default); api: the API only; worker: the queue worker only\n"
        "(no HTTP). Processes sharing one --db (PostgreSQL) and one --data-dir split the work",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def tenant_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drc serve tenant", description="manage the service's tenants")
    sub = p.add_subparsers(dest="action", required=True)
    c = sub.add_parser("create", help="add a tenant and print its API key (shown only this once)")
    c.add_argument("name")
    _store_args(c)
    _quota_args(c)
    ls = sub.add_parser("list", help="list tenants (ids, names and quotas; keys cannot be shown)")
    _store_args(ls)
    for action, what in (
        ("revoke", "the tenant's key stops working at once (its data stays; rotate gives a new key)"),
        (
            "rotate",
            "print a new key for the tenant (shown only this once); the old one stops working at once",
        ),
    ):
        a = sub.add_parser(action, help=what)
        a.add_argument("tenant", help="the tenant's id or name")
        _store_args(a)
    lim = sub.add_parser("limits", help="show or set a tenant's quotas (N, or 'default' for the service's)")
    lim.add_argument("tenant", help="the tenant's id or name")
    _quota_args(lim)
    _store_args(lim)
    return p


QUOTA_FLAGS = {
    "max_queued_jobs": "jobs queued or running at once",
    "max_images": "images stored (uploads and outputs)",
    "max_stored_bytes": "bytes of images stored",
    "max_end_users": "end users",
}


def _quota_value(text: str) -> int | None:
    if text == "default":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0 or 'default', got {text!r}")
    return int(text)


def _quota_args(p: argparse.ArgumentParser) -> None:
    for name, what in QUOTA_FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), type=_quota_value, default=argparse.SUPPRESS, help=what)


def parse_runs(specs: list[str]) -> dict[str, str]:
    """`NAME=PATH` or `PATH` words -> {name: path}; names must be unique."""
    runs: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec.rstrip("/")).name, spec
        if not name or not path:
            raise DrcError(f"--run {spec!r}: expected RUN or NAME=RUN")
        if name in runs:
            raise DrcError(f"--run: two runs named {name!r}; name them with NAME=RUN")
        runs[name] = path
    return runs


def _need_extra() -> None:
    try:
        import alembic  # noqa: F401
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise DrcError(
            f"drc serve needs the serve extra ({e.name} is missing): pip install -e '.[serve]'"
        ) from e


def _tenant(argv: list[str]) -> int:
    from drc.serve import db

    args = tenant_parser().parse_args(argv)
    from drc.serve.config import ServeConfig

    cfg = ServeConfig(data_dir=Path(args.data_dir), db_url=args.db)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(cfg.database_url)
    try:
        db.upgrade(engine)
        with db.session_factory(engine)() as s:
            _tenant_action(s, args, cfg)
    finally:
        engine.dispose()
    return 0


def _tenant_action(s, args: argparse.Namespace, cfg) -> None:  # noqa: ANN001 - a Session, a ServeConfig
    from sqlalchemy import select

    from drc.serve.auth import create_tenant, is_revoked, revoke_key, rotate_key
    from drc.serve.tables import Tenant

    quota_set = {k: getattr(args, k) for k in QUOTA_FLAGS if hasattr(args, k)}
    if args.action == "create":
        try:
            tenant, key = create_tenant(s, args.name)
        except ValueError as e:
            raise DrcError(str(e)) from e
        _set_quotas(s, tenant, quota_set)
        print(f"tenant {tenant.id} ({tenant.name}) created. API key (shown only now; store it safely):")
        print(key)
    elif args.action == "revoke":
        tenant = find_tenant(s, args.tenant)
        revoke_key(s, tenant)
        print(f"tenant {tenant.id} ({tenant.name}): key revoked")
    elif args.action == "rotate":
        tenant = find_tenant(s, args.tenant)
        key = rotate_key(s, tenant)
        print(
            f"tenant {tenant.id} ({tenant.name}): new API key (shown only now; the old one no longer works):"
        )
        print(key)
    elif args.action == "limits":
        tenant = find_tenant(s, args.tenant)
        _set_quotas(s, tenant, quota_set)
        for name in QUOTA_FLAGS:
            own = getattr(tenant, name)
            print(f"{name}\t{own if own is not None else getattr(cfg.quotas, name)}", end="")
            print("" if own is not None else "\t(default)")
    else:
        for t in s.scalars(select(Tenant).order_by(Tenant.created_at)):
            state = "\trevoked" if is_revoked(t) else ""
            print(f"{t.id}\t{t.name}\t{t.created_at:%Y-%m-%d %H:%M}{state}")


def _set_quotas(s, tenant, values: dict[str, int | None]) -> None:  # noqa: ANN001
    for name, value in values.items():
        setattr(tenant, name, value)
    s.commit()


def find_tenant(s, ref: str):  # noqa: ANN001, ANN201 - a Session; returns a Tenant
    """The tenant with id `ref`, or else the one named `ref` (a one-line error if none or several)."""
    from sqlalchemy import select

    from drc.serve.tables import Tenant

    t = s.get(Tenant, ref)
    if t is not None:
        return t
    named = s.scalars(select(Tenant).where(Tenant.name == ref)).all()
    if len(named) != 1:
        what = "no tenant" if not named else f"{len(named)} tenants"
        raise DrcError(f"{what} with id or name {ref!r} (see `drc serve tenant list`)")
    return named[0]


def _worker_only(cfg, models: dict, log_level: str) -> int:  # noqa: ANN001 - a ServeConfig
    """`--role worker`: the queue worker, without HTTP, until SIGINT or SIGTERM."""
    import logging
    import signal
    import threading

    from drc.serve.service import Service

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    svc = Service(cfg, models)
    svc.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(
        f"drc serve: worker {svc.worker.id} ready; runs {', '.join(cfg.runs)}; data in {cfg.data_dir}",
        flush=True,
    )
    try:
        while not stop.wait(1.0):
            pass
    finally:
        svc.stop()
    return 0


def main(argv: list[str]) -> int:
    _need_extra()
    if argv and argv[0] == "tenant":
        return _tenant(argv[1:])
    args = build_parser().parse_args(argv)
    if args.max_batch < 1:
        raise DrcError("--max-batch must be at least 1")
    if args.retention_days is not None and not args.retention_days > 0:
        raise DrcError("--retention-days must be more than 0")
    import uvicorn

    import drc.api as api
    from drc.serve.app import create_app
    from drc.serve.config import ServeConfig, WorkerConfig

    runs = parse_runs(args.run)
    # load the runs here, not in the app's start-up, so a wrong path is one line and exit code 2
    models = {name: api.load(path, device=args.device) for name, path in runs.items()}
    cfg = ServeConfig(
        data_dir=Path(args.data_dir),
        db_url=args.db,
        runs=runs,
        device=args.device,
        precision=args.precision,
        worker=WorkerConfig(batching=not args.no_batching, max_batch_images=args.max_batch),
        retention_days=args.retention_days,
        role=args.role,
    )
    if args.role == "worker":
        return _worker_only(cfg, models, args.log_level)
    app = create_app(cfg, models=models)
    shown = "localhost" if args.host in ("127.0.0.1", "0.0.0.0", "::") else args.host
    print(
        f"drc serve: runs {', '.join(runs)}; studio at http://{shown}:{args.port}/ "
        f"(API docs at /docs); data in {cfg.data_dir}",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
