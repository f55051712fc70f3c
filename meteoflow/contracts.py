"""Contracts between services, defined once: the forecasting API's request and
response, the dead-letter message, storage names, and the log events other
services read (streaming progress, producer run summary).

The services only meet through these: Kafka messages, MongoDB documents,
Elasticsearch documents and the forecasting API's HTTP bodies.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# --- MongoDB collections (written by streaming, read by the web app) ------------------
OBSERVATIONS = "observations"  # _id "<region_id>|<observed_at ISO>", unique (region_id, observed_at)
HOURLY_STATS = "hourly_stats"  # _id "<region_id>|<hour ISO>": region_id, hour, temp_min/max/mean, count
FORECASTS = "forecasts"  # _id "<region_id>|<target_time ISO>": yhat, yhat_lower, yhat_upper, model_run_at
FORECAST_STATE = "forecast_state"  # _id region_id: needs_forecast, last_error, last_attempt_at, last_success_at

# --- log events other services rely on (field "event.action" of a pipeline.logs line) ---
STREAMING_BATCH_ACTION = "streaming-batch"  # one per micro-batch; fields under "meteoflow.streaming"
PRODUCER_RUN_ACTION = "producer-run"  # one per scheduled run; fields under "meteoflow.producer"
DEADLETTER_ACTION = "dead-letter"  # one per rejected record; fields under "meteoflow.deadletter"


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


# --- dead letters (topic weather.deadletter) -----------------------------------------
class DeadLetter(BaseModel):
    """A record that failed validation somewhere, with the original payload and why."""

    model_config = ConfigDict(extra="forbid")

    reason: str
    service: str  # who rejected it: producer, streaming, ...
    failed_at: datetime
    payload: str  # the original bytes, as UTF-8 text when they are text
    payload_base64: str | None = None  # set when the original bytes were not UTF-8
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    key: str | None = None

    @classmethod
    def build(cls, raw: bytes | str | dict | None, reason: str, service: str, **where: Any) -> "DeadLetter":
        b64 = None
        if isinstance(raw, (bytes, bytearray)):
            try:
                text = bytes(raw).decode("utf-8")
            except UnicodeDecodeError:
                text = bytes(raw).decode("utf-8", "replace")
                b64 = base64.b64encode(bytes(raw)).decode()
        elif isinstance(raw, dict):
            text = json.dumps(raw, default=str)
        else:
            text = "" if raw is None else str(raw)
        return cls(reason=reason, service=service, failed_at=datetime.now(timezone.utc), payload=text,
                   payload_base64=b64, **where)

    def to_message(self) -> bytes:
        return self.model_dump_json().encode()


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
