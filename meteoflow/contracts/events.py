"""Log and metric events other services read back: action names, the bodies of the
streaming-batch and producer-run events, supervisor events and state, heartbeats and health
samples."""

from __future__ import annotations

import signal
from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, Mapping, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from meteoflow.contracts.common import UtcTime, dig
from meteoflow.contracts.observation import describe_exception
from meteoflow.errors import describe_errors

# --- log events other services rely on (field "event.action" of a pipeline.logs line) ---
STREAMING_BATCH_ACTION = "streaming-batch"  # one per micro-batch; fields under "meteoflow.streaming"
PRODUCER_RUN_ACTION = "producer-run"  # one per scheduled run; fields under "meteoflow.producer"
BACKFILL_ACTION = "producer-backfill"  # progress of an import / first-start back-fill; "meteoflow.backfill"
DEADLETTER_ACTION = "dead-letter"  # one per rejected record; fields under "meteoflow.deadletter"
BATCH_RUN_ACTION = "batch-run"  # one per scheduled batch job (rain model); fields under "meteoflow.batch"
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


# --- log events with a body (the object under `FIELD` of a pipeline.logs line) ---------------
class InvalidEvent(ValueError):
    """A log line whose event body does not match its model; the message names the field."""


E = TypeVar("E", bound="LogEvent")


class Logged(BaseModel, Generic[E]):
    """An event as read back from a log line: when it was logged, and its body."""

    at: datetime
    event: E


class LogEvent(BaseModel):
    """The body of a log event: the writer logs `log_extra()`, a reader gets it back from the
    shipped line with `from_log_line()`."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    ACTION: ClassVar[str]  # event.action
    FIELD: ClassVar[str]  # where the body sits in the line

    def log_extra(self) -> dict[str, Any]:
        """`extra=` for logging: the line gets event.action and the body (meteoflow.logs)."""
        return {"fields": {"event.action": self.ACTION, self.FIELD: self.model_dump(mode="json")}}

    @classmethod
    def from_log_line(cls, line: Any) -> "Logged":
        """The event of a log line (an Elasticsearch _source, nested or with dotted keys), or
        InvalidEvent naming the bad field. Total: nothing else is raised."""
        where = f"{cls.ACTION} log line"
        if not isinstance(line, Mapping):
            raise InvalidEvent(f"{where}: not an object (got {type(line).__name__})")
        try:
            at = _LOGGED_AT.validate_python(line.get("@timestamp"))
        except ValidationError as exc:
            raise InvalidEvent(f"{where}: @timestamp: {describe_errors(exc).removeprefix('record: ')}") from None
        body = dig(line, cls.FIELD)
        if body is None:
            raise InvalidEvent(f"{where}: {cls.FIELD}: missing")
        try:
            event = cls.model_validate(body)
        except ValidationError as exc:
            raise InvalidEvent(f"{where}, {cls.FIELD}: {describe_errors(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - content no validator foresaw still costs only this line
            raise InvalidEvent(f"{where}, {cls.FIELD}: {describe_exception(exc)}") from None
        return Logged(at=at, event=event)


_LOGGED_AT = TypeAdapter(UtcTime)


Count = Annotated[int, Field(ge=0)]


class ForecastRunSummary(BaseModel):
    """What one forecast refresh did, per outcome (regions), in a streaming-batch event."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    ok: Count
    failed: Count  # the API was unavailable: retried
    skipped: Count  # too little history
    errors: Count  # the API refused the series
    deferred: Count  # left marked for a later refresh: the API in back-off, or their refit not due yet
    forecasts_written: Count
    failure: str | None = None  # one failure's message, when some failed


class StreamingBatchEvent(LogEvent):
    """One per micro-batch of the streaming job (service streaming)."""

    ACTION: ClassVar[str] = STREAMING_BATCH_ACTION
    FIELD: ClassVar[str] = "meteoflow.streaming"

    batch_id: Count  # Spark's batch id
    input_rows: Count  # Kafka records read
    rows_per_second: float | None = Field(None, ge=0, allow_inf_nan=False)
    durations_ms: dict[str, float]  # per stage (collect, validate, ..., total, spark_trigger)
    kafka_end_offsets: dict[str, dict[str, int]] | None = None  # topic -> partition -> next offset
    dead_letters: Count
    stored: Count  # observation documents written
    stats_upserted: Count
    forecast: ForecastRunSummary


