"""Kafka record factories for the ELK tests (observations, log lines, dead letters)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from meteoflow.kafka import KafkaRecord
from meteoflow.contracts import DeadLetter
from meteoflow.contracts import Observation


def observation(region_id: str = "dakar", observed_at: datetime | None = None, **changes) -> Observation:
    now = datetime.now(timezone.utc)
    fields = dict(
        region_id=region_id, region_name=region_id.title(), lat=14.69, lon=-17.44,
        observed_at=observed_at or now, temp=27.5, feels_like=29.0, humidity=60, pressure=1012,
        wind_speed=4.2, weather_main="Clear", source="simulator", batch_id="b-1", produced_at=now,
    )
    fields.update(changes)
    return Observation(**fields)


def log_line(service: str = "streaming", **fields) -> bytes:
    doc = {"@timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"), "log.level": "info",
           "message": f"{service} says hello", "service.name": service, "event.dataset": f"meteoflow.{service}"}
    doc.update(fields)
    return json.dumps(doc).encode()


def dead_letter(reason: str = "temp: too hot", source_offset: int = 7,
                source_topic: str = "weather.observations") -> bytes:
    """The streaming job's dead letter of record `source_offset` (partition 0) of `source_topic`."""
    return DeadLetter.build(b'{"temp": 900}', reason=reason, service="streaming", source_topic=source_topic,
                            source_partition=0, source_offset=source_offset).to_message()


def record(topic: str, value: bytes | None, offset: int = 0, partition: int = 0, key: bytes | None = b"dakar",
           timestamp: int | None = 1_700_000_000_000) -> KafkaRecord:
    return KafkaRecord(topic, partition, offset, key, value, timestamp)
