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
import re
import signal
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

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


def plausible_utc(value: datetime) -> datetime:
    """An aware UTC time (naive means UTC) between 1970 and 9000, or ValueError."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        value = value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("is not a representable time") from None
    if not datetime(1970, 1, 1, tzinfo=timezone.utc) <= value < datetime(9000, 1, 1, tzinfo=timezone.utc):
        raise ValueError("is out of range")
    return value


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
        return plausible_utc(value)

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


# --- silences and acknowledgements (indices <prefix>-silences and <prefix>-acks) ----------
# Written by the web app (its API and UI), read by the alerting service at each evaluation
# (elk/alerting/silences.py). Acknowledgements live in their own index, `_id` = incident_id,
# never on the incident documents: the alerting service rewrites those whole.
ALERT_RULES = ("region_silence", "arrival_lag", "streaming_stalled", "deadletter_spike", "crash_loop", "consumer_lag",
               "service_down", "store_behind", "forecast_stale", "elasticsearch_unavailable")
"""The rules of the alerting service (elk/alerting/rules.py RULE_MODELS; a unit test keeps them
equal), so the web app can refuse a silence for a rule that does not exist."""
SILENCE_MAX_SECONDS = 30 * 24 * 3600  # longer than a month is not a silence but a disabled rule
MAX_COMMENT_CHARS = 1000
MAX_AUTHOR_CHARS = 100

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # control characters but tab and newline


def _matching(pattern: str, what: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value
    return AfterValidator(check)


def _one_line(value: str) -> str:
    if _CONTROL.search(value) or "\n" in value or "\t" in value:
        raise ValueError("must be one line of text, without control characters")
    return value


def _text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


UtcTime = Annotated[datetime, AfterValidator(plausible_utc)]
RuleName = Annotated[str, StringConstraints(min_length=1, max_length=64),
                     _matching(r"[a-z][a-z0-9_]*", "a rule name (lowercase letters, digits and _)")]
# What an incident is about: a region id (the schema's characters), a service, a consumer, a store.
Subject = Annotated[str, StringConstraints(min_length=1, max_length=128),
                    _matching(r"[A-Za-z0-9_.:-]+", "a region id or another subject (letters, digits and _ . : -)")]
IncidentId = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Author = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_AUTHOR_CHARS),
                   AfterValidator(_one_line)]
Comment = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_COMMENT_CHARS),
                    AfterValidator(_text)]


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class Silence(BaseModel):
    """Alertmanager's silence: while active, the notifications of every incident it matches are
    recorded with status "silenced" (and `silenced_by` = silence_id) instead of being sent.

    Matchers are exact and both must hold when set; at least one is set. `subject` matches an
    incident's subject or its region, so a silence on a region covers every rule about it."""

    model_config = ConfigDict(extra="forbid")

    silence_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    rule: RuleName | None = None
    subject: Subject | None = Field(None, validate_default=True)
    starts_at: UtcTime
    ends_at: UtcTime
    comment: Comment
    author: Author
    created_at: UtcTime
    expired_at: UtcTime | None = None  # expired by hand (DELETE /api/silences/{id}) at this time

    @field_validator("rule", "subject", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_is_none(value)

    @field_validator("subject")
    @classmethod
    def _one_matcher(cls, value: str | None, info: ValidationInfo) -> str | None:
        # "rule" missing from info.data: it was invalid and has its own error already.
        if value is None and "rule" in info.data and info.data["rule"] is None:
            raise ValueError("a silence needs at least one matcher: rule or subject (a region)")
        return value

    @field_validator("ends_at")
    @classmethod
    def _bounded(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("starts_at")
        if start is not None:
            if value <= start:
                raise ValueError("must be after starts_at")
            if value - start > timedelta(seconds=SILENCE_MAX_SECONDS):
                raise ValueError(f"must be at most {SILENCE_MAX_SECONDS // 86400} days after starts_at")
        return value

    def is_active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at and (self.expired_at is None or now < self.expired_at)

    def state(self, now: datetime) -> Literal["scheduled", "active", "expired"]:
        if now >= self.ends_at or (self.expired_at is not None and now >= self.expired_at):
            return "expired"
        return "scheduled" if now < self.starts_at else "active"

    def matches(self, rule: str, subject: str, region_id: str | None = None) -> bool:
        """Whether the matchers select an incident of `rule` about `subject` (region `region_id`)."""
        return (self.rule is None or self.rule == rule) and (self.subject is None or self.subject in (subject, region_id))


class Acknowledgement(BaseModel):
    """Someone is on it: the incident gets no more reminders (its recovery is still sent)."""

    model_config = ConfigDict(extra="forbid")

    incident_id: IncidentId
    author: Author
    comment: Comment
    at: UtcTime


class SilenceRequest(BaseModel):
    """The body of POST /api/silences: the matchers, from when (default now) until when (ends_at,
    or duration_seconds after the start), why and who. The web app turns it into a Silence."""

    model_config = ConfigDict(extra="forbid")

    rule: RuleName | None = None
    subject: Subject | None = None
    starts_at: UtcTime | None = None
    ends_at: UtcTime | None = None
    duration_seconds: float | None = Field(None, gt=0, le=SILENCE_MAX_SECONDS, validate_default=True)
    comment: Comment
    author: Author

    @field_validator("rule", "subject", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_is_none(value)

    @field_validator("duration_seconds")
    @classmethod
    def _one_end(cls, value: float | None, info: ValidationInfo) -> float | None:
        if "ends_at" not in info.data:
            return value  # ends_at was invalid: its own error says so
        if value is None and info.data["ends_at"] is None:
            raise ValueError("give ends_at or duration_seconds")
        if value is not None and info.data["ends_at"] is not None:
            raise ValueError("give ends_at or duration_seconds, not both")
        return value


class AckRequest(BaseModel):
    """The body of POST /api/incidents/{id}/ack."""

    model_config = ConfigDict(extra="forbid")

    author: Author
    comment: Comment


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