class FailedRegion(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    region_id: str
    reason: str


class ProducerRunEvent(LogEvent):
    """One per producer run (service producer)."""

    ACTION: ClassVar[str] = PRODUCER_RUN_ACTION
    FIELD: ClassVar[str] = "meteoflow.producer"

    batch_id: str
    source: str
    records: Count  # observations Kafka acknowledged
    regions_ok: Count
    regions_failed: list[FailedRegion]
    regions_failed_count: Count  # distinct regions in regions_failed
    dead_letters: Count
    duration_s: float = Field(ge=0, allow_inf_nan=False)


BackfillState = Literal["running", "finished", "paused", "failed"]


class BackfillEvent(LogEvent):
    """Progress of a history import (`python -m producer import`, or the producer's first-start
    back-fill): logged when it starts, at most every few seconds while it runs, and when it ends.
    A reader shows "back-fill running" while a job's latest event is `running` and recent.
    paused: stopped before the end, resumable (the request budget is spent for today, or a stop
    was asked); failed: stopped by an error (the progress file keeps what was done)."""

    ACTION: ClassVar[str] = BACKFILL_ACTION
    FIELD: ClassVar[str] = "meteoflow.backfill"

    job: str  # stable across resumptions: "<source>-<hash of what is imported>"
    source: str  # Observation.source of the records
    state: BackfillState
    done: Count  # units (hours for the APIs and the simulator, lines for files) done so far
    total: Count
    records: Count  # observations Kafka acknowledged, over every resumption
    failed: Count  # units left to retry (failed requests) or rejected (dead-lettered lines)
    first: UtcTime | None = None  # the time range being imported
    last: UtcTime | None = None
    message: str | None = None  # why it paused or failed

    @property
    def running(self) -> bool:
        return self.state == "running"


BatchJob = Literal["train-rain", "predict-rain"]
# ok; not-ready: the archive cannot serve the job yet (too short, no rain seen, no model): expected
# on a new deployment, retried at the next period; stopped: the service was asked to stop while it
# ran; failed: anything else, a timeout included (the message says what).
BatchOutcome = Literal["ok", "not-ready", "stopped", "failed"]


class BatchRunEvent(LogEvent):
    """One scheduled run of a batch job (`python -m batch schedule`, service rain_model)."""

    ACTION: ClassVar[str] = BATCH_RUN_ACTION
    FIELD: ClassVar[str] = "meteoflow.batch"

    job: BatchJob
    outcome: BatchOutcome
    exit_code: int | None  # None: stopped before it ended (timeout or shutdown)
    duration_s: float = Field(ge=0, allow_inf_nan=False)
    message: str | None = None  # the job's last line: its summary, or why it did not run


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


# --- heartbeats (index <prefix>-heartbeats, one document per service, _id = service) -------
class Heartbeat(BaseModel):
    """Written by a service after each completed cycle (the alerting service: each evaluation),
    straight to Elasticsearch (no Kafka, no shipper), so the web app can tell it stopped."""

    model_config = ConfigDict(extra="forbid")

    service: str
    at: datetime
    interval_seconds: float  # the time expected between two heartbeats


# --- health signals (index <prefix>-metrics, one document per sample) ---------------------
METRIC_KINDS = ("consumer_lag", "store_staleness", "service", "forecast_age", "forecast_skill")


class MetricSample(BaseModel):
    """One health reading taken by the alerting service's sampler (elk/health/), written straight
    to Elasticsearch (not through Kafka and the shipper, whose failures it must report).

    `subject` names what was measured: a consumer (`streaming`, `shipper`), a store (`kafka`,
    `mongodb`, `elasticsearch`), a supervised server or service, or a region. Only the fields of
    its kind are set (docs/reliability.md, "Health signals")."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    timestamp: datetime = Field(alias="@timestamp")
    kind: Literal["consumer_lag", "store_staleness", "service", "forecast_age", "forecast_skill"]
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
    # forecast_skill (a region's forecast_skill over the 24 h window, all lead times 1-24 h together)
    skill_pairs: int | None = None  # forecast/observation pairs scored
    model_mae: float | None = None  # of the served forecast, deg C
    persistence_mae: float | None = None  # of the persistence baseline over the same pairs
    coverage: float | None = None  # share of observations inside the served band (0..1)
    band_level: float | None = None  # the band's nominal coverage

    def to_document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
