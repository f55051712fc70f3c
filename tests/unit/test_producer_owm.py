"""The real OpenWeatherMap client (requests) against a local server that speaks OWM's JSON."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest

from meteoflow.settings import load_settings
from producer.regions import Region
from producer.run import prepare_batch
from producer.sources.base import FatalSourceError
from producer.sources.openweathermap import (
    CURRENT_PATH,
    ONECALL_PATH,
    TIMEMACHINE_PATH,
    OpenWeatherMapSource,
    OwmAuthError,
    OwmClient,
    retry_after_seconds,
)
from tests.fakes.owm_server import FIXED_DT, FakeOwm, Reply

KEY = "s3cr3t-owm-key-7f9c2b1e5d"
DAKAR = Region(id="dakar", name="Dakar", lat=14.6928, lon=-17.4467, coastal=True, timezone_offset=0)
MATAM = Region(id="matam", name="Matam", lat=15.6559, lon=-13.2554, timezone_offset=0)
KOLDA = Region(id="kolda", name="Kolda", lat=12.8939, lon=-14.9406, timezone_offset=0)
REGIONS = [DAKAR, MATAM, KOLDA]
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def owm():
    with FakeOwm(api_key=KEY) as server:
        yield server


class SleepLog(list):
    """Records the waits the client asks for instead of waiting (Retry-After, backoff)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_source(owm: FakeOwm, api: str = "onecall", key: str = KEY, **extra):
    settings = load_settings(owm_api_key=key, owm_base_url=owm.url, owm_api=api, owm_timeout_seconds=0.5,
                             owm_max_retries=2, owm_backoff_seconds=0.25, **extra)
    sleeps = SleepLog()
    client = OwmClient(settings, sleep=sleeps)
    return OpenWeatherMapSource(settings, client=client), sleeps


def test_onecall_200_maps_every_region(owm):
    source, sleeps = make_source(owm, "onecall")
    result = source.fetch(REGIONS, NOW)
    assert result.failures == []
    assert [r["region_id"] for r in result.records] == ["dakar", "matam", "kolda"]
    dakar = result.records[0]
    assert dakar["observed_at"] == datetime.fromtimestamp(FIXED_DT, timezone.utc)
    assert dakar["dew_point"] is not None and dakar["uvi"] == 7.4
    assert dakar["weather_main"] == "Clouds" and dakar["weather_icon"] == "02d"
    assert {r.path for r in owm.requests} == {ONECALL_PATH}
    assert all(r.params["units"] == "metric" for r in owm.requests)
    assert sleeps == []


def test_current_weather_25_endpoint(owm):
    source, _ = make_source(owm, "current")
    result = source.fetch([DAKAR], NOW)
    assert result.failures == []
    (record,) = result.records
    assert owm.requests[0].path == CURRENT_PATH
    assert record["clouds"] == 20 and record["wind_speed"] == 4.6 and record["timezone_offset"] == 0
    assert record["dew_point"] is None and record["uvi"] is None  # the 2.5 endpoint has neither


def test_401_is_fatal_without_retries(owm):
    source, sleeps = make_source(owm, key="not-the-right-key")
    with pytest.raises(FatalSourceError, match="OpenWeatherMap rejected the API key") as info:
        source.fetch(REGIONS, NOW)
    assert isinstance(info.value, OwmAuthError)
    assert owm.count() == 1 and sleeps == []  # the first 401 stops everything: no retry storm
    assert "not-the-right-key" not in str(info.value)


def test_404_for_one_region_is_a_failure_of_that_region_only(owm):
    owm.always(Reply.status(404), lat=MATAM.lat, lon=MATAM.lon)
    source, sleeps = make_source(owm)
    result = source.fetch(REGIONS, NOW)
    assert [r["region_id"] for r in result.records] == ["dakar", "kolda"]
    (failure,) = result.failures
    assert failure.region_id == "matam" and "HTTP 404" in failure.reason and "city not found" in failure.reason
    assert owm.count() == 3 and sleeps == []  # a 404 is not retried


def test_429_waits_for_retry_after_then_succeeds(owm):
    owm.script(Reply.rate_limited(2), lat=DAKAR.lat, lon=DAKAR.lon)
    source, sleeps = make_source(owm)
    result = source.fetch([DAKAR], NOW)
    assert result.failures == [] and len(result.records) == 1
    assert sleeps == [2.0]
    assert owm.count() == 2


def test_429_with_a_retry_after_beyond_the_cap_fails_the_region_without_waiting(owm):
    owm.script(Reply.rate_limited(3600), lat=DAKAR.lat, lon=DAKAR.lon)
    source, sleeps = make_source(owm, owm_max_retry_after_seconds=60)
    result = source.fetch([DAKAR, KOLDA], NOW)
    assert [r["region_id"] for r in result.records] == ["kolda"]
    assert "Retry-After 3600s" in result.failures[0].reason
    assert sleeps == []


def test_500_is_retried_with_exponential_backoff(owm):
    owm.script(Reply.status(500), Reply.status(502), lat=DAKAR.lat, lon=DAKAR.lon)
    source, sleeps = make_source(owm)
    result = source.fetch([DAKAR], NOW)
    assert len(result.records) == 1 and result.failures == []
    assert sleeps == [0.25, 0.5]
    assert owm.count() == 3


