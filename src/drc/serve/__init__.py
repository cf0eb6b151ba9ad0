"""`drc serve`: a multi-tenant generation service over trained runs, with a studio page.

    config.py    ServeConfig: where things live and every limit a request is checked against
    db.py        the SQLAlchemy engine, sessions, and the Alembic upgrade run on start-up
    models.py    the tables: tenants, end users, images, history items, jobs
    migrations/  Alembic revisions (an older database file is upgraded in place, losing nothing)
    storage.py   content-addressed image files under the data folder
    uploads.py   decoding and checking uploaded images (size, pixels, truncation, format)
    auth.py      API keys: created once, only their hash stored; Bearer authentication
    worker.py    the queue worker: batches queued jobs of one run into one sampling batch
    explain.py   leave-one-out influence of each history image on the output
    service.py   the state the routes share (database, files, the served runs, the worker)
    schemas.py   the API's request and reply bodies; queries.py: a tenant's rows; errors.py: replies
    app.py       the FastAPI app: /v1 API, OpenAPI at /docs, the studio at /, run reports at /report
    routes_generate.py  the generation routes (queue, long-poll, list jobs)
    static/      the studio and report pages (plain HTML, JS and CSS; no build step)

FastAPI, uvicorn, SQLAlchemy, Alembic and python-multipart come with the `serve` extra
(`pip install -e ".[serve]"`); nothing here is imported by the rest of drc.
"""
