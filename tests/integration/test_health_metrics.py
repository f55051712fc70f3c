"""Health signals against the real Kafka, FerretDB and Elasticsearch: exact lag of the streaming job
(from a Spark-format checkpoint) and of the shipper (from offsets its group committed), store
staleness and forecast age, all in the metrics index after one sampling round."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from kafka.structs import OffsetAndMetadata, TopicPartition

from elk.health.sampler import HealthSampler, shipper_group
from meteoflow.contracts import FORECAST_STATE, OBSERVATIONS, ForecastState
from meteoflow.es import make_es_client
from meteoflow.kafka import make_consumer, make_producer
from meteoflow.mongo import database, make_mongo_client

pytestmark = pytest.mark.integration

OFFSET_LOG = ('v1\n{"batchWatermarkMs":0,"batchTimestampMs":1796180475012,"conf":{"spark.sql.shuffle.partitions":"2"}}\n'
              '{"%s":{"0":%d,"1":%d,"2":%d}}')


def write_checkpoint(root, topic: str, committed: tuple[int, int, int], planned: tuple[int, int, int]) -> None:
    """Batch 0 committed at `committed`, batch 1 planned (offset log only) at `planned`."""
    (root / "offsets").mkdir(parents=True)
    (root / "commits").mkdir()
    (root / "offsets" / "0").write_text(OFFSET_LOG % (topic, *committed))
    (root / "offsets" / "1").write_text(OFFSET_LOG % (topic, *planned))
    (root / "commits" / "0").write_text('v1\n{"nextBatchWatermarkMs":0}')


def ms(when: datetime) -> datetime:
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def test_one_sampling_round_stores_exact_lag_staleness_and_forecast_age(isolated):
    s = isolated
    now = ms(datetime.now(timezone.utc))
    t = lambda seconds_ago: now - timedelta(seconds=seconds_ago)  # noqa: E731

    # observations: 4 records on partition 0, 3 on 1, 2 on 2; record i of a partition is (50 - 10 i) s old
    producer = make_producer(s, client_id="health-test")
    sends = [producer.send(s.topic_observations, value=b"{}", partition=p, timestamp_ms=int(t(50 - 10 * i).timestamp() * 1000))
             for p, n in ((0, 4), (1, 3), (2, 2)) for i in range(n)]
    sends += [producer.send(s.topic_logs, value=b"{}", partition=0) for _ in range(5)]
    producer.flush()
    for f in sends:
        f.get(timeout=30)
    producer.close()

    # streaming processed (2, 3, 0): lag 2 + 0 + 2 = 4; its oldest unprocessed record is partition 2's first, 50 s old
    write_checkpoint(s.checkpoint_dir, s.topic_observations, committed=(2, 3, 0), planned=(4, 3, 2))

    # the shipper's group committed observations (4, 1, -) and logs (3, -, -): lag 0 + 2 + 2 + 2 = 6 (+ 0 dead letters)
    consumer = make_consumer(s, shipper_group(s))
    consumer.commit({TopicPartition(s.topic_observations, 0): OffsetAndMetadata(4, "", -1),
                     TopicPartition(s.topic_observations, 1): OffsetAndMetadata(1, "", -1),
                     TopicPartition(s.topic_logs, 0): OffsetAndMetadata(3, "", -1)})
    consumer.close()

    mongo = make_mongo_client(s)
    db = database(s, mongo)
    db[OBSERVATIONS].insert_one({"_id": "dakar|x", "region_id": "dakar", "observed_at": t(3600), "stored_at": t(25)})
    db[FORECAST_STATE].insert_many([ForecastState(
        _id=region, region_id=region, needs_forecast=status == "failed", last_observed_at=t(3600), status=status,
        last_success_at=t(600) if status == "ok" else None).to_document()
        for region, status in (("dakar", "ok"), ("thies", "failed"))])
    es = make_es_client(s)
    es.index(index=s.index("observations"), document={"region_id": "dakar", "observed_at": t(3600).isoformat(),
                                                      "ingested_at": t(100).isoformat()}, refresh=True)
    mongo.close()

    sampler = HealthSampler(s, es, clock=lambda: now)
    try:
        samples = sampler.run_once()
    finally:
        sampler.close()
    assert sampler.failed == []

    es.indices.refresh(index=s.index("metrics"))
    hits = es.search(index=s.index("metrics"), size=100)["hits"]["hits"]
    stored = {(h["_source"]["kind"], h["_source"]["subject"]): h["_source"] for h in hits}
    assert len(hits) == len(samples) == 7  # 2 consumers, Kafka + 2 stores, 2 regions (no supervisor state file)
    lag = stored[("consumer_lag", "streaming")]
    assert (lag["lag_records"], lag["lag_seconds"], lag["partitions"]) == (4, 50.0, 3)
    lag = stored[("consumer_lag", "shipper")]
    # oldest unprocessed: observations partition 2 offset 0 (50 s; partition 1 offset 1 is 40 s; the log
    # lines were sent after `now`)
    assert (lag["lag_records"], lag["lag_seconds"], lag["partitions"]) == (6, 50.0, 3 * 3)
    kafka = stored[("store_staleness", "kafka")]
    assert (kafka["newest_at"], kafka["age_seconds"]) == (t(20).isoformat().replace("+00:00", "Z"), 20.0)
    assert stored[("store_staleness", "mongodb")]["staleness_seconds"] == 5.0  # 25 s vs Kafka's 20 s
    assert stored[("store_staleness", "elasticsearch")]["staleness_seconds"] == 80.0  # 100 s vs 20 s
    assert stored[("forecast_age", "dakar")]["age_seconds"] == 600.0
    assert "age_seconds" not in stored[("forecast_age", "thies")]
