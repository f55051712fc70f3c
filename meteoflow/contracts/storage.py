"""Where things are stored and under which id: MongoDB collections and Elasticsearch ids."""

from __future__ import annotations

from datetime import datetime, timezone


# --- MongoDB collections (written by streaming, read by the web app) ------------------
OBSERVATIONS = "observations"  # _id "<region_id>|<observed_at ISO>", unique (region_id, observed_at)
HOURLY_STATS = "hourly_stats"  # _id "<region_id>|<hour ISO>": region_id, hour, temp_min/max/mean, count
FORECASTS = "forecasts"  # _id "<region_id>|<target_time ISO>": yhat, yhat_lower, yhat_upper, model_run_at
FORECAST_STATE = "forecast_state"  # _id region_id: needs_forecast, last_error, last_attempt_at, last_success_at


def doc_id(region_id: str, when: datetime) -> str:
    """Deterministic MongoDB _id, so writes are idempotent upserts."""
    return f"{region_id}|{when.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def kafka_doc_id(topic: str, partition: int, offset: int) -> str:
    """Elasticsearch _id of a shipped Kafka record: reshipping overwrites, never duplicates."""
    return f"{topic}-{partition}-{offset}"
