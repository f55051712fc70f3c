"""The sinks of a micro-batch, each a small piece fed a plain list of records.

Every MongoDB write is an upsert keyed by a deterministic _id, so replaying a batch (after a
crash, or from earliest with a fresh checkpoint) rewrites the same documents. Errors are not
swallowed: a failing write raises, Spark does not commit the batch and retries it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Iterable

from pymongo import ASCENDING, UpdateOne
from pymongo.errors import BulkWriteError
from pymongo.database import Database

from meteoflow.contracts import (
    DEADLETTER_ACTION, FORECAST_RUNS, FORECAST_SKILL, FORECAST_SKILL_BUCKETS, FORECAST_STATE, FORECASTS, HOURLY_STATS, OBSERVATIONS, DeadLetter, MongoDocument, Observation,
    ObservationPoint, valid_documents,
)
from meteoflow.settings import Settings
from streaming.records import HOUR, hourly_stats, observation_documents, touched_hours

DEADLETTER_SEND_TIMEOUT_SECONDS = 30
DUPLICATE_KEY = 11000


def ensure_indexes(db: Database) -> None:
    """Create the indexes the job relies on; a no-op when they exist."""
    db[OBSERVATIONS].create_index([("region_id", ASCENDING), ("observed_at", ASCENDING)],
                                  unique=True, name="region_observed_at")
    db[HOURLY_STATS].create_index([("region_id", ASCENDING), ("hour", ASCENDING)], unique=True, name="region_hour")
    db[FORECASTS].create_index([("region_id", ASCENDING), ("target_time", ASCENDING)],
                               unique=True, name="region_target_time")
    db[FORECAST_STATE].create_index([("needs_forecast", ASCENDING)], name="needs_forecast")
    # Forecast history and skill (streaming/skill.py): retention deletes runs by run_at; the web app
    # reads a region's runs by time; the skill step reads a region's recent buckets.
    db[FORECAST_RUNS].create_index([("region_id", ASCENDING), ("run_at", ASCENDING)], name="region_run_at")
    db[FORECAST_RUNS].create_index([("run_at", ASCENDING)], name="run_at")
    db[FORECAST_SKILL_BUCKETS].create_index([("region_id", ASCENDING), ("target_time", ASCENDING)],
                                            name="region_target_time")
    db[FORECAST_SKILL].create_index([("region_id", ASCENDING), ("window", ASCENDING)], name="region_window")


def upsert_all(collection, models: list[MongoDocument], ignore: frozenset[str] = frozenset()) -> int:
    """Idempotent write keyed by _id: insert what is new, update what changed, skip the rest.

    Equivalent to one upsert per document, but FerretDB (SQLite) upserts cost ~20 ms each while
    a bulk insert of a thousand documents takes tens of ms; a replay then writes nothing.
    `ignore` names bookkeeping fields (stored_at...) that do not make a document "changed".
    Returns how many documents were written.
    """
    if not models:
        return 0
    docs = [m.to_document() for m in models]
    existing = {d["_id"]: d for d in collection.find({"_id": {"$in": [d["_id"] for d in docs]}})}
    new = [d for d in docs if d["_id"] not in existing]
    changed = [d for d in docs if d["_id"] in existing and differs(existing[d["_id"]], d, ignore)]
    if new:
        try:
            collection.insert_many(new, ordered=False)
        except BulkWriteError as exc:
            raced = {e["index"] for e in exc.details.get("writeErrors", []) if e.get("code") == DUPLICATE_KEY}
            if len(raced) != len(exc.details.get("writeErrors", [])):
                raise
            changed += [new[i] for i in sorted(raced)]  # inserted by someone else meanwhile: update them
    if changed:
        collection.bulk_write(
            [UpdateOne({"_id": d["_id"]}, {"$set": {k: v for k, v in d.items() if k != "_id"}}, upsert=True)
             for d in changed],
            ordered=False,
        )
    return len(new) + len(changed)


def differs(stored: dict[str, Any], doc: dict[str, Any], ignore: frozenset[str]) -> bool:
    return any(stored.get(k) != v for k, v in doc.items() if k not in ignore)


class ObservationSink:
    def __init__(self, db: Database):
        self.collection = db[OBSERVATIONS]

    def write(self, observations: list[Observation], now: datetime) -> int:
        docs = observation_documents(observations, stored_at=now)
        upsert_all(self.collection, docs, ignore=frozenset({"stored_at"}))
        return len(docs)


class HourlyStatsSink:
    """Recomputes the (region, hour) keys a batch touched from the stored observations."""

    def __init__(self, db: Database):
        self.observations = db[OBSERVATIONS]
        self.collection = db[HOURLY_STATS]

    def write(self, observations: list[Observation], now: datetime) -> int:
        keys = touched_hours(observations)
        if not keys:
            return 0
        hours = [hour for _, hour in keys]
        # One query for the whole batch (FerretDB filters in its own process; fewer round trips win).
        stored = self.observations.find(
            {"region_id": {"$in": sorted({region for region, _ in keys})},
             "observed_at": {"$gte": min(hours), "$lt": max(hours) + HOUR}},
            ObservationPoint.projection(),
        )
        docs = hourly_stats(keys, valid_documents(ObservationPoint, stored), computed_at=now)
        upsert_all(self.collection, docs, ignore=frozenset({"computed_at"}))
        return len(docs)


class DeadLetterSink:
    """Publishes rejected records; waits for every ack and raises if one fails, so the batch
    is retried rather than losing a record."""

    def __init__(self, settings: Settings, log: logging.Logger, producer=None,
                 timeout: float = DEADLETTER_SEND_TIMEOUT_SECONDS):
        self.settings = settings
        self.log = log
        self._producer = producer
        self.timeout = timeout

    @property
    def producer(self):
        if self._producer is None:
            from meteoflow.kafka import make_producer

            self._producer = make_producer(self.settings, client_id="streaming-deadletter",
                                           max_block_ms=int(self.timeout * 1000))
        return self._producer

    def write(self, dead_letters: Iterable[DeadLetter]) -> int:
        dead_letters = list(dead_letters)
        if not dead_letters:
            return 0
        futures = [
            self.producer.send(self.settings.topic_deadletter,
                               key=dl.key.encode() if dl.key is not None else None, value=dl.to_message())
            for dl in dead_letters
        ]
        self.producer.flush(timeout=self.timeout)
        for future in futures:
            future.get(timeout=self.timeout)  # raises KafkaError if not acknowledged
        for dl in dead_letters:
            self.log.warning(
                "dead-lettered %s[%s]@%s: %s", dl.source_topic, dl.source_partition, dl.source_offset, dl.reason,
                extra={"fields": {"event.action": DEADLETTER_ACTION, "meteoflow.deadletter": {
                    "reason": dl.reason, "source_topic": dl.source_topic, "source_partition": dl.source_partition,
                    "source_offset": dl.source_offset, "key": dl.key}}},
            )
        return len(dead_letters)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)

