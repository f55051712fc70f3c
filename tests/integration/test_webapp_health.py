"""GET /api/health against the real Kafka, FerretDB and Elasticsearch: the health sampler's own
round (elk/health/, real sources, a supervisor state file) and a half hour of consumer-lag
samples written by its write path into the metrics index (real template), read back by the
web app's API with the clock held."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from elk.health.sampler import HealthSampler, shipper_group
from elk.health.signals import ConsumerReading, PartitionReading, consumer_lag_sample
from elk.health.sources import KafkaHealthSource
from meteoflow.contracts import FORECAST_STATE, ForecastState, SupervisedProcess, SupervisorState
from meteoflow.es import make_es_client
from meteoflow.freshness import thresholds
from meteoflow.kafka import make_producer
from meteoflow.mongo import database, make_mongo_client
from tests.faults.harness import wait_until
from webapp.app import create_app

pytestmark = pytest.mark.integration

STEP = timedelta(seconds=15)  # the sampling interval of the history below


def lag(when: datetime, consumer: str, records: int) -> object:
    """A consumer_lag sample as the sampler makes it: `records` behind, the oldest of them 2 s old each."""
    reading = ConsumerReading(consumer, {("t", 0): PartitionReading(
        beginning=0, end=records, position=0, oldest_unprocessed_at=when - timedelta(seconds=2 * records))})
    return consumer_lag_sample(when, reading)


@pytest.fixture
def now() -> datetime:
    # on a whole minute, so the 30 s buckets of the lag chart start at the window's start
    return datetime.now(timezone.utc).replace(second=0, microsecond=0)


@pytest.fixture
def sampled(isolated, tmp_path, now):
    """One real sampling round at `now`, after 30 min of lag history (the streaming job's ends 10 min ago)."""
    s = isolated.model_copy(update={"run_dir": tmp_path / "run"})
    (s.run_dir / "pids").mkdir(parents=True)
    # The supervisor that wrote the state file must be running (this test process stands in for it).
    state = SupervisorState(pid=os.getpid(), processes={
        "kafka": SupervisedProcess(state="up", since=now - timedelta(hours=2)),
        "streaming": SupervisedProcess(state="crash-loop", since=now - timedelta(minutes=3), restarts=6,
                                       last_exit_code=1, last_error="ValueError: cannot reach mongodb://***@db:27017"),
        "shipper": SupervisedProcess(state="held", since=now - timedelta(minutes=20), restarts=1, last_exit_code=-15),
    })
    (s.run_dir / "pids" / "supervisor.json").write_text(state.model_dump_json())

    # 5 observations the shipper has not shipped (its group has no offset): 90 s to 50 s old
    producer = make_producer(s, client_id="health-ui-test")
    sends = [producer.send(s.topic_observations, value=b"{}", partition=0,
                           timestamp_ms=int((now - timedelta(seconds=90 - 10 * i)).timestamp() * 1000)) for i in range(5)]
    producer.flush()
    for f in sends:
        f.get(timeout=30)
    producer.close()
    es = make_es_client(s)
    # Elasticsearch's newest observation arrived 200 s before Kafka's newest record; MongoDB has none
    es.index(index=s.index("observations"), refresh=True,
             document={"region_id": "dakar", "observed_at": (now - timedelta(hours=1)).isoformat(),
                       "ingested_at": (now - timedelta(seconds=250)).isoformat()})
    mongo = make_mongo_client(s)
    database(s, mongo)[FORECAST_STATE].insert_one(ForecastState(
        _id="dakar", region_id="dakar", needs_forecast=False, last_observed_at=now - timedelta(hours=1), status="ok",
        last_success_at=now - timedelta(minutes=40)).to_document())
    mongo.close()

    # A broker started moments ago has no group coordinator yet (its offsets topic is made on first ask)
    kafka = KafkaHealthSource(s)
    wait_until(lambda: kafka.group_offsets(shipper_group(s)) is not None, 60, "Kafka's group coordinator")
    sampler = HealthSampler(s, es, kafka=kafka, clock=lambda: now)
    try:
        start = now - timedelta(minutes=30)
        history = [lag(start + k * STEP, "shipper", k) for k in range(120)]
        history += [lag(start + k * STEP, "streaming", 0) for k in range(80)]
        assert sampler.write(history) == len(history)
        samples = sampler.run_once()
        assert sampler.failed == []
    finally:
        sampler.close()
    es.indices.refresh(index=s.index("metrics"))
    es.close()
    return s, samples


def health(settings, when: datetime, **params) -> dict:
    with TestClient(create_app(settings, clock=lambda: when)) as client:
        r = client.get("/api/health", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_services_stores_and_forecast_age_are_the_latest_samples(sampled, now):
    settings, _ = sampled
    body = health(settings, now + timedelta(seconds=5))
    assert body["state"] == "ok" and body["errors"] == {} and body["newest_sample_at"] == now.strftime("%Y-%m-%dT%H:%M:%SZ")

    services = {s["name"]: s for s in body["services"]}
    assert set(services) == {"kafka", "streaming", "shipper"}
    assert (services["kafka"]["state"], services["kafka"]["up"], services["kafka"]["uptime_seconds"]) == ("up", True, 7200.0)
    loop = services["streaming"]
    assert (loop["state"], loop["up"], loop["restarts"], loop["last_exit_code"]) == ("crash-loop", False, 6, 1)
    assert loop["last_error"] == "ValueError: cannot reach mongodb://***@db:27017"
    assert (services["shipper"]["state"], services["shipper"]["last_exit_code"]) == ("held", -15)
    assert not any(s["stale"] for s in services.values())

    stores = {s["name"]: s for s in body["stores"]}
    assert [s["name"] for s in body["stores"]] == ["kafka", "elasticsearch", "mongodb"]
    assert (stores["kafka"]["status"], stores["kafka"]["age_seconds"]) == ("reference", 50.0)
    es_row = stores["elasticsearch"]
    assert es_row["staleness_seconds"] == 200.0 and es_row["age_seconds"] == 250.0
    assert es_row["status"] == ("far_behind" if 200 > thresholds(settings).late_after_seconds else "behind")
    assert (stores["mongodb"]["status"], stores["mongodb"]["newest_at"]) == ("unknown", None)

    [dakar] = body["forecasts"]
    assert (dakar["region_id"], dakar["age_seconds"], dakar["forecast_status"]) == ("dakar", 2400.0, "ok")


def test_each_consumer_has_its_latest_lag_and_a_bucketed_series(sampled, now):
    settings, _ = sampled
    body = health(settings, now, minutes=30)
    assert body["window"]["bucket_seconds"] == 30
    consumers = {c["name"]: c for c in body["consumers"]}
    ship = consumers["shipper"]
    # the real round: 5 unshipped records, the oldest 90 s old
    assert (ship["lag_records"], ship["lag_seconds"], ship["stale"], ship["started"]) == (5, 90.0, False, False)
    # 30 s buckets from now - 30 min to now: history k = 2j and 2j + 1 in bucket j (max 2j + 1), the round in the last
    assert [p["lag_records"] for p in ship["series"]] == [2 * j + 1 for j in range(60)] + [5]
    assert [p["lag_seconds"] for p in ship["series"]] == [2.0 * (2 * j + 1) for j in range(60)] + [90.0]
    assert ship["series"][0]["at"] == (now - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # no checkpoint directory: no streaming sample this round; its last one is 10 min old
    stream = consumers["streaming"]
    assert stream["stale"] is True and stream["sample_age_seconds"] == 615.0
    values = [p["lag_records"] for p in stream["series"]]
    assert values == [0] * 40 + [None] * 21, "a gap where the samples stopped"

    wide = health(settings, now, minutes=360)
    assert wide["window"]["bucket_seconds"] == 360 and len(wide["consumers"][0]["series"]) <= 61


def test_samples_older_than_three_intervals_are_reported_as_stopped(sampled, now):
    settings, _ = sampled
    later = now + timedelta(seconds=3 * settings.metrics_interval_seconds + 1)
    body = health(settings, later)
    assert body["state"] == "stale" and "stopped" in body["message"]
    assert all(row["stale"] for key in ("services", "consumers", "stores", "forecasts") for row in body[key])


def test_no_metrics_index_or_an_empty_one_is_no_health_samples_yet(isolated, now):
    body = health(isolated, now)
    assert body["state"] == "empty" and body["message"].startswith("No health samples yet") and body["errors"] == {}
    es = make_es_client(isolated)
    es.indices.create(index=isolated.index("metrics"))  # the template's mappings, no document
    es.close()
    body = health(isolated, now)
    assert body["state"] == "empty" and body["services"] == [] and body["consumers"] == []
