"""The producer against the real Kafka: one message per healthy region, failed regions listed,
dead letters written, and `python -m producer` end to end (simulator, OpenWeatherMap, SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from pydantic import SecretStr

from meteoflow.contracts import PRODUCER_RUN_ACTION, DeadLetter, ProducerRunEvent
from meteoflow.kafka import make_consumer
from meteoflow.contracts import validate_observation
from meteoflow.settings import REPO_ROOT, Settings
from producer.regions import load_regions
from producer.run import KafkaPublisher, Producer
from producer.sources.openweathermap import OpenWeatherMapSource
from tests.fakes.owm_server import FakeOwm, Reply

pytestmark = pytest.mark.integration

KEY = "integration-owm-key-5e1d9a7c3b"
REGIONS = load_regions()
BY_ID = {r.id: r for r in REGIONS}


def read_topic(settings: Settings, topic: str, expected: int, timeout_s: float = 30.0, idle_ms: int = 2000):
    """Everything on the topic: waits for `expected` messages, then drains until idle (to see extras)."""
    consumer = make_consumer(settings, None, topic, consumer_timeout_ms=idle_ms)
    messages = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = list(consumer)
            messages += batch
            if len(messages) >= expected and not batch:
                break
    finally:
        consumer.close()
    return messages


def subprocess_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METEOFLOW_")}
    env.update(
        METEOFLOW_KAFKA_PORT=str(settings.kafka_port),
        METEOFLOW_BIND_HOST=settings.bind_host,
        METEOFLOW_TOPIC_OBSERVATIONS=settings.topic_observations,
        METEOFLOW_TOPIC_DEADLETTER=settings.topic_deadletter,
        METEOFLOW_TOPIC_LOGS=settings.topic_logs,
        METEOFLOW_PRODUCER_METRICS_PORT=str(settings.producer_metrics_port),  # the test stack's, not a demo's
        PYTHONUNBUFFERED="1",
        # The stand-in OpenWeatherMap has no limit: calls are not spread over seconds in tests.
        METEOFLOW_OWM_CALLS_PER_MINUTE="60000",
        METEOFLOW_RUN_DIR=str(settings.run_dir),
    )
    env.update(extra)
    return env


def run_cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "producer", *args], env=subprocess_env(settings, **env),
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def assert_one_batch_per_region(messages, region_ids: set[str], source: str) -> str:
    keys = [m.key.decode() for m in messages]
    assert sorted(keys) == sorted(region_ids)  # exactly one message per healthy region
    observations = [validate_observation(m.value) for m in messages]
    for message, obs in zip(messages, observations):
        assert obs.region_id == message.key.decode() and obs.source == source
    batch_ids = {o.batch_id for o in observations}
    assert len(batch_ids) == 1
    return batch_ids.pop()


def test_a_run_publishes_healthy_regions_and_lists_failed_ones(isolated, caplog, tmp_path):
    matam, kolda = BY_ID["matam"], BY_ID["kolda"]
    with FakeOwm(api_key=KEY) as owm:
        owm.always(Reply.status(404), lat=matam.lat, lon=matam.lon)
        owm.script(Reply.malformed(), lat=kolda.lat, lon=kolda.lon)
        settings = isolated.model_copy(update=dict(owm_api_key=SecretStr(KEY), owm_base_url=owm.url, owm_api="onecall",
                                                   owm_timeout_seconds=2.0, owm_backoff_seconds=0.05,
                                                   run_dir=tmp_path, owm_calls_per_minute=60_000))
        publisher = KafkaPublisher(settings)
        try:
            summary = Producer(settings, REGIONS, OpenWeatherMapSource(settings), publisher).run_once()
        finally:
            publisher.close()

    healthy = set(BY_ID) - {"matam", "kolda"}
    messages = read_topic(settings, settings.topic_observations, expected=len(healthy))
    batch_id = assert_one_batch_per_region(messages, healthy, "openweathermap")
    assert batch_id == summary.batch_id and summary.records == 12
    assert sorted(summary.regions_ok) == sorted(healthy)
    failed = {f["region_id"]: f["reason"] for f in summary.regions_failed}
    assert set(failed) == {"matam", "kolda"}
    assert "HTTP 404" in failed["matam"] and "malformed JSON" in failed["kolda"]

    (letter,) = read_topic(settings, settings.topic_deadletter, expected=1)
    dead = DeadLetter.model_validate_json(letter.value)
    assert letter.key == b"kolda" and dead.service == "producer" and "malformed JSON" in dead.reason
    for message in messages + [letter]:
        assert KEY.encode() not in message.value
    assert KEY not in caplog.text


def test_cli_simulator_once_publishes_a_valid_batch_and_logs_its_summary(isolated):
    done = run_cli(isolated, "--source", "simulator", "--once")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert "source simulator" in lines[0]["message"]

    messages = read_topic(isolated, isolated.topic_observations, expected=len(REGIONS))
    batch_id = assert_one_batch_per_region(messages, set(BY_ID), "simulator")

    logs = [json.loads(m.value) for m in read_topic(isolated, isolated.topic_logs, expected=2)]
    (run_line,) = [doc for doc in logs if doc.get("event.action") == PRODUCER_RUN_ACTION]
    run = ProducerRunEvent.from_log_line(run_line).event
    assert run.batch_id == batch_id and run.records == 14 and run.regions_ok == 14
    assert run.regions_failed == [] and run.source == "simulator" and run.duration_s >= 0
    assert run_line["service.name"] == "producer"


def test_auto_without_a_key_says_it_uses_the_simulator(isolated):
    done = run_cli(isolated, "--once")
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout.splitlines()[0])["message"]
    assert "no OpenWeatherMap API key set" in first and "offline simulator" in first


def test_cli_openweathermap_once_against_the_fake_server(isolated):
    with FakeOwm(api_key=KEY) as owm:
        done = run_cli(isolated, "--source", "openweathermap", "--once", METEOFLOW_OWM_API_KEY=KEY,
                       METEOFLOW_OWM_BASE_URL=owm.url, METEOFLOW_OWM_API="current", METEOFLOW_LOG_LEVEL="DEBUG")
    assert done.returncode == 0, done.stderr
    messages = read_topic(isolated, isolated.topic_observations, expected=len(REGIONS))
    assert_one_batch_per_region(messages, set(BY_ID), "openweathermap")
    logs = read_topic(isolated, isolated.topic_logs, expected=2)
    for text in [done.stdout, done.stderr] + [m.value.decode() for m in logs + messages]:
        assert KEY not in text


def test_cli_with_a_rejected_key_stops_at_once(isolated):
    with FakeOwm(api_key=KEY) as owm:
        done = run_cli(isolated, "--source", "openweathermap", METEOFLOW_OWM_API_KEY="wrong-" + KEY,
                       METEOFLOW_OWM_BASE_URL=owm.url, METEOFLOW_OWM_API="current")
        requests_made = owm.count()
    assert done.returncode == 1
    assert "OpenWeatherMap rejected the API key" in done.stdout
    assert requests_made == 1  # no retry storm, no second run
    assert KEY not in done.stdout + done.stderr


def run_until_then_sigterm(settings: Settings, args: list[str], done, timeout_s: float = 60, **env: str) -> list[dict]:
    """`python -m producer ARGS` until `done(lines)` holds for its JSON log lines (or the timeout),
    then SIGTERM; asserts a clean exit and returns every line."""
    proc = subprocess.Popen([sys.executable, "-m", "producer", *args], env=subprocess_env(settings, **env),
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[dict] = []
    reader = threading.Thread(target=lambda: lines.extend(json.loads(line) for line in proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not done(list(lines)):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=5)
    return lines


def test_sigterm_stops_between_runs_after_finishing_the_current_one(isolated):
    lines = run_until_then_sigterm(
        isolated, ["--source", "simulator", "--interval", "0.3"],
        lambda lines: sum(1 for doc in lines if doc.get("event.action") == PRODUCER_RUN_ACTION) >= 2,
        METEOFLOW_SIMULATOR_BACKFILL_HOURS="0")
    runs = [ProducerRunEvent.from_log_line(doc).event for doc in lines
            if doc.get("event.action") == PRODUCER_RUN_ACTION]
    assert len(runs) >= 2
    assert f"stopped after {len(runs)} run(s)" in lines[-1]["message"]
    messages = read_topic(isolated, isolated.topic_observations, expected=14 * len(runs))
    per_batch = {}
    for m in messages:
        per_batch.setdefault(validate_observation(m.value).batch_id, []).append(m.key.decode())
    assert set(per_batch) == {r.batch_id for r in runs}  # every logged run published, nothing else
    assert all(sorted(keys) == sorted(BY_ID) for keys in per_batch.values())  # and no run was cut short