def test_persistent_500_fails_the_region_after_the_retries(owm):
    owm.always(Reply.status(503), lat=DAKAR.lat, lon=DAKAR.lon)
    source, sleeps = make_source(owm)
    result = source.fetch([DAKAR, KOLDA], NOW)
    assert [r["region_id"] for r in result.records] == ["kolda"]
    assert "HTTP 503" in result.failures[0].reason and "3 attempt(s)" in result.failures[0].reason
    assert sleeps == [0.25, 0.5]


def test_timeout_is_retried_then_succeeds(owm):
    owm.script(Reply.slow(1.5), lat=DAKAR.lat, lon=DAKAR.lon)  # client timeout is 0.5 s
    source, sleeps = make_source(owm)
    result = source.fetch([DAKAR], NOW)
    assert len(result.records) == 1 and result.failures == []
    assert sleeps == [0.25] and owm.count() == 2


def test_persistent_timeout_fails_the_region(owm):
    owm.script(Reply.slow(1.0), Reply.slow(1.0), lat=DAKAR.lat, lon=DAKAR.lon)
    settings = load_settings(owm_api_key=KEY, owm_base_url=owm.url, owm_timeout_seconds=0.3, owm_max_retries=1,
                             owm_backoff_seconds=0.1)
    source = OpenWeatherMapSource(settings, client=OwmClient(settings, sleep=SleepLog()))
    result = source.fetch([DAKAR], NOW)
    assert result.records == []
    assert "no answer within 0.3s" in result.failures[0].reason


def test_malformed_json_is_a_region_failure_and_a_dead_letter(owm):
    owm.script(Reply.malformed(), lat=KOLDA.lat, lon=KOLDA.lon)
    source, sleeps = make_source(owm)
    result = source.fetch(REGIONS, NOW)
    assert [r["region_id"] for r in result.records] == ["dakar", "matam"]
    (failure,) = result.failures
    assert failure.region_id == "kolda" and "malformed JSON" in failure.reason
    batch = prepare_batch(result, "openweathermap", "b1", NOW)
    (letter,) = batch.dead_letters
    assert letter.key == "kolda" and letter.payload.startswith('{"lat": 14.69') and "malformed JSON" in letter.reason


def test_json_of_the_wrong_shape_is_a_region_failure_naming_the_field(owm):
    owm.script(Reply.ok({"lat": 1, "lon": 2, "current": {"dt": FIXED_DT, "humidity": 50}}), lat=DAKAR.lat,
               lon=DAKAR.lon)
    source, _ = make_source(owm)
    result = source.fetch([DAKAR], NOW)
    assert result.records == []
    assert "response.current.temp: missing" in result.failures[0].reason
    assert result.failures[0].payload  # kept for the dead letter


def test_the_source_fetches_only_current_conditions_history_is_the_importers(owm):
    source, _ = make_source(owm, owm_backfill_hours=3)
    first = source.fetch([DAKAR, KOLDA], NOW)
    assert owm.count(TIMEMACHINE_PATH) == 0 and owm.count(ONECALL_PATH) == 2  # see test_producer_import.py
    assert first.backfill == [] and [r["region_id"] for r in first.records] == ["dakar", "kolda"]


def test_connection_refused_is_a_region_failure(owm):
    url = owm.url
    owm.stop()
    settings = load_settings(owm_api_key=KEY, owm_base_url=url, owm_timeout_seconds=0.5, owm_max_retries=1,
                             owm_backoff_seconds=0.0)
    source = OpenWeatherMapSource(settings, client=OwmClient(settings, sleep=SleepLog()))
    result = source.fetch([DAKAR], NOW)
    assert "connection failed" in result.failures[0].reason
    assert KEY not in result.failures[0].reason


def test_the_key_never_appears_in_logs_errors_or_dead_letters(owm, caplog, capsys):
    caplog.set_level(logging.DEBUG)  # urllib3 logs every request line with its query at DEBUG
    owm.script(Reply.status(500), lat=DAKAR.lat, lon=DAKAR.lon)
    owm.script(Reply.rate_limited(1), Reply.slow(1.0), lat=MATAM.lat, lon=MATAM.lon)
    owm.script(Reply.malformed(), lat=KOLDA.lat, lon=KOLDA.lon)
    source, _ = make_source(owm)
    result = source.fetch(REGIONS, NOW)
    extra = Region(id="x", name="X", lat=1.0, lon=1.0)
    owm.always(Reply(200, '{"echo": "' + KEY + '"'), lat=1.0, lon=1.0)  # a body that echoes the key
    result.failures += source.fetch([extra], NOW).failures
    batch = prepare_batch(result, "openweathermap", "b1", NOW)
    wrong, _ = make_source(owm, key=KEY + "-revoked")
    with pytest.raises(FatalSourceError) as info:
        wrong.fetch(REGIONS, NOW)
    assert any("appid" in r.getMessage() for r in caplog.records)  # urllib3's request lines were captured
    texts = [caplog.text, capsys.readouterr().out, str(info.value), repr(info.value)]
    texts += [f.reason + (f.payload or "") for f in result.failures]
    texts += [d.to_message().decode() for d in batch.dead_letters]
    for text in texts:
        assert KEY not in text


@pytest.mark.parametrize("value, seconds", [("7", 7.0), ("0", 0.0), ("1.5", 1.5), (None, None), ("soon", None),
                                            ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0)])
def test_retry_after_header_forms(value, seconds):
    assert retry_after_seconds(value, now=NOW) == seconds


def test_the_client_needs_a_key():
    with pytest.raises(FatalSourceError, match="METEOFLOW_OWM_API_KEY"):
        OwmClient(load_settings(owm_api_key=None))
