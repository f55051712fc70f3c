"""The simulator: deterministic, physically consistent, mid-afternoon maxima, and its clock."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from meteoflow.settings import load_settings
from producer.regions import Region, load_regions
from producer.sources.simulator import (
    RegionSimulator,
    SimulatorSource,
    relative_humidity,
    simulate_history,
    solar_hour,
    throttle,
)

SENEGAL = load_regions()
WORLD = [
    Region(id="equator", name="Equator", lat=0.3, lon=32.6),
    Region(id="north45", name="Milan-ish", lat=45.5, lon=9.2),
    Region(id="south34", name="Cape-ish", lat=-33.9, lon=18.4, coastal=True),
    Region(id="north64", name="Iceland-ish", lat=64.1, lon=-21.9, coastal=True),
    Region(id="dateline", name="Fiji-ish", lat=-18.1, lon=178.4, coastal=True),
    Region(id="west", name="Denver-ish", lat=39.7, lon=-105.0),
]
JAN = datetime(2026, 1, 1, tzinfo=timezone.utc)


def history(regions, start=JAN, hours=72, seed=7, step=60):
    return [o.to_json_dict() for o in simulate_history(regions, start, hours, seed=seed, step_minutes=step)]


def test_same_seed_same_records_and_another_seed_other_records():
    first = history(SENEGAL)
    assert first == history(SENEGAL)
    assert len(first) == 72 * 14
    other = history(SENEGAL, seed=8)
    assert [r["temp"] for r in other] != [r["temp"] for r in first]


def test_a_region_does_not_depend_on_which_other_regions_are_simulated():
    alone = [r for r in history(SENEGAL[:1])]
    together = [r for r in history(SENEGAL) if r["region_id"] == SENEGAL[0].id]
    assert alone == together


def _daily_max_hours(records):
    """(region, local solar date) -> solar hour of the day's maximum temperature, full days only."""
    days = defaultdict(list)
    for r in records:
        when = datetime.fromisoformat(r["observed_at"].replace("Z", "+00:00"))
        local = when + timedelta(hours=r["lon"] / 15)
        days[(r["region_id"], local.date())].append((r["temp"], solar_hour(when, r["lon"])))
    return {day: max(values)[1] for day, values in days.items() if len(values) == 24}


@pytest.mark.parametrize("start", [JAN, datetime(2026, 5, 10, tzinfo=timezone.utc),
                                   datetime(2026, 8, 15, tzinfo=timezone.utc),
                                   datetime(2026, 10, 20, tzinfo=timezone.utc)])
def test_the_daily_maximum_is_in_the_afternoon_for_every_region(start):
    records = history(SENEGAL + WORLD, start=start, hours=24 * 8, seed=3)
    peaks = _daily_max_hours(records)
    assert len(peaks) >= 7 * len(SENEGAL + WORLD)
    late = {day: hour for day, hour in peaks.items() if not 12 <= hour <= 18}
    assert late == {}


def test_values_are_physical_and_consistent_over_a_year_everywhere():
    regions = SENEGAL + WORLD
    count = 0
    for obs in simulate_history(regions, JAN, 24 * 365, seed=11, step_minutes=180):  # the schema checks ranges
        count += 1
        assert obs.dew_point <= obs.temp + 0.01
        assert abs(obs.humidity - min(100, max(3, relative_humidity(obs.temp, obs.dew_point)))) <= 1.0
        assert obs.wind_gust >= obs.wind_speed
        if obs.weather_main == "Rain":
            assert obs.clouds >= 80 and obs.humidity >= 80 and obs.visibility < 10000
        if obs.weather_main == "Clear":
            assert obs.clouds < 11
        if obs.sunrise and obs.sunset and obs.sunrise.date() == obs.sunset.date():
            daytime = obs.sunrise + timedelta(minutes=20) < obs.observed_at < obs.sunset - timedelta(minutes=20)
            night = obs.observed_at < obs.sunrise - timedelta(minutes=20) or \
                obs.observed_at > obs.sunset + timedelta(minutes=20)
            if daytime:
                assert obs.weather_icon.endswith("d")
            if night:
                assert obs.weather_icon.endswith("n") and obs.uvi == 0
    assert count == len(regions) * 365 * 8


