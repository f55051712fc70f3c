"""Contracts between services, defined once: the forecasting API's request and
response, the dead-letter message, storage names, and the log events other
services read (streaming progress, producer run summary, supervisor events).

The services only meet through these: Kafka messages, MongoDB documents,
Elasticsearch documents and the forecasting API's HTTP bodies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# --- MongoDB collections (written by streaming, read by the web app) ------------------
OBSERVATIONS = "observations"  # _id "<region_id>|<observed_at ISO>", unique (region_id, observed_at)
HOURLY_STATS = "hourly_stats"  # _id "<region_id>|<hour ISO>": region_id, hour, temp_min/max/mean, count
FORECASTS = "forecasts"  # _id "<region_id>|<target_time ISO>": yhat, yhat_lower, yhat_upper, model_run_at
FORECAST_STATE = "forecast_state"  # _id region_id: needs_forecast, last_error, last_attempt_at, last_success_at

# --- log events other services rely on (field "event.action" of a pipeline.logs line) ---
STREAMING_BATCH_ACTION = "streaming-batch"  # one per micro-batch; fields under "meteoflow.streaming"
PRODUCER_RUN_ACTION = "producer-run"  # one per scheduled run; fields under "meteoflow.producer"
DEADLETTER_ACTION = "dead-letter"  # one per rejected record; fields under "meteoflow.deadletter"
# The supervisor of ./run.sh (service.name "supervisor"); fields under "meteoflow.supervisor" (SupervisorEvent).
SERVICE_EXITED_ACTION = "service-exited"  # each unexpected exit of a server or service
SERVICE_CRASH_LOOP_ACTION = "service-crash-loop"  # once per episode: too many exits in the window
SERVICE_RECOVERED_ACTION = "service-recovered"  # healthy again after a crash-loop
SUPERVISOR_ACTIONS = (SERVICE_EXITED_ACTION, SERVICE_CRASH_LOOP_ACTION, SERVICE_RECOVERED_ACTION)


# Back-filled history (the simulator catching up, One Call `timemachine` at start) is
# published in its own batches whose batch_id starts with this prefix: such records are
# old on purpose, so the arrival-lag alert ignores them.
BACKFILL_BATCH_PREFIX = "backfill-"


def is_backfill_batch(batch_id: str | None) -> bool:
    return bool(batch_id) and batch_id.startswith(BACKFILL_BATCH_PREFIX)


def doc_id(region_id: str, when: datetime) -> str:
    """Deterministic MongoDB _id, so writes are idempotent upserts."""
    return f"{region_id}|{when.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def kafka_doc_id(topic: str, partition: int, offset: int) -> str:
    """Elasticsearch _id of a shipped Kafka record: reshipping overwrites, never duplicates."""
    return f"{topic}-{partition}-{offset}"


# --- supervisor events (pipeline.logs, read back by the alerting service) ------------------
class SupervisorEvent(BaseModel):
    """What the supervisor knows about one server or service when it logs an event."""

    action: Literal[SERVICE_EXITED_ACTION, SERVICE_CRASH_LOOP_ACTION, SERVICE_RECOVERED_ACTION]
    service: str
    state: Literal["up", "backoff", "crash-loop", "held"]  # after the event
    exit_code: int | None = None  # negative: killed by that signal; None: unknown (not our child)
    last_error: str | None = None  # last error-looking line of its log, secrets masked
    restarts: int = 0
    exits_in_window: int = 0
    retry_in_seconds: float | None = None


def describe_exit(code: int | None, error: str | None = None) -> str:
    """`exit 3: ValueError: ...`, `signal SIGKILL`, or `exited` when the code is unknown."""
    if code is None:
        how = "exited"
    elif code < 0:
        try:
            how = f"signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"signal {-code}"
    else:
        how = f"exit {code}"
    return f"{how}: {error}" if error else how


class SupervisedProcess(BaseModel):
    """One server or service in the supervisor's state file (<run_dir>/pids/supervisor.json)."""

    state: Literal["up", "backoff", "crash-loop", "held"]
    since: datetime
    restarts: int = 0
    last_exit_code: int | None = None
    last_error: str | None = None
    last_exit_at: datetime | None = None
    retry_at: datetime | None = None


class SupervisorState(BaseModel):
    """The state file `./run.sh status` reads, also after the supervisor ended."""

    pid: int
    processes: dict[str, SupervisedProcess]


