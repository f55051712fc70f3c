"""Pure logic of one micro-batch: validation, MongoDB documents, hourly statistics and
the hourly series sent to the forecasting API. No I/O here, so all of it is unit-tested
with plain lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

import bson

from meteoflow.clock import utc_now
from meteoflow.contracts import DeadLetter, HourlyStats, ObservationDocument, SeriesPoint, doc_id, point_key
from meteoflow.contracts import hour_floor
from meteoflow.contracts import Observation, RecordLimits, rejection_reason, validate_observation
from meteoflow.kafka import KafkaRecord

SERVICE = "streaming"
HOUR = timedelta(hours=1)


@dataclass
class SplitBatch:
    observations: list[Observation] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # The MongoDB document of each observation (same order, stored_at = the batch's time): built
    # once here, where it is checked to be storable, and written as is by the observation sink.
    documents: list[dict] = field(default_factory=list)


def split_batch(records: Iterable[KafkaRecord], now: datetime | None = None,
                limits: RecordLimits = RecordLimits()) -> SplitBatch:
    """Validate every value with the one schema and check that its document can be stored.

    Whatever one record holds, it ends as an observation or as a dead letter with the reason:
    nothing a record contains can raise out of here and fail the batch."""
    now = now or utc_now()
    split = SplitBatch()
    for rec in records:
        where = dict(source_topic=rec.topic, source_partition=rec.partition, source_offset=rec.offset,
                     key=rec.key.decode("utf-8", "replace") if rec.key is not None else None)
        if rec.value is None:
            split.dead_letters.append(DeadLetter.build(None, "empty value (Kafka tombstone)", SERVICE, **where))
            continue
        try:
            obs = validate_observation(bytes(rec.value), now=now, max_ahead=limits.max_ahead)
            document = ObservationDocument.document(obs, now)
            bson.encode(document)  # what the sink writes must be storable
        except Exception as exc:  # noqa: BLE001 - one record can cost only itself
            split.dead_letters.append(DeadLetter.build(bytes(rec.value), rejection_reason(exc), SERVICE,
                                                       max_payload_bytes=limits.max_payload_bytes, **where))
            continue
        split.observations.append(obs)
        split.documents.append(document)
    return split


def observation_documents(observations: Iterable[Observation], stored_at: datetime) -> list[ObservationDocument]:
    """One document per (region, observed_at); a later duplicate in the batch wins (Kafka order)."""
    docs: dict[str, ObservationDocument] = {}
    for obs in observations:
        doc = ObservationDocument.build(obs, stored_at)
        docs[doc.id] = doc
    return list(docs.values())


def touched_hours(observations: Iterable[Observation]) -> set[tuple[str, datetime]]:
    return {(obs.region_id, hour_floor(obs.observed_at)) for obs in observations}


def hour_points(observations: Iterable[Observation]) -> dict[tuple[str, datetime], dict[str, float]]:
    """The batch's temps per (region, hour), by point_key; a later duplicate wins (Kafka order),
    as it does for the observation documents."""
    points: dict[tuple[str, datetime], dict[str, float]] = {}
    for obs in observations:
        points.setdefault((obs.region_id, hour_floor(obs.observed_at)), {})[point_key(obs.observed_at)] = obs.temp
    return points


def merged_values(stored: Any, field: str, batch: dict[str, Any]) -> dict[str, Any]:
    """A statistics document's values by instant (`field`: HourlyStats.temps, DailyStats.readings;
    stored None: none yet) with the batch's replacing the same instants: the set a recomputation
    from every stored observation sees, so a replay or a correction stays exact."""
    return {**(getattr(stored, field, None) or {}), **batch}


def merged_hourly_stats(batch: dict[tuple[str, datetime], dict[str, float]], stored: dict[str, HourlyStats],
                        computed_at: datetime) -> list[HourlyStats]:
    """The stats of each (region, hour) of `batch` over the stored temps of that hour (stored: by
    _id, each with its temps), as HourlyStatsSink keeps them."""
    return [HourlyStats.build(region_id, hour, merged_values(stored.get(doc_id(region_id, hour)), "temps", temps),
                              computed_at)
            for (region_id, hour), temps in sorted(batch.items())]


def hourly_means(points: Iterable[tuple[datetime, float]]) -> dict[datetime, float]:
    """The mean of the observations of each hour, keyed by the hour's start, oldest first."""
    sums: dict[datetime, list[float]] = {}
    for when, temp in points:
        acc = sums.setdefault(hour_floor(when), [0.0, 0])
        acc[0] += temp
        acc[1] += 1
    return {hour: round(total / count, 4) for hour, (total, count) in sorted(sums.items())}


def hourly_series(points: Iterable[tuple[datetime, float]]) -> list[SeriesPoint]:
    """Average the observations of each hour into one point per hour, oldest first."""
    return [SeriesPoint(ds=hour.strftime("%Y-%m-%dT%H:%M:%SZ"), y=y) for hour, y in hourly_means(points).items()]


def latest_per_region(observations: Iterable[Observation]) -> dict[str, datetime]:
    latest: dict[str, datetime] = {}
    for obs in observations:
        if obs.region_id not in latest or obs.observed_at > latest[obs.region_id]:
            latest[obs.region_id] = obs.observed_at
    return latest
