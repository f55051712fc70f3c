"""GET /api/overview: the overview page's cards (the observation's own age, today's high and low, the
next hours of the served forecast, problems first) and whether a back-fill is running."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from meteoflow.contracts import OverviewResponse
from webapp import views
from webapp.routes.common import STORE_DOWN, AttemptDep, ClockDep, LimitsDep, StoreDep
from webapp.routes.regions import region_rows

router = APIRouter(tags=["weather"])

SKILL_WINDOW = "24h"  # a card's "degraded" is about the last day


@router.get("/api/overview", response_model=OverviewResponse, responses=STORE_DOWN,
            summary="The overview's cards: weather now, today's range, the next hours, problems first")
def overview(store: StoreDep, limits: LimitsDep, attempt: AttemptDep, clock: ClockDep) -> dict[str, Any]:
    now = clock()
    rows, _, es_error = region_rows(store, limits, attempt, now)
    skills: dict[str, list[Any]] = {}
    for s in store.forecast_skill(SKILL_WINDOW):
        skills.setdefault(s.region_id, []).append(s)
    cards = []
    for row in rows:
        rid = row["region_id"]
        latest = store.latest_observation(rid)
        hourly = []
        if latest is not None:
            day_start, _ = views.local_day(latest.observed_at, latest.timezone_offset or 0)
            _, hourly = store.recent_window(rid, day_start, latest.observed_at)  # the local day: within it
        skill = views.skill_summary(skills[rid]) if rid in skills else None
        cards.append(views.overview_card(row, latest, hourly, store.latest_forecast(rid), skill, now))
    return {"generated_at": views.iso(now), "thresholds": limits.model_dump(), "cards": views.sort_cards(cards),
            "backfill": views.backfill_status(cards), "errors": {"elasticsearch": es_error} if es_error else {}}
