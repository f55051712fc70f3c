"""Hourly statistics kept without reading observations back: a batch's temps merged into what
the hour's document keeps gives exactly the figures of a recomputation over everything stored,
whatever the split into batches, the replays and the corrections (streaming.records)."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from meteoflow.contracts import HourlyStats
from streaming.records import hour_points, merged_hourly_stats
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
