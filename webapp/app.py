"""The web app's serving API (FastAPI): JSON under /api, the built React app everywhere else.

    GET /health                       liveness (200 while the process serves)
    GET /api/config                   refresh interval and freshness thresholds the UI uses
    GET /api/regions                  every region: latest observation, freshness, last seen, lag
    GET /api/regions/{id}?hours=48    one region: observations, hourly stats, latest forecast
    GET /api/status                   pipeline health: arrivals, lag, streaming batches, alerts, dead letters
    GET /api/health?minutes=30        the pipeline watching itself (elk/health/ samples): services, consumer
                                      lag with its series over the window, store staleness, forecast age
    GET /api/incidents                incidents history (filters: status, rule, subject, severity, since, until)
    GET /api/incidents/{id}           one incident, its notifications and acknowledgement
    POST /api/incidents/{id}/ack      acknowledge an incident: no more reminders
    GET /api/silences                 active, scheduled and recently ended silences
    POST /api/silences                create a silence: matching incidents are recorded, not sent
    DELETE /api/silences/{id}         expire a silence now
    GET /metrics                      Prometheus metrics (requests per route, store errors)
    GET /api/openapi.json, /api/docs  the OpenAPI schema of all of the above, and its browsable page

The routes live in webapp/routes/ (one router per page), their bodies in meteoflow/contracts/web.py.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from elastic_transport import TransportError
from elasticsearch import ApiError
from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from prometheus_client import CollectorRegistry
from pymongo.errors import PyMongoError

from meteoflow.clock import utc_now
from meteoflow.contracts import ErrorBody, FieldError, ValidationErrorBody
from meteoflow.errors import field_errors
from meteoflow.freshness import thresholds
from meteoflow.metrics import WebappMetrics, instrument_app
from meteoflow.settings import REPO_ROOT, Settings
from webapp.routes import ROUTERS
from webapp.store import Store

log = logging.getLogger("webapp")

NOT_BUILT_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Meteoflow: web app not built</title></head><body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;line-height:1.5">
<h1>The web app is not built yet</h1>
<p>The serving API is running (see <a href="/api/regions">/api/regions</a> and <a href="/api/status">/api/status</a>),
but the React app has no build in <code>{dist}</code>.</p>
<p>Build it with <code>./run.sh</code> (it builds when the sources changed) or
<code>.venv/bin/python -m webapp.build</code> (needs Node.js 20+ and npm), then reload this page.</p>
</body></html>"""


def default_dist_dir() -> Path:
    return REPO_ROOT / "webapp" / "frontend" / "dist"


def _echo(value: Any) -> Any:
    """The refused input as JSON can carry it: a raw body (bytes) as bounded text."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value[:200]).decode("utf-8", "replace")
    try:
        return jsonable_encoder(value)
    except (TypeError, ValueError):
        return repr(value)[:200]


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    return [FieldError(field=e.field, in_=e.where, message=e.message, input=_echo(e.input))
            for e in field_errors(exc.errors(), default_field="request", request=True)]


def _error(status_code: int, body: ErrorBody | ValidationErrorBody) -> JSONResponse:
    return JSONResponse(status_code=status_code, content=body.model_dump(mode="json", by_alias=True))


def create_app(settings: Settings, store: Store | None = None, clock: Callable[[], datetime] = utc_now,
               registry: CollectorRegistry | None = None) -> FastAPI:
    """`store`: the data adapter (default: a Store of `settings`, created at its first use); `clock`:
    what "now" is; `registry`: where the metrics served on /metrics go (python -m webapp passes
    meteoflow.metrics.service_registry's; by default a registry of this app alone).
    The routes get them as dependencies (webapp.routes.common) from app.state."""
    app = FastAPI(title="Meteoflow web app", version="0.1.0", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  description="The serving API of the React app: JSON under /api. Times are ISO 8601 UTC.")
    metrics = WebappMetrics(registry)
    app.state.settings = settings
    app.state.store = store
    app.state.clock = clock
    app.state.limits = thresholds(settings)
    app.state.metrics = metrics
    app.state.dist_dir = dist_dir = settings.webapp_dist_dir or default_dist_dir()
    instrument_app(app, metrics.http)

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        summary = "; ".join(f"{e.in_ or 'request'} parameter '{e.field}': {e.message}" for e in errors)
        return _error(422, ValidationErrorBody(detail=f"invalid request: {summary}", errors=errors))

    @app.exception_handler(PyMongoError)
    async def _on_mongo(request: Request, exc: PyMongoError) -> JSONResponse:
        log.warning("MongoDB read failed: %s", exc)
        metrics.store_errors.labels("mongodb").inc()
        return _error(503, ErrorBody(detail=f"MongoDB is unavailable: {type(exc).__name__}"))

    @app.exception_handler(TransportError)
    @app.exception_handler(ApiError)
    async def _on_es(request: Request, exc: Exception) -> JSONResponse:
        log.warning("Elasticsearch request failed: %s", exc)
        metrics.store_errors.labels("elasticsearch").inc()
        return _error(503, ErrorBody(detail=f"Elasticsearch is unavailable: {type(exc).__name__}"))

    @app.middleware("http")
    async def _cache_headers(request: Request, call_next):
        response = await call_next(request)
        if request.url.path.startswith("/api/") or request.url.path == "/health":
            response.headers["Cache-Control"] = "no-store"
        return response

    for router in ROUTERS:
        app.include_router(router)

    # After the routers: the catch-alls must not shadow them.
    @app.get("/api/{rest:path}", include_in_schema=False)
    def api_not_found(rest: str) -> None:
        raise HTTPException(status_code=404, detail=f"no API route /api/{rest}")

    @app.get("/{path:path}", include_in_schema=False)
    def frontend(path: str):
        index = dist_dir / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT_PAGE.format(dist=dist_dir), status_code=503)
        root = dist_dir.resolve()
        candidate = (root / path).resolve()
        if path and candidate.is_relative_to(root) and candidate.is_file():
            # Vite names built assets by content hash: they never change, cache them for a year.
            immutable = candidate.is_relative_to(root / "assets")
            headers = {"Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache"}
            return FileResponse(candidate, headers=headers)
        # SPA fallback: the client-side router decides what the path shows.
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    return app
