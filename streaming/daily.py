"""Daily statistics per region and UTC day, kept by the streaming job (and rebuilt by `batch recompute`).

Like the hourly ones: each day's document keeps its readings by instant, a batch merges its own
into them and recomputes the figures, without reading the day's observations back (a backlog's
new days are one insert). Replaying a batch gives the same documents (and, when nothing changed,
writes none). A day stored before readings were kept is recomputed once from the observations.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable

from pymongo.database import Database

from meteoflow.clock import utc_now
from meteoflow.contracts import (
    DAILY_STATS, OBSERVATIONS, RECENT_HOURS, REGION_LATEST, DailyPoint, DailyStats, DayReading, Observation,
    day_reading, find_region_days, point_key, utc_day, utc_days, valid_documents,
)
from streaming.sinks import MergedStatsSink, insert_new

DAY = timedelta(days=1)
# What seed_daily_stats fills before each region's newest observation: a day more than the longest
# window the region page offers.
SEED_SPAN = timedelta(hours=RECENT_HOURS + 24)


def day_floor(when: datetime) -> datetime:
    return when.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def touched_days(observations: Iterable[Observation]) -> set[tuple[str, datetime]]:
    return {(obs.region_id, day_floor(obs.observed_at)) for obs in observations}


def day_readings(observations: Iterable[Observation]) -> dict[tuple[str, datetime], dict[str, DayReading]]:
    """The batch's readings per (region, day), by point_key; a later duplicate wins (Kafka order)."""
    readings: dict[tuple[str, datetime], dict[str, DayReading]] = {}
    for obs in observations:
        readings.setdefault((obs.region_id, day_floor(obs.observed_at)), {})[point_key(obs.observed_at)] = \
            day_reading(obs)
    return readings


def daily_stats(keys: Iterable[tuple[str, datetime]], points: Iterable[DailyPoint],
                computed_at: datetime) -> list[DailyStats]:
    """The DailyStats of exactly `keys` from `points` (others ignored); a key without points is left out."""
    by_key: dict[tuple[str, datetime], list[DailyPoint]] = {key: [] for key in set(keys)}
    for point in points:
        group = by_key.get((point.region_id, day_floor(point.observed_at)))
        if group is not None:
            group.append(point)
    return [DailyStats.build(region_id, day, group, computed_at)
            for (region_id, day), group in sorted(by_key.items()) if group]


class DailyStatsSink(MergedStatsSink):
    """The (region, day) keys a batch touched, merged into what their documents keep."""

    model = DailyStats
    values_field = "readings"

    def __init__(self, db: Database):
        super().__init__(db[DAILY_STATS])
        self.db = db

    def batch_values(self, observations: list[Observation]) -> dict[tuple[str, datetime], dict[str, DayReading]]:
        return day_readings(observations)

    def build(self, key: tuple[str, datetime], values: dict[str, DayReading], now: datetime) -> DailyStats:
        return DailyStats.from_readings(*key, values, now)

    def recompute(self, keys: set[tuple[str, datetime]], now: datetime) -> list[DailyStats]:
        """The days' statistics from the stored observations (the design before readings were kept)."""
        # each touched (region, day) read by its index: the day's documents only, whatever the history
        stored = find_region_days(self.db[OBSERVATIONS], [(region, utc_day(day)) for region, day in sorted(keys)],
                                  DailyPoint.projection())
        return daily_stats(keys, valid_documents(DailyPoint, stored), computed_at=now)


def seed_daily_stats(db: Database) -> int:
    """Fill an empty daily_stats from the stored observations (a store written before the job kept daily
    statistics), at the job's start: a new day's document holds only what its batches bring, so the
    days already stored need theirs first. Only each region's whole days within SEED_SPAN of its newest
    observation, read by day; older ones are for `batch recompute`. Returns how many documents it wrote."""
    if db[DAILY_STATS].find_one({}, {"_id": 1}) is not None:
        return 0
    newest = {d["_id"]: d["observed_at"] for d in db[REGION_LATEST].find({}, {"observed_at": 1})
              if isinstance(d.get("observed_at"), datetime)}
    keys = [(region, day) for region, when in sorted(newest.items())
            for day in utc_days(day_floor(when - SEED_SPAN) + DAY, when)]
    points = valid_documents(DailyPoint, find_region_days(db[OBSERVATIONS], keys, DailyPoint.projection()))
    docs = [d.to_document() for d in daily_stats(touched_days(points), points, utc_now())]
    return len(docs) - len(insert_new(db[DAILY_STATS], docs))
