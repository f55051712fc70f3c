"""Pure functions: one Kafka record -> one Elasticsearch bulk action.

These are the shipper's rules for index names, document ids and document
shapes. The Logstash pipeline (elk/logstash/pipeline/meteoflow.conf) follows the
same rules; a test compares the two, so change both together.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import ValidationError

from meteoflow.clock import utc_now
from meteoflow.contracts import MAX_KEY_CHARS, DeadLetter, kafka_doc_id
from meteoflow.contracts import (
    InvalidRecord, RecordLimits, parse_json_object, rejection_reason, validate_observation,
)
from meteoflow.errors import describe_errors
from meteoflow.kafka import KafkaRecord
from meteoflow.settings import Settings

Kind = Literal["observations", "logs", "deadletter"]
SHIPPER_SERVICE = "shipper"


def kind_by_topic(settings: Settings) -> dict[str, Kind]:
    return {
        settings.topic_observations: "observations",
        settings.topic_logs: "logs",
        settings.topic_deadletter: "deadletter",
    }


def index_for_topic(settings: Settings, topic: str) -> str:
    """The index a record of `topic` goes to when it is valid."""
    try:
        return settings.index(kind_by_topic(settings)[topic])
    except KeyError:
        raise ValueError(f"topic {topic!r} is not shipped (known: {', '.join(kind_by_topic(settings))})") from None


def document_id(topic: str, partition: int, offset: int) -> str:
    """`_id` of every shipped document, also of a record routed to the dead-letter index."""
    return kafka_doc_id(topic, partition, offset)


def iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", "replace")


def kafka_fields(rec: KafkaRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset}
    if rec.key is not None:
        fields["key"] = _text(rec.key)[:MAX_KEY_CHARS]  # a keyword longer than 32 KB is refused
    if rec.time is not None:  # a producer may set any CreateTime: one no datetime holds is left out
        fields["timestamp"] = iso(rec.time)
    return fields


def observation_document(rec: KafkaRecord, now: datetime, limits: RecordLimits) -> dict[str, Any]:
    obs = validate_observation(rec.value if rec.value is not None else b"", now=now, max_ahead=limits.max_ahead)
    doc = obs.to_json_dict()
    doc["location"] = {"lat": obs.lat, "lon": obs.lon}
    doc["ingested_at"] = iso(now)
    doc["lag_seconds"] = round((now - obs.observed_at).total_seconds(), 3)
    doc["kafka"] = kafka_fields(rec)
    return doc


def log_document(rec: KafkaRecord, now: datetime, limits: RecordLimits) -> dict[str, Any]:
    doc = parse_json_object(rec.value)
    if "@timestamp" not in doc:
        # A line without its own time is placed at the time Kafka received it.
        kafka = kafka_fields(rec)
        doc["@timestamp"] = kafka.get("timestamp", iso(now))
    doc["ingested_at"] = iso(now)
    doc["kafka"] = kafka_fields(rec)
    return doc


def deadletter_document(rec: KafkaRecord, now: datetime, limits: RecordLimits) -> dict[str, Any]:
    data = parse_json_object(rec.value)
    try:
        letter = DeadLetter.model_validate(data)
    except ValidationError as exc:
        raise InvalidRecord(f"not a DeadLetter: {describe_errors(exc)}") from None
    doc = letter.model_dump(mode="json", exclude_none=True)
    doc["failed_at"] = iso(letter.failed_at)  # the model made it aware, UTC and in range
    doc["ingested_at"] = iso(now)
    doc["kafka"] = kafka_fields(rec)
    return doc


BUILDERS = {"observations": observation_document, "logs": log_document, "deadletter": deadletter_document}


def rejected_document(rec: KafkaRecord, reason: str, now: datetime,
                      limits: RecordLimits = RecordLimits()) -> dict[str, Any]:
    """A dead-letter document for a record the shipper could not index where it belongs."""
    letter = DeadLetter.build(
        rec.value,
        reason=reason,
        service=SHIPPER_SERVICE,
        max_payload_bytes=limits.max_payload_bytes,
        source_topic=rec.topic,
        source_partition=rec.partition,
        source_offset=rec.offset,
        key=_text(rec.key),
    )
    doc = letter.model_dump(mode="json", exclude_none=True)
    doc["failed_at"] = iso(now)
    doc["ingested_at"] = iso(now)
    doc["kafka"] = kafka_fields(rec)
    return doc


def to_action(settings: Settings, rec: KafkaRecord, now: datetime | None = None) -> dict[str, Any]:
    """The bulk `index` action for one record: its own index, or the dead-letter index with a reason."""
    now = now or utc_now()
    kind = kind_by_topic(settings).get(rec.topic)
    _id = document_id(rec.topic, rec.partition, rec.offset)
    if kind is None:
        return rejection_action(settings, rec, f"topic {rec.topic!r} is not shipped", now)
    try:
        doc = BUILDERS[kind](rec, now, settings.record_limits)
        size = strict_json_size(doc)
    except Exception as exc:  # noqa: BLE001 - one record can cost only itself
        return rejection_action(settings, rec, f"shipper: {kind} record rejected: {rejection_reason(exc)}", now)
    return {"_op_type": "index", "_index": settings.index(kind), "_id": _id, "_source": doc, "_bytes": size}


def strict_json_size(doc: dict[str, Any]) -> int:
    """Bytes of the document as Elasticsearch will receive it; raises ValueError for what it
    cannot take (NaN/Infinity, lone surrogates), which would otherwise fail the whole bulk request."""
    try:
        return len(json.dumps(doc, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("holds text that is not valid Unicode (a lone surrogate)") from None


def rejection_action(settings: Settings, rec: KafkaRecord, reason: str, now: datetime | None = None) -> dict[str, Any]:
    now = now or utc_now()
    doc = rejected_document(rec, reason, now, settings.record_limits)
    return {
        "_op_type": "index",
        "_index": settings.index("deadletter"),
        "_id": document_id(rec.topic, rec.partition, rec.offset),
        "_source": doc,
        "_bytes": strict_json_size(doc),  # a dead letter is bounded and always valid JSON
    }
