"""The streaming job end to end: real Kafka, Spark and FerretDB; the forecasting API is the
contract-speaking fake (tests/fakes/forecast_server.py) unless a test says otherwise."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from meteoflow.contracts import (
    FORECAST_STATE, FORECASTS, OBSERVATIONS, STREAMING_BATCH_ACTION, ForecastDocument,
    StreamingBatchEvent,
)
from stack.servers import servers
from meteoflow.kafka import make_consumer, make_producer
from meteoflow.metrics import StreamingMetrics
from meteoflow.mongo import database, make_mongo_client
from meteoflow.settings import REPO_ROOT
from streaming.job import StreamingJob, run_until_idle
from tests.fakes.forecast_server import FakeForecastServer
from tests.fakes.observations import recompute_hourly_stats, simulated_observations, stored_hourly_stats
from tests.fakes.prometheus import from_registry, scrape

pytestmark = pytest.mark.integration
log = logging.getLogger("test-streaming-job")
FORECAST_FIELDS = {"_id", "region_id", "target_time", "yhat", "yhat_lower", "yhat_upper", "model_run_at",
                   "horizon_hours", "model"}


@pytest.fixture
def fake_api():
    with FakeForecastServer() as server:
        yield server


@pytest.fixture
def settings(isolated, fake_api):
    return isolated.model_copy(update=dict(
        forecast_api_url_override=fake_api.url, forecast_horizon_hours=6, streaming_max_offsets_per_trigger=100,
        streaming_trigger_seconds=0.5, forecast_retry_seconds=1.0, forecast_timeout_seconds=5.0))


@pytest.fixture
def db(settings):
    client = make_mongo_client(settings)
    yield database(settings, client)
    client.drop_database(settings.mongo_db)
    client.close()


def produce(settings, messages: list[tuple[bytes | None, bytes]]) -> None:
    producer = make_producer(settings, client_id="test-streaming")
    for key, value in messages:
        producer.send(settings.topic_observations, key=key, value=value)
    producer.flush(timeout=30)
    producer.close(timeout=5)


def as_messages(observations):
    return [(o.key, o.to_message()) for o in observations]


def assert_exact(db, observations):
    assert db[OBSERVATIONS].count_documents({}) == len({(o.region_id, o.observed_at) for o in observations})
    assert stored_hourly_stats(db) == recompute_hourly_stats(observations)


def assert_forecasts_after_last_observation(db, observations, horizon):
    regions = sorted({o.region_id for o in observations})
    stored = list(db[FORECASTS].find())
    assert all(set(f) == FORECAST_FIELDS for f in stored)
    forecasts = [ForecastDocument.from_document(f) for f in stored]
    assert sorted({f.region_id for f in forecasts}) == regions
    for region in regions:
        last = max(o.observed_at for o in observations if o.region_id == region)
        mine = [f for f in forecasts if f.region_id == region]
        assert len(mine) == horizon
        for f in mine:
            assert f.horizon_hours == horizon
            assert f.target_time > last and f.yhat_lower <= f.yhat <= f.yhat_upper


def test_stores_every_record_once_with_exact_stats_forecasts_and_progress_lines(settings, spark, db, fake_api,
                                                                                tmp_path):
    observations = simulated_observations(regions=3, hours=30, per_hour=2)  # 180 records, 2 batches
    produce(settings, as_messages(observations))

    metrics = StreamingMetrics(CollectorRegistry())
    lines = run_until_idle(settings, spark, log, metrics=metrics)

    assert_exact(db, observations)
    assert_forecasts_after_last_observation(db, observations, horizon=6)
    # foreachBatch runs in the driver: its counts are this process's (what /metrics serves).
    scraped = from_registry(metrics.registry)
    assert scraped.value("meteoflow_streaming_records_consumed_total", topic=settings.topic_observations) == len(
        observations)
    assert scraped.value("meteoflow_streaming_records_written_total", sink="observations") == len(observations)
    assert scraped.value("meteoflow_streaming_batches_total") == len(lines)
    assert scraped.value("meteoflow_streaming_dead_letters_total") == 0
    # Forecasts are off the batches' path: run_until_idle refreshes the marked regions once at the end.
    assert scraped.value("meteoflow_streaming_forecast_regions_total", outcome="ok") == 3
    assert sum(line.input_rows for line in lines) == len(observations)
    assert len(lines) >= 2  # maxOffsetsPerTrigger=100 split the stream
    for line in lines:
        assert {"collect", "validate", "observations", "stats", "latest", "mark", "total"} <= set(line.durations_ms)
        assert line.forecast.ok == 0  # no batch waits on the forecasting API
        assert line.dead_letters == 0 and line.rows_per_second is not None
    assert sum(lines[-1].kafka_end_offsets[settings.topic_observations].values()) == len(observations)
    # One API call for every marked region together.
    assert len(fake_api.requests) == 1
    assert sorted(series["region_id"] for series in fake_api.requests[0]["series"]) == ["dakar", "saint-louis", "thies"]
    log.info("per-batch timings: %s", [line.durations_ms for line in lines])

    # Same checkpoint: nothing new to do. Fresh checkpoint from earliest: everything replayed, still exact.
    assert run_until_idle(settings, spark, log) == []
    replay = settings.model_copy(update={"streaming_checkpoint_dir": tmp_path / "fresh-checkpoint"})
    lines = run_until_idle(replay, spark, log)
    assert sum(line.input_rows for line in lines) == len(observations)
    assert_exact(db, observations)
    assert db[FORECASTS].count_documents({}) == 3 * 6


def test_malformed_messages_go_to_the_dead_letter_topic_with_reasons(settings, spark, db):
    observations = simulated_observations(regions=2, hours=2, per_hour=2)
    good = json.loads(observations[0].to_message())
    missing = {k: v for k, v in good.items() if k != "pressure"}
    bad = [b"this is not json", json.dumps(missing).encode(), json.dumps({**good, "humidity": "very"}).encode(),
           json.dumps({**good, "temp": 900}).encode()]
    produce(settings, as_messages(observations[:4]) + [(b"dakar", value) for value in bad] +
            as_messages(observations[4:]))

    lines = run_until_idle(settings, spark, log)

    assert_exact(db, observations)
    assert sum(line.dead_letters for line in lines) == 4
    consumer = make_consumer(settings, None, settings.topic_deadletter, consumer_timeout_ms=10_000)
    letters = [json.loads(m.value) for _, m in zip(range(4), consumer)]
    consumer.close()
    by_payload = {dl["payload"]: dl for dl in letters}
    assert set(by_payload) == {value.decode() for value in bad}
    assert by_payload["this is not json"]["reason"].startswith("not JSON")
    assert "pressure: missing" in by_payload[bad[1].decode()]["reason"]
    assert by_payload[bad[2].decode()]["reason"].startswith("humidity:")
    assert by_payload[bad[3].decode()]["reason"].startswith("temp:")
    for dl in letters:
        assert dl["service"] == "streaming" and dl["source_topic"] == settings.topic_observations
        assert dl["source_offset"] is not None and dl["source_partition"] is not None


def test_a_failing_batch_is_not_committed_and_is_replayed(settings, spark, db):
    observations = simulated_observations(regions=2, hours=3, per_hour=2)
    produce(settings, as_messages(observations) + [(b"dakar", b"not json")])
    job = StreamingJob(settings, spark, log)
    # The dead-letter producer refuses the record (too large for it): the batch must fail, not drop it.
    job.deadletters._producer = make_producer(settings, "test-refusing", max_request_size=64)
    if job.processor.executor_writes is not None:  # on a cluster the executors' producers publish them
        job.processor.executor_writes.producer_options = {"max_request_size": 64}
    with pytest.raises(Exception):
        job.run_until_idle()
    assert run_until_idle(settings, spark, log)[0].dead_letters == 1  # the same batch, replayed
    assert_exact(db, observations)


def test_forecasts_catch_up_after_an_api_outage_without_new_input(settings, spark, db, fake_api):
    observations = simulated_observations(regions=3, hours=26, per_hour=1)
    produce(settings, as_messages(observations))
    fake_api.set_mode("fail")
    job = StreamingJob(settings, spark, log)
    job.start()  # processing-time trigger and the forecast thread, as `python -m streaming` runs
    try:
        deadline = time.monotonic() + 90
        while db[OBSERVATIONS].count_documents({}) < len(observations) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert_exact(db, observations)  # the outage did not hold observations or stats back
        wait_for(lambda: db[FORECAST_STATE].count_documents({"needs_forecast": True, "status": "failed"}) == 3, 30)
        assert db[FORECASTS].count_documents({}) == 0
        calls = len(fake_api.requests)

        fake_api.set_mode("ok")
        wait_for(lambda: db[FORECAST_STATE].count_documents({"status": "ok", "needs_forecast": False}) == 3, 30)
    finally:
        job.stop()
    assert len(fake_api.requests) > calls
    assert_forecasts_after_last_observation(db, observations, horizon=6)


def test_the_archive_starts_once_a_backlog_is_stored_and_loses_none_of_it(settings, spark, db):
    from streaming.archive import read_archive

    settings = settings.model_copy(update=dict(archive_trigger_seconds=120))  # only catching up starts it
    observations = simulated_observations(regions=3, hours=100, per_hour=1)  # 3 triggers of at most 100
    produce(settings, as_messages(observations))
    job = StreamingJob(settings, spark, log)
    stored_at_archive_start: list[int] = []
    start = job.archive.start

    def noting_start(stream, available_now=False):
        stored_at_archive_start.append(db[OBSERVATIONS].count_documents({}))
        return start(stream, available_now)

    job.archive.start = noting_start
    job.start(forecasts=False)
    try:
        wait_for(lambda: job.archive.query is not None
                 and any(p["numInputRows"] for p in job.archive.query.recentProgress), 90)
        first_trigger = sum(p["numInputRows"] for p in job.archive.query.recentProgress)
        assert job.archive.failure() is None
    finally:
        job.stop()
    assert stored_at_archive_start == [len(observations)]  # the backlog was stored before it started
    assert 0 < first_trigger <= 100  # one trigger (then 120 s until the next)
    run_until_idle(settings, spark, log)  # the archive's checkpoint goes on from its first trigger
    archived = read_archive(spark, settings.archive_location)
    assert archived.count() == archived.select("region_id", "observed_at").distinct().count() == len(observations)


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.3)


# --- the job as a real process ----------------------------------------------------------------
ENV_FIELDS = ("run_dir", "kafka_port", "mongo_port", "topic_observations", "topic_deadletter", "topic_logs",
              "mongo_db", "streaming_checkpoint_dir", "streaming_trigger_seconds",
              "streaming_max_offsets_per_trigger", "forecast_horizon_hours", "forecast_retry_seconds",
              "forecast_timeout_seconds", "streaming_metrics_port")


def job_env(settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({f"METEOFLOW_{name.upper()}": str(getattr(settings, name)) for name in ENV_FIELDS})
    env["METEOFLOW_FORECAST_API_URL"] = settings.forecast_api_url
    return env


def start_job(settings, log_file: Path) -> subprocess.Popen:
    # Own process group, so kill -9 takes the Python driver and its Spark JVM down together.
    return subprocess.Popen([sys.executable, "-m", "streaming"], cwd=REPO_ROOT, env=job_env(settings),
                            stdout=open(log_file, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def uncommitted_batches(checkpoint: Path) -> set[str]:
    """Batches Spark planned (offset log) but did not commit: in flight when the process died."""
    def ids(sub):
        folder = checkpoint / sub
        return {p.name for p in folder.iterdir() if p.name.isdigit()} if folder.is_dir() else set()
    return ids("offsets") - ids("commits")


def test_kill_9_mid_batch_then_restart_loses_and_duplicates_nothing(settings, spark, db, fake_api, tmp_path):
    settings = settings.model_copy(update={"streaming_max_offsets_per_trigger": 40, "forecast_timeout_seconds": 20})
    observations = simulated_observations(regions=3, hours=160, per_hour=1)  # 480 records, 12 batches
    produce(settings, as_messages(observations))
    out = tmp_path / "streaming.log"
    # The store stops answering (FerretDB paused) once the first batch stored something: the next
    # batch is planned (its offsets logged) and cannot finish, its offsets not committed. That is
    # where the kill lands. The forecasting API hangs too: forecasts are off the batch's path, so
    # that must not matter.
    fake_api.set_mode("hang")
    ferretdb = servers(settings, ["ferretdb"])[0].recorded_pid()
    assert ferretdb is not None

    job = start_job(settings, out)
    try:
        # (generous caps: a Spark job starting on a loaded 2-core machine can take minutes; each wait ends on its event)
        wait_for(lambda: db[OBSERVATIONS].count_documents({}) > 0 or job.poll() is not None, 600)
        os.kill(ferretdb, signal.SIGSTOP)
        try:
            wait_for(lambda: uncommitted_batches(settings.checkpoint_dir) or job.poll() is not None, 60)
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
            job.wait(30)
        finally:
            os.kill(ferretdb, signal.SIGCONT)
        in_flight = uncommitted_batches(settings.checkpoint_dir)
        assert in_flight, "the kill did not land inside a batch"
        assert 0 < db[OBSERVATIONS].count_documents({}) < len(observations)

        fake_api.set_mode("ok")
        restarted_at = time.time()
        job = start_job(settings, out)
        wait_for(lambda: db[OBSERVATIONS].count_documents({}) == len(observations) or job.poll() is not None, 600)
        wait_for(lambda: stored_hourly_stats(db) == recompute_hourly_stats(observations), 30)
        assert_exact(db, observations)
        wait_for(lambda: db[FORECAST_STATE].count_documents({"status": "ok", "needs_forecast": False}) == 3, 30)
        assert_forecasts_after_last_observation(db, observations, horizon=6)

        # The running job's exporter (python -m streaming: its service registry on its metrics port).
        scraped = scrape(f"http://{settings.bind_host}:{settings.streaming_metrics_port}/metrics")
        consumed = scraped.value("meteoflow_streaming_records_consumed_total", topic=settings.topic_observations)
        assert 0 < consumed <= len(observations)  # from the replayed batch on
        assert scraped.value("meteoflow_streaming_records_written_total", sink="observations") == consumed
        assert scraped.value("meteoflow_streaming_dead_letters_total") == 0
        assert scraped.value("meteoflow_streaming_forecast_regions_total", outcome="ok") >= 3
        assert scraped.value("meteoflow_streaming_last_batch_timestamp_seconds") > restarted_at
        assert scraped.value("meteoflow_build_info", service="streaming") == 1.0

        os.killpg(job.pid, signal.SIGTERM)  # as the supervisor stops it: the whole process group
        assert job.wait(60) == 0  # graceful: the query stopped, Spark shut down in order
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(30)
    assert not uncommitted_batches(settings.checkpoint_dir)

    progress = [json.loads(line) for line in out.read_text().splitlines() if STREAMING_BATCH_ACTION in line]
    batches = [StreamingBatchEvent.from_log_line(p).event for p in progress
               if p.get("event.action") == STREAMING_BATCH_ACTION]
    assert batches and all(b.durations_ms["total"] > 0 and b.kafka_end_offsets is not None for b in batches[:-1])
    # The same lines reach the pipeline.logs topic.
    consumer = make_consumer(settings, None, settings.topic_logs, consumer_timeout_ms=5000)
    shipped = [json.loads(m.value) for m in consumer]
    consumer.close()
    assert any(line.get("event.action") == STREAMING_BATCH_ACTION for line in shipped)

    # Replay everything from earliest with a fresh checkpoint: still exact.
    replay = settings.model_copy(update={"streaming_checkpoint_dir": tmp_path / "fresh"})
    lines = run_until_idle(replay, spark, log)
    assert sum(line.input_rows for line in lines) == len(observations)
    assert_exact(db, observations)
