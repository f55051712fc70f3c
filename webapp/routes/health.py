"""GET /api/health: the pipeline watching itself (the samples elk/health/ writes): services,
consumer lag with its series over the window, store staleness, forecast age.

Its own route rather than part of /api/status: it reads another index (the health samples, written
beside the pipeline rather than through it) and fails on its own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Query

from meteoflow.contracts import HealthResponse
from webapp import views
from webapp.routes.common import INVALID, AttemptDep, ClockDep, LimitsDep, SettingsDep, StoreDep

MAX_HEALTH_MINUTES = 360  # lag chart window: 6 h (at most views.MAX_LAG_POINTS points whatever the window)

router = APIRouter(tags=["health"])


# No 503: every read here degrades into `errors` and state "unavailable".
@router.get("/api/health", response_model=HealthResponse, responses=INVALID,
            summary="Services, consumer lag, store staleness and forecast age, from the health samples")
def pipeline_health(
    settings: SettingsDep, store: StoreDep, limits: LimitsDep, attempt: AttemptDep, clock: ClockDep,
    minutes: int = Query(30, ge=5, le=MAX_HEALTH_MINUTES,
                         description=f"Window of the consumer-lag series in minutes (5-{MAX_HEALTH_MINUTES})"),
) -> dict[str, Any]:
    now = clock()
    interval = settings.metrics_interval_seconds
    start = now - timedelta(minutes=minutes)
    bucket = views.lag_bucket_seconds(minutes * 60, interval)
    errors: dict[str, str] = {}
    latest, err = attempt(lambda: store.health_latest(since=now - views.HEALTH_LOOKBACK), {})
    if err:
        errors["metrics"] = err
    series: dict[str, Any] = {}
    if not errors:  # Elasticsearch failed the first read: no second wait for the same answer
        series, err = attempt(lambda: store.lag_series(start, now, bucket), {})
        if err:
            errors["lag_series"] = err
    return views.health_body(latest, series, now, interval, (start, now), bucket,
                             far_behind_after=limits.late_after_seconds, errors=errors)
