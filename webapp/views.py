"""Pure functions that shape stored documents into the web app's API bodies.

No I/O here: the adapters in `webapp.store` read MongoDB and Elasticsearch, these
functions decide what a region's freshness is, what a streaming batch looks like, and
how arrivals are counted, so they are unit-tested without servers.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from meteoflow.forecast_verdict import SkillFigures, judge
from meteoflow.freshness import Thresholds, classify
from meteoflow.contracts import (
    BASELINE_MODELS, OBSERVATION_FIELDS, ForecastDocument, ForecastRun, HourlyStats, Logged, ObservationDocument,
    StreamingBatchEvent, is_backfill_batch, parse_utc,
)

# The observation fields the UI shows: all of the contract's but the producer's bookkeeping
# (Mongo's _id and stored_at are not observation fields).
OBSERVATION_KEYS = tuple(f for f in OBSERVATION_FIELDS if f != "produced_at")


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


def observation_body(doc: ObservationDocument | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {key: iso(value) if isinstance(value, datetime) else value
            for key, value in doc.model_dump(include=set(OBSERVATION_KEYS)).items()}


def last_seen_of(es_seen: Mapping[str, Any] | None, doc: ObservationDocument | None) -> tuple[datetime | None, str]:
    """When the region's latest record arrived, and where that time comes from.

    Elasticsearch's ingested_at is the wall-clock arrival; without it, the time the
    streaming job stored the observation, and last the observation time itself.
    """
    if es_seen and as_utc(es_seen.get("ingested_at")):
        return as_utc(es_seen["ingested_at"]), "ingested_at"
    if doc is not None and doc.stored_at is not None:
        return doc.stored_at, "stored_at"
    if doc is not None:
        return doc.observed_at, "observed_at"
    return None, "none"


def region_summary(
    region_id: str,
    doc: ObservationDocument | None,
    es_seen: Mapping[str, Any] | None,
    limits: Thresholds,
    now: datetime,
) -> dict[str, Any]:
    last_seen, basis = last_seen_of(es_seen, doc)
    lag = es_seen.get("lag_seconds") if es_seen else None
    if lag is None and doc is not None and last_seen and basis != "observed_at":
        lag = (last_seen - doc.observed_at).total_seconds()
    name = (doc.region_name if doc is not None else None) or (es_seen or {}).get("region_name") or region_id
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


def hourly_body(doc: HourlyStats) -> dict[str, Any]:
    return {"hour": iso(doc.hour), "temp_min": doc.temp_min, "temp_max": doc.temp_max,
            "temp_mean": doc.temp_mean, "count": doc.count}


def forecast_body(docs: list[ForecastDocument]) -> dict[str, Any] | None:
    """The points of one model run; the stored names are the API's (contracts.ForecastDocument)."""
    if not docs:
        return None
    points = [{"target_time": iso(d.target_time), "yhat": d.yhat, "yhat_lower": d.yhat_lower,
               "yhat_upper": d.yhat_upper} for d in sorted(docs, key=lambda d: d.target_time)]
    return {"model_run_at": iso(max(d.model_run_at for d in docs)), "model": served_label(docs), "points": points}


def served_label(docs: Iterable[ForecastDocument]) -> str | None:
    """What a forecast serves at most of its points (a baseline may be served at some leads only, where it
    beats the model); on a tie, the model. None: not recorded."""
    counts = Counter(d.model for d in docs if d.model)
    if not counts:
        return None
    return max(counts, key=lambda m: (counts[m], m not in BASELINE_MODELS))


