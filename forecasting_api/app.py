"""The forecasting API: FastAPI around Prophet. Build it with `create_app(settings)`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from fastapi import FastAPI, Request, Security
from fastapi.security import APIKeyHeader
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from forecasting_api.cache import LruCache
from forecasting_api.engine import ForecastFailed, Forecaster, Outcome, QueueFull, Ticket
from forecasting_api.validation import SeriesError, clean_series, describe_errors
from meteoflow import __version__
from meteoflow.auth import SecretKey, bearer_token
from meteoflow.contracts import (
    API_KEY_HEADER,
    BatchItem,
    BatchRequest,
    BatchResponse,
    ItemError,
    ModelFacts,
    Prediction,
    PredictRequest,
    PredictResponse,
)
from meteoflow.metrics import UNMATCHED_ROUTE, ForecastingApiMetrics, HttpMetrics, instrument_app
from meteoflow.settings import Settings

log = logging.getLogger("forecasting_api")

FORECAST_ACTION = "forecast"
FORECAST_BATCH_ACTION = "forecast-batch"

VERSION = __version__


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body of this API: what was wrong and where."""

    detail: list[ItemError]


class Health(BaseModel):
    status: str
    version: str
    workers: int
    fits: int
    coalesced: int
    failures: int
    in_flight: int
    max_pending: int
    rejected: int
    warm_started: int = 0
    warm_regions: int = 0
    timeouts: int
    worker_restarts: int
    cache: dict[str, int]
    response_cache: dict[str, int] = {}


