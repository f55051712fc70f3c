"""Daily statistics per region and UTC day, kept by the streaming job (and rebuilt by `batch recompute`).

Like the hourly ones: a batch recomputes exactly the (region, day) keys it touched, from the
stored observations (not incremented), and upserts by deterministic _id, so a replayed batch
writes the same documents (and, when nothing changed, none at all).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable

from pymongo import ASCENDING
from pymongo.database import Database

from meteoflow.contracts import (
    DAILY_STATS, RECENT_OBSERVATIONS, DailyPoint, DailyStats, Observation, find_recent_region_days, utc_day,
    valid_documents,
)
from streaming.sinks import observations_since, upsert_all

DAY = timedelta(days=1)


def day_floor(when: datetime) -> datetime:
    return when.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def touched_days(observations: Iterable[Observation]) -> set[tuple[str, datetime]]:
    return {(obs.region_id, day_floor(obs.observed_at)) for obs in observations}


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


def ensure_daily_index(db: Database) -> None:
    db[DAILY_STATS].create_index([("region_id", ASCENDING), ("day", ASCENDING)], unique=True, name="region_day")


class DailyStatsSink:
    """Recomputes the (region, day) keys a batch touched from the stored observations."""

    def __init__(self, db: Database):
        self.db = db
        self.collection = db[DAILY_STATS]
        ensure_daily_index(db)

    def write(self, observations: list[Observation], now: datetime) -> int:
        keys = touched_days(observations)
        if not keys:
            return 0
        days = [day for _, day in keys]
        since: dict[str, datetime] = {}
        for region, day in keys:
            since[region] = min(day, since.get(region, day))
        source = observations_since(self.db, since)
        if source.name == RECENT_OBSERVATIONS:  # live days: each touched (region, day) read by its index
            stored = find_recent_region_days(source, [(region, utc_day(day)) for region, day in sorted(keys)],
                                             DailyPoint.projection())
        else:  # a back-fill's old days, from the whole history: one query for the batch
            stored = source.find(
                {"region_id": {"$in": sorted({region for region, _ in keys})},
                 "observed_at": {"$gte": min(days), "$lt": max(days) + DAY}},
                DailyPoint.projection(),
            )
        docs = daily_stats(keys, valid_documents(DailyPoint, stored), computed_at=now)
        return upsert_all(self.collection, docs, ignore=frozenset({"computed_at"}))
