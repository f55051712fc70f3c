"""GET /api/regions (every region, its latest observation and freshness) and GET /api/regions/{id}
(one region: observations, hourly stats and latest forecast over a window)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Path as PathParam, Query

from meteoflow.contracts import RECENT_HOURS, RegionResponse, RegionsResponse
from meteoflow.freshness import Thresholds
from webapp import views
from webapp.routes.common import (
    INVALID, STORE_DOWN, Attempt, AttemptDep, ClockDep, LimitsDep, StoreDep, not_found,
)
from webapp.store import Store

REGION_ID_PATTERN = r"^[A-Za-z0-9_.-]+$"  # the schema's region_id pattern
MAX_HOURS = 720  # 30 days: the window a chart can still draw point by point

router = APIRouter(tags=["regions"])


def region_rows(store: Store, limits: Thresholds, attempt: Attempt,
                now: datetime) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], str | None]:
    """Every region's summary (MongoDB's regions and Elasticsearch's), the arrivals by region, and
    Elasticsearch's failure if it could not be read (the rows then come from MongoDB alone)."""
    arrivals, es_error = attempt(store.arrivals_by_region, {})
    latest = store.latest_observations()  # one read for every region (region_latest)
    ids = set(latest) | set(arrivals)
    rows = [views.region_summary(rid, latest.get(rid), arrivals.get(rid), limits, now) for rid in ids]
    return views.sort_regions(rows), arrivals, es_error


@router.get("/api/regions", response_model=RegionsResponse, responses=STORE_DOWN,
            summary="Every region: latest observation, freshness, last seen, lag")
def regions(store: StoreDep, limits: LimitsDep, attempt: AttemptDep, clock: ClockDep) -> dict[str, Any]:
    now = clock()
    rows, _, es_error = region_rows(store, limits, attempt, now)
    return {"generated_at": views.iso(now), "thresholds": limits.model_dump(), "regions": rows,
            "errors": {"elasticsearch": es_error} if es_error else {}}


@router.get("/api/regions/{region_id}", response_model=RegionResponse,
            responses={**not_found("region"), **INVALID, **STORE_DOWN},
            summary="One region: observations, hourly stats and latest forecast")
def region(
    store: StoreDep, limits: LimitsDep, attempt: AttemptDep, clock: ClockDep,
    region_id: str = PathParam(..., min_length=1, max_length=64, pattern=REGION_ID_PATTERN,
                               description="Region id, as in the regions file"),
    hours: int = Query(48, ge=1, le=MAX_HOURS, description=f"History window in hours (1-{MAX_HOURS})"),
) -> dict[str, Any]:
    now = clock()
    latest = store.latest_observation(region_id)
    arrivals, es_error = attempt(store.arrivals_by_region, {})
    if latest is None and region_id not in arrivals:
        raise HTTPException(status_code=404, detail=f"unknown region '{region_id}': no observation stored for it")
    start, end = views.history_window(latest.observed_at if latest else None, now, hours)
    if latest is not None and hours <= RECENT_HOURS:  # the window ends at the region's newest observation
        observations, hourly = store.recent_window(region_id, start, end)
    else:  # longer windows: range queries over the whole history
        observations, hourly = store.observations(region_id, start, end), store.hourly_stats(region_id, start, end)
    return {
        "generated_at": views.iso(now),
        "hours": hours,
        "window": {"start": views.iso(start), "end": views.iso(end)},
        "region": views.region_summary(region_id, latest, arrivals.get(region_id), limits, now),
        "observations": [views.observation_body(d) for d in observations],
        "hourly": [views.hourly_body(d) for d in hourly],
        "forecast": views.forecast_body(store.latest_forecast(region_id)),
        "errors": {"elasticsearch": es_error} if es_error else {},
    }