def error_response(status: int, field: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": [{"field": field, "message": message}]}, status_code=status, headers=headers)


def queue_full_response(exc: QueueFull) -> JSONResponse:
    return error_response(429, "request", exc.message, headers={"Retry-After": str(exc.retry_after)})


# Paths open without the key: the container health check, and the API's description (so /docs loads in
# a browser, where the key is then typed into "Authorize").
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/openapi.json"})


class ApiKeyGuard:
    """401 unless the request carries the key (X-API-Key, or Authorization: Bearer), compared in
    constant time. Outermost, so a refused request is never buffered nor routed; /metrics is guarded too.
    Refusals are counted in the HTTP metrics under the unmatched route."""

    def __init__(self, app, key: str, http: HttpMetrics):
        self.app = app
        self.key = SecretKey(key)
        self.http = http

    def _presented(self, scope) -> bytes | None:
        headers = dict(scope.get("headers") or [])
        if b"x-api-key" in headers:
            return headers[b"x-api-key"].strip()
        return bearer_token(headers.get(b"authorization"))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            return await self.app(scope, receive, send)
        presented = self._presented(scope)
        if self.key.matches(presented):
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        message = ("no API key: send it in the X-API-Key header (or Authorization: Bearer)" if presented is None
                   else "the API key is wrong")
        response = error_response(401, API_KEY_HEADER, message, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)
        self.http.observe(scope.get("method", "GET"), UNMATCHED_ROUTE, 401, time.perf_counter() - started)


def replaying(body: bytes, receive):
    """An ASGI `receive` for the app behind a middleware that read the body: `body` whole, once, then
    the client's own (a disconnect)."""
    replayed = False

    async def replay():
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BodyLimit:
    """Rejects bodies over `max_bytes` with 413, by Content-Length and by the bytes actually sent
    (a chunked or lying client cannot get past it). Bodies are buffered, at most `max_bytes`."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, size: str) -> JSONResponse:
        return error_response(
            413, "body", f"the request body is {size} bytes; the limit is {self.max_bytes} (forecast_max_body_bytes)"
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(declared.decode())(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # client went away
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self._too_large(f"more than {self.max_bytes}")(scope, receive, send)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        return await self.app(scope, replaying(b"".join(chunks), receive), send)


@dataclass(frozen=True)
class KeptAnswer:
    """An answer as an identical repeat of its request gets it: every forecast in it `cached`."""

    body: bytes
    ok: int
    errors: int


KEPT_ANSWER = "meteoflow_kept_answer"  # the scope-state key a route puts its KeptAnswer under
CACHED_PATHS = ("/predict", "/predict/batch")


class ResponseCache:
    """Answers an identical repeat of a forecast request (same path, same body bytes) with the
    bytes of its answer, before any parsing: hashing the body is all the work. Parsing and
    validating thousands of points again is most of what a repeat costs even when every fit is
    in the forecast cache. The route decides what may be kept: it leaves a KeptAnswer in the
    scope's state only when every forecast of the answer came out ok (a timeout or a failed fit
    is asked again). Inside BodyLimit, so the body is already bounded."""

    def __init__(self, app, cache: LruCache, routes: dict[str, Any], on_hit: Callable[[str, KeptAnswer, float], None]):
        self.app = app
        self.cache = cache
        self.routes = routes  # path -> route, recorded in the scope so a hit is timed under its route
        self.on_hit = on_hit

    async def __call__(self, scope, receive, send):
        path = scope.get("path")
        if (scope["type"] != "http" or scope.get("method") != "POST" or path not in self.routes
                or self.cache.capacity <= 0):
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        key = hashlib.sha256(path.encode() + b"\0" + body).digest()
        kept = self.cache.get(key)
        if kept is not None:
            scope["route"] = self.routes[path]
            await Response(kept.body, media_type="application/json")(scope, receive, send)
            self.on_hit(path, kept, started)
            return
        state = scope.setdefault("state", {})
        await self.app(scope, replaying(body, receive), send)
        kept = state.pop(KEPT_ANSWER, None)
        if kept is not None:
            self.cache.put(key, kept)


def _as_repeated(response: PredictResponse) -> PredictResponse:
    """The answer a repeat gets: the same forecast, from the cache, so not warm-started by this call."""
    return response.model_copy(update={"model": response.model.model_copy(update={"cached": True,
                                                                                 "warm_started": False})})


def _response(outcome: Outcome, region_id: str | None, duplicates_merged: int) -> PredictResponse:
    result = outcome.result
    return PredictResponse(
        region_id=region_id,
        predictions=[
            Prediction(
                timestamp=datetime.fromtimestamp(epoch, timezone.utc),
                temperature=round(yhat, 3),
                lower=round(lower, 3),
                upper=round(upper, 3),
            )
            for epoch, yhat, lower, upper in result["predictions"]
        ],
        model=ModelFacts(
            points_used=result["points_used"],
            duplicates_merged=duplicates_merged,
            fit_seconds=result["fit_seconds"],
            seasonalities=result["seasonalities"],
            cached=outcome.cached,
            model=result.get("model"),
            interval_width=result.get("interval_width"),
            band=result.get("band"),
            warm_started=bool(result.get("warm_started")) and not outcome.cached,
        ),
    )


def _log_forecast(request: PredictRequest, response: PredictResponse, started: float) -> None:
    log.info(
        "forecast served",
        extra={"fields": {
            "event.action": FORECAST_ACTION,
            "event.duration": int((time.perf_counter() - started) * 1e9),
            "meteoflow.forecast": {
                "region_id": request.region_id,
                "points_used": response.model.points_used,
                "duplicates_merged": response.model.duplicates_merged,
                "horizon_hours": request.horizon_hours,
                "cached": response.model.cached,
                "fit_seconds": response.model.fit_seconds,
                "model": response.model.model,
                "warm_started": response.model.warm_started,
            },
        }},
    )


def _validate_item(index: int, raw: dict[str, Any], min_points: int, max_points: int):
    """One batch entry validated on its own: (request, series), or its error as a BatchItem."""
    prefix = f"series[{index}]"
    region = raw.get("region_id") if isinstance(raw.get("region_id"), str) else None
    region = region[:64] if region else None
    try:
        request = PredictRequest.model_validate(raw)
        return request, clean_series(request.data, min_points, max_points)
    except ValidationError as exc:
        errors = describe_errors(exc.errors(), prefix=prefix)
        first = errors[0]
        if len(errors) > 1:
            first = ItemError(field=first.field, message=f"{first.message} (and {len(errors) - 1} more errors)")
        return BatchItem(index=index, region_id=region, status="error", error=first)
    except SeriesError as exc:
        return BatchItem(index=index, region_id=region, status="error", error=exc.as_item_error(prefix + "."))


async def _forecast_item(forecaster: Forecaster, index: int, request: PredictRequest, series, ticket: Ticket,
                         started: float) -> BatchItem:
    """One started batch entry: its failure is its own error."""
    prefix = f"series[{index}]"
    region = request.region_id
    try:
        outcome = await forecaster.outcome(ticket)
    except ForecastFailed as exc:
        return BatchItem(index=index, region_id=region, status="error",
                         error=ItemError(field=f"{prefix}.{exc.field}", message=exc.message))
    except Exception as exc:  # noqa: BLE001 - one item must never fail the batch
        log.exception("batch item %d failed unexpectedly", index)
        return BatchItem(index=index, region_id=region, status="error",
                         error=ItemError(field=prefix, message=f"internal error: {type(exc).__name__}"))
    response = _response(outcome, request.region_id, series.duplicates_merged)
    _log_forecast(request, response, started)
    return BatchItem(index=index, region_id=request.region_id, status="ok", forecast=response)


ERRORS = {
    413: {"model": ErrorResponse, "description": "Body larger than forecast_max_body_bytes, a series longer than "
                                                 "forecast_max_points, or a batch over forecast_max_batch_series"},
    422: {"model": ErrorResponse, "description": "Invalid input; each entry names the field"},
    429: {"model": ErrorResponse, "description": "forecast_max_pending_fits reached: retry after the Retry-After "
                                                 "header's seconds"},
}
AUTH = {401: {"model": ErrorResponse, "description": "No or a wrong API key (when METEOFLOW_FORECAST_API_KEY is set)"}}


def create_app(settings: Settings, registry: CollectorRegistry | None = None,
               forecaster: Forecaster | None = None) -> FastAPI:
    """`registry`: where the metrics served on /metrics go (python -m forecasting_api passes
    meteoflow.metrics.service_registry's; by default a registry of this app alone). `forecaster`:
    tests pass one with a fake fit or pool."""
    forecaster = forecaster or Forecaster(settings)
    min_points, max_points = settings.forecast_min_points, settings.forecast_max_points
    max_series = settings.forecast_max_batch_series
    answers = LruCache(settings.forecast_response_cache_size)  # whole answers by request body: ResponseCache
    metrics = ForecastingApiMetrics(lambda: {**forecaster.stats(), "response_cache": answers.stats()}, registry)
    api_key = settings.forecast_api_key.get_secret_value() if settings.forecast_api_key else ""
    # Only documents the key in the OpenAPI (Swagger's "Authorize"); ApiKeyGuard enforces it.
    secured = [Security(APIKeyHeader(name=API_KEY_HEADER, auto_error=False))] if api_key else []

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            await forecaster.warm_up()
            log.info("forecasting API ready", extra={"fields": {"meteoflow.forecast": {"workers": forecaster.workers}}})
            yield
        finally:
            forecaster.close()

    app = FastAPI(
        title="Meteoflow forecasting API",
        version=VERSION,
        description="Forecasts of hourly temperature per region, built around Prophet, with a calibrated band.",
        lifespan=lifespan,
    )
    app.state.forecaster = forecaster

    def answered_from_cache(path: str, kept: KeptAnswer, started: float) -> None:
        metrics.forecasts.labels("ok").inc(kept.ok)
        metrics.forecasts.labels("error").inc(kept.errors)
        log.info("%s answered from the response cache: %d ok, %d errors", path, kept.ok, kept.errors,
                 extra={"fields": {"event.action": FORECAST_BATCH_ACTION if path.endswith("/batch") else FORECAST_ACTION,
                                   "event.duration": int((time.perf_counter() - started) * 1e9),
                                   "meteoflow.forecast_batch": {"series": kept.ok + kept.errors, "ok": kept.ok,
                                                                "errors": kept.errors, "response_cached": True}}})

    app.state.response_cache = answers
    cached_routes: dict[str, Any] = {}  # filled once the routes below exist (the middleware stack is built later)
    # Added first, so innermost: the API key and the body's size are checked before the cache answers.
    app.add_middleware(ResponseCache, cache=answers, routes=cached_routes, on_hit=answered_from_cache)
    app.add_middleware(BodyLimit, max_bytes=settings.forecast_max_body_bytes)
    instrument_app(app, metrics.http)  # outside BodyLimit: its 413s are counted too
    if api_key:
        app.add_middleware(ApiKeyGuard, key=api_key, http=metrics.http)  # outermost: before /metrics and buffering

    @app.exception_handler(RequestValidationError)
    async def readable_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [e.model_dump() for e in describe_errors(exc.errors())]
        return JSONResponse({"detail": details}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def readable_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # FastAPI's 400 for a body it cannot decode (e.g. not UTF-8): the same 422 as any other non-JSON body
            return error_response(422, "body", "the body is not valid JSON (it must be UTF-8 encoded JSON)")
        return JSONResponse({"detail": [{"field": "request", "message": str(exc.detail)}]},
                            status_code=exc.status_code, headers=exc.headers)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses={**ERRORS, **AUTH, 503: {"model": ErrorResponse}, 504: {"model": ErrorResponse}},
        summary="Forecast one series",
        dependencies=secured,
    )
    async def predict(body: PredictRequest, request: Request):
        started = time.perf_counter()
        try:
            series = clean_series(body.data, min_points, max_points)
            outcome = await forecaster.forecast(series, body.horizon_hours, body.region_id)
        except QueueFull as exc:
            log.warning("forecast refused (429): %s", exc.message,
                        extra={"fields": {"event.action": FORECAST_ACTION, "event.outcome": "failure"}})
            return queue_full_response(exc)
        except (SeriesError, ForecastFailed) as exc:
            status = getattr(exc, "status", 422)
            log.warning("forecast refused (%d) %s: %s", status, exc.field, exc.message,
                        extra={"fields": {"event.action": FORECAST_ACTION, "event.outcome": "failure",
                                          "meteoflow.forecast": {"region_id": body.region_id, "field": exc.field}}})
            metrics.forecasts.labels("error").inc()
            return error_response(status, exc.field, exc.message)
        metrics.forecasts.labels("ok").inc()
        response = _response(outcome, body.region_id, series.duplicates_merged)
        _log_forecast(body, response, started)
        setattr(request.state, KEPT_ANSWER, KeptAnswer(_as_repeated(response).model_dump_json().encode(), 1, 0))
        return Response(response.model_dump_json(), media_type="application/json")  # as the batch's

    @app.post("/predict/batch", response_model=BatchResponse, responses={**ERRORS, **AUTH},
              summary="Forecast many series", dependencies=secured)
    async def predict_batch(body: BatchRequest, request: Request):
        started = time.perf_counter()
        if len(body.series) > max_series:
            return error_response(413, "series", f"{len(body.series)} series; the limit is {max_series} per batch "
                                                 "(forecast_max_batch_series)")
        checked = [_validate_item(index, raw, min_points, max_points) for index, raw in enumerate(body.series)]
        valid = [(index, c) for index, c in enumerate(checked) if not isinstance(c, BatchItem)]
        try:
            # All or nothing: a batch is admitted whole, so it never half-runs when the queue is full.
            tickets = forecaster.start([(series, request.horizon_hours, request.region_id)
                                        for _, (request, series) in valid])
        except QueueFull as exc:
            log.warning("batch refused (429): %s", exc.message,
                        extra={"fields": {"event.action": FORECAST_BATCH_ACTION, "event.outcome": "failure"}})
            return queue_full_response(exc)
        forecasts = await asyncio.gather(*(
            _forecast_item(forecaster, index, request, series, ticket, started)
            for (index, (request, series)), ticket in zip(valid, tickets)))
        by_index = {item.index: item for item in forecasts}
        items = [by_index.get(index, item) for index, item in enumerate(checked)]
        ok = sum(item.status == "ok" for item in items)
        metrics.forecasts.labels("ok").inc(ok)
        metrics.forecasts.labels("error").inc(len(items) - ok)
        log.info(
            "batch served: %d ok, %d errors", ok, len(items) - ok,
            extra={"fields": {
                "event.action": FORECAST_BATCH_ACTION,
                "event.duration": int((time.perf_counter() - started) * 1e9),
                "meteoflow.forecast_batch": {"series": len(items), "ok": ok, "errors": len(items) - ok},
            }},
        )
        if all(item.status == "ok" for item in forecasts):  # item errors left are the input's: they repeat
            repeated = [item.model_copy(update={"forecast": _as_repeated(item.forecast)}) if item.forecast else item
                        for item in items]
            setattr(request.state, KEPT_ANSWER, KeptAnswer(BatchResponse(results=repeated).model_dump_json().encode(),
                                                           ok, len(items) - ok))
        # Serialized here in one pass: returned as a model, FastAPI would validate it again first (most of a
        # cached batch's time). response_model still documents the body.
        return Response(BatchResponse(results=list(items)).model_dump_json(), media_type="application/json")

    @app.get("/health", response_model=Health, summary="Liveness, version, queue and cache figures (no API key)")
    async def health():
        return Health(status="ok", version=VERSION, **forecaster.stats(), response_cache=answers.stats())

    cached_routes.update({route.path: route for route in app.routes if getattr(route, "path", None) in CACHED_PATHS})

    return app


__all__ = ["create_app", "ErrorResponse", "BodyLimit", "ApiKeyGuard", "API_KEY_HEADER"]
