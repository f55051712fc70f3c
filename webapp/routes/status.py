"""GET /api/status: pipeline health as the status page shows it (arrivals, lag, streaming batches,
alerts, dead letters, the alerting service's heartbeat). Each Elasticsearch read fails on its own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from meteoflow.contracts import StatusResponse
from webapp import views
from webapp.routes.common import STORE_DOWN, AttemptDep, ClockDep, LimitsDep, StoreDep
from webapp.routes.regions import region_rows

router = APIRouter(tags=["status"])


@router.get("/api/status", response_model=StatusResponse, responses=STORE_DOWN,
            summary="Pipeline health: arrivals, lag, streaming batches, alerts, dead letters")
def status(store: StoreDep, limits: LimitsDep, attempt: AttemptDep, clock: ClockDep) -> dict[str, Any]:
    now = clock()
    errors: dict[str, str] = {}
    rows, arrivals, es_error = region_rows(store, limits, attempt, now)
    if es_error:
        errors["arrivals"] = es_error
    for row in rows:
        info = arrivals.get(row["region_id"], {})
        row["arrivals_last_hour"] = info.get("last_hour", 0)
        row["arrivals_per_bucket"] = info.get("per_bucket", [])
    batches, err = attempt(lambda: [views.streaming_batch(s) for s in store.streaming_batches()], [])
    if err:
        errors["streaming"] = err
    active, err = attempt(lambda: [views.alert_body(s, i) for i, s in store.alerts(active=True, limit=50)], [])
    if err:
        errors["alerts"] = err
    recent, _ = attempt(lambda: [views.alert_body(s, i) for i, s in store.alerts(active=False, limit=20)], [])
    dead, err = attempt(
        lambda: store.deadletters(since=now - timedelta(hours=1)),
        {"total": 0, "last_hour": 0, "by_service": {}, "latest": []},
    )
    if err:
        errors["deadletters"] = err
    heartbeat, err = attempt(lambda: store.heartbeat("alerting"), None)
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