def streaming_batch(logged: Logged[StreamingBatchEvent]) -> dict[str, Any]:
    """One streaming-batch event (contracts.StreamingBatchEvent) -> what the status page shows."""
    event = logged.event
    return {
        "at": iso(logged.at),
        "batch_id": event.batch_id,
        "input_rows": event.input_rows,
        "rows_per_second": event.rows_per_second,
        "input_rows_per_second": None,  # not measured (kept in the body for the UI's shape)
        "duration_ms": event.durations_ms.get("total"),
        "durations_ms": dict(event.durations_ms),
        "stored": event.stored,
        "invalid": event.dead_letters,
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


# --- pipeline health: the samples of elk/health/ in the <prefix>-metrics index ------------------
HEALTH_STALE_AFTER_INTERVALS = 3  # a sample older than this many sampling intervals is not current
HEALTH_LOOKBACK = timedelta(hours=24)  # how far back the latest sample of each subject is looked for
MAX_LAG_POINTS = 60  # points per consumer in the lag chart, whatever the window
MAX_ERROR_CHARS = 500


def _number(source: Mapping[str, Any], key: str) -> float | int | None:
    value = source.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(source: Mapping[str, Any], key: str, limit: int = 100) -> str | None:
    value = source.get(key)
    return str(value)[:limit] if value is not None else None


def lag_bucket_seconds(window_seconds: float, interval_seconds: float) -> int:
    """Width of one point of the lag chart: a sampling interval, or wider so that the window
    has at most MAX_LAG_POINTS points (whole seconds: Elasticsearch's fixed_interval)."""
    return max(1, math.ceil(max(interval_seconds, window_seconds / MAX_LAG_POINTS)))


def latest_samples(aggregations: Mapping[str, Any] | None) -> tuple[datetime | None, dict[str, dict[str, Mapping[str, Any]]]]:
    """The aggregations of Store.health_latest -> (time of the newest sample, {kind: {subject: its
    latest sample}}). Anything missing (no index, no samples) is an empty result, not an error."""
    aggs = aggregations or {}
    newest = as_utc((aggs.get("newest") or {}).get("value"))  # epoch millis, None without samples
    latest: dict[str, dict[str, Mapping[str, Any]]] = {}
    for kind in ((aggs.get("recent") or {}).get("kinds") or {}).get("buckets", []):
        for subject in (kind.get("subjects") or {}).get("buckets", []):
            hits = ((subject.get("latest") or {}).get("hits") or {}).get("hits") or []
            if hits and isinstance(hits[0].get("_source"), Mapping):
                latest.setdefault(str(kind.get("key")), {})[str(subject.get("key"))] = hits[0]["_source"]
    return newest, latest


def lag_series(aggregations: Mapping[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """The aggregations of Store.lag_series -> {consumer: [{at, lag_records, lag_seconds}]}, one point
    per bucket, oldest first; a bucket without a sample has None values (a gap in the chart)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for consumer in (((aggregations or {}).get("consumers") or {}).get("buckets", [])):
        points = []
        for bucket in (consumer.get("over_time") or {}).get("buckets", []):
            records = (bucket.get("lag_records") or {}).get("value")
            seconds = (bucket.get("lag_seconds") or {}).get("value")
            points.append({
                "at": iso(bucket.get("key")),
                "lag_records": int(records) if isinstance(records, (int, float)) else None,
                "lag_seconds": round(float(seconds), 1) if isinstance(seconds, (int, float)) else None,
            })
        out[str(consumer.get("key"))] = points
    return out


def _sampled(source: Mapping[str, Any], now: datetime, stale_after: float) -> dict[str, Any]:
    """When the sample was taken, and whether it is too old to stand for the present."""
    at = as_utc(source.get("@timestamp"))
    age = max(0.0, (now - at).total_seconds()) if at else None
    return {"sampled_at": iso(at), "sample_age_seconds": round(age, 1) if age is not None else None,
            "stale": age is None or age > stale_after}


def service_row(name: str, source: Mapping[str, Any], now: datetime, stale_after: float) -> dict[str, Any]:
    """A server or service of ./run.sh. Its last error was masked by the supervisor (no secrets)."""
    up = _number(source, "up")
    return {
        "name": name,
        "state": _text(source, "state", 20),  # up, backoff, crash-loop, held
        "up": bool(up) if up is not None else None,
        "uptime_seconds": _number(source, "uptime_seconds"),
        "restarts": _number(source, "restarts"),
        "last_exit_code": _number(source, "last_exit_code"),
        "last_error": _text(source, "last_error", MAX_ERROR_CHARS),
        **_sampled(source, now, stale_after),
    }


def consumer_row(name: str, source: Mapping[str, Any] | None, series: list[dict[str, Any]], now: datetime,
                 stale_after: float) -> dict[str, Any]:
    source = source or {}
    return {
        "name": name,
        "lag_records": _number(source, "lag_records"),
        "lag_seconds": _number(source, "lag_seconds"),
        "partitions": _number(source, "partitions"),
        # False: it has processed nothing yet (starting, e.g. Spark's first batch); None: not said
        "started": source.get("consumer_started") if isinstance(source.get("consumer_started"), bool) else None,
        **_sampled(source, now, stale_after),
        "series": series,
    }


def store_row(name: str, source: Mapping[str, Any], now: datetime, stale_after: float,
              far_behind_after: float) -> dict[str, Any]:
    """A store's newest record against Kafka's. `status`: reference (Kafka itself), unknown (either
    has nothing yet), in_step, behind, or far_behind (more than `far_behind_after`, the web app's
    "late" threshold: its regions would show late)."""
    staleness = _number(source, "staleness_seconds")
    if name == "kafka":
        status = "reference"
    elif staleness is None:
        status = "unknown"
    elif staleness <= 0:
        status = "in_step"
    else:
        status = "far_behind" if staleness > far_behind_after else "behind"
    return {
        "name": name,
        "newest_at": iso(source.get("newest_at")),
        "staleness_seconds": staleness,
        "age_seconds": _number(source, "age_seconds"),
        "status": status,
        **_sampled(source, now, stale_after),
    }


def forecast_row(region_id: str, source: Mapping[str, Any], now: datetime, stale_after: float) -> dict[str, Any]:
    return {
        "region_id": region_id,
        "model_run_at": iso(source.get("model_run_at")),
        "age_seconds": _number(source, "age_seconds"),
        "forecast_status": _text(source, "forecast_status", 20),
        **_sampled(source, now, stale_after),
    }


STORE_ORDER = ("kafka", "elasticsearch", "mongodb")  # Kafka first: the others are measured against it


def health_body(latest: Mapping[str, Any] | None, series: Mapping[str, Any] | None, now: datetime,
                interval_seconds: float, window: tuple[datetime, datetime], bucket_seconds: int,
                far_behind_after: float, errors: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The body of GET /api/health from the two reads of the metrics index.

    `state`: ok; stale (the newest sample is older than HEALTH_STALE_AFTER_INTERVALS sampling
    intervals: the sampler stopped, the values are the last known); empty (no sample at all: the
    index is absent or empty); unavailable (Elasticsearch could not be read)."""
    errors = dict(errors or {})
    stale_after = HEALTH_STALE_AFTER_INTERVALS * interval_seconds
    newest, by_kind = latest_samples(latest)
    points = lag_series(series)
    newest_age = max(0.0, (now - newest).total_seconds()) if newest else None
    if "metrics" in errors:
        state, message = "unavailable", f"Health samples cannot be read: {errors['metrics']}"
    elif newest is None:
        state, message = "empty", (f"No health samples yet: the alerting service writes them every "
                                   f"{interval_seconds:g} s. Is it running?")
    elif newest_age is not None and newest_age > stale_after:
        state, message = "stale", (f"Health samples stopped: the newest is {newest_age:.0f} s old, more than "
                                   f"{HEALTH_STALE_AFTER_INTERVALS} sampling intervals. The values are the last "
                                   "known, not current. Is the alerting service running?")
    else:
        state, message = "ok", None
    stores = by_kind.get("store_staleness", {})
    consumers = by_kind.get("consumer_lag", {})
    return {
        "generated_at": iso(now),
        "state": state,
        "message": message,
        "interval_seconds": interval_seconds,
        "stale_after_seconds": stale_after,
        "newest_sample_at": iso(newest),
        "newest_sample_age_seconds": round(newest_age, 1) if newest_age is not None else None,
        "window": {"start": iso(window[0]), "end": iso(window[1]), "bucket_seconds": bucket_seconds},
        "services": [service_row(name, src, now, stale_after) for name, src in sorted(by_kind.get("service", {}).items())],
        "consumers": [consumer_row(name, consumers.get(name), points.get(name, []), now, stale_after)
                      for name in sorted(set(consumers) | set(points))],
        "stores": [store_row(name, stores[name], now, stale_after, far_behind_after)
                   for name in sorted(stores, key=lambda s: (STORE_ORDER.index(s) if s in STORE_ORDER else 99, s))],
        "forecasts": [forecast_row(rid, src, now, stale_after) for rid, src in sorted(by_kind.get("forecast_age", {}).items())],
        "errors": errors,
    }


# --- incidents, silences and acknowledgements (GET/POST /api/incidents, /api/silences) -------
INCIDENT_STATUSES = ("firing", "resolved")  # a "pending" incident has not held for its `for:` yet: not shown
NOTIFICATION_KEYS = ("delivery_id", "kind", "status", "attempts", "last_error", "silenced_by")


def incident_query(status: str | None = None, rule: str | None = None, subject: str | None = None,
                   severity: str | None = None, since: datetime | None = None,
                   until: datetime | None = None) -> dict[str, Any]:
    """Elasticsearch query of the incidents history. `subject` matches an incident's subject or its
    region; `since`/`until` keep the incidents that were open at some time in between."""
    filters: list[dict[str, Any]] = []
    for field, value in (("status", status), ("rule", rule), ("severity", severity)):
        if value:
            filters.append({"term": {field: value}})
    if subject:
        filters.append({"bool": {"minimum_should_match": 1, "should": [
            {"term": {"subject": subject}}, {"term": {"region_id": subject}}]}})
    if until is not None:
        filters.append({"range": {"opened_at": {"lte": until.isoformat()}}})
    if since is not None:  # still open, or resolved after `since`
        filters.append({"bool": {"minimum_should_match": 1, "should": [
            {"range": {"resolved_at": {"gte": since.isoformat()}}},
            {"bool": {"must_not": {"exists": {"field": "resolved_at"}}}}]}})
    return {"bool": {"filter": filters, "must_not": [{"term": {"status": "pending"}}]}}


def acknowledgement_body(ack: Any) -> dict[str, Any] | None:
    """A contracts.Acknowledgement for the API (None stays None)."""
    if ack is None:
        return None
    return {"author": ack.author, "comment": ack.comment, "at": iso(ack.at)}


def incident_body(source: Mapping[str, Any], ack: Any = None) -> dict[str, Any]:
    """One incident of the alerting service (elk/templates/alerts.json), its notifications and
    their delivery (sent, silenced, pending, logged, failed), and its acknowledgement."""
    notes = []
    for note in source.get("notifications") or []:
        if isinstance(note, Mapping):
            notes.append({**{k: note.get(k) for k in NOTIFICATION_KEYS},
                          "created_at": iso(note.get("created_at")), "sent_at": iso(note.get("sent_at"))})
    return {
        "id": source.get("incident_id"),
        "rule": source.get("rule"),
        "subject": source.get("subject"),
        "region_id": source.get("region_id"),
        "region_name": source.get("region_name"),
        "title": source.get("title"),
        "status": source.get("status"),
        "severity": source.get("severity"),
        "summary": source.get("summary"),
        "inhibited_by": source.get("inhibited_by"),  # "rule|subject" of the cause that holds it back
        "hint": source.get("hint"),
        "opened_at": iso(source.get("opened_at")),
        "updated_at": iso(source.get("updated_at")),
        "resolved_at": iso(source.get("resolved_at")),
        "last_seen": iso(source.get("last_seen")),
        "value": source.get("value"),
        "threshold": source.get("threshold"),
        "notifications": notes,
        "acknowledgement": acknowledgement_body(ack),
    }


def silence_body(silence: Any, now: datetime) -> dict[str, Any]:
    """A contracts.Silence for the API, with its state at `now` (scheduled, active, expired)."""
    return {
        "id": silence.silence_id,
        "rule": silence.rule,
        "subject": silence.subject,
        "starts_at": iso(silence.starts_at),
        "ends_at": iso(silence.ends_at),
        "expired_at": iso(silence.expired_at),
        "created_at": iso(silence.created_at),
        "comment": silence.comment,
        "author": silence.author,
        "state": silence.state(now),
    }


def sort_silences(bodies: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Active first (ending soonest first), then scheduled (starting soonest), then expired (latest ended first)."""
    def key(b: dict[str, Any]) -> tuple[int, float]:
        def ts(field: str) -> float:
            return as_utc(b[field]).timestamp()
        if b["state"] == "active":
            return (0, ts("ends_at"))
        if b["state"] == "scheduled":
            return (1, ts("starts_at"))
        ended = min(ts(f) for f in ("ends_at", "expired_at") if b[f])
        return (2, -ended)
    return sorted(bodies, key=key)


# --- the weather pages: overview cards, past forecast runs, forecast quality -------------------
NEXT_HOURS = 6  # the overview card's forecast strip
MATCH_WINDOW = timedelta(minutes=30)  # an observation this close to a target time verifies it
PROBLEM_ORDER = {"silent": 0, "late": 1, "degraded": 2}


def local_day(when: datetime, offset_seconds: int) -> tuple[datetime, str]:
    """The UTC start of the local day `when` falls in (at UTC offset `offset_seconds`), and its date."""
    local = when + timedelta(seconds=offset_seconds)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(seconds=offset_seconds), midnight.date().isoformat()


def day_range(latest: ObservationDocument, hourly: Iterable[HourlyStats], now: datetime) -> dict[str, Any]:
    """High and low of the local day of the latest observation, from that day's hourly stats."""
    offset = latest.timezone_offset or 0
    start, day = local_day(latest.observed_at, offset)
    rows = [h for h in hourly if start <= h.hour <= latest.observed_at]
    highs = [h.temp_max for h in rows] + [latest.temp]
    lows = [h.temp_min for h in rows] + [latest.temp]
    return {"day": day, "is_today": local_day(now, offset)[1] == day, "high": max(highs), "low": min(lows)}


def weighted_mean(pairs: Iterable[tuple[float | None, int]]) -> float | None:
    """Count-weighted mean of the values that are known."""
    known = [(v, n) for v, n in pairs if v is not None and n > 0]
    total = sum(n for _, n in known)
    return round(math.fsum(v * n for v, n in known) / total, 3) if total else None


def skill_summary(docs: Iterable[Any]) -> dict[str, Any]:
    """A set of contracts.ForecastSkill documents (a region's leads, or a lead's regions) summed up:
    count-weighted MAE and bias of the served forecast and the baselines, coverage, and whether the
    served forecast is degraded (meteoflow.forecast_verdict: the alert rule's judgment, so a card
    flags what would page, and nothing on too few pairs)."""
    docs = list(docs)
    pairs = {k: weighted_mean((getattr(d, k), d.count) for d in docs)
             for k in ("model_mae", "persistence_mae", "climatology_mae", "model_bias", "coverage")}
    baselines = {b: pairs[f"{b}_mae"] for b in ("persistence", "climatology") if pairs[f"{b}_mae"] is not None}
    best = min(baselines, key=baselines.get) if baselines else None
    model = pairs["model_mae"]
    skill = (round(1 - model / baselines[best], 3) if best and model is not None and baselines[best] > 0 else None)
    band = max((d.band_level for d in docs), default=None)
    verdict = judge(SkillFigures.of(docs))
    return {**pairs, "count": sum(d.count for d in docs), "best_baseline": best, "skill": skill,
            "band_level": band, "degraded": verdict.degraded, "degraded_reason": "; ".join(verdict.reasons) or None,
            "updated_at": iso(max((d.updated_at for d in docs), default=None))}


def overview_card(summary: dict[str, Any], latest: ObservationDocument | None, hourly: list[HourlyStats],
                  forecast: list[ForecastDocument], skill: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """One card of the overview: the region's summary, the observation's own age, today's range,
    the next hours of the served forecast and what is wrong, if anything."""
    ahead = [d for d in sorted(forecast, key=lambda d: d.target_time)
             if latest is None or d.target_time > latest.observed_at][:NEXT_HOURS]
    model = served_label(ahead or forecast)
    degraded = bool(skill and skill["degraded"])
    problem = summary["freshness"] if summary["freshness"] != "fresh" else ("degraded" if degraded else None)
    return {
        "region": summary,
        "observed_age_seconds": round(max(0.0, (now - latest.observed_at).total_seconds()), 1) if latest else None,
        "from_backfill": bool(latest and is_backfill_batch(latest.batch_id)),
        "today": day_range(latest, hourly, now) if latest else None,
        "next_hours": (forecast_body(ahead) or {"points": []})["points"],
        "forecast_model": model,
        "forecast_is_baseline": model in BASELINE_MODELS,
        "degraded": degraded,
        "degraded_reason": skill["degraded_reason"] if degraded else None,
        "problem": problem,
    }


def sort_cards(cards: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Problems first (silent, late, degraded), then by region name."""
    return sorted(cards, key=lambda c: (PROBLEM_ORDER.get(c["problem"], 9),
                                        str(c["region"]["region_name"]).lower(), c["region"]["region_id"]))


def backfill_status(cards: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A back-fill is running while regions whose latest observation was back-filled still receive data."""
    filling = [c for c in cards if c["from_backfill"] and c["region"]["freshness"] == "fresh"]
    newest = max((c["region"]["latest"]["observed_at"] for c in filling), default=None)
    return {"running": bool(filling), "regions": sorted(c["region"]["region_id"] for c in filling),
            "newest_observed_at": newest}


def run_item(run: ForecastRun) -> dict[str, Any]:
    # run_at to the millisecond: it names the run (ForecastRun.make_id), two runs may share a second.
    run_at = run.run_at.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"run_at": run_at, "origin": iso(run.origin), "model": run.model,
            "is_baseline": run.model in BASELINE_MODELS, "horizon_hours": run.horizon_hours,
            "band_level": run.band_level}


def verify_run(run: ForecastRun, observations: list[ObservationDocument]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each point of a past run next to the observation nearest its target (within MATCH_WINDOW),
    and the run's MAE, bias and band coverage over the points that can be verified."""
    times = [o.observed_at for o in observations]  # sorted by the store
    points, errors, inside = [], [], []
    for p in sorted(run.points, key=lambda p: p.target_time):
        i = bisect.bisect_left(times, p.target_time)
        near = min((observations[j] for j in (i - 1, i) if 0 <= j < len(observations)),
                   key=lambda o: abs(o.observed_at - p.target_time), default=None)
        observed = near.temp if near is not None and abs(near.observed_at - p.target_time) <= MATCH_WINDOW else None
        error = round(p.yhat - observed, 3) if observed is not None else None
        within = p.yhat_lower <= observed <= p.yhat_upper if observed is not None else None
        if error is not None:
            errors.append(error)
            inside.append(within)
        points.append({"target_time": iso(p.target_time),
                       "lead_hours": round((p.target_time - run.origin).total_seconds() / 3600, 2),
                       "yhat": p.yhat, "yhat_lower": p.yhat_lower, "yhat_upper": p.yhat_upper,
                       "observed": observed, "error": error, "inside_band": within})
    n = len(errors)
    return points, {"verified": n,
                    "mae": round(math.fsum(abs(e) for e in errors) / n, 3) if n else None,
                    "bias": round(math.fsum(errors) / n, 3) if n else None,
                    "coverage": round(sum(inside) / n, 3) if n else None}


def quality_body(skills: list[Any], names: Mapping[str, str], served: Mapping[str, str | None],
                 window: str, region_id: str | None, now: datetime) -> dict[str, Any]:
    """GET /api/forecast-quality from the window's contracts.ForecastSkill documents: per lead time
    (over every region, or `region_id`'s), and per region, worst skill first."""
    by_region: dict[str, list[Any]] = {}
    for s in skills:
        by_region.setdefault(s.region_id, []).append(s)
    chosen = by_region.get(region_id, []) if region_id else skills
    by_lead: dict[int, list[Any]] = {}
    for s in chosen:
        by_lead.setdefault(s.lead_hours, []).append(s)
    leads = []
    for lead, docs in sorted(by_lead.items()):
        summary = skill_summary(docs)
        leads.append({"lead_hours": lead, "count": summary["count"],
                      **{k: summary[k] for k in ("model_mae", "persistence_mae", "climatology_mae", "model_bias", "coverage")},
                      "api_mae": weighted_mean((d.api_mae, d.api_count) for d in docs)})
    regions = []
    for rid, docs in by_region.items():
        summary = skill_summary(docs)
        regions.append({"region_id": rid, "region_name": names.get(rid) or rid, "served_model": served.get(rid),
                        **{k: summary[k] for k in ("count", "model_mae", "persistence_mae", "climatology_mae",
                                                   "best_baseline", "skill", "coverage", "band_level", "degraded",
                                                   "degraded_reason", "updated_at")}})
    # Worst first: the lowest skill; regions whose skill is unknown last.
    regions.sort(key=lambda r: (r["skill"] is None, r["skill"] if r["skill"] is not None else 0, r["region_name"]))
    return {"generated_at": iso(now), "window": window, "region_id": region_id,
            "band_level": max((s.band_level for s in chosen), default=None),
            "updated_at": iso(max((s.updated_at for s in chosen), default=None)),
            "by_lead": leads, "regions": regions}