# --- dead letters (topic weather.deadletter) -----------------------------------------
# A dead letter must always fit in Kafka (1 MiB per message by default), whatever it carries:
# the payload is cut to this many bytes, the original's size and SHA-256 are kept instead.
DEADLETTER_PAYLOAD_LIMIT = 64 * 1024
DEADLETTER_PAYLOAD_LIMIT_MAX = 256 * 1024  # JSON escaping can grow text 6x: 1.5 MiB would not fit
MAX_REASON_CHARS = 2000
MAX_KEY_CHARS = 256


def _utf8_text(data: bytes, truncated: bool) -> str | None:
    """The bytes as text, or None when they are not UTF-8. A cut may have split the last
    character (up to 3 bytes of it): those are dropped rather than calling the payload binary."""
    for drop in range(4 if truncated else 1):
        try:
            return data[: len(data) - drop].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _bounded(text: str, limit: int) -> str:
    """At most `limit` characters of encodable text (a lone surrogate would fail serialization)."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class DeadLetter(BaseModel):
    """A record that was rejected somewhere, with (a bounded copy of) the original payload and why."""

    model_config = ConfigDict(extra="forbid")

    reason: str
    service: str  # who rejected it: producer, streaming, shipper
    failed_at: datetime
    payload: str  # the original bytes as UTF-8 text when they are text ("" when they are not)
    payload_base64: str | None = None  # the original bytes, base64, when they were not UTF-8
    payload_size: int | None = None  # bytes of the original payload
    payload_sha256: str | None = None  # of the whole original payload, to find it in Kafka or a file
    payload_truncated: bool = False  # payload/payload_base64 hold only its first bytes
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    key: str | None = None

    @field_validator("failed_at")
    @classmethod
    def _plausible(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        try:
            value = value.astimezone(timezone.utc)
        except OverflowError:
            raise ValueError("is not a representable time") from None
        if not datetime(1970, 1, 1, tzinfo=timezone.utc) <= value < datetime(9000, 1, 1, tzinfo=timezone.utc):
            raise ValueError("is out of range")
        return value

    @classmethod
    def build(cls, raw: bytes | str | dict | None, reason: str, service: str,
              max_payload_bytes: int = DEADLETTER_PAYLOAD_LIMIT, **where: Any) -> "DeadLetter":
        """Never raises, whatever `raw` holds, and what it builds fits in a Kafka message."""
        data = _payload_bytes(raw)
        fields: dict[str, Any] = {}
        if data is not None:
            truncated = len(data) > max_payload_bytes
            cut = data[:max_payload_bytes]
            text = _utf8_text(cut, truncated)
            fields = dict(payload_size=len(data), payload_sha256=hashlib.sha256(data).hexdigest(),
                          payload_truncated=truncated,
                          payload_base64=base64.b64encode(cut).decode() if text is None else None)
        else:
            text = None
        if where.get("key") is not None:
            where["key"] = _bounded(str(where["key"]), MAX_KEY_CHARS)
        return cls(reason=_bounded(str(reason), MAX_REASON_CHARS), service=service,
                   failed_at=datetime.now(timezone.utc), payload=text or "", **fields, **where)

    def to_message(self) -> bytes:
        return self.model_dump_json().encode()


def _payload_bytes(raw: bytes | str | dict | None) -> bytes | None:
    if raw is None:
        return None
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw)
    if isinstance(raw, dict):
        try:
            return json.dumps(raw, default=str).encode("utf-8", "backslashreplace")
        except (TypeError, ValueError, RecursionError):
            return f"<a {type(raw).__name__} that is not serializable as JSON>".encode()
    return str(raw).encode("utf-8", "backslashreplace")


# --- counting dead letters: one per rejected record -----------------------------------
# An invalid observation is rejected twice: the streaming job dead-letters it (that dead letter
# is shipped from the dead-letter topic) AND the shipper (or Logstash), validating the same
# observations-topic record with the same code, routes it to the dead-letter index too, so that
# Elasticsearch accounts for every Kafka offset. That second document (kafka.topic = the
# observations topic) is an index-side copy and counts leave it out. Every other dead-letter
# document is one rejected record (producer, streaming job, or the shipper for the topics only
# it reads). The web app, the deadletter_spike rule and the Kibana panel count this way.
def counted_deadletters(observations_topic: str) -> dict[str, Any]:
    """Elasticsearch query of the dead-letter documents that count (one per rejected record)."""
    return {"bool": {"must_not": {"term": {"kafka.topic": observations_topic}}}}


def counted_deadletters_kql(observations_topic: str) -> str:
    """The same filter in Kibana's query language."""
    return f'not kafka.topic : "{observations_topic}"'


