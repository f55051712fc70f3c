"""Health signals: Spark checkpoint parsing, lag, staleness, services, forecast age, and a sampling
round that survives a failing source (elk/health/)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from elk.health.sampler import HealthSampler, bulk_index_operations, shipper_group
from elk.health.signals import (
    CheckpointError, ConsumerReading, PartitionReading, committed_offsets, consumer_lag_sample,
    forecast_age_samples, latest_committed_batch, parse_offset_log, service_samples, store_staleness_samples,
)
from elk.health.sources import supervisor_state_file
from elk.templates import load_templates
from meteoflow.contracts import ForecastState, MetricSample, SupervisedProcess, SupervisorState
from meteoflow.settings import load_settings

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)

# As Spark 3.5/4 writes them (copied from a run's <checkpoint>/offsets/17 and commits/17).
OFFSET_LOG = (
    'v1\n{"batchWatermarkMs":0,"batchTimestampMs":1796180475012,"conf":{"spark.sql.shuffle.partitions":"2",'
    '"spark.sql.streaming.multipleWatermarkPolicy":"min"}}\n{"weather.observations":{"0":74,"1":85,"2":85}}'
)
COMMIT_LOG = 'v1\n{"nextBatchWatermarkMs":0}'


def write_checkpoint(root: Path, offsets: dict[int, str], commits: list[int]) -> Path:
    (root / "offsets").mkdir(parents=True)
    (root / "commits").mkdir()
    (root / "metadata").write_text('{"id":"06d9d7ce-c56d-4efa-961a-4a16eda950ca"}')
    for batch, text in offsets.items():
        (root / "offsets" / str(batch)).write_text(text)
        (root / "offsets" / f".{batch}.crc").write_bytes(b"\x00crc")
    for batch in commits:
        (root / "commits" / str(batch)).write_text(COMMIT_LOG)
    return root


def offsets_text(p0: int, p1: int, p2: int, topic: str = "weather.observations") -> str:
    return OFFSET_LOG.replace('{"weather.observations":{"0":74,"1":85,"2":85}}',
                              f'{{"{topic}":{{"0":{p0},"1":{p1},"2":{p2}}}}}')


# --- checkpoint ---------------------------------------------------------------------------------
def test_an_offset_log_gives_the_offsets_each_partition_was_read_up_to():
    assert parse_offset_log(OFFSET_LOG) == {"weather.observations": {0: 74, 1: 85, 2: 85}}


def test_the_processed_offsets_are_those_of_the_newest_committed_batch(tmp_path):
    # batch 3 is planned (offset log written) but not committed yet: it does not count
    cp = write_checkpoint(tmp_path / "cp", {1: offsets_text(1, 1, 1), 2: offsets_text(10, 20, 30),
                                            3: offsets_text(99, 99, 99)}, commits=[1, 2])
    (cp / "offsets" / "4.tmp").write_text("partial")  # a write in progress is ignored
    assert latest_committed_batch(cp) == 2
    assert committed_offsets(cp, "weather.observations") == {0: 10, 1: 20, 2: 30}
    assert committed_offsets(cp, "other.topic") == {}


def test_a_job_that_committed_nothing_has_processed_nothing(tmp_path):
    assert committed_offsets(tmp_path / "never-started", "weather.observations") is None
    cp = write_checkpoint(tmp_path / "cp", {0: offsets_text(5, 5, 5)}, commits=[])
    assert committed_offsets(cp, "weather.observations") is None


@pytest.mark.parametrize("text", ["", '{"weather.observations":{"0":1}}', 'v1\n{}\nnot json'])
def test_a_malformed_offset_log_is_refused(text):
    with pytest.raises(CheckpointError):
        parse_offset_log(text)


# --- consumer lag ----------------------------------------------------------------------------------
def test_lag_counts_unprocessed_records_and_the_age_of_the_oldest():
    reading = ConsumerReading("streaming", {
        ("t", 0): PartitionReading(beginning=0, end=10, position=10),  # caught up
        ("t", 1): PartitionReading(beginning=0, end=10, position=4, oldest_unprocessed_at=NOW - timedelta(seconds=30)),
        ("t", 2): PartitionReading(beginning=0, end=7, position=2, oldest_unprocessed_at=NOW - timedelta(seconds=90)),
    })
    sample = consumer_lag_sample(NOW, reading)
    assert (sample.kind, sample.subject, sample.lag_records, sample.lag_seconds, sample.partitions) == (
        "consumer_lag", "streaming", 6 + 5, 90.0, 3)


def test_a_consumer_without_offsets_lags_by_every_record_kept():
    reading = ConsumerReading("shipper", {
        ("t", 0): PartitionReading(beginning=3, end=10, position=None, oldest_unprocessed_at=NOW - timedelta(minutes=5)),
        ("t", 1): PartitionReading(beginning=5, end=8, position=1, oldest_unprocessed_at=NOW),  # retention removed 1..4
        ("t", 2): PartitionReading(beginning=0, end=0, position=None),  # empty
    })
    sample = consumer_lag_sample(NOW, reading)
    assert (sample.lag_records, sample.lag_seconds) == (7 + 3, 300.0)


def test_a_caught_up_consumer_lags_zero_seconds_and_an_unknown_age_is_absent():
    caught_up = ConsumerReading("s", {("t", 0): PartitionReading(beginning=0, end=4, position=4)})
    assert (consumer_lag_sample(NOW, caught_up).lag_records, consumer_lag_sample(NOW, caught_up).lag_seconds) == (0, 0.0)
    unknown = ConsumerReading("s", {("t", 0): PartitionReading(beginning=0, end=4, position=1)})
    assert consumer_lag_sample(NOW, unknown).lag_seconds is None
    assert "lag_seconds" not in consumer_lag_sample(NOW, unknown).to_document()


# --- staleness ---------------------------------------------------------------------------------------
def test_each_store_is_as_stale_as_its_newest_lies_behind_kafkas_newest():
    kafka = NOW - timedelta(seconds=10)
    samples = {s.subject: s for s in store_staleness_samples(
        NOW, kafka, {"mongodb": NOW - timedelta(seconds=5), "elasticsearch": NOW - timedelta(seconds=130)})}
    assert samples["kafka"].staleness_seconds == 0.0 and samples["kafka"].age_seconds == 10.0
    assert samples["mongodb"].staleness_seconds == 0.0  # stored after Kafka's newest arrived: caught up
    assert samples["elasticsearch"].staleness_seconds == 120.0
    assert samples["elasticsearch"].age_seconds == 130.0


def test_staleness_is_absent_when_a_side_has_nothing_yet():
    samples = {s.subject: s for s in store_staleness_samples(NOW, None, {"mongodb": NOW})}
    assert samples["kafka"].newest_at is None and samples["mongodb"].staleness_seconds is None
    empty_store = store_staleness_samples(NOW, NOW, {"elasticsearch": None})[1]
    assert empty_store.staleness_seconds is None and empty_store.newest_at is None


# --- services and forecasts ----------------------------------------------------------------------------
def test_services_come_from_the_supervisor_state():
    state = SupervisorState(pid=1, processes={
        "shipper": SupervisedProcess(state="up", since=NOW - timedelta(minutes=2), restarts=1),
        "streaming": SupervisedProcess(state="crash-loop", since=NOW - timedelta(seconds=5), restarts=6,
                                       last_exit_code=1, last_error="ValueError: boom"),
    })
    shipper, streaming = service_samples(NOW, state)
    assert (shipper.subject, shipper.up, shipper.uptime_seconds, shipper.restarts) == ("shipper", 1, 120.0, 1)
    assert (streaming.state, streaming.up, streaming.uptime_seconds, streaming.last_exit_code,
            streaming.last_error) == ("crash-loop", 0, 0.0, 1, "ValueError: boom")


def state(region_id: str, **fields) -> ForecastState:
    return ForecastState(_id=region_id, region_id=region_id, needs_forecast=False,
                         last_observed_at=NOW - timedelta(hours=2), **fields)


def test_forecast_age_is_the_age_of_the_last_successful_run_per_region():
    states = [state("dakar", status="ok", last_success_at=NOW - timedelta(hours=1)),
              state("thies", status="failed")]  # never forecast
    dakar, thies = forecast_age_samples(NOW, states)
    assert (dakar.subject, dakar.age_seconds, dakar.model_run_at) == ("dakar", 3600.0, NOW - timedelta(hours=1))
    assert (thies.age_seconds, thies.model_run_at, thies.forecast_status) == (None, None, "failed")


# --- documents ---------------------------------------------------------------------------------------------
def test_every_field_of_a_sample_is_in_the_strict_metrics_template():
    properties = load_templates("p")["p-metrics"]["template"]["mappings"]["properties"]
    fields = {f.alias or name for name, f in MetricSample.model_fields.items()}
    assert fields == set(properties)


def test_samples_are_bulk_indexed_into_the_metrics_index():
    sample = MetricSample(timestamp=NOW, kind="consumer_lag", subject="shipper", lag_records=3, lag_seconds=1.5)
    assert bulk_index_operations("p-metrics", [sample]) == [
        {"index": {"_index": "p-metrics"}},
        {"@timestamp": "2026-03-01T12:00:00Z", "kind": "consumer_lag", "subject": "shipper", "lag_records": 3,
         "lag_seconds": 1.5}]


def test_the_state_file_read_is_the_one_the_supervisor_writes():
    from stack.supervisor import state_file

    settings = load_settings()
    assert supervisor_state_file(settings) == state_file(settings)
    assert shipper_group(settings) == f"{settings.es_index_prefix}-shipper"


# --- one sampling round -----------------------------------------------------------------------------------
class FakeKafka:
    def __init__(self, fail: bool = False):
        self.fail = fail
        self.closed = 0

    def _check(self):
        if self.fail:
            raise ConnectionError("kafka down")

    def streaming_reading(self, checkpoint):
        self._check()
        return ConsumerReading("streaming", {("t", 0): PartitionReading(0, 5, 2, NOW - timedelta(seconds=8))})

    def shipper_reading(self, group, topics):
        self._check()
        return ConsumerReading("shipper", {("t", 0): PartitionReading(0, 5, 5)})

    def newest_record_at(self, topic):
        self._check()
        return NOW - timedelta(seconds=1)

    def close(self):
        self.closed += 1


class FakeMongo:
    def newest_observation_at(self):
        raise TimeoutError("mongodb unreachable")

    def forecast_states(self):
        return [state("dakar", status="ok", last_success_at=NOW)]

    def forecast_skills(self):
        return []  # no forecast scored yet: no forecast_skill sample


class FakeEs:
    def __init__(self, fail_write: bool = False):
        self.fail_write = fail_write
        self.bulks = []

    def search(self, **kw):
        return {"aggregations": {"newest": {"value": (NOW - timedelta(seconds=61)).timestamp() * 1000}}}

    def bulk(self, operations):
        if self.fail_write:
            raise ConnectionError("es down")
        self.bulks.append(operations)
        return {"items": [{"index": {"status": 201}} for _ in operations[::2]]}


def sampler(tmp_path, kafka, es) -> HealthSampler:
    settings = load_settings(run_dir=tmp_path)  # no supervisor state file there: no service samples
    settings.checkpoint_dir.mkdir(parents=True)
    return HealthSampler(settings, es, kafka=kafka, mongo=FakeMongo(), clock=lambda: NOW)


def test_a_failing_source_only_leaves_out_its_samples(tmp_path, caplog):
    es = FakeEs()
    with caplog.at_level(logging.WARNING, logger="health"):
        samples = sampler(tmp_path, FakeKafka(), es).run_once()
    got = {(s.kind, s.subject): s for s in samples}
    assert set(got) == {("consumer_lag", "streaming"), ("consumer_lag", "shipper"), ("store_staleness", "kafka"),
                        ("store_staleness", "elasticsearch"), ("forecast_age", "dakar")}
    assert got[("consumer_lag", "streaming")].lag_records == 3
    assert got[("store_staleness", "elasticsearch")].staleness_seconds == 60.0
    assert "mongodb:newest" in caplog.text and "mongodb unreachable" in caplog.text
    assert len(es.bulks[0]) == 2 * len(samples)


def test_kafka_and_elasticsearch_down_is_warnings_not_exceptions(tmp_path, caplog):
    kafka = FakeKafka(fail=True)
    s = sampler(tmp_path, kafka, FakeEs(fail_write=True))
    with caplog.at_level(logging.WARNING, logger="health"):
        samples = s.run_once()
    assert [(x.kind, x.subject) for x in samples] == [("forecast_age", "dakar")]
    assert s.failed == ["kafka:streaming", "kafka:shipper", "kafka:newest", "mongodb:newest"]
    assert kafka.closed == 3  # clients dropped after each failure, reconnected next time
    assert "writing 1 health samples failed" in caplog.text


def test_services_are_sampled_when_the_supervisor_state_file_exists(tmp_path):
    settings = load_settings(run_dir=tmp_path)
    path = supervisor_state_file(settings)
    path.parent.mkdir(parents=True)
    path.write_text(SupervisorState(pid=7, processes={"shipper": SupervisedProcess(
        state="backoff", since=NOW, restarts=2, last_exit_code=-9)}).model_dump_json())
    samples = HealthSampler(settings, FakeEs(), kafka=FakeKafka(), mongo=FakeMongo(), clock=lambda: NOW).sample()
    (service,) = [s for s in samples if s.kind == "service"]
    assert (service.subject, service.state, service.up, service.restarts, service.last_exit_code) == (
        "shipper", "backoff", 0, 2, -9)


def test_the_sampling_loop_survives_a_round_that_raises_and_stops_on_request():
    import threading

    from elk.health.sampler import run_sampler

    stop = threading.Event()

    class Exploding:
        rounds = 0
        closed = False

        def run_once(self):
            self.rounds += 1
            if self.rounds == 3:
                stop.set()
            raise RuntimeError("unexpected")

        def close(self):
            self.closed = True

    ticks = iter(range(1000))
    sampler = Exploding()
    run_sampler(sampler, interval=0.0, stop=stop, monotonic=lambda: float(next(ticks)))
    assert (sampler.rounds, sampler.closed) == (3, True)


def test_without_a_checkpoint_directory_the_streaming_lag_is_not_sampled(tmp_path):
    settings = load_settings(run_dir=tmp_path)  # e.g. the Docker alerting container: no streaming volume
    samples = HealthSampler(settings, FakeEs(), kafka=FakeKafka(), mongo=FakeMongo(), clock=lambda: NOW).sample()
    assert ("consumer_lag", "streaming") not in {(x.kind, x.subject) for x in samples}
    assert ("consumer_lag", "shipper") in {(x.kind, x.subject) for x in samples}
