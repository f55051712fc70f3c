"""Pure parts of a run: OWM JSON -> observation fields, validation, dead letters, summary."""

from datetime import datetime, timezone

import pytest

from meteoflow.contracts import DeadLetter
from meteoflow.contracts import validate_observation
from producer.regions import Region
from producer.run import new_batch_id, prepare_batch, summarize
from producer.sources.base import RegionFailure, SourceResult
from producer.sources.owm_mapping import MappingError, map_current, map_onecall, map_response, map_timemachine

DAKAR = Region(id="dakar", name="Dakar", lat=14.6928, lon=-17.4467, timezone_offset=0)
NOW = datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone.utc)

ONECALL = {
    "lat": 14.69, "lon": -17.45, "timezone": "Africa/Dakar", "timezone_offset": 0,
    "current": {
        "dt": 1772366400, "sunrise": 1772348820, "sunset": 1772391480, "temp": 24.3, "feels_like": 24.6,
        "pressure": 1013, "humidity": 73, "dew_point": 19.2, "uvi": 9.8, "clouds": 0, "visibility": 10000,
        "wind_speed": 6.2, "wind_deg": 340, "wind_gust": 8.1,
        "weather": [{"id": 800, "main": "Clear", "description": "clear sky", "icon": "01d"}],
    },
}
CURRENT = {
    "coord": {"lon": -17.45, "lat": 14.69},
    "weather": [{"id": 500, "main": "Rain", "description": "light rain", "icon": "10n"}],
    "main": {"temp": 21.5, "feels_like": 21.9, "pressure": 1009, "humidity": 88},
    "visibility": 8000, "wind": {"speed": 3.1, "deg": 200}, "clouds": {"all": 90},
    "dt": 1772366100, "sys": {"sunrise": 1772348820, "sunset": 1772391480}, "timezone": 3600, "cod": 200,
}


def test_onecall_mapping():
    record = map_onecall(DAKAR, ONECALL)
    assert record["region_id"] == "dakar" and record["region_name"] == "Dakar" and record["lat"] == DAKAR.lat
    assert record["observed_at"] == datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert record["sunrise"].tzinfo == timezone.utc and record["sunrise"] < record["observed_at"] < record["sunset"]
    assert (record["weather_main"], record["weather_description"], record["weather_icon"]) == (
        "Clear", "clear sky", "01d")
    assert record["dew_point"] == 19.2 and record["uvi"] == 9.8 and record["timezone_offset"] == 0


def test_current_25_mapping():
    record = map_current(DAKAR, CURRENT)
    assert record["observed_at"] == datetime(2026, 3, 1, 11, 55, tzinfo=timezone.utc)
    assert record["clouds"] == 90 and record["wind_gust"] is None and record["timezone_offset"] == 3600
    assert record["dew_point"] is None and record["uvi"] is None
    assert record["weather_main"] == "Rain"


def test_timemachine_mapping_and_shape_detection():
    body = {"timezone_offset": 0, "data": [ONECALL["current"]]}
    assert map_timemachine(DAKAR, body)[0]["temp"] == 24.3
    assert len(map_response(DAKAR, body)) == 1
    assert map_response(DAKAR, ONECALL)[0]["uvi"] == 9.8
    assert map_response(DAKAR, CURRENT)[0]["pressure"] == 1009
    with pytest.raises(MappingError, match="not a One Call"):
        map_response(DAKAR, {"cod": "404"})


@pytest.mark.parametrize("body, message", [
    ({"current": {**ONECALL["current"], "dt": "yesterday"}}, r"response.current.dt: expected a Unix timestamp"),
    ({"current": {k: v for k, v in ONECALL["current"].items() if k != "wind_speed"}},
     r"response.current.wind_speed: missing"),
    ({"current": [1, 2]}, r"response.current: expected an object"),
    ({"current": {**ONECALL["current"], "weather": "sunny"}}, r"weather: expected a list"),
])
def test_mapping_errors_name_the_field(body, message):
    with pytest.raises(MappingError, match=message):
        map_onecall(DAKAR, body)


