"""Shipper against the real Kafka and Elasticsearch: exact counts, idempotent reshipping,
refused documents dead-lettered, and an Elasticsearch outage losing nothing."""

from __future__ import annotations

import shutil
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from elk.shipper.documents import document_id
from elk.shipper.service import Shipper
from meteoflow.contracts import STREAMING_BATCH_ACTION
from meteoflow.es import make_es_client
from meteoflow.kafka import all_topics, ensure_topics, make_producer
from tests.fakes.elk_records import dead_letter, log_line, observation

pytestmark = pytest.mark.integration

REGIONS = ["dakar", "thies", "saint-louis"]


def produce(settings, items: list[tuple[str, bytes | None, bytes]]) -> list[tuple[str, int, int]]:
    """Send (topic, key, value) items; return their (topic, partition, offset)."""
    producer = make_producer(settings, client_id="elk-test")
    try:
        futures = [producer.send(topic, key=key, value=value) for topic, key, value in items]
        producer.flush()
        return [(m.topic, m.partition, m.offset) for m in (f.get(timeout=30) for f in futures)]
    finally:
        producer.close()


class Running:
    """A shipper in a background thread."""

    def __init__(self, settings, **kw):
        self.shipper = Shipper(settings, **kw)
        self.thread = threading.Thread(target=self.shipper.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.shipper

    def __exit__(self, *exc):
        self.shipper.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "shipper did not stop"


def count(es, index: str) -> int:
    es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
    return es.count(index=index, ignore_unavailable=True, allow_no_indices=True)["count"]


def wait_counts(es, expected: dict[str, int], timeout: float = 60) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        got = {index: count(es, index) for index in expected}
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def group_caught_up(settings, group: str) -> bool:
    """Has `group` committed the end offset of every non-empty partition of the shipped topics?"""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in all_topics(settings) for p in consumer.partitions_for_topic(t) or ()]
        ends = {tp: end for tp, end in consumer.end_offsets(tps).items() if end > 0}
        return bool(ends) and all(consumer.committed(tp) == end for tp, end in ends.items())
    finally:
        consumer.close()


def test_ships_exactly_n_documents_and_reshipping_keeps_n(isolated):
    s = isolated
    es = make_es_client(s)
    n_obs, n_logs = 30, 12
    obs = [observation(REGIONS[i % 3], observed_at=datetime.now(timezone.utc) - timedelta(seconds=60 + i))
           for i in range(n_obs)]
    items = [(s.topic_observations, o.key, o.to_message()) for o in obs]
    items += [(s.topic_logs, b"streaming", log_line(**{"event.action": STREAMING_BATCH_ACTION,
                                                       "meteoflow.streaming": {"batch_id": i, "input_rows": 3,
                                                                               "durations_ms": {"total": 12.5},
                                                                               "anything": {"new": [1, 2]}}}))
              for i in range(n_logs)]
    items += [(s.topic_deadletter, None, dead_letter()),
              (s.topic_observations, b"dakar", b"{this is not json"),
              # A log line Elasticsearch itself refuses (message must be text): dead-lettered, not dropped.
              (s.topic_logs, b"x", b'{"message": {"nested": "object"}}')]
    coords = produce(s, items)
    expected = {s.index("observations"): n_obs, s.index("logs"): n_logs, s.index("deadletter"): 3}

    with Running(s):
        assert wait_counts(es, expected) == expected
        deadline = time.monotonic() + 30
        while not group_caught_up(s, f"{s.es_index_prefix}-shipper") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert group_caught_up(s, f"{s.es_index_prefix}-shipper"), "offsets not committed after acknowledgement"

    # Documents: ids are topic-partition-offset; lag = ingested_at - observed_at.
    hits = es.search(index=s.index("observations"), size=100)["hits"]["hits"]
    assert {h["_id"] for h in hits} == {document_id(*c) for c in coords[:n_obs]}
    for hit in hits:
        doc = hit["_source"]
        ingested = datetime.fromisoformat(doc["ingested_at"].replace("Z", "+00:00"))
        observed = datetime.fromisoformat(doc["observed_at"].replace("Z", "+00:00"))
        assert doc["lag_seconds"] == pytest.approx((ingested - observed).total_seconds(), abs=0.01)
        assert doc["lag_seconds"] >= 60
        assert doc["region_id"] in REGIONS and doc["batch_id"] == "b-1"
        assert hit["_id"] == document_id(doc["kafka"]["topic"], doc["kafka"]["partition"], doc["kafka"]["offset"])
    # The fields the dashboards and alerts need are searchable in the logs index.
    progress = es.search(index=s.index("logs"), query={"term": {"event.action": STREAMING_BATCH_ACTION}},
                         aggs={"rows": {"sum": {"field": "meteoflow.streaming.input_rows"}}}, size=0)
    assert progress["aggregations"]["rows"]["value"] == 3 * n_logs
    dead = {h["_source"]["source_topic"]: h["_source"]["reason"]
            for h in es.search(index=s.index("deadletter"), size=10)["hits"]["hits"]}
    assert "not JSON" in dead[s.topic_observations]
    assert "refused" in dead[s.topic_logs]

    # Same offsets again through a new consumer group: still exactly the same documents.
    with Running(s, group_id=f"{s.es_index_prefix}-reship"):
        deadline = time.monotonic() + 60
        while not group_caught_up(s, f"{s.es_index_prefix}-reship") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert group_caught_up(s, f"{s.es_index_prefix}-reship")
    assert wait_counts(es, expected, timeout=5) == expected


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_elasticsearch_outage_loses_nothing(stack, tmp_path):
    """A separate Elasticsearch (own run dir and ports) is stopped under a running shipper."""
    from stack.servers import ElasticsearchServer
    from tests.conftest import isolated_settings

    # Not under tmp_path: Elasticsearch runs as another user when we are root, and pytest keeps
    # /tmp/pytest-of-<user> private (any concurrent pytest session resets it to 0700).
    run_dir = stack.run_dir / f"es-outage-{uuid.uuid4().hex[:8]}"
    s = isolated_settings(stack, tmp_path, run_dir=run_dir, es_port=free_port(),
                          es_transport_port=free_port(), es_heap="384m")
    ensure_topics(s)
    server = ElasticsearchServer(s)
    server.start(log=lambda *_: None)
    try:
        es = make_es_client(s, max_retries=0)
        first = [observation(REGIONS[i % 3]) for i in range(20)]
        produce(s, [(s.topic_observations, o.key, o.to_message()) for o in first])
        with Running(s) as shipper:
            assert wait_counts(es, {s.index("observations"): 20}) == {s.index("observations"): 20}
            server.stop()
            second = [observation(REGIONS[i % 3]) for i in range(25)]
            coords = produce(s, [(s.topic_observations, o.key, o.to_message()) for o in second])
            coords += produce(s, [(s.topic_logs, b"producer", log_line("producer")) for _ in range(5)])
            time.sleep(5)  # the shipper polls these and keeps retrying against the stopped server
            assert not group_caught_up(s, shipper.group_id), "offsets committed while Elasticsearch was down"
            server.start(log=lambda *_: None)
            expected = {s.index("observations"): 45, s.index("logs"): 5}
            assert wait_counts(es, expected, timeout=120) == expected
        ids = {h["_id"] for h in es.search(index=s.index("observations"), size=100)["hits"]["hits"]}
        assert {document_id(*c) for c in coords[:25]} <= ids
    finally:
        server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
