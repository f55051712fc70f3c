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
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Literal

from elastic_transport import TransportError
from elasticsearch import ApiError
from fastapi import FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import ValidationError
from prometheus_client import CollectorRegistry
from pymongo.errors import PyMongoError

from meteoflow.contracts import (
    ALERT_RULES, SILENCE_MAX_SECONDS, Acknowledgement, AckRequest, Silence, SilenceRequest, plausible_utc,
)
from meteoflow.errors import field_errors
from meteoflow.freshness import thresholds
from meteoflow.metrics import WebappMetrics, instrument_app
from meteoflow.settings import REPO_ROOT, Settings
from webapp import views
from webapp.store import Store

log = logging.getLogger("webapp")

REGION_ID_PATTERN = r"^[A-Za-z0-9_.-]+$"  # the schema's region_id pattern
MAX_HOURS = 720  # 30 days: the window a chart can still draw point by point
MAX_HEALTH_MINUTES = 360  # lag chart window: 6 h (at most views.MAX_LAG_POINTS points whatever the window)
MAX_INCIDENTS_PAGE = 200
MAX_OFFSET = 10_000  # Elasticsearch's from + size limit
RECENT_SILENCES_DAYS = 7  # GET /api/silences lists those that ended this recently, besides the current ones
SILENCE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

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


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _echo(value: Any) -> Any:
    """The refused input as JSON can carry it: a raw body (bytes) as bounded text."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value[:200]).decode("utf-8", "replace")
    try:
        return jsonable_encoder(value)
    except (TypeError, ValueError):
        return repr(value)[:200]


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"field": e.field, "in": e.where, "message": e.message, "input": _echo(e.input)}
            for e in field_errors(exc.errors(), default_field="request", request=True)]


def invalid(where: str, field: str, message: str, value: Any = None) -> RequestValidationError:
    """A 422 naming the field, in the same shape as FastAPI's own validation errors."""
    return RequestValidationError([{"loc": (where, field), "msg": message, "type": "value_error",
                                    "input": jsonable_encoder(value)}])


def _as_request_error(exc: ValidationError, rename: dict[str, str] | None = None) -> RequestValidationError:
    """A model built from a valid body can still refuse it (ends_at before starts_at): a 422 naming the field."""
    return RequestValidationError([{"loc": ("body", (rename or {}).get(e.field, e.field)), "msg": e.message,
                                    "type": e.kind, "input": jsonable_encoder(e.input)}
                                   for e in field_errors(exc, default_field="body")])


def _attempt(fn: Callable[[], Any], default: Any) -> tuple[Any, str | None]:
    """Run one read of the status page; a failing source becomes a message, not a 500."""
    try:
        return fn(), None
    except Exception as exc:  # noqa: BLE001 - reported to the UI and the log
        log.warning("status read failed: %s", exc)
        return default, f"{type(exc).__name__}: {exc}"[:300]


def _query_time(name: str, value: datetime | None) -> datetime | None:
    """A query-string time as aware UTC (no offset means UTC), or a 422 naming it."""
    if value is None:
        return None
    try:
        return plausible_utc(value)
    except ValueError as exc:
        raise invalid("query", name, str(exc), value) from None


