"""Each service moves its Prometheus metrics as its work goes: the producer, the streaming job's
foreachBatch, the shipper, the alerting service and its health sampler, with in-memory fakes of
Kafka, Elasticsearch, MongoDB and Slack (the real ones: tests/integration/test_metrics_endpoints.py).
Every check reads a registry's exposition back through prometheus_client's parser."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

from elastic_transport import ConnectionError as EsConnectionError
from prometheus_client import CollectorRegistry

from elk.alerting.engine import Facts, RegionFacts
from elk.alerting.rules import RULE_MODELS, parse_rules
from elk.alerting.service import AlertingService
from elk.alerting.slack import Delivery
from elk.health.sampler import HealthSampler
from elk.shipper.service import Shipper
from meteoflow import metrics as m
from meteoflow.settings import load_settings
from producer.regions import Region
from producer.run import KafkaPublisher, Producer
from producer.sources.base import RegionFailure, Source, SourceResult
from producer.sources.simulator import RegionSimulator
from streaming.job import BatchProcessor, ProgressReporter
from tests.fakes.elk_records import dead_letter, log_line, observation, record
from tests.fakes.prometheus import from_registry
from tests.unit.test_health_signals import NOW as HEALTH_NOW, FakeEs as HealthEs, FakeKafka, FakeMongo
from tests.unit.test_streaming_batch import T0 as BATCH_T0, Recorder, records as batch_records

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


# --- producer -------------------------------------------------------------------------------------
class FakeFuture:
    def __init__(self, error: Exception | None):
        self.error = error

    def get(self, timeout=None):
        if self.error:
            raise self.error


class FakeKafkaProducer:
    """Acknowledges every send, except those to `refuse_topic` (Kafka did not take them)."""

    def __init__(self, refuse_topic: str | None = None):
        self.refuse_topic = refuse_topic
        self.sent: list[str] = []

    def send(self, topic, key=None, value=None):
        self.sent.append(topic)
        return FakeFuture(TimeoutError("no ack") if topic == self.refuse_topic else None)

    def flush(self, timeout=None):
        pass

    def close(self, timeout=None):
        pass


class OneRun(Source):
    """Two good regions, one invalid record (dead-lettered), one region the source could not fetch."""

    name = "simulator"

    def fetch(self, regions, now):
        good = [RegionSimulator(r, 1).observe(now) for r in regions]
        bad = {**good[0], "region_id": "thies", "temp": 900.0}
        return SourceResult(records=[*good, bad], failures=[RegionFailure("kaolack", "HTTP 500")])


class Broken(Source):
    name = "simulator"

    def fetch(self, regions, now):
        raise RuntimeError("the source broke")


REGIONS = [Region(id="dakar", name="Dakar", lat=14.69, lon=-17.44), Region(id="louga", name="Louga", lat=15.6, lon=-16.2)]


def test_a_producer_run_counts_published_records_dead_letters_failures_and_its_outcome():
    settings = load_settings(owm_api_key=None)
    metrics = m.ProducerMetrics(CollectorRegistry())
    publisher = KafkaPublisher(settings, producer=FakeKafkaProducer(), metrics=metrics)
    producer = Producer(settings, REGIONS, OneRun(), publisher, logging.getLogger("test"), clock=lambda: T0,
                        metrics=metrics)
    producer.run_measured()
    s = from_registry(metrics.registry)
    assert s.value("meteoflow_producer_records_published_total", topic=settings.topic_observations) == 2.0
    assert s.value("meteoflow_producer_records_published_total", topic=settings.topic_deadletter) == 1.0
    assert s.value("meteoflow_producer_dead_letters_total") == 1.0
    assert s.value("meteoflow_producer_region_failures_total") == 2.0  # thies (invalid) and kaolack (fetch)
    assert s.value("meteoflow_producer_runs_total", outcome="partial") == 1.0
    assert s.value("meteoflow_producer_runs_total", outcome="ok") == 0.0
    assert s.value("meteoflow_producer_run_duration_seconds_count") == 1.0
    assert s.value("meteoflow_producer_last_success_timestamp_seconds") == T0.timestamp()
    assert s.value("meteoflow_producer_kafka_errors_total", topic=settings.topic_observations) is None


def test_records_kafka_did_not_acknowledge_are_kafka_errors_and_a_broken_run_is_failed():
    settings = load_settings(owm_api_key=None)
    metrics = m.ProducerMetrics(CollectorRegistry())
    publisher = KafkaPublisher(settings, producer=FakeKafkaProducer(refuse_topic=settings.topic_observations),
                               metrics=metrics)
    Producer(settings, REGIONS, OneRun(), publisher, clock=lambda: T0, metrics=metrics).run_measured()
    stop = threading.Event()
    runs = Producer(settings, REGIONS, Broken(), publisher, clock=lambda: T0, metrics=metrics).run_forever(
        stop, max_runs=1)
    s = from_registry(metrics.registry)
    assert runs == 1
    assert s.value("meteoflow_producer_kafka_errors_total", topic=settings.topic_observations) == 2.0
    assert s.value("meteoflow_producer_records_published_total", topic=settings.topic_observations) == 0.0
    assert s.value("meteoflow_producer_last_success_timestamp_seconds") == 0.0  # nothing was published
    assert s.value("meteoflow_producer_runs_total", outcome="failed") == 1.0


# --- streaming job ------------------------------------------------------------------------------------
def test_a_micro_batch_counts_consumed_written_and_dead_lettered_records_with_stage_durations():
    metrics = m.StreamingMetrics(CollectorRegistry())
    journal = []
    sinks = {name: Recorder(journal, name) for name in ("observations", "stats", "deadletters", "forecasts")}
    processor = BatchProcessor(sinks["observations"], sinks["stats"], sinks["forecasts"], sinks["deadletters"],
                               ProgressReporter(logging.getLogger("test")), metrics=metrics)
    obs, recs = batch_records()  # 4 observations and 1 broken record, all on topic "obs"
    report = processor.process(recs, batch_id=3)
    s = from_registry(metrics.registry)
    assert s.value("meteoflow_streaming_batches_total") == 1.0
    assert s.value("meteoflow_streaming_records_consumed_total", topic="obs") == len(recs) == 5
    assert s.value("meteoflow_streaming_records_written_total", sink="observations") == len(obs)
    assert s.value("meteoflow_streaming_records_written_total", sink="hourly_stats") == report.stats_upserted
    assert s.value("meteoflow_streaming_dead_letters_total") == 1.0
    for stage in ("validate", "deadletters", "observations", "stats", "mark"):  # forecasts: off the batch
        assert s.value("meteoflow_streaming_batch_stage_duration_seconds_count", stage=stage) == 1.0
    assert s.value("meteoflow_streaming_batch_duration_seconds_count") == 1.0
    assert s.value("meteoflow_streaming_last_batch_timestamp_seconds") >= BATCH_T0.timestamp()


def test_forecast_outcomes_are_counted_per_region_and_forecasts_written():
    from streaming.forecasts import ForecastOutcome

    metrics = m.StreamingMetrics(CollectorRegistry())
    metrics.forecast_outcome(ForecastOutcome(ok=["dakar", "thies"], skipped={"louga": "12 points"}, forecasts_written=48))
    metrics.forecast_outcome(ForecastOutcome(failed={"dakar": "API down", "thies": "API down"}))
    s = from_registry(metrics.registry)
    assert {o: s.value("meteoflow_streaming_forecast_regions_total", outcome=o) for o in m.FORECAST_OUTCOMES} == {
        "ok": 2.0, "failed": 2.0, "skipped": 1.0, "error": 0.0}
    assert s.value("meteoflow_streaming_records_written_total", sink="forecasts") == 48.0


# --- shipper ----------------------------------------------------------------------------------------------
class FakeConsumer:
    """Hands out one poll of records, then stops the shipper."""

    def __init__(self, records, stop: threading.Event):
        self.batches = [records]
        self.stop = stop
        self.commits = []

    def poll(self, timeout_ms=None, max_records=None):
        if self.batches:
            return {("t", 0): self.batches.pop(0)}
        self.stop.set()
        return {}

    def commit(self, offsets):
        self.commits.append(offsets)

    def close(self):
        pass


class ScriptedEs:
    """Elasticsearch unreachable once, then one document refused (400) and one not acknowledged (503)."""

    def __init__(self):
        self.calls = 0

    def bulk(self, operations):
        self.calls += 1
        if self.calls == 1:
            raise EsConnectionError("connection refused")
        ids = [op["index"]["_id"] for op in operations[::2]]
        statuses = {2: {ids[0]: 400, ids[1]: 503}}.get(self.calls, {})
        return {"items": [{"index": {"_id": i, "status": statuses.get(i, 201),
                                     **({"error": {"type": "mapper_parsing_exception", "reason": "bad"}}
                                        if statuses.get(i) == 400 else {})}} for i in ids]}


def test_a_shipped_batch_counts_per_topic_and_index_retries_dead_letters_and_the_commit():
    settings = load_settings()
    metrics = m.ShipperMetrics(CollectorRegistry())
    stop = threading.Event()
    recs = [record(settings.topic_observations, observation(f"r{i}").to_message(), offset=i) for i in range(3)]
    recs += [record(settings.topic_observations, b'{"temp": 900}', offset=3),  # invalid: the shipper dead-letters it
             record(settings.topic_logs, log_line(), offset=0), record(settings.topic_deadletter, dead_letter(), offset=0)]
    consumer = FakeConsumer(recs, stop)
    Shipper(settings, es=ScriptedEs(), sleep=lambda s: None, stop=stop, metrics=metrics).run(consumer=consumer)
    s = from_registry(metrics.registry)
    assert s.value("meteoflow_shipper_records_consumed_total", topic=settings.topic_observations) == 4.0
    assert s.value("meteoflow_shipper_records_consumed_total", topic=settings.topic_logs) == 1.0
    # r0 was refused by Elasticsearch (400): indexed as a dead letter instead, like the invalid record.
    assert s.value("meteoflow_shipper_documents_indexed_total", index=settings.index("observations")) == 2.0
    assert s.value("meteoflow_shipper_documents_indexed_total", index=settings.index("logs")) == 1.0
    assert s.value("meteoflow_shipper_documents_indexed_total", index=settings.index("deadletter")) == 3.0
    assert s.value("meteoflow_shipper_dead_letters_total") == 2.0  # the streaming job's dead letter is not one
    assert s.value("meteoflow_shipper_elasticsearch_errors_total", error="unavailable") == 1.0
    assert s.value("meteoflow_shipper_elasticsearch_errors_total", error="not_acknowledged") == 1.0
    assert s.value("meteoflow_shipper_documents_lost_total") == 0.0
    assert s.value("meteoflow_shipper_batch_duration_seconds_count") == 1.0
    assert len(consumer.commits) == 1 and s.value("meteoflow_shipper_last_commit_timestamp_seconds") > 0


# --- alerting ------------------------------------------------------------------------------------------------
class MemoryStore:
    """IncidentStore in memory, with the JSON round trip Elasticsearch would make."""

    def __init__(self):
        self.incidents = {}
        self.down = False  # Elasticsearch unreachable: reads raise

    def save(self, inc):
        inc.refresh_pending()
        self.incidents[inc.incident_id] = inc.model_copy(deep=True)

    def _copies(self, keep):
        return [i.model_copy(deep=True) for i in self.incidents.values() if keep(i)]

    def open(self):
        if self.down:
            raise EsConnectionError("elasticsearch down")
        return {i.key: i for i in self._copies(lambda i: i.status in ("pending", "firing"))}

    def with_pending(self):
        return self._copies(lambda i: i.pending_notifications > 0)

    def sent_since(self, since):
        return self._copies(lambda i: any(n.sent_at and n.sent_at >= since for n in i.notifications))

    def forget(self, inc):
        self.incidents.pop(inc.incident_id, None)


class NoSilences:
    """No silence, no acknowledgement."""

    def acks(self, incident_ids):
        return {}

    def active_silences(self, now):
        return []


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


class FactsOf:
    """Dakar silent since `dakar_seen` (T0), Thies reporting; `down` makes the read fail as
    Elasticsearch would."""

    down = False
    dakar_seen = T0

    def read(self, rules, now):
        if self.down:
            raise EsConnectionError("elasticsearch down")
        seen = self.dakar_seen
        return Facts(now=now, regions={"dakar": RegionFacts("dakar", "Dakar", seen, seen, 5.0),
                                       "thies": RegionFacts("thies", "Thies", now, now, 5.0)},
                     last_observation_at=now)


class Sender:
    def __init__(self):
        self.messages = []

    def send(self, body):
        self.messages.append(body)
        return Delivery("sent", 1) if len(self.messages) == 1 else Delivery("retry", 3, "HTTP 503")


class HeartbeatEs:
    def __init__(self):
        self.beats = []

    def index(self, **kw):
        self.beats.append(kw)


def alerting_service(metrics: m.AlertingMetrics, run_dir) -> tuple[AlertingService, Clock, FactsOf]:
    settings = load_settings(producer_source="simulator", alert_eval_interval_seconds=30, slack_webhook_url=None,
                             run_dir=run_dir)
    rules = parse_rules({"streaming_stalled": {"enabled": False}, "deadletter_spike": {"enabled": False},
                         "arrival_lag": {"enabled": False},
                         "defaults": {"for_seconds": 60, "group_wait_seconds": 0, "group_interval_seconds": 0}})
    clock, facts = Clock(), FactsOf()
    svc = AlertingService(settings, rules=rules, es=HeartbeatEs(), sender=Sender(), clock=clock, metrics=metrics)
    svc.facts, svc.store, svc.silence_store = facts, MemoryStore(), NoSilences()
    return svc, clock, facts


def test_evaluations_incidents_notifications_and_slack_outcomes_are_counted(tmp_path):
    metrics = m.AlertingMetrics(RULE_MODELS, CollectorRegistry())
    svc, clock, facts = alerting_service(metrics, tmp_path)

    def value(name, **labels):
        return from_registry(metrics.registry).value(name, **labels)

    clock.now = T0 + timedelta(minutes=3)  # dakar silent (> 2 min with the simulator): pending first
    svc.evaluation_round()
    assert value("meteoflow_alerting_incidents_pending", rule="region_silence") == 1.0
    assert value("meteoflow_alerting_incidents_firing", rule="region_silence") == 0.0
    assert value("meteoflow_alerting_last_evaluation_timestamp_seconds") == clock.now.timestamp()

    clock.now += timedelta(seconds=60)  # held for its for: period: fires, and the alert goes out
    svc.evaluation_round()
    assert value("meteoflow_alerting_incidents_firing", rule="region_silence") == 1.0
    assert value("meteoflow_alerting_incidents_pending", rule="region_silence") == 0.0
    assert value("meteoflow_alerting_notifications_total", rule="region_silence", kind="alert") == 1.0
    assert value("meteoflow_alerting_slack_deliveries_total", outcome="sent") == 1.0

    facts.down = svc.store.down = True  # Elasticsearch unavailable: what the health samples show is still evaluated
    clock.now += timedelta(seconds=30)
    svc.evaluation_round()
    assert value("meteoflow_alerting_evaluations_total", outcome="without_elasticsearch") == 1.0
    assert value("meteoflow_alerting_last_evaluation_timestamp_seconds") == clock.now.timestamp()
    # region_silence needs Elasticsearch: its gauge keeps the last value read, not a made-up 0.
    assert value("meteoflow_alerting_incidents_firing", rule="region_silence") == 1.0

    svc.evaluate_without_elasticsearch = lambda error: 1 / 0  # the fallback itself breaks: a failed round
    clock.now += timedelta(seconds=30)
    svc.evaluation_round()
    assert value("meteoflow_alerting_evaluations_total", outcome="ok") == 2.0
    assert value("meteoflow_alerting_evaluations_total", outcome="failed") == 1.0
    assert value("meteoflow_alerting_evaluation_duration_seconds_count") == 3.0  # the completed rounds
    assert value("meteoflow_alerting_last_evaluation_timestamp_seconds") == (clock.now - timedelta(seconds=30)).timestamp()
    assert value("meteoflow_alerting_heartbeat_pings_total", outcome="ok") == 0.0  # no heartbeat URL set


def test_the_health_sampler_feeds_the_gauges_even_when_elasticsearch_refuses_the_samples(tmp_path):
    settings = load_settings(run_dir=tmp_path)
    settings.checkpoint_dir.mkdir(parents=True)
    health = m.HealthMetrics(CollectorRegistry())
    sampler = HealthSampler(settings, HealthEs(fail_write=True), kafka=FakeKafka(), mongo=FakeMongo(),
                            clock=lambda: HEALTH_NOW, metrics=health)
    sampler.run_once()
    s = from_registry(health.registry)
    assert s.value("meteoflow_health_consumer_lag_records", consumer="streaming") == 3.0
    assert s.value("meteoflow_health_consumer_lag_records", consumer="shipper") == 0.0
    assert s.value("meteoflow_health_forecast_age_seconds", region="dakar") == 0.0
    assert s.value("meteoflow_health_store_staleness_seconds", store="mongodb") is None  # its source failed
    assert s.value("meteoflow_health_source_failures_total", source="mongodb:newest") == 1.0
    assert s.value("meteoflow_health_source_failures_total", source="elasticsearch:write") == 1.0
    assert s.value("meteoflow_health_last_sample_timestamp_seconds") == HEALTH_NOW.timestamp()  # its clock


def test_a_blip_forgotten_before_it_fired_is_no_longer_pending(tmp_path):
    metrics = m.AlertingMetrics(RULE_MODELS, CollectorRegistry())
    svc, clock, facts = alerting_service(metrics, tmp_path)
    clock.now = T0 + timedelta(minutes=3)
    svc.evaluation_round()
    assert from_registry(metrics.registry).value("meteoflow_alerting_incidents_pending", rule="region_silence") == 1
    facts.dakar_seen = clock.now + timedelta(seconds=25)  # Dakar reports again within the for: period
    clock.now += timedelta(seconds=30)
    svc.evaluation_round()
    s = from_registry(metrics.registry)
    assert s.value("meteoflow_alerting_incidents_pending", rule="region_silence") == 0
    assert s.value("meteoflow_alerting_incidents_firing", rule="region_silence") == 0
    assert s.value("meteoflow_alerting_notifications_total", rule="region_silence", kind="alert") is None
