"""Thin adapters that take the raw readings the health signals are computed from: Kafka offsets and
record timestamps, MongoDB and Elasticsearch newest documents, the supervisor's state file.

None of them joins a consumer group: lag is read from the outside, as Burrow does."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient
from kafka.structs import TopicPartition

from elk.health.signals import ConsumerReading, PartitionReading, committed_offsets, next_to_process, unprocessed
from meteoflow.contracts import (
    FORECAST_SKILL, FORECAST_STATE, OBSERVATIONS, STORE_PROGRESS, ForecastSkill, ForecastState, StoreProgress,
    SupervisorState, valid_documents,
)
from meteoflow.settings import Settings

CLIENT_ID = "meteoflow-health"


def supervisor_state_file(settings: Settings) -> Path:
    """Where ./run.sh's supervisor keeps its state (stack/supervisor.py `state_file`)."""
    return settings.run_dir / "pids" / "supervisor.json"


def read_supervisor_state(path: Path) -> SupervisorState | None:
    """The state file, or None when there is none (not a native run). A malformed one raises."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return SupervisorState.model_validate_json(text)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


class KafkaHealthSource:
    """End offsets, consumer positions and record timestamps, through a group-less consumer and an admin client."""

    def __init__(self, settings: Settings, fetch_timeout_seconds: float = 5.0):
        self.settings = settings
        self.fetch_timeout = fetch_timeout_seconds
        self._consumer: KafkaConsumer | None = None
        self._admin: KafkaAdminClient | None = None

    # clients are made on first use and dropped after a failure, so a broker that comes back is found again
    def _clients(self) -> tuple[KafkaConsumer, KafkaAdminClient]:
        if self._consumer is None:
            self._consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
                                           client_id=CLIENT_ID, enable_auto_commit=False,
                                           request_timeout_ms=10_000)
        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap, client_id=CLIENT_ID,
                                           request_timeout_ms=10_000)
        return self._consumer, self._admin

    def close(self) -> None:
        for client in (self._consumer, self._admin):
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing a broken client
                    pass
        self._consumer = self._admin = None

    def partitions(self, topics: list[str]) -> list[TopicPartition]:
        consumer, _ = self._clients()
        found = []
        for topic in topics:
            for p in sorted(consumer.partitions_for_topic(topic) or ()):
                found.append(TopicPartition(topic, p))
        return found

    def group_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        """Committed offsets of a consumer group (without joining it); partitions without one are absent."""
        _, admin = self._clients()
        committed = admin.list_group_offsets(group_id).get(group_id) or {}  # kafka-python 3: per group
        return {tp: meta.offset for tp, meta in committed.items()
                if meta is not None and meta.offset is not None and meta.offset >= 0}

    def record_times(self, wanted: dict[TopicPartition, int]) -> dict[TopicPartition, datetime]:
        """Timestamp of the first record at or after each wanted offset (within the fetch timeout)."""
        if not wanted:
            return {}
        consumer, _ = self._clients()
        consumer.assign(list(wanted))
        for tp, offset in wanted.items():
            consumer.seek(tp, offset)
        found: dict[TopicPartition, datetime] = {}
        deadline = time.monotonic() + self.fetch_timeout
        while len(found) < len(wanted) and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200, max_records=500).items():
                if tp in found or not records:
                    continue
                found[tp] = _from_ms(records[0].timestamp)
                consumer.pause(tp)
        consumer.unsubscribe()
        return found

    def reading(self, consumer_name: str, topics: list[str],
                positions: dict[TopicPartition, int] | None) -> ConsumerReading:
        """The partitions of `topics` with where `consumer_name` is (None: nowhere yet) and the
        timestamp of its oldest unprocessed record on each partition it lags on."""
        consumer, _ = self._clients()
        tps = self.partitions(topics)
        ends = consumer.end_offsets(tps) if tps else {}
        begins = consumer.beginning_offsets(tps) if tps else {}
        reading = ConsumerReading(consumer=consumer_name)
        for tp in tps:
            reading.partitions[(tp.topic, tp.partition)] = PartitionReading(
                beginning=begins[tp], end=ends[tp], position=(positions or {}).get(tp))
        behind = {TopicPartition(t, p): next_to_process(r) for (t, p), r in reading.partitions.items() if unprocessed(r)}
        for tp, at in self.record_times(behind).items():
            reading.partitions[(tp.topic, tp.partition)].oldest_unprocessed_at = at
        return reading

    def streaming_reading(self, checkpoint: Path) -> ConsumerReading:
        topic = self.settings.topic_observations
        processed = committed_offsets(checkpoint, topic)
        positions = None if processed is None else {TopicPartition(topic, p): o for p, o in processed.items()}
        return self.reading("streaming", [topic], positions)

    def shipper_reading(self, group_id: str, topics: list[str]) -> ConsumerReading:
        return self.reading("shipper", topics, self.group_offsets(group_id))

    def newest_record_at(self, topic: str) -> datetime | None:
        """Timestamp of the newest record of `topic` (max over partitions), None when it is empty."""
        consumer, _ = self._clients()
        tps = self.partitions([topic])
        if not tps:
            return None
        ends, begins = consumer.end_offsets(tps), consumer.beginning_offsets(tps)
        times = self.record_times({tp: ends[tp] - 1 for tp in tps if ends[tp] > begins[tp]})
        return max(times.values()) if times else None


class MongoHealthSource:
    def __init__(self, db):
        self.db = db

    def newest_observation_at(self) -> datetime | None:
        """Newest `stored_at` of the observations: store_progress's one document, which the streaming job
        raises at every batch. A store whose job has not written it yet (an older version) is sorted by
        stored_at, a pass over the collection (older documents without one: newest `observed_at`)."""
        found = self.db[STORE_PROGRESS].find_one({"_id": OBSERVATIONS})
        progress = valid_documents(StoreProgress, [found] if found is not None else [])
        if progress:
            return progress[0].stored_at
        for fld in ("stored_at", "observed_at"):
            doc = next(iter(self.db[OBSERVATIONS].find({fld: {"$exists": True}}, {fld: 1, "_id": 0})
                            .sort(fld, -1).limit(1)), None)
            if doc is not None and isinstance(doc.get(fld), datetime):
                return doc[fld]
        return None

    def forecast_states(self) -> list[ForecastState]:
        """Every region's state (one small document each); a malformed one is skipped and logged."""
        return valid_documents(ForecastState, self.db[FORECAST_STATE].find())

    def forecast_skills(self) -> list[ForecastSkill]:
        """The 24 h window of every region and lead (24 small documents per region, maintained by the
        streaming job as observations arrive)."""
        return valid_documents(ForecastSkill, self.db[FORECAST_SKILL].find({"window": "24h"}))


class ElasticsearchHealthSource:
    def __init__(self, settings: Settings, es):
        self.settings = settings
        self.es = es

    def newest_observation_at(self) -> datetime | None:
        resp = self.es.search(index=self.settings.index("observations"), size=0, ignore_unavailable=True,
                              allow_no_indices=True, aggs={"newest": {"max": {"field": "ingested_at"}}})
        value = ((resp.get("aggregations") or {}).get("newest") or {}).get("value")
        return None if value is None else _from_ms(value)