def create_app(settings: Settings, store: Store | None = None, clock: Callable[[], datetime] = _utcnow,
               registry: CollectorRegistry | None = None) -> FastAPI:
    """`registry`: where the metrics served on /metrics go (python -m webapp passes
    meteoflow.metrics.service_registry's; by default a registry of this app alone)."""
    app = FastAPI(title="Meteoflow web app", version="0.1.0", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.store = store
    metrics = WebappMetrics(registry)
    instrument_app(app, metrics.http)
    dist_dir = settings.webapp_dist_dir or default_dist_dir()
    limits = thresholds(settings)

    def attempt(fn: Callable[[], Any], default: Any) -> tuple[Any, str | None]:
        """_attempt of an Elasticsearch read (every degradable read is one), its failure counted."""
        result, error = _attempt(fn, default)
        if error is not None:
            metrics.store_errors.labels("elasticsearch").inc()
        return result, error

    def get_store() -> Store:
        if app.state.store is None:
            app.state.store = Store(settings)
        return app.state.store

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        summary = "; ".join(f"{e['in'] or 'request'} parameter '{e['field']}': {e['message']}" for e in errors)
        return JSONResponse(status_code=422, content={"detail": f"invalid request: {summary}", "errors": errors})

    @app.exception_handler(PyMongoError)
    async def _on_mongo(request: Request, exc: PyMongoError) -> JSONResponse:
        log.warning("MongoDB read failed: %s", exc)
        metrics.store_errors.labels("mongodb").inc()
        return JSONResponse(status_code=503, content={"detail": f"MongoDB is unavailable: {type(exc).__name__}"})

    @app.exception_handler(TransportError)
    @app.exception_handler(ApiError)
    async def _on_es(request: Request, exc: Exception) -> JSONResponse:
        log.warning("Elasticsearch request failed: %s", exc)
        metrics.store_errors.labels("elasticsearch").inc()
        return JSONResponse(status_code=503, content={"detail": f"Elasticsearch is unavailable: {type(exc).__name__}"})

    @app.middleware("http")
    async def _cache_headers(request: Request, call_next):
        response = await call_next(request)
        if request.url.path.startswith("/api/") or request.url.path == "/health":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "service": "webapp", "frontend_built": (dist_dir / "index.html").is_file()}

    @app.get("/api/config")
    def config() -> dict[str, Any]:
        return {
            "refresh_seconds": settings.webapp_refresh_seconds,
            "thresholds": limits.model_dump(),
            "source": settings.effective_source,
            "expected_interval_seconds": settings.effective_interval_seconds,
        }

    def region_rows(now: datetime) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], str | None]:
        store_ = get_store()
        arrivals, es_error = attempt(store_.arrivals_by_region, {})
        ids = set(store_.region_ids()) | set(arrivals)
        rows = [
            views.region_summary(rid, store_.latest_observation(rid), arrivals.get(rid), limits, now) for rid in ids
        ]
        return views.sort_regions(rows), arrivals, es_error

    @app.get("/api/regions")
    def regions() -> dict[str, Any]:
        now = clock()
        rows, _, es_error = region_rows(now)
        return {"generated_at": views.iso(now), "thresholds": limits.model_dump(), "regions": rows,
                "errors": {"elasticsearch": es_error} if es_error else {}}

    @app.get("/api/regions/{region_id}")
    def region(
        region_id: str = PathParam(..., min_length=1, max_length=64, pattern=REGION_ID_PATTERN,
                                   description="Region id, as in the regions file"),
        hours: int = Query(48, ge=1, le=MAX_HOURS, description=f"History window in hours (1-{MAX_HOURS})"),
    ) -> dict[str, Any]:
        now = clock()
        store_ = get_store()
        latest = store_.latest_observation(region_id)
        arrivals, es_error = attempt(store_.arrivals_by_region, {})
        if latest is None and region_id not in arrivals:
            raise HTTPException(status_code=404, detail=f"unknown region '{region_id}': no observation stored for it")
        start, end = views.history_window(latest.observed_at if latest else None, now, hours)
        return {
            "generated_at": views.iso(now),
            "hours": hours,
            "window": {"start": views.iso(start), "end": views.iso(end)},
            "region": views.region_summary(region_id, latest, arrivals.get(region_id), limits, now),
            "observations": [views.observation_body(d) for d in store_.observations(region_id, start, end)],
            "hourly": [views.hourly_body(d) for d in store_.hourly_stats(region_id, start, end)],
            "forecast": views.forecast_body(store_.latest_forecast(region_id)),
            "errors": {"elasticsearch": es_error} if es_error else {},
        }

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        now = clock()
        store_ = get_store()
        errors: dict[str, str] = {}
        rows, arrivals, es_error = region_rows(now)
        if es_error:
            errors["arrivals"] = es_error
        for row in rows:
            info = arrivals.get(row["region_id"], {})
            row["arrivals_last_hour"] = info.get("last_hour", 0)
            row["arrivals_per_bucket"] = info.get("per_bucket", [])
        batches, err = attempt(lambda: [views.streaming_batch(s) for s in store_.streaming_batches()], [])
        if err:
            errors["streaming"] = err
        active, err = attempt(lambda: [views.alert_body(s, i) for i, s in store_.alerts(active=True, limit=50)], [])
        if err:
            errors["alerts"] = err
        recent, _ = attempt(lambda: [views.alert_body(s, i) for i, s in store_.alerts(active=False, limit=20)], [])
        dead, err = attempt(
            lambda: store_.deadletters(since=now - timedelta(hours=1)),
            {"total": 0, "last_hour": 0, "by_service": {}, "latest": []},
        )
        if err:
            errors["deadletters"] = err
        heartbeat, err = attempt(lambda: store_.heartbeat("alerting"), None)
        if err:
            errors["alerting"] = err
        counts = {k: sum(1 for r in rows if r["freshness"] == k) for k in ("fresh", "late", "silent")}
        return {
            "generated_at": views.iso(now),
            "thresholds": limits.model_dump(),
            "summary": {
                "regions": len(rows),
                **counts,
                "arrivals_last_hour": sum(r["arrivals_last_hour"] for r in rows),
                "active_alerts": len(active),
                "deadletters_total": dead["total"],
            },
            "regions": rows,
            "arrival_bucket": "5m",
            "streaming": {"batches": batches},
            "alerts": {"active": active, "recent": recent},
            "deadletters": dead,
            "alerting": views.alerting_status(heartbeat, now),
            "errors": errors,
        }

    # Its own route rather than part of /api/status: it reads another index (the health samples,
    # written beside the pipeline rather than through it) and fails on its own.
    @app.get("/api/health")
    def pipeline_health(
        minutes: int = Query(30, ge=5, le=MAX_HEALTH_MINUTES,
                             description=f"Window of the consumer-lag series in minutes (5-{MAX_HEALTH_MINUTES})"),
    ) -> dict[str, Any]:
        now = clock()
        store_ = get_store()
        interval = settings.metrics_interval_seconds
        start = now - timedelta(minutes=minutes)
        bucket = views.lag_bucket_seconds(minutes * 60, interval)
        errors: dict[str, str] = {}
        latest, err = attempt(lambda: store_.health_latest(since=now - views.HEALTH_LOOKBACK), {})
        if err:
            errors["metrics"] = err
        series: dict[str, Any] = {}
        if not errors:  # Elasticsearch failed the first read: no second wait for the same answer
            series, err = attempt(lambda: store_.lag_series(start, now, bucket), {})
            if err:
                errors["lag_series"] = err
        return views.health_body(latest, series, now, interval, (start, now), bucket,
                                 far_behind_after=limits.late_after_seconds, errors=errors)

    # --- incidents, acknowledgements and silences ------------------------------------------
    def known_incident(incident_id: str) -> dict[str, Any]:
        source = get_store().incident(incident_id)
        if source is None or source.get("status") == "pending":
            raise HTTPException(status_code=404, detail=f"unknown incident '{incident_id}'")
        return source

    @app.get("/api/incidents")
    def incidents(
        status: Literal["firing", "resolved"] | None = Query(None, description="firing or resolved"),
        rule: str | None = Query(None, min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$"),
        subject: str | None = Query(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                                    description="A region id (or a service, consumer, store)"),
        severity: Literal["info", "warning", "critical"] | None = Query(None),
        since: datetime | None = Query(None, description="Incidents still open at or after this time"),
        until: datetime | None = Query(None, description="Incidents opened at or before this time"),
        limit: int = Query(50, ge=1, le=MAX_INCIDENTS_PAGE),
        offset: int = Query(0, ge=0, le=MAX_OFFSET - MAX_INCIDENTS_PAGE),
    ) -> dict[str, Any]:
        since, until = (_query_time(name, value) for name, value in (("since", since), ("until", until)))
        if since is not None and until is not None and until < since:
            raise invalid("query", "until", "must not be before since", until)
        store_ = get_store()
        total, sources = store_.incidents(views.incident_query(status, rule, subject, severity, since, until),
                                          limit, offset)
        acks = store_.silences.acks(s.get("incident_id") for s in sources if s.get("incident_id"))
        return {
            "generated_at": views.iso(clock()), "total": total, "limit": limit, "offset": offset,
            "incidents": [views.incident_body(s, acks.get(s.get("incident_id"))) for s in sources],
        }

    @app.get("/api/incidents/{incident_id}")
    def incident(incident_id: str = PathParam(..., min_length=1, max_length=512)) -> dict[str, Any]:
        source = known_incident(incident_id)
        ack = get_store().silences.acks([incident_id]).get(incident_id)
        return {"generated_at": views.iso(clock()), "incident": views.incident_body(source, ack)}

    @app.post("/api/incidents/{incident_id}/ack", status_code=201)
    def acknowledge(body: AckRequest, incident_id: str = PathParam(..., min_length=1, max_length=512)) -> dict[str, Any]:
        source = known_incident(incident_id)
        if source.get("status") != "firing":
            raise HTTPException(status_code=409, detail=f"incident '{incident_id}' is {source.get('status')}: "
                                                        "only a firing incident can be acknowledged")
        ack = Acknowledgement(incident_id=incident_id, author=body.author, comment=body.comment, at=clock())
        store_ = get_store()
        if not store_.silences.save_ack(ack):
            first = store_.silences.acks([incident_id]).get(incident_id)
            by = f" by {first.author} at {views.iso(first.at)}" if first else ""
            raise HTTPException(status_code=409, detail=f"incident '{incident_id}' is acknowledged already{by}")
        log.info("incident %s acknowledged by %s", incident_id, ack.author,
                 extra={"fields": {"event.action": "incident-acknowledged",
                                   "meteoflow.alert": {"incident_id": incident_id, "author": ack.author}}})
        return {"acknowledgement": {"incident_id": incident_id, **views.acknowledgement_body(ack)}}

    @app.get("/api/silences")
    def silences() -> dict[str, Any]:
        now = clock()
        found = get_store().silences.silences(ended_since=now - timedelta(days=RECENT_SILENCES_DAYS))
        return {
            "generated_at": views.iso(now),
            "rules": list(ALERT_RULES),
            "max_seconds": SILENCE_MAX_SECONDS,
            "silences": views.sort_silences(views.silence_body(s, now) for s in found),
        }

    @app.post("/api/silences", status_code=201)
    def create_silence(body: SilenceRequest) -> dict[str, Any]:
        now = clock()
        if body.rule is not None and body.rule not in ALERT_RULES:
            raise invalid("body", "rule", f"unknown rule '{body.rule}'; known: {', '.join(ALERT_RULES)}", body.rule)
        starts_at = body.starts_at or now
        if starts_at > now + timedelta(seconds=SILENCE_MAX_SECONDS):
            raise invalid("body", "starts_at", f"must be at most {SILENCE_MAX_SECONDS // 86400} days from now",
                          starts_at)
        by_duration = body.ends_at is None
        ends_at = starts_at + timedelta(seconds=body.duration_seconds) if by_duration else body.ends_at
        if ends_at <= now:
            raise invalid("body", "duration_seconds" if by_duration else "ends_at",
                          "the silence would end in the past", ends_at)
        try:
            silence = Silence(silence_id=uuid.uuid4().hex, rule=body.rule, subject=body.subject, starts_at=starts_at,
                              ends_at=ends_at, comment=body.comment, author=body.author, created_at=now)
        except ValidationError as exc:
            raise _as_request_error(exc, {"ends_at": "duration_seconds"} if by_duration else None) from None
        get_store().silences.save_silence(silence)
        log.info("silence %s created by %s (rule %s, subject %s, until %s)", silence.silence_id, silence.author,
                 silence.rule or "any", silence.subject or "any", views.iso(silence.ends_at),
                 extra={"fields": {"event.action": "silence-created",
                                   "meteoflow.silence": silence.model_dump(mode="json", exclude={"comment"})}})
        return {"silence": views.silence_body(silence, now)}

    @app.delete("/api/silences/{silence_id}")
    def expire_silence(silence_id: str = PathParam(..., pattern=SILENCE_ID_PATTERN)) -> dict[str, Any]:
        now = clock()
        store_ = get_store()
        silence = store_.silences.silence(silence_id)
        if silence is None:
            raise HTTPException(status_code=404, detail=f"unknown silence '{silence_id}'")
        if silence.state(now) != "expired":  # expiring an expired silence changes nothing
            silence = silence.model_copy(update={"expired_at": now})
            store_.silences.save_silence(silence)
            log.info("silence %s expired", silence_id, extra={"fields": {"event.action": "silence-expired",
                                                                        "meteoflow.silence": {"silence_id": silence_id}}})
        return {"silence": views.silence_body(silence, now)}

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