def test_seasons_and_climates():
    def mean_temp(region, start, days=20):
        return statistics.mean(o.temp for o in simulate_history([region], start, 24 * days, seed=5))

    north, south = WORLD[1], WORLD[2]
    july = datetime(2026, 7, 1, tzinfo=timezone.utc)
    assert mean_temp(north, july) > mean_temp(north, JAN) + 10
    assert mean_temp(south, JAN) > mean_temp(south, july) + 4
    sahel = next(r for r in SENEGAL if r.id == "tambacounda")
    assert mean_temp(sahel, JAN) > mean_temp(north, JAN) + 15


def test_the_coast_has_a_smaller_daily_range_than_inland():
    def mean_range(region_id):
        region = next(r for r in SENEGAL if r.id == region_id)
        temps = defaultdict(list)
        for o in simulate_history([region], JAN, 24 * 30, seed=9):
            temps[o.observed_at.date()].append(o.temp)
        return statistics.mean(max(t) - min(t) for t in temps.values())

    assert mean_range("dakar") + 3 < mean_range("tambacounda")


def test_weather_persists_from_one_day_to_the_next():
    """Day-to-day mean temperatures are autocorrelated (AR(1) anomalies, not white noise)."""
    region = WORLD[1]
    daily = defaultdict(list)
    for o in simulate_history([region], datetime(2026, 1, 1, tzinfo=timezone.utc), 24 * 60, seed=21):
        daily[o.observed_at.date()].append(o.temp)
    means = [statistics.mean(v) for _, v in sorted(daily.items())]
    detrended = [b - a for a, b in zip(means, means[1:])]
    assert statistics.stdev(detrended) < statistics.stdev(means)  # tomorrow resembles today
    assert statistics.correlation(means[:-1], means[1:]) > 0.5


def test_time_cannot_go_backwards_for_a_region():
    model = RegionSimulator(SENEGAL[0], seed=1)
    model.observe(JAN + timedelta(hours=5))
    with pytest.raises(ValueError, match="went backwards"):
        model.observe(JAN)


def test_history_needs_an_aware_start():
    with pytest.raises(ValueError, match="time zone"):
        next(simulate_history(SENEGAL, datetime(2026, 1, 1), 1))


def test_throttle_keeps_every_item_in_order():
    assert list(throttle(range(50), None)) == list(range(50))
    assert list(throttle(range(50), 100_000)) == list(range(50))


def test_the_source_clock_backfills_accelerated_then_goes_live():
    settings = load_settings(simulator_backfill_hours=3, simulator_step_minutes=60, simulator_speed=240,
                             simulator_interval_seconds=30, simulator_seed=4)
    source = SimulatorSource(settings)
    now = datetime(2026, 2, 1, 10, 20, 30, 123456, tzinfo=timezone.utc)
    times, intervals = [], []
    for i in range(6):
        result = source.fetch(SENEGAL, now)
        # Catching up (the first 4 batches) is history: a back-fill batch; then live records.
        records = result.backfill if i < 4 else result.records
        assert len(records) == 14 and result.failures == []
        assert (result.records if i < 4 else result.backfill) == []
        assert len({r["observed_at"] for r in records}) == 1  # one instant per batch
        times.append(records[0]["observed_at"])
        intervals.append(source.interval_seconds())
        now += timedelta(seconds=source.interval_seconds())
    start = datetime(2026, 2, 1, 7, 0, tzinfo=timezone.utc)
    # 07:00, 08:00, 09:00, 10:00 are simulated 15 s apart (60 min / 240), then live at the wall clock
    assert times[:4] == [start + timedelta(hours=h) for h in range(4)]
    assert intervals[:3] == [15.0, 15.0, 15.0]
    assert intervals[3:] == [30.0, 30.0, 30.0]
    assert times[4] == datetime(2026, 2, 1, 10, 21, 45, tzinfo=timezone.utc)  # the 'now' of that run, to the second
    assert times[5] == times[4] + timedelta(seconds=30)


def test_live_only_starts_at_now():
    source = SimulatorSource(load_settings(simulator_backfill_hours=72), live_only=True)
    now = datetime(2026, 2, 1, 10, 20, 30, 999, tzinfo=timezone.utc)
    result = source.fetch(SENEGAL, now)
    assert {r["observed_at"] for r in result.records} == {now.replace(microsecond=0)}
