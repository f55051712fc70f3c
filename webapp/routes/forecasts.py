"""Past forecasts and their measured skill: GET /api/regions/{id}/forecast-runs (the kept runs of a
window), GET /api/regions/{id}/forecast-runs/{run_at} (one run against what happened) and
GET /api/forecast-quality (skill vs the baselines by lead time and region, from `forecast_skill`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Path as PathParam, Query

from meteoflow.contracts import ForecastQualityResponse, ForecastRunResponse, ForecastRunsResponse
from webapp import views
from webapp.routes.common import INVALID, STORE_DOWN, ClockDep, StoreDep, not_found, query_time
from webapp.routes.regions import MAX_HOURS, REGION_ID_PATTERN

router = APIRouter(tags=["forecasts"])

BEFORE_ORIGIN = timedelta(hours=12)  # what happened before a run was made, drawn for context


def region_param() -> Any:
    return PathParam(..., min_length=1, max_length=64, pattern=REGION_ID_PATTERN,
                     description="Region id, as in the regions file")


@router.get("/api/regions/{region_id}/forecast-runs", response_model=ForecastRunsResponse,
            responses={**not_found("region"), **INVALID, **STORE_DOWN},
            summary="The region's kept forecast runs of the window, newest first")
def forecast_runs(store: StoreDep, clock: ClockDep, region_id: str = region_param(),
                  hours: int = Query(48, ge=1, le=MAX_HOURS,
                                     description=f"Runs made in the hours before the latest observation (1-{MAX_HOURS})"),
                  ) -> dict[str, Any]:
    now = clock()
    latest = store.latest_observation(region_id)
    if latest is None:
        raise HTTPException(status_code=404, detail=f"unknown region '{region_id}': no observation stored for it")
    # Anchored on the data like the history window; runs made after the latest observation too.
    start, _ = views.history_window(latest.observed_at, now, hours)
    end = max(now, latest.observed_at)
    return {"generated_at": views.iso(now), "region_id": region_id,
            "window": {"start": views.iso(start), "end": views.iso(end)},
            "runs": [views.run_item(r) for r in store.forecast_runs(region_id, start, end)]}


@router.get("/api/regions/{region_id}/forecast-runs/{run_at}", response_model=ForecastRunResponse,
            responses={**not_found("region or run"), **INVALID, **STORE_DOWN},
            summary="One past forecast run against what happened")
def forecast_run(store: StoreDep, clock: ClockDep, region_id: str = region_param(),
                 run_at: datetime = PathParam(..., description="The run's time (run_at of GET .../forecast-runs)"),
                 ) -> dict[str, Any]:
    now = clock()
    when = query_time("run_at", run_at)
    run = store.forecast_run(region_id, when)
    if run is None:
        raise HTTPException(status_code=404, detail=f"no forecast run of '{region_id}' made at {views.iso(when)}")
    last = max((p.target_time for p in run.points), default=run.origin)
    observed = store.observations(region_id, run.origin - BEFORE_ORIGIN, last + views.MATCH_WINDOW)
    points, verification = views.verify_run(run, observed)
    return {"generated_at": views.iso(now), "region_id": region_id, "run": views.run_item(run), "points": points,
            "verification": verification, "observations": [views.observation_body(o) for o in observed]}


@router.get("/api/forecast-quality", response_model=ForecastQualityResponse, responses={**INVALID, **STORE_DOWN},
            summary="The served forecast's skill vs persistence and climatology, by lead time and region")
def forecast_quality(store: StoreDep, clock: ClockDep,
                     window: Literal["24h", "7d"] = Query("24h", description="Rolling window of the skill"),
                     region: str | None = Query(None, min_length=1, max_length=64, pattern=REGION_ID_PATTERN,
                                                description="Lead-time curves of this region (default: every region)"),
                     ) -> dict[str, Any]:
    now = clock()
    skills = store.forecast_skill(window)
    names, served = {}, {}
    for rid in sorted({s.region_id for s in skills}):
        latest = store.latest_observation(rid)
        names[rid] = latest.region_name if latest else rid
        served[rid] = views.served_label(store.latest_forecast(rid))
    return views.quality_body(skills, names, served, window, region, now)
