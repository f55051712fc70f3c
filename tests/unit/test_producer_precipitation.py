"""Precipitation: OpenWeatherMap's rain/snow mapped (absent = 0, recorded as not reported), the
schema's bounds, and the simulator's West-African wet season."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone

import pytest

from meteoflow.contracts import InvalidRecord, validate_observation
from producer.regions import Region, load_regions
from producer.sources.owm_mapping import MappingError, map_current, map_onecall, map_timemachine
from producer.sources.simulator import simulate_history

DAKAR = Region(id="dakar", name="Dakar", lat=14.69, lon=-17.45, coastal=True, timezone_offset=0)
POINT = {"dt": 1_767_268_800, "temp": 27.0, "humidity": 80, "pressure": 1010, "wind_speed": 3.0}


def test_onecall_rain_and_snow_are_read_from_their_1h_amounts():
    record = map_onecall(DAKAR, {"current": {**POINT, "rain": {"1h": 3.2}, "snow": {"1h": 0.4}}})
    assert (record["rain_1h"], record["snow_1h"], record["precipitation_reported"]) == (3.2, 0.4, True)


def test_absent_precipitation_is_zero_and_marked_not_reported():
    for record in (map_onecall(DAKAR, {"current": POINT}), map_timemachine(DAKAR, {"data": [POINT]})[0],
                   map_current(DAKAR, {"dt": POINT["dt"], "main": {"temp": 27, "humidity": 80, "pressure": 1010},
                                       "wind": {"speed": 3}})):
        assert (record["rain_1h"], record["snow_1h"], record["precipitation_reported"]) == (0.0, 0.0, False)


def test_current_weather_rain_and_a_bare_timemachine_number():
    body = {"dt": POINT["dt"], "main": {"temp": 27, "humidity": 80, "pressure": 1010}, "wind": {"speed": 3},
            "rain": {"1h": 0.7}}
    assert map_current(DAKAR, body)["rain_1h"] == 0.7
    assert map_timemachine(DAKAR, {"data": [{**POINT, "rain": 1.5}]})[0]["rain_1h"] == 1.5


def test_a_rain_that_is_not_an_amount_names_the_field():
    with pytest.raises(MappingError, match=r"response.current.rain: expected"):
        map_onecall(DAKAR, {"current": {**POINT, "rain": "lots"}})


def _candidate(**extra):
    record = map_onecall(DAKAR, {"current": POINT})
    return {**record, "source": "openweathermap", "batch_id": "b", "produced_at": record["observed_at"], **extra}


@pytest.mark.parametrize("field, value", [("rain_1h", -0.1), ("snow_1h", 501), ("rain_1h", float("nan"))])
def test_the_schema_bounds_precipitation(field, value):
    with pytest.raises(InvalidRecord, match=field):
        validate_observation(_candidate(**{field: value}), now=datetime(2026, 1, 2, tzinfo=timezone.utc))


def test_records_without_precipitation_stay_valid():
    candidate = _candidate()
    for key in ("rain_1h", "snow_1h", "precipitation_reported"):
        candidate.pop(key)
    obs = validate_observation(candidate, now=datetime(2026, 1, 2, tzinfo=timezone.utc))
    assert obs.rain_1h is None and obs.precipitation_reported is None


def test_the_simulator_has_a_wet_season_with_evening_showers_and_a_wetter_south():
    regions = [r for r in load_regions() if r.id in ("ziguinchor", "dakar", "saint-louis")]
    totals, by_month, wet_hours = defaultdict(float), defaultdict(float), defaultdict(int)
    for obs in simulate_history(regions, datetime(2026, 1, 1, tzinfo=timezone.utc), 24 * 365, seed=7):
        assert obs.precipitation_reported is True and obs.snow_1h == 0.0
        totals[obs.region_id] += obs.rain_1h
        by_month[obs.observed_at.month] += obs.rain_1h
        if obs.rain_1h > 0:
            wet_hours[(obs.observed_at.hour + round(obs.lon / 15)) % 24] += 1  # local hour
            assert obs.weather_main == "Rain" and obs.clouds >= 85
    season = sum(by_month[m] for m in range(6, 11))
    assert season > 0.95 * sum(by_month.values())  # June-October: nearly all of it
    assert by_month[8] + by_month[9] > by_month[6] + by_month[10]  # peaking in August-September
    assert sum(by_month[m] for m in (12, 1, 2, 3)) < 0.01 * season  # the dry season has almost none
    assert totals["ziguinchor"] > 2 * totals["saint-louis"]
    assert 600 < totals["ziguinchor"] < 2000 and 100 < totals["saint-louis"] < 600
    afternoon_evening = sum(wet_hours[h] for h in range(14, 23))
    assert afternoon_evening > 0.6 * sum(wet_hours.values())


def test_rain_is_deterministic_and_one_amount_per_hour():
    start = datetime(2026, 8, 1, tzinfo=timezone.utc)

    def rain(seed, step):
        return [(o.observed_at, o.rain_1h) for o in simulate_history([DAKAR], start, 24 * 30, seed=seed,
                                                                      step_minutes=step)]

    hourly = rain(1, 60)
    assert hourly == rain(1, 60) and hourly != rain(2, 60)
    assert sum(amount for _, amount in hourly) > 0
    per_hour = defaultdict(set)
    for when, amount in rain(1, 15):
        per_hour[when.replace(minute=0)].add(amount)
    assert all(len(amounts) == 1 for amounts in per_hour.values())