def test_every_mapped_record_passes_the_shared_schema_once_stamped():
    batch = prepare_batch(SourceResult(records=[map_onecall(DAKAR, ONECALL), map_current(DAKAR, CURRENT)]),
                          "openweathermap", "b-1", NOW)
    assert batch.dead_letters == [] and batch.failures == []
    for obs in batch.observations:
        again = validate_observation(obs.to_message())
        assert again == obs and again.batch_id == "b-1" and again.produced_at == NOW
        assert again.source == "openweathermap"


def test_an_invalid_record_is_dead_lettered_with_its_reason_and_fails_its_region():
    hot = {**map_onecall(DAKAR, ONECALL), "temp": 900.0}
    thies = {**map_onecall(DAKAR, ONECALL), "region_id": "thies", "region_name": "Thiès"}
    result = SourceResult(records=[hot, thies],
                          failures=[RegionFailure("kolda", "HTTP 404: city not found"),
                                    RegionFailure("matam", "malformed JSON", payload="{oops")])
    batch = prepare_batch(result, "openweathermap", "b-2", NOW)
    assert [o.region_id for o in batch.observations] == ["thies"]
    reasons = {f.region_id: f.reason for f in batch.failures}
    assert "temp" in reasons["dakar"] and "900" in reasons["dakar"]
    letters = {d.key: d for d in batch.dead_letters}
    assert set(letters) == {"dakar", "matam"}  # kolda received nothing to keep
    assert '"temp": 900.0' in letters["dakar"].payload and letters["dakar"].service == "producer"
    assert letters["matam"].payload == "{oops"
    DeadLetter.model_validate_json(letters["dakar"].to_message())

    summary = summarize(batch, send_errors={}, duration_s=0.5)
    assert summary.regions_ok == ["thies"] and summary.records == 1 and summary.dead_letters == 2
    event = summary.event()
    assert event.batch_id == "b-2" and event.regions_ok == 1 and event.regions_failed_count == 3
    assert {f.region_id for f in event.regions_failed} == {"dakar", "kolda", "matam"}


def test_a_record_kafka_did_not_take_moves_its_region_to_failed():
    records = [map_onecall(DAKAR, ONECALL), {**map_onecall(DAKAR, ONECALL), "region_id": "thies"}]
    batch = prepare_batch(SourceResult(records=records), "openweathermap", "b-3", NOW)
    summary = summarize(batch, send_errors={1: "Kafka did not acknowledge: timeout"}, duration_s=1.0)
    assert summary.regions_ok == ["dakar"] and summary.records == 1
    assert summary.regions_failed == [{"region_id": "thies", "reason": "Kafka did not acknowledge: timeout"}]


def test_batch_ids_are_unique_and_fit_the_schema():
    ids = {new_batch_id("simulator", NOW) for _ in range(1000)}
    assert len(ids) == 1000
    sample = ids.pop()
    assert sample.startswith("20260301T120005Z-simulator-") and len(sample) <= 64


def test_backfill_is_published_first_in_its_own_marked_batch():
    from meteoflow.contracts import is_backfill_batch
    from meteoflow.settings import load_settings
    from producer.run import Producer
    from producer.sources.simulator import SimulatorSource

    class Recorder:
        def __init__(self):
            self.batches = []

        def publish(self, batch):
            self.batches.append(batch)
            return {}

    settings = load_settings(simulator_backfill_hours=2, simulator_step_minutes=60)
    regions = [Region(id="dakar", name="Dakar", lat=14.69, lon=-17.44)]
    recorder = Recorder()
    clock = iter([datetime(2026, 2, 1, 10, 30, tzinfo=timezone.utc)] * 2 + [datetime(2026, 2, 1, 11, 30, tzinfo=timezone.utc)] * 2)
    producer = Producer(settings, regions, SimulatorSource(settings), recorder, clock=lambda: next(clock))
    producer.run_once()  # 08:00 simulated: history
    producer.run_once()  # 09:00 simulated: still history
    ids = [b.batch_id for b in recorder.batches]
    assert all(is_backfill_batch(i) for i in ids) and len(set(ids)) == 2
    assert not is_backfill_batch(new_batch_id("simulator", datetime(2026, 2, 1, tzinfo=timezone.utc)))
