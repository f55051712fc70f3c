"""The history importer with an in-memory publisher (Kafka itself: tests/integration/test_producer_import_kafka.py):
back-fill batches, progress kept and resumed, the request budget respected, retries, and the CLI's errors."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from meteoflow.contracts import BackfillEvent, is_backfill_batch
from meteoflow.settings import load_settings
from producer.budget import RequestBudget
from producer.import_cli import main as import_main
from producer.importer import (
    HistoryImportError, IsdHistory, SimulatorHistory, TimemachineHistory, run_import,
)
from producer.regions import Region
from producer.sources.isd import format_line
from producer.sources.openweathermap import TIMEMACHINE_PATH, OwmClient
from tests.fakes.owm_server import FakeOwm, Reply

KEY = "import-owm-key-0a1b2c3d4e"
DAKAR = Region(id="dakar", name="Dakar", lat=14.6928, lon=-17.4467, coastal=True, timezone_offset=0)
KOLDA = Region(id="kolda", name="Kolda", lat=12.8939, lon=-14.9406, timezone_offset=0)
END = datetime(2026, 8, 20, 0, tzinfo=timezone.utc)
NOW = END + timedelta(minutes=7)


class ListPublisher:
    def __init__(self, fail_after: int | None = None):
        self.batches = []
        self.fail_after = fail_after

    def publish(self, batch):
        if self.fail_after is not None and len(self.batches) >= self.fail_after:
            return {0: "Kafka did not acknowledge: KafkaTimeoutError"}
        self.batches.append(batch)
        return {}

    @property
    def observations(self):
        return [o for b in self.batches for o in b.observations]


class StopAfter(ListPublisher):
    def __init__(self, stop: threading.Event, batches: int):
        super().__init__()
        self.stop, self.limit = stop, batches

    def publish(self, batch):
        result = super().publish(batch)
        if len(self.batches) >= self.limit:
            self.stop.set()
        return result


def events(caplog):
    return [BackfillEvent.model_validate(r.fields["meteoflow.backfill"]) for r in caplog.records
            if getattr(r, "fields", {}).get("event.action") == "producer-backfill"]


def test_simulated_history_is_published_as_backfill_batches_in_time_order(tmp_path, caplog):
    caplog.set_level("INFO")
    settings = load_settings(run_dir=tmp_path)
    publisher = ListPublisher()
    outcome = run_import(settings, SimulatorHistory([DAKAR, KOLDA], 50, seed=3, end=END), publisher,
                         clock=lambda: NOW)
    assert outcome.state == "finished" and outcome.progress.complete
    assert [len(b.observations) for b in publisher.batches] == [48, 48, 4]  # a day a batch
    assert all(is_backfill_batch(b.batch_id) and b.source == "simulator" for b in publisher.batches)
    times = [o.observed_at for o in publisher.observations if o.region_id == "dakar"]
    assert times == [END - timedelta(hours=50 - i) for i in range(50)]
    assert all(o.rain_1h is not None for o in publisher.observations)
    states = [e.state for e in events(caplog)]
    assert states[0] == "running" and states[-1] == "finished"
    assert events(caplog)[-1].records == 100 and events(caplog)[-1].first == END - timedelta(hours=50)


def test_a_stopped_import_resumes_where_it_stopped_with_the_same_weather(tmp_path):
    settings = load_settings(run_dir=tmp_path)
    stop = threading.Event()
    first = StopAfter(stop, 2)
    outcome = run_import(settings, SimulatorHistory([DAKAR], 24 * 5, seed=9, end=END), first, stop=stop,
                         clock=lambda: NOW)
    assert outcome.state == "paused" and outcome.progress.done == 48
    second = ListPublisher()
    outcome = run_import(settings, SimulatorHistory([DAKAR], 24 * 5, seed=9, end=END), second, clock=lambda: NOW)
    assert outcome.state == "finished" and len(second.observations) == 72
    whole = ListPublisher()
    run_import(load_settings(run_dir=tmp_path / "other"), SimulatorHistory([DAKAR], 24 * 5, seed=9, end=END), whole,
               clock=lambda: NOW)
    resumed = [(o.observed_at, o.temp, o.rain_1h) for o in first.observations + second.observations]
    assert resumed == [(o.observed_at, o.temp, o.rain_1h) for o in whole.observations]
    again = ListPublisher()
    assert run_import(settings, SimulatorHistory([DAKAR], 24 * 5, seed=9, end=END), again).state == "finished"
    assert again.batches == []  # a finished job is not done twice...
    run_import(settings, SimulatorHistory([DAKAR], 24 * 5, seed=9, end=END), again, restart=True, clock=lambda: NOW)
    assert len(again.observations) == 120  # ...unless asked


def test_kafka_refusing_a_chunk_keeps_it_undone(tmp_path):
    settings = load_settings(run_dir=tmp_path)
    with pytest.raises(HistoryImportError, match="Kafka did not take"):
        run_import(settings, SimulatorHistory([DAKAR], 72, seed=1, end=END), ListPublisher(fail_after=1),
                   clock=lambda: NOW)
    (path,) = (tmp_path / "imports").glob("*.json")
    assert json.loads(path.read_text())["done"] == 24


def test_a_progress_file_of_other_parameters_is_refused(tmp_path):
    settings = load_settings(run_dir=tmp_path)
    run_import(settings, SimulatorHistory([DAKAR], 2, seed=1, end=END), ListPublisher(), job="fixed")
    with pytest.raises(HistoryImportError, match="belongs to another import"):
        run_import(settings, SimulatorHistory([DAKAR], 3, seed=1, end=END), ListPublisher(), job="fixed")


# --- One Call 3.0 timemachine against a local stand-in ---------------------------------------------
def owm_history(owm, tmp_path, hours, per_day=1000, reserve=0, regions=(DAKAR, KOLDA)):
    settings = load_settings(run_dir=tmp_path, owm_api_key=KEY, owm_base_url=owm.url, owm_api="onecall",
                             owm_timeout_seconds=0.5, owm_max_retries=1, owm_backoff_seconds=0.0)
    budget = RequestBudget(tmp_path / "budget.json", 600_000, per_day)
    client = OwmClient(settings, budget=budget, reserve=lambda: reserve, sleep=lambda s: None)
    return settings, TimemachineHistory(client, list(regions), hours, end=END), budget


def test_timemachine_import_maps_data_through_the_one_mapping_and_marks_backfill(tmp_path):
    with FakeOwm(api_key=KEY) as owm:
        settings, history, budget = owm_history(owm, tmp_path, 3)
        publisher = ListPublisher()
        outcome = run_import(settings, history, publisher, clock=lambda: NOW)
        dts = sorted(int(r.params["dt"]) for r in owm.requests if r.path == TIMEMACHINE_PATH)
    assert outcome.state == "finished" and len(dts) == 6 and budget.usage().calls == 6
    assert dts[0] == int((END - timedelta(hours=3)).timestamp())
    obs = publisher.observations
    assert len(obs) == 6 and all(o.source == "openweathermap" and is_backfill_batch(o.batch_id) for o in obs)
    assert all(o.rain_1h == 0.0 and o.precipitation_reported is False for o in obs)  # the stand-in sends no rain


def test_the_daily_budget_pauses_the_import_and_the_next_run_resumes(tmp_path):
    with FakeOwm(api_key=KEY) as owm:
        settings, history, budget = owm_history(owm, tmp_path, 4, per_day=10, reserve=5)
        publisher = ListPublisher()
        outcome = run_import(settings, history, publisher, clock=lambda: NOW)
        assert outcome.state == "paused" and "request budget exhausted" in outcome.message
        assert owm.count(TIMEMACHINE_PATH) == 5 and len(publisher.observations) == 5  # 5 left to the schedule
        assert [item["region_id"] for item in outcome.progress.retry] == ["kolda"]
        budget.path.unlink()  # a new day
        settings, history, _ = owm_history(owm, tmp_path, 4)
        outcome = run_import(settings, history, publisher, clock=lambda: NOW)
        assert outcome.state == "finished" and owm.count(TIMEMACHINE_PATH) == 8
    assert sorted((o.region_id, o.observed_at) for o in publisher.observations) == sorted(
        (r.id, END - timedelta(hours=h)) for r in (DAKAR, KOLDA) for h in range(1, 5))


def test_a_failed_request_is_retried_by_the_next_run(tmp_path):
    with FakeOwm(api_key=KEY) as owm:
        owm.script(Reply.status(500), Reply.status(500), lat=KOLDA.lat, lon=KOLDA.lon)
        settings, history, _ = owm_history(owm, tmp_path, 2)
        publisher = ListPublisher()
        outcome = run_import(settings, history, publisher, clock=lambda: NOW)
        assert outcome.state == "paused" and len(outcome.progress.retry) == 1
        assert "server error (HTTP 500)" in outcome.progress.retry[0]["reason"]
        settings, history, _ = owm_history(owm, tmp_path, 2)
        outcome = run_import(settings, history, publisher, clock=lambda: NOW)
    assert outcome.state == "finished" and outcome.progress.retry == [] and len(publisher.observations) == 4


# --- ISD-Lite files -------------------------------------------------------------------------------
def isd_file(tmp_path, lines):
    path = tmp_path / "616410-99999-2024"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_isd_lines_become_observations_bad_ones_dead_letters_incomplete_ones_skipped(tmp_path):
    base = dict(year=2024, month=8, day=15, hour=0, air_temperature=275, dew_point=240, sea_level_pressure=10105,
                wind_direction=240, wind_speed=46, sky_cover=7, precipitation_1h=0, precipitation_6h=-9999)
    lines = [format_line({**base, "hour": h, "precipitation_1h": 10 * h}) for h in range(5)]
    lines.insert(2, "2024 08 15 xx" + lines[0][13:])
    lines.append(format_line({**base, "hour": 6, "sea_level_pressure": -9999}))
    path = isd_file(tmp_path, lines)
    publisher = ListPublisher()
    outcome = run_import(load_settings(run_dir=tmp_path), IsdHistory([(path, DAKAR)], chunk_lines=3), publisher)
    assert outcome.state == "finished" and outcome.progress.done == 7 and outcome.progress.failed == 2
    assert [o.rain_1h for o in publisher.observations] == [0.0, 1.0, 2.0, 3.0, 4.0]
    (letter,) = [d for b in publisher.batches for d in b.dead_letters]
    assert "616410-99999-2024 line 3: hour" in letter.reason and all(b.source == "noaa_isd" for b in publisher.batches)


def test_a_global_hourly_csv_goes_to_the_region_nearest_its_coordinates(tmp_path, capsys, monkeypatch):
    from tests.unit.test_producer_isd import GH_HEADER, GH_ROW

    path = tmp_path / "61641099999.csv"
    path.write_text(GH_HEADER + "\n" + GH_ROW + "\n" + GH_ROW.replace("T18:", "T19:") + "\n")
    publisher = ListPublisher()
    outcome = run_import(load_settings(run_dir=tmp_path), IsdHistory([(path, DAKAR)]), publisher)
    assert outcome.state == "finished" and [o.rain_1h for o in publisher.observations] == [5.2, 5.2]
    far = tmp_path / "65500099999.csv"
    far.write_text(GH_HEADER + "\n" + GH_ROW.replace('"14.7397","-17.49"', '"12.64","-8.0"') + "\n")
    assert import_main(["--source", "isd", str(far)]) == 2
    assert "limit is 50 km" in capsys.readouterr().err


# --- the command line -----------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["--source", "simulator"], "needs --days N or --hours N"),
    (["--source", "simulator", "--days", "0"], "--days: must be at least 1"),
    (["--source", "openweathermap", "--days", "1"], "needs an API key"),
    (["--source", "isd"], "needs ISD-Lite files"),
    (["--source", "simulator", "--days", "1", "--end", "yesterday"], "--end: must be an ISO 8601 time"),
])
def test_cli_errors_are_one_clear_line(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("METEOFLOW_OWM_API_KEY", raising=False)
    assert import_main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_a_station_too_far_or_unknown(tmp_path, capsys):
    path = isd_file(tmp_path, [])
    assert import_main(["--source", "isd", str(path)]) == 2
    assert "no coordinates for station 616410-99999" in capsys.readouterr().err
    assert import_main(["--source", "isd", "--station", "616410-99999=12.64,-8.0", str(path)]) == 2
    assert "limit is 50 km" in capsys.readouterr().err
