"""Kafka clients configured once for every service (kafka-python)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from meteoflow.settings import Settings


@dataclass(frozen=True)
class KafkaRecord:
    """One record read from Kafka, as the shipper (kafka-python) and the streaming job (Spark) both see it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    # Epoch milliseconds, as Kafka stores it (kafka-python hands it over so; the job asks Spark for
    # unix_millis): a producer may set any CreateTime, even one no datetime can hold.
    timestamp: int | None = None

    @classmethod
    def of(cls, rec) -> "KafkaRecord":
        """From anything with these attributes (kafka-python's ConsumerRecord, a Spark Row)."""
        return cls(rec.topic, rec.partition, rec.offset, rec.key, rec.value, getattr(rec, "timestamp", None))

    @property
    def time(self) -> datetime | None:
        """The record's timestamp as an aware UTC datetime; None when absent (-1) or out of range."""
        if self.timestamp is None or self.timestamp < 0:
            return None
        try:
            return datetime.fromtimestamp(self.timestamp / 1000, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None


def make_producer(settings: Settings, client_id: str, acks: int | str = "all", **extra) -> KafkaProducer:
    """A producer for records that must not be lost: acks=all, retries, idempotence.

    `acks=1` is used only for log lines, where a lost line is cheaper than a slow service.
    """
    options = dict(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        acks=acks,
        retries=10,
        retry_backoff_ms=200,
        linger_ms=20,
        max_in_flight_requests_per_connection=5,
        request_timeout_ms=30_000,
        compression_type="gzip",
    )
    if acks == "all":
        options["enable_idempotence"] = True
    options.update(extra)
    return KafkaProducer(**options)


def make_consumer(settings: Settings, group_id: str | None, *topics: str, **extra) -> KafkaConsumer:
    options = dict(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=extra.pop("consumer_timeout_ms", float("inf")),
    )
    options.update(extra)
    return KafkaConsumer(*topics, **options)


def all_topics(settings: Settings) -> list[str]:
    return [settings.topic_observations, settings.topic_deadletter, settings.topic_logs]


def ensure_topics(settings: Settings, topics: list[str] | None = None) -> list[str]:
    """Create the topics that do not exist yet; return the ones created."""
    topics = topics or all_topics(settings)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="meteoflow-admin")
    try:
        existing = set(admin.list_topics())
        retention_ms = str(settings.kafka_retention_hours * 3600 * 1000)
        new = [
            NewTopic(
                name=t,
                num_partitions=settings.kafka_partitions,
                replication_factor=1,
                topic_configs={"retention.ms": retention_ms},
            )
            for t in topics
            if t not in existing
        ]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
        return [t.name for t in new]
    finally:
        admin.close()
