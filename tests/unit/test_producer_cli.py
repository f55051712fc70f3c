"""CLI flags and errors, and the schedule (runs never overlap, stop between runs).

The schedule is tested with an in-memory publisher; Kafka itself is exercised in
tests/integration/test_producer_kafka.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone

import pytest

from meteoflow.contracts import PRODUCER_RUN_ACTION, ProducerRunEvent
from meteoflow.settings import load_settings
from producer.cli import build_parser, describe_source, main, settings_from_args
from producer.regions import Region
from producer.run import Producer
from producer.sources.base import FatalSourceError, Source, SourceResult
from producer.sources.simulator import RegionSimulator

REGIONS = [Region(id="dakar", name="Dakar", lat=14.69, lon=-17.45), Region(id="kolda", name="Kolda", lat=12.9,
                                                                           lon=-14.9)]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No developer .env or METEOFLOW_* variable leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("METEOFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("argv, expected", [
    (["--interval", "abc"], "--interval: must be a number of seconds, got 'abc'"),
    (["--interval", "-5"], "--interval: must be greater than 0"),
    (["--source", "ftp"], "--source: invalid choice: 'ftp'"),
    (["--regions", "missing.json"], "--regions: no such file: missing.json"),
    (["--replay-file", "nope.jsonl", "--source", "replay"], "--replay-file: no such file"),
    (["--verbose"], "unrecognized arguments: --verbose"),
    (["--source", "replay"], "the replay source needs a file"),
    (["--source", "openweathermap"], "needs an API key: set METEOFLOW_OWM_API_KEY"),
])
def test_bad_flags_exit_2_with_one_clear_line(argv, expected, capsys):
    assert main(argv) == 2
    assert expected in one_line_error(capsys)


def test_a_bad_regions_file_exits_2_naming_the_entry(tmp_path, capsys):
    path = tmp_path / "regions.json"
    path.write_text(json.dumps([{"id": "ok", "name": "Ok", "lat": 1, "lon": 1},
                                {"id": "broken", "name": "B", "lat": 1, "lon": -190}]))
    assert main(["--regions", str(path), "--once"]) == 2
    err = one_line_error(capsys)
    assert "entry 1 (id 'broken')" in err and "lon" in err


def test_a_bad_setting_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("METEOFLOW_PRODUCER_INTERVAL_SECONDS", "soon")
    assert main(["--once"]) == 2
    assert "METEOFLOW_PRODUCER_INTERVAL_SECONDS='soon'" in one_line_error(capsys)


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--source", "--once", "--regions", "--interval", "--replay-file"):
        assert flag in out
    assert "offline simulator" in " ".join(out.split())


def test_flags_override_settings(tmp_path):
    regions = tmp_path / "r.json"
    regions.write_text("[]")
    base = load_settings(owm_api_key=None)
    sim = settings_from_args(build_parser().parse_args(["--interval", "5", "--regions", str(regions)]), base)
    assert sim.effective_source == "simulator" and sim.simulator_interval_seconds == 5
    assert sim.effective_interval_seconds == 5 and sim.regions_file == regions
    assert sim.producer_interval_seconds == base.producer_interval_seconds
    owm = settings_from_args(build_parser().parse_args(["--source", "openweathermap", "--interval", "60"]),
                             load_settings(owm_api_key="k"))
    assert owm.producer_interval_seconds == 60 and owm.effective_interval_seconds == 60


def test_the_first_line_says_auto_without_a_key_uses_the_simulator():
    text = describe_source(load_settings(producer_source="auto", owm_api_key=None), once=False)
    assert "no OpenWeatherMap API key set" in text and "offline simulator" in text
    assert "back-fill 72 h at 240x" in text
    assert "openweathermap" in describe_source(load_settings(producer_source="auto", owm_api_key="k"), once=False)


# --- the schedule -----------------------------------------------------------------------------
class ListPublisher:
    def __init__(self):
        self.batches = []

    def publish(self, batch):
        self.batches.append(batch)
        return {}


class TimedSource(Source):
    """Simulator weather; each fetch takes `work` seconds and records when it ran."""

    name = "simulator"

    def __init__(self, interval, work=0.0, on_fetch=None):
        self.default_interval = interval
        self.work = work
        self.on_fetch = on_fetch
        self.spans: list[tuple[float, float]] = []
        self.active = 0
        self.max_active = 0
        self.calls = 0

    def fetch(self, regions, now):
        self.calls += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        began = time.monotonic()
        try:
            if self.on_fetch:
                self.on_fetch(self.calls)
            time.sleep(self.work)
        finally:
            self.active -= 1
        records = [RegionSimulator(r, 1).observe(now) for r in regions]
        self.spans.append((began, time.monotonic()))
        return SourceResult(records=records)


def make_producer(source, publisher=None):
    settings = load_settings(owm_api_key=None)
    return Producer(settings, REGIONS, source, publisher or ListPublisher(), logging.getLogger("producer.test"))


def test_an_overrunning_run_delays_the_next_instead_of_stacking():
    source = TimedSource(interval=0.05, work=0.2)  # each run takes 4 intervals
    runs = make_producer(source).run_forever(threading.Event(), max_runs=4)
    assert runs == 4 and source.max_active == 1
    for (_, end), (start, _) in zip(source.spans, source.spans[1:]):
        assert start >= end  # the next run starts only after the previous one ended


def test_stop_takes_effect_between_runs_and_the_current_run_finishes(caplog):
    stop = threading.Event()
    source = TimedSource(interval=0.01, work=0.1, on_fetch=lambda n: n == 2 and stop.set())
    publisher = ListPublisher()
    caplog.set_level(logging.INFO)
    runs = make_producer(source, publisher).run_forever(stop)
    assert runs == 2 and len(publisher.batches) == 2  # the run that saw the stop still published
    summaries = [r for r in caplog.records if getattr(r, "fields", {}).get("event.action") == PRODUCER_RUN_ACTION]
    assert len(summaries) == 2
    event = ProducerRunEvent.model_validate(summaries[-1].fields[ProducerRunEvent.FIELD])
    assert event.batch_id == publisher.batches[-1].batch_id and event.records == 2
    assert event.regions_ok == 2 and event.regions_failed == [] and event.source == "simulator"
    assert len({b.batch_id for b in publisher.batches}) == 2  # one batch id per run


def test_a_fatal_source_error_stops_the_schedule():
    def reject(n):
        if n == 2:
            raise FatalSourceError("OpenWeatherMap rejected the API key")

    source = TimedSource(interval=0.01, on_fetch=reject)
    publisher = ListPublisher()
    with pytest.raises(FatalSourceError):
        make_producer(source, publisher).run_forever(threading.Event())
    assert len(publisher.batches) == 1


def test_a_broken_run_is_logged_and_the_schedule_goes_on(caplog):
    def flaky(n):
        if n == 1:
            raise RuntimeError("disk full")

    source = TimedSource(interval=0.01, on_fetch=flaky)
    publisher = ListPublisher()
    runs = make_producer(source, publisher).run_forever(threading.Event(), max_runs=3)
    assert runs == 3 and len(publisher.batches) == 2
    assert any("run failed" in r.getMessage() and r.exc_info for r in caplog.records)


def test_an_exhausted_source_ends_the_schedule():
    class TwoRuns(TimedSource):
        @property
        def exhausted(self):
            return len(self.spans) >= 2

    assert make_producer(TwoRuns(interval=0.01)).run_forever(threading.Event()) == 2


def test_a_run_stamps_batch_id_and_produced_at():
    publisher = ListPublisher()
    when = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    producer = make_producer(TimedSource(interval=1), publisher)
    producer.clock = lambda: when
    summary = producer.run_once()
    (batch,) = publisher.batches
    assert summary.batch_id == batch.batch_id and batch.batch_id.startswith("20260101T120000Z-simulator-")
    assert all(o.produced_at == when and o.batch_id == batch.batch_id for o in batch.observations)
