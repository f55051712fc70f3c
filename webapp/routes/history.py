"""GET /api/regions/{id}/history (a region's daily statistics over 7 days, 30 days or a year) and
GET /api/history/yesterday (every region's totals of yesterday). The days are UTC days, kept by
the streaming job (streaming/daily.py) and rebuilt by `python -m batch recompute`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, HTTPException, Path as PathParam, Query

from meteoflow.contracts import (
    DailyStats, HistoryWindow, RainModelEvaluation, RainResponse, RegionHistoryResponse, YesterdayResponse,
)
from webapp import views
from webapp.routes.common import INVALID, STORE_DOWN, ClockDep, StoreDep, not_found
from webapp.routes.regions import REGION_ID_PATTERN

WINDOW_DAYS: dict[str, int] = {"7d": 7, "30d": 30, "1y": 365}

router = APIRouter(tags=["history"])


def utc_day(when: datetime) -> datetime:
    return when.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def daily_body(doc: DailyStats) -> dict[str, Any]:
    return {"region_id": doc.region_id, "day": f"{doc.day:%Y-%m-%d}", "temp_min": doc.temp_min,
            "temp_max": doc.temp_max, "temp_mean": doc.temp_mean, "humidity_mean": doc.humidity_mean,
            "wind_speed_mean": doc.wind_speed_mean, "precipitation_mm": doc.precipitation_mm,
            "precipitation_hours": doc.precipitation_hours, "count": doc.count}


@router.get("/api/regions/{region_id}/history", response_model=RegionHistoryResponse,
            responses={**not_found("region"), **INVALID, **STORE_DOWN},
            summary="One region's daily statistics over 7 days, 30 days or a year (UTC days, today included)")
def region_history(
    store: StoreDep, clock: ClockDep,
    region_id: str = PathParam(..., min_length=1, max_length=64, pattern=REGION_ID_PATTERN,
                               description="Region id, as in the regions file"),
    window: HistoryWindow = Query("7d", description="7d, 30d or 1y"),
) -> dict[str, Any]:
    now = clock()
    last = utc_day(now)
    first = last - timedelta(days=WINDOW_DAYS[window] - 1)
    days = store.daily_stats(region_id, first, last)
    if not days and store.latest_observation(region_id) is None:
        raise HTTPException(status_code=404, detail=f"unknown region '{region_id}': no observation stored for it")
    return {"generated_at": views.iso(now), "region_id": region_id, "window": window, "start": f"{first:%Y-%m-%d}",
            "end": f"{last:%Y-%m-%d}", "days": [daily_body(d) for d in days]}


@router.get("/api/history/yesterday", response_model=YesterdayResponse, responses=STORE_DOWN,
            summary="Every region's daily statistics of yesterday (UTC)")
def yesterday(store: StoreDep, clock: ClockDep) -> dict[str, Any]:
    now = clock()
    day = utc_day(now) - timedelta(days=1)
    return {"generated_at": views.iso(now), "day": f"{day:%Y-%m-%d}",
            "regions": [daily_body(d) for d in store.daily_stats(None, day, day)]}


def rain_model_body(doc: RainModelEvaluation) -> dict[str, Any]:
    return {"model": doc.model, "trained_at": views.iso(doc.trained_at), "selected": doc.selected,
            "lead_hours": doc.lead_hours, "train_until": views.iso(doc.train_until), "train_rows": doc.train_rows,
            "test_rows": doc.test_rows, "rain_share": doc.rain_share, "auc": doc.auc, "accuracy": doc.accuracy,
            "confusion": [[doc.true_negatives, doc.false_positives], [doc.false_negatives, doc.true_positives]],
            "training_seconds": doc.training_seconds}


@router.get("/api/history/rain", response_model=RainResponse, responses=STORE_DOWN,
            summary="The rain model's evaluation (classifiers compared) and every region's rain chance")
def rain(store: StoreDep, clock: ClockDep) -> dict[str, Any]:
    return {"generated_at": views.iso(clock()), "models": [rain_model_body(m) for m in store.rain_models()],
            "predictions": [{"region_id": p.region_id, "from_hour": views.iso(p.from_hour), "lead_hours": p.lead_hours,
                             "probability": p.probability, "model": p.model, "predicted_at": views.iso(p.predicted_at)}
                            for p in store.rain_predictions()]}
