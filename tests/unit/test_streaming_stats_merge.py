"""Hourly and daily statistics kept without reading observations back: a batch's values merged
into what the hour's (day's) document keeps gives exactly the figures of a recomputation over
everything stored, whatever the split into batches, the replays and the corrections
(streaming.records, streaming.daily)."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from meteoflow.contracts import DailyPoint, DailyStats, HourlyStats, doc_id
from streaming.daily import daily_stats, day_readings, touched_days
from streaming.records import hour_points, merged_hourly_stats, merged_values
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
