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
The writes (POST/DELETE) need `Authorization: Bearer <METEOFLOW_WEBAPP_WRITE_TOKEN>` when that is set.
Every response carries the security headers of SECURITY_HEADERS (docs/security.md).
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

from meteoflow.auth import SecretKey
from meteoflow.clock import utc_now
from meteoflow.contracts import ErrorBody, FieldError, ValidationErrorBody
from meteoflow.errors import field_errors
from meteoflow.freshness import thresholds
from meteoflow.metrics import WebappMetrics, instrument_app
from meteoflow.settings import REPO_ROOT, Settings
from webapp.routes import ROUTERS
from webapp.routes.common import unavailable
from webapp.store import Store

log = logging.getLogger("webapp")

NOT_BUILT_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Meteoflow: web app not built</title></head><body>
<h1>The web app is not built yet</h1>
<p>The serving API is running (see <a href="/api/regions">/api/regions</a> and <a href="/api/status">/api/status</a>),
but the React app has no build in <code>{dist}</code>.</p>
<p>Build it with <code>./run.sh</code> (it builds when the sources changed) or
<code>.venv/bin/python -m webapp.build</code> (needs Node.js 20+ and npm), then reload this page.</p>
</body></html>"""


# The React app's build has no inline script or style (Vite emits files), so 'self' is all it needs;
# img-src data: for the small images Vite may inline. Nothing may frame it.
APP_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
           "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
# /api/docs is FastAPI's Swagger UI page: its script and stylesheet come from the jsDelivr CDN, its
# favicon from fastapi.tiangolo.com, and it starts with an inline script. Only that page gets this policy.
SWAGGER_CDN = "https://cdn.jsdelivr.net"
DOCS_CSP = (f"default-src 'self'; script-src 'self' 'unsafe-inline' {SWAGGER_CDN}; "
            f"style-src 'self' 'unsafe-inline' {SWAGGER_CDN}; img-src 'self' data: https://fastapi.tiangolo.com; "
            "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
DOCS_PATHS = frozenset({"/api/docs", "/api/docs/oauth2-redirect"})
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# A static path is checked before it reaches the filesystem: these are never a file of the build.
MAX_STATIC_PATH_CHARS = 1024
MAX_NAME_CHARS = 255  # NAME_MAX: a longer segment is an OSError, not a missing file


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


def static_path_ok(path: str) -> bool:
    """Whether a request path may be looked up in the build directory: bounded, printable, encodable,
    no `..` segment. Anything else is a 404 without touching the filesystem."""
    if len(path) > MAX_STATIC_PATH_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in path):
        return False
    try:
        path.encode("utf-8")  # a lone surrogate cannot name a file
    except UnicodeEncodeError:
        return False
    return all(part != ".." and len(part.encode("utf-8")) <= MAX_NAME_CHARS for part in path.split("/"))


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
    token = settings.webapp_write_token.get_secret_value() if settings.webapp_write_token else ""
    app.state.write_key = SecretKey(token) if token else None  # None: writes are open (webapp.routes.common)
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
        return _error(503, ErrorBody(detail=unavailable("MongoDB", exc)))

    @app.exception_handler(TransportError)
    @app.exception_handler(ApiError)
    async def _on_es(request: Request, exc: Exception) -> JSONResponse:
        log.warning("Elasticsearch request failed: %s", exc)
        metrics.store_errors.labels("elasticsearch").inc()
        return _error(503, ErrorBody(detail=unavailable("Elasticsearch", exc)))

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        path = request.url.path
        if path.startswith("/api/") or path == "/health":
            response.headers["Cache-Control"] = "no-store"
        response.headers.update(SECURITY_HEADERS)
        response.headers["Content-Security-Policy"] = DOCS_CSP if path in DOCS_PATHS else APP_CSP
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
        if not static_path_ok(path):
            raise HTTPException(status_code=404, detail="no such file")
        root = dist_dir.resolve()
        try:
            candidate = (root / path).resolve()
            found = bool(path) and candidate.is_relative_to(root) and candidate.is_file()
        except OSError:  # e.g. a symlink loop, or a file this process may not read: as good as absent
            raise HTTPException(status_code=404, detail="no such file") from None
        if found:
            # Vite names built assets by content hash: they never change, cache them for a year.
            immutable = candidate.is_relative_to(root / "assets")
            headers = {"Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache"}
            return FileResponse(candidate, headers=headers)
        # SPA fallback: the client-side router decides what the path shows.
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    return app