# --- heartbeats (index <prefix>-heartbeats, one document per service, _id = service) -------
class Heartbeat(BaseModel):
    """Written by a service after each completed cycle (the alerting service: each evaluation),
    straight to Elasticsearch (no Kafka, no shipper), so the web app can tell it stopped."""

    model_config = ConfigDict(extra="forbid")

    service: str
    at: datetime
    interval_seconds: float  # the time expected between two heartbeats


# --- health signals (index <prefix>-metrics, one document per sample) ---------------------
METRIC_KINDS = ("consumer_lag", "store_staleness", "service", "forecast_age")


class MetricSample(BaseModel):
    """One health reading taken by the alerting service's sampler (elk/health/), written straight
    to Elasticsearch (not through Kafka and the shipper, whose failures it must report).

    `subject` names what was measured: a consumer (`streaming`, `shipper`), a store (`kafka`,
    `mongodb`, `elasticsearch`), a supervised server or service, or a region. Only the fields of
    its kind are set (docs/reliability.md, "Health signals")."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    timestamp: datetime = Field(alias="@timestamp")
    kind: Literal["consumer_lag", "store_staleness", "service", "forecast_age"]
    subject: str
    # consumer_lag
    lag_records: int | None = None  # records on the consumer's topics it has not processed yet
    lag_seconds: float | None = None  # age of its oldest unprocessed record (0 when caught up)
    partitions: int | None = None
    consumer_started: bool | None = None  # it has processed something (a committed batch, group offsets)
    # store_staleness (newest_at also for a store; age_seconds also for forecast_age)
    newest_at: datetime | None = None  # newest record in the store (Kafka: its last record's timestamp)
    staleness_seconds: float | None = None  # how far the store's newest lies behind Kafka's newest (>= 0)
    age_seconds: float | None = None  # now - newest_at (forecast_age: now - model_run_at)
    # service (from the supervisor state file of ./run.sh)
    state: str | None = None
    up: int | None = None  # 1 when state is "up", else 0 (sums and charts)
    uptime_seconds: float | None = None  # time in its current "up" state
    restarts: int | None = None
    last_exit_code: int | None = None
    last_error: str | None = None
    # forecast_age
    model_run_at: datetime | None = None  # the region's last successful forecast run
    forecast_status: str | None = None  # ok, skipped, error, failed (forecast_state.status)

    def to_document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- forecasting API -----------------------------------------------------------------
class SeriesPoint(BaseModel):
    ds: str = Field(description="timestamp, ISO 8601 (UTC assumed when no offset is given)")
    y: float = Field(description="temperature, deg C")


class PredictRequest(BaseModel):
    """One series. Field names match the ancestor's client (latitude, longitude, data[{ds, y}])."""

    region_id: str | None = Field(None, max_length=64)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    data: list[SeriesPoint]
    horizon_hours: int = Field(24, ge=1, le=168)
    frequency: Literal["h"] = "h"


class Prediction(BaseModel):
    timestamp: datetime
    temperature: float
    lower: float
    upper: float


class ModelFacts(BaseModel):
    points_used: int
    duplicates_merged: int = 0
    fit_seconds: float
    seasonalities: list[str]
    cached: bool = False


class PredictResponse(BaseModel):
    region_id: str | None = None
    predictions: list[Prediction]
    model: ModelFacts


class BatchRequest(BaseModel):
    # Items stay raw here and are validated one by one with PredictRequest, so one bad
    # series gets its own error while the others are still forecast.
    series: list[dict[str, Any]] = Field(min_length=1, max_length=500)


class ItemError(BaseModel):
    field: str
    message: str


class BatchItem(BaseModel):
    index: int
    region_id: str | None = None
    status: Literal["ok", "error"]
    forecast: PredictResponse | None = None
    error: ItemError | None = None


class BatchResponse(BaseModel):
    results: list[BatchItem]
