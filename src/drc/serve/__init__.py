"""`drc serve`: a multi-tenant generation service over trained runs, with a studio page.

    config.py    ServeConfig: where things live and every limit a request is checked against
    db.py        the SQLAlchemy engine, sessions, and the Alembic upgrade run on start-up
    tables.py    the tables: tenants, end users, images, history items, jobs, workers, feedback
    migrations/  Alembic revisions (an older database file is upgraded in place, losing nothing)
    storage.py   content-addressed image files under the data folder
    uploads.py   decoding and checking uploaded images (size, pixels, truncation, format)
    auth.py      API keys: created once, only their hash stored; looked up on every request
    gate.py      the ASGI front door: 401 and 413 before a body is read, security headers
    quotas.py    per-tenant quotas (429 with Retry-After)
    worker.py    the queue worker: batches queued jobs of one run into one sampling batch
    batcher.py   one served run: cached history tokens, a batch of requests sampled together
    scheduling.py  which jobs a batch takes: tenants in turn, big jobs in parts
    heartbeat.py   worker heartbeats; queueing again the running jobs of workers that stopped
    pgnotify.py    PostgreSQL LISTEN/NOTIFY between API and worker processes
    retention.py   purging generated images past the retention
    service.py   the state the routes share (database, files, the served runs, the worker)
    schemas.py   the API's request and reply bodies; queries.py: a tenant's rows; errors.py: replies
    app.py       the FastAPI app: /v1 API, OpenAPI at /docs, the studio at /, run reports at /report
    routes_generate.py  the generation routes (queue, long-poll, list jobs); routes_runs.py: health, runs
    routes_users.py, routes_images.py, imagestore.py  end users and histories; images; storing uploads
    routes_kpis.py, kpis.py  keep / discard verdicts on outputs; the pilot KPIs per run (JSON, CSV)
    static/      the studio and report pages (plain HTML, JS and CSS; no build step)

FastAPI, uvicorn, SQLAlchemy, Alembic and python-multipart come with the `serve` extra
(`pip install -e ".[serve]"`); nothing here is imported by the rest of drc.
"""
