"""Pure functions that shape stored documents into the web app's API bodies.

No I/O here: the adapters in `webapp.store` read MongoDB and Elasticsearch, these
functions decide what a region's freshness is, what a streaming batch looks like, and
how arrivals are counted, so they are unit-tested without servers.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from meteoflow.freshness import Thresholds, classify
from meteoflow.schema import parse_utc

# Observation fields the UI shows; Mongo's _id and internal bookkeeping stay out.
OBSERVATION_KEYS = (
    "region_id", "region_name", "lat", "lon", "observed_at", "temp", "feels_like", "humidity",
    "pressure", "dew_point", "clouds", "visibility", "uvi", "wind_speed", "wind_deg", "wind_gust",
    "weather_main", "weather_description", "weather_icon", "sunrise", "sunset", "timezone_offset",
    "source", "batch_id",
)


def as_utc(value: Any) -> datetime | None:
    """A datetime (naive = UTC, as BSON dates are), ISO text or epoch millis -> aware UTC."""
    # Total: a stored value no time can be made of (written before the schema's time bounds, or
    # by hand) shows as unknown instead of failing the whole page.
    try:
        if isinstance(value, datetime):
            return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value / 1000, timezone.utc)
        if isinstance(value, str):
            return parse_utc(value)
    except (OverflowError, OSError, ValueError):
        return None
    return None


def iso(value: Any) -> str | None:
    when = as_utc(value)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z") if when else None


def dig(doc: Mapping[str, Any] | None, path: str) -> Any:
    """Read `a.b.c` from an Elasticsearch _source whether it was written nested
    ({"a": {"b": ...}}) or with dotted keys ({"a.b": ...}), as ECS log lines are."""
    if not isinstance(doc, Mapping):
        return None
    if path in doc:
        return doc[path]
    parts = path.split(".")
    for i in range(1, len(parts)):
        head = ".".join(parts[:i])
        if head in doc:
            found = dig(doc[head], ".".join(parts[i:]))
            if found is not None:
                return found
    return None


def observation_body(doc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not doc:
        return None
    body = {}
    for key in OBSERVATION_KEYS:
        value = doc.get(key)
        body[key] = iso(value) if isinstance(value, datetime) else value
    return body


def last_seen_of(es_seen: Mapping[str, Any] | None, doc: Mapping[str, Any] | None) -> tuple[datetime | None, str]:
    """When the region's latest record arrived, and where that time comes from.

    Elasticsearch's ingested_at is the wall-clock arrival; without it, the time the
    streaming job stored the observation, and last the observation time itself.
    """
    if es_seen and as_utc(es_seen.get("ingested_at")):
        return as_utc(es_seen["ingested_at"]), "ingested_at"
    for key in ("stored_at", "ingested_at", "observed_at"):
        when = as_utc(doc.get(key)) if doc else None
        if when:
            return when, key
    return None, "none"


def region_summary(
    region_id: str,
    doc: Mapping[str, Any] | None,
    es_seen: Mapping[str, Any] | None,
    limits: Thresholds,
    now: datetime,
) -> dict[str, Any]:
    last_seen, basis = last_seen_of(es_seen, doc)
    lag = es_seen.get("lag_seconds") if es_seen else None
    if lag is None and doc and last_seen and basis != "observed_at" and as_utc(doc.get("observed_at")):
        lag = (last_seen - as_utc(doc["observed_at"])).total_seconds()
    name = (doc or {}).get("region_name") or (es_seen or {}).get("region_name") or region_id
    return {
        "region_id": region_id,
        "region_name": name,
        "latest": observation_body(doc),
        "last_seen": iso(last_seen),
        "last_seen_basis": basis,
        "age_seconds": round((now - last_seen).total_seconds(), 1) if last_seen else None,
        "lag_seconds": round(float(lag), 1) if lag is not None else None,
        "freshness": classify(last_seen, now, limits),
    }


def sort_regions(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (str(r.get("region_name") or "").lower(), r["region_id"]))


def history_window(latest_observed: datetime | None, now: datetime, hours: int) -> tuple[datetime, datetime]:
    """The `hours` before the region's latest observation (or before now when it has none).

    Anchored on the data rather than the wall clock, so a replay or a simulator running
    ahead of real time still shows its last `hours`.
    """
    end = latest_observed or now
    return end - timedelta(hours=hours), end


def hourly_body(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "hour": iso(doc.get("hour")),
        "temp_min": doc.get("temp_min"),
        "temp_max": doc.get("temp_max"),
        "temp_mean": doc.get("temp_mean"),
        "count": doc.get("count"),
    }


def forecast_body(docs: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    if not docs:
        return None
    runs = [as_utc(d.get("model_run_at")) for d in docs if d.get("model_run_at") is not None]
    points = sorted(
        (
            {
                "target_time": iso(d.get("target_time")),
                "yhat": d.get("yhat"),
                "yhat_lower": d.get("yhat_lower"),
                "yhat_upper": d.get("yhat_upper"),
            }
            for d in docs
            if d.get("target_time") is not None and d.get("yhat") is not None
        ),
        key=lambda p: p["target_time"],
    )
    return {"model_run_at": iso(max(runs)) if runs else None, "points": points}


def streaming_batch(source: Mapping[str, Any]) -> dict[str, Any]:
    """One streaming-batch log line -> what the status page shows. Missing fields stay None."""
    progress = dig(source, "meteoflow.streaming") or {}
    durations = dig(progress, "durations_ms") or {}

    def num(*paths: str) -> float | None:
        for path in paths:
            value = dig(progress, path)
            if isinstance(value, (int, float)):
                return value
        return None

    return {
        "at": iso(source.get("@timestamp")),
        "batch_id": num("batch_id", "batchId"),
        "input_rows": num("input_rows", "numInputRows", "rows"),
        "rows_per_second": num("rows_per_second", "processed_rows_per_second", "processedRowsPerSecond"),
        "input_rows_per_second": num("input_rows_per_second", "inputRowsPerSecond"),
        "duration_ms": num("durations_ms.total", "duration_ms", "triggerExecution"),
        "durations_ms": {k: v for k, v in durations.items() if isinstance(v, (int, float))}
        if isinstance(durations, Mapping)
        else {},
        "stored": num("stored", "observations_written", "upserted"),
        "invalid": num("invalid", "dead_letters", "deadlettered"),
    }


def alert_body(source: Mapping[str, Any], doc_id: str | None = None) -> dict[str, Any]:
    """An incident of the alerting service; its "firing" status is shown as "active"."""
    status = source.get("status")
    return {
        "id": source.get("incident_id") or doc_id,
        "rule": source.get("rule"),
        "region_id": source.get("region_id"),
        "region_name": source.get("region_name"),
        "subject": source.get("subject"),
        "state": "active" if status == "firing" else status,
        "severity": source.get("severity"),
        "started_at": iso(source.get("opened_at")),
        "resolved_at": iso(source.get("resolved_at")),
        "message": source.get("summary"),
    }


def bucket_counts(buckets: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Elasticsearch terms buckets -> {key: doc_count}."""
    return {str(b["key"]): int(b["doc_count"]) for b in buckets}


ALERTING_STALE_AFTER_INTERVALS = 3


def alerting_status(heartbeat: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
    """From the alerting service's heartbeat document: when it last completed an evaluation, and
    whether that is older than 3 of its intervals (it stopped, or cannot read Elasticsearch).
    No heartbeat at all is "unknown" (stale None): alerting may not be deployed."""
    at = as_utc((heartbeat or {}).get("at"))
    interval = (heartbeat or {}).get("interval_seconds")
    stale = None
    if at is not None and interval:
        stale = (now - at).total_seconds() > ALERTING_STALE_AFTER_INTERVALS * float(interval)
    return {"last_evaluation_at": iso(at), "interval_seconds": interval, "stale": stale}
