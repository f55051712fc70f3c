"""Hourly and daily statistics kept without reading observations back: a batch's values merged
into what the hour's (day's) document keeps gives exactly the figures of a recomputation over
everything stored, whatever the split into batches, the replays and the corrections
(streaming.records, streaming.daily); and so is each region's series of hourly means
(RegionSeries)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meteoflow.contracts import (
    SERIES_HOURS, DailyPoint, DailyStats, HourlyStats, InvalidDocument, RegionSeries, doc_id, hour_floor, point_key,
)
from streaming.daily import daily_stats, day_readings, touched_days
from streaming.records import hour_points, merged_hourly_stats, merged_values, observation_documents
from streaming.sinks import newest_documents
from tests.fakes.observations import recompute_hourly_stats, simulated_observations

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
OBSERVATIONS = simulated_observations(regions=3, hours=4, per_hour=4, end=T0)


def apply(batches) -> dict[str, HourlyStats]:
    """What the sink keeps after writing `batches` in order (the pure part of HourlyStatsSink)."""
    stored: dict[str, HourlyStats] = {}
    for batch in batches:
        for stats in merged_hourly_stats(hour_points(batch), stored, computed_at=T0):
            stored[stats.id] = stats
    return stored


def figures(stored: dict[str, HourlyStats]) -> dict[str, tuple]:
    return {s.id: (s.temp_min, s.temp_max, s.temp_mean, s.count) for s in stored.values()}


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(st.lists(st.sampled_from(range(len(OBSERVATIONS))), max_size=20), max_size=6), st.booleans())
def test_any_split_into_batches_and_any_replay_gives_the_recomputed_figures(batches, replay):
    chosen = [[OBSERVATIONS[i] for i in batch] for batch in batches]
    if replay:
        chosen += chosen  # every batch replayed after a crash
    assert figures(apply(chosen)) == recompute_hourly_stats([o for batch in chosen for o in batch])


def test_a_correction_replaces_its_instant_and_the_last_one_of_a_batch_wins():
    first = OBSERVATIONS[0]
    hotter, hottest = (first.model_copy(update={"temp": first.temp + d}) for d in (5, 10))
    stored = apply([OBSERVATIONS[:4], [hotter, hottest]])
    assert figures(stored) == recompute_hourly_stats([hottest] + OBSERVATIONS[1:4])


def test_hours_keep_their_temps_by_instant():
    stats = apply([OBSERVATIONS[:4]])
    assert [len(s.temps) for s in stats.values()] == [s.count for s in stats.values()]


def apply_daily(batches) -> dict[str, DailyStats]:
    """What DailyStatsSink keeps after writing `batches` in order (its pure part)."""
    stored: dict[str, DailyStats] = {}
    for batch in batches:
        for key, readings in day_readings(batch).items():
            stats = DailyStats.from_readings(*key, merged_values(stored.get(doc_id(*key)), "readings", readings), T0)
            stored[stats.id] = stats
    return stored


def recompute_daily(observations) -> dict[str, DailyStats]:
    """The daily statistics recomputed from what the store keeps: one document per (region,
    instant), the last written winning."""
    kept = {(o.region_id, o.observed_at): o for o in observations}
    points = [DailyPoint(_id=doc_id(o.region_id, o.observed_at), **o.model_dump()) for o in kept.values()]
    return {s.id: s for s in daily_stats(touched_days(kept.values()), points, T0)}


def daily_figures(stored: dict[str, DailyStats]) -> dict[str, tuple]:
    return {s.id: s.model_dump(exclude={"readings", "computed_at"}) for s in stored.values()}


WET = [o.model_copy(update={"rain_1h": 0.1 * (i % 4) if i % 3 else None, "snow_1h": 0.2 if i % 7 == 0 else None})
       for i, o in enumerate(simulated_observations(regions=2, hours=30, per_hour=2, end=T0))]


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(st.lists(st.sampled_from(range(len(WET))), max_size=30), max_size=6), st.booleans(),
       st.lists(st.tuples(st.sampled_from(range(len(WET))), st.floats(-5, 5)), max_size=4))
def test_daily_figures_of_any_split_replay_or_correction_are_the_recomputed_ones(batches, replay, corrections):
    chosen = [[WET[i] for i in batch] for batch in batches]
    if replay:
        chosen += chosen
    chosen.append([WET[i].model_copy(update={"temp": WET[i].temp + delta, "rain_1h": abs(delta)})
                   for i, delta in corrections])
    everything = [o for batch in chosen for o in batch]
    assert daily_figures(apply_daily(chosen)) == daily_figures(recompute_daily(everything))


def test_days_keep_their_readings_by_instant():
    stats = apply_daily([WET])
    assert [len(s.readings) for s in stats.values()] == [s.count for s in stats.values()]
    assert any(s.precipitation_hours for s in stats.values())


# --- each region's hourly series (RegionSeries, streaming.sinks.RegionSeriesSink) -------------------
def apply_series(batches, start: dict[str, RegionSeries] | None = None) -> dict[str, RegionSeries]:
    """What RegionSeriesSink keeps after `batches` in order: each batch's hours as the hourly
    statistics sink has just merged them, merged into each touched region's series (its pure part)."""
    hourly: dict[str, HourlyStats] = {}
    series = dict(start or {})
    for batch in batches:
        merged = merged_hourly_stats(hour_points(batch), hourly, computed_at=T0)
        hourly.update({s.id: s for s in merged})
        newest = newest_documents(d.to_document() for d in observation_documents(batch, T0))
        hours: dict[str, dict[str, float]] = {}
        for s in merged:
            hours.setdefault(s.region_id, {})[point_key(s.hour)] = RegionSeries.mean(s.temp_mean)
        for region, values in hours.items():
            series[region] = RegionSeries.merged(region, series.get(region), values, newest[region], T0)
    return series


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(st.lists(st.sampled_from(range(len(OBSERVATIONS))), max_size=20), max_size=6), st.booleans())
def test_a_regions_series_is_the_mean_of_every_hour_stored_whatever_the_batches(batches, replay):
    chosen = [[OBSERVATIONS[i] for i in batch] for batch in batches]
    if replay:
        chosen += chosen
    everything = [o for batch in chosen for o in batch]
    series = apply_series(chosen)
    expected: dict[str, dict[str, float]] = {}
    for key, (_, _, mean, _) in recompute_hourly_stats(everything).items():
        region, hour = key.split("|")
        when = datetime.strptime(hour, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        expected.setdefault(region, {})[point_key(when)] = mean.expected
    kept = {(region, key): mean for region, s in series.items() for key, mean in s.hours.items()}
    # kept to 4 decimals, as the forecast step's hourly means always were
    assert kept == pytest.approx({(r, k): m for r, hours in expected.items() for k, m in hours.items()}, abs=5e-5)
    for region, s in series.items():
        newest = max((o for o in everything if o.region_id == region), key=lambda o: o.observed_at)
        assert (s.last_observed_at, s.lat, s.lon) == (newest.observed_at, newest.lat, newest.lon)
        assert [when for when, _ in s.points()] == sorted(datetime.fromtimestamp(int(k), timezone.utc)
                                                         for k in expected[region])


def test_a_series_keeps_its_last_series_hours_and_its_newest_position_whatever_arrives_late():
    week = simulated_observations(regions=1, hours=SERIES_HOURS + 30, per_hour=1, end=T0)
    series = apply_series([week[-40:], week[:-40]])  # the newest first, the older hours late
    kept = series["dakar"]
    assert kept.last_observed_at == week[-1].observed_at
    assert min(int(k) for k in kept.hours) == int((hour_floor(week[-1].observed_at)
                                                   - timedelta(hours=SERIES_HOURS)).timestamp())
    assert len(kept.hours) == SERIES_HOURS + 1
    moved = week[-1].model_copy(update={"lat": 10.0, "observed_at": week[-1].observed_at - timedelta(minutes=5)})
    assert apply_series([[moved]], series)["dakar"].lat == week[-1].lat  # an older position does not win


def test_a_damaged_series_document_is_invalid_naming_the_field():
    good = apply_series([OBSERVATIONS[:3]])["dakar"].to_document()
    for damage in ({"hours": {"yesterday": 20.0}}, {"hours": {"1772366400": "warm"}}, {"lat": 120.0}):
        with pytest.raises(InvalidDocument, match=next(iter(damage))):
            RegionSeries.from_document({**good, **damage})
