"""`python -m producer import` and the first-start back-fill against the real Kafka: history arrives on
the observations topic in back-fill batches, with its progress events on the logs topic, and a finished
import is not sent twice."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from meteoflow.contracts import BACKFILL_ACTION, PRODUCER_RUN_ACTION, BackfillEvent, is_backfill_batch
from meteoflow.contracts import validate_observation
from meteoflow.settings import REPO_ROOT, Settings
from producer.regions import load_regions
from producer.sources.isd import format_line
from tests.fakes.owm_server import FakeOwm
from tests.integration.test_producer_kafka import read_topic, run_until_then_sigterm, subprocess_env

pytestmark = pytest.mark.integration

KEY = "integration-import-key-8c2e4a"
REGIONS = load_regions()


@pytest.fixture
def settings(isolated: Settings, tmp_path) -> Settings:
    return isolated.model_copy(update={"run_dir": tmp_path / "run"})


def run_import_cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "producer", "import", *args, "--no-progress"],
                          env=subprocess_env(settings, **env), cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)


def backfill_events(settings: Settings, expected: int) -> list[BackfillEvent]:
    lines = [json.loads(m.value) for m in read_topic(settings, settings.topic_logs, expected=expected)]
    return [BackfillEvent.from_log_line(doc).event for doc in lines if doc.get("event.action") == BACKFILL_ACTION]


def test_simulated_history_goes_through_kafka_as_backfill_and_is_not_sent_twice(settings):
    done = run_import_cli(settings, "--source", "simulator", "--hours", "72")
    assert done.returncode == 0, done.stderr
    messages = read_topic(settings, settings.topic_observations, expected=14 * 72)
    observations = [validate_observation(m.value) for m in messages]
    assert len(observations) == 14 * 72
    assert len({(o.region_id, o.observed_at) for o in observations}) == 14 * 72
    assert all(is_backfill_batch(o.batch_id) and o.source == "simulator" and o.rain_1h is not None
               for o in observations)
    assert all(m.key.decode() == o.region_id for m, o in zip(messages, observations))
    events = backfill_events(settings, expected=2)
    assert events[0].state == "running" and events[-1].state == "finished" and events[-1].records == 14 * 72

    again = run_import_cli(settings, "--source", "simulator", "--hours", "72")
    assert again.returncode == 0 and "already complete" in again.stdout
    assert len(read_topic(settings, settings.topic_observations, expected=14 * 72)) == 14 * 72


def test_isd_lite_files_go_through_kafka_for_the_nearest_region(settings, tmp_path):
    base = dict(year=2024, month=8, day=15, hour=0, air_temperature=275, dew_point=240, sea_level_pressure=10105,
                wind_direction=240, wind_speed=46, sky_cover=7, precipitation_1h=12, precipitation_6h=-9999)
    path = tmp_path / "616410-99999-2024.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(format_line({**base, "hour": h}) for h in range(24)) + "\nnot a line\n")
    done = run_import_cli(settings, "--source", "isd", "--station", "616410-99999=14.74,-17.49", str(path))
    assert done.returncode == 0, done.stderr
    observations = [validate_observation(m.value) for m in read_topic(settings, settings.topic_observations, 24)]
    assert len(observations) == 24 and {o.region_id for o in observations} == {"dakar"}
    assert all(o.source == "noaa_isd" and o.rain_1h == 1.2 and is_backfill_batch(o.batch_id) for o in observations)
    (letter,) = read_topic(settings, settings.topic_deadletter, expected=1)
    assert b"line 25" in letter.value


def test_timemachine_import_within_the_budget_through_kafka(settings):
    with FakeOwm(api_key=KEY) as owm:
        done = run_import_cli(settings, "--source", "openweathermap", "--hours", "2", METEOFLOW_OWM_API_KEY=KEY,
                              METEOFLOW_OWM_BASE_URL=owm.url, METEOFLOW_OWM_CALLS_PER_DAY="20")
        calls = owm.count()
    assert done.returncode == 3, done.stderr  # 20 calls today, 28 needed: paused, resumable
    assert calls == 20 and "request budget exhausted" in done.stdout
    observations = [validate_observation(m.value) for m in read_topic(settings, settings.topic_observations, 20)]
    assert len(observations) == 20 and all(is_backfill_batch(o.batch_id) for o in observations)
    assert KEY not in done.stdout + done.stderr


def test_first_start_with_one_call_backfills_beside_the_schedule(settings):
    def backfilled_and_ran(lines):
        finished = any(d.get("event.action") == BACKFILL_ACTION and d["meteoflow.backfill"]["state"] == "finished"
                       for d in lines)
        return finished and any(d.get("event.action") == PRODUCER_RUN_ACTION for d in lines)

    with FakeOwm(api_key=KEY) as owm:
        lines = run_until_then_sigterm(
            settings, ["--source", "openweathermap", "--interval", "3600"], backfilled_and_ran, timeout_s=90,
            METEOFLOW_OWM_API_KEY=KEY, METEOFLOW_OWM_BASE_URL=owm.url, METEOFLOW_OWM_API="onecall",
            METEOFLOW_OWM_BACKFILL_HOURS="3")
    assert backfilled_and_ran(lines)
    warnings = [d["message"] for d in lines if "request budget" in d.get("message", "")]
    assert warnings == []  # 14 regions hourly + 42 calls fit in 1,000 a day
    observations = [validate_observation(m.value)
                    for m in read_topic(settings, settings.topic_observations, expected=14 * 4)]
    history = [o for o in observations if is_backfill_batch(o.batch_id)]
    assert len(history) == 14 * 3 and len(observations) == 14 * 4
