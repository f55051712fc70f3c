"""Forecast skill, computed as observations arrive: the served forecast and the two baselines
(persistence, climatology) against what was observed, per region and lead time (1-24 h), over
rolling 24 h and 7 d windows.

Incremental, never a query over all history. Each step reads only the hourly statistics written
since the last step (a cursor on their computed_at), the kept runs that target those hours
(forecast_runs, by region and origin), and scores one bucket per (region, lead, target hour) in
forecast_skill_buckets. A region's windows are then recomputed from its buckets of the last
7 days (at most 168 per lead) into forecast_skill. Buckets are keyed by region, lead and target
hour, so a replayed observation or run rewrites the same bucket and is never counted twice.

The windows end at the region's newest scored hour (data time, not the wall clock), so a replay
of recorded days is scored as it was lived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from pymongo.database import Database

from meteoflow.clock import utc_now
from meteoflow.contracts import (
    FORECAST_RUNS, FORECAST_SKILL, FORECAST_SKILL_BUCKETS, FORECAST_SKILL_CURSOR, HOURLY_STATS, ForecastRun,
    ForecastSkill, ForecastSkillBucket, HourlyStats, SkillCursor, valid_documents,
)
from streaming.records import HOUR, hour_floor
from streaming.sinks import upsert_all

MAX_LEAD_HOURS = 24
WINDOWS: dict[str, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
LONGEST_WINDOW = max(WINDOWS.values())
CURSOR_ID = "hourly_stats"


# --- pure parts ---------------------------------------------------------------------------
def lead_of(run: ForecastRun, target: datetime) -> int | None:
    """Hours from the run's origin hour to `target` (an hour start), or None when not a whole hour."""
    delta = target - hour_floor(run.origin)
    if target != hour_floor(target) or delta % HOUR:
        return None
    return delta // HOUR


def score(stats: Iterable[HourlyStats], runs: Iterable[ForecastRun], now: datetime) -> list[ForecastSkillBucket]:
    """One bucket per (region, lead, observed hour) that a run forecast at that lead: the pair of the
    newest such run (the one served at that lead) with the hour's observed mean."""
    observed = {(s.region_id, s.hour): s.temp_mean for s in stats}
    chosen: dict[tuple[str, int, datetime], tuple[ForecastRun, Any]] = {}
    for run in runs:
        for point in run.points:
            lead = lead_of(run, point.target_time)
            if lead is None or not 1 <= lead <= MAX_LEAD_HOURS or (run.region_id, point.target_time) not in observed:
                continue
            key = (run.region_id, lead, point.target_time)
            if key not in chosen or (run.run_at, run.id) > (chosen[key][0].run_at, chosen[key][0].id):
                chosen[key] = (run, point)
    return [ForecastSkillBucket(
        _id=ForecastSkillBucket.make_id(region, lead, target), region_id=region, lead_hours=lead, target_time=target,
        run_at=run.run_at, model=run.model, observed=observed[(region, target)], yhat=p.yhat, yhat_lower=p.yhat_lower,
        yhat_upper=p.yhat_upper, band_level=run.band_level, persistence=run.persistence, climatology=p.climatology,
        updated_at=now) for (region, lead, target), (run, p) in sorted(chosen.items())]


@dataclass(frozen=True)
class ErrorStats:
    mae: float | None
    bias: float | None  # mean(forecast - observed)


def error_stats(errors: list[float]) -> ErrorStats:
    if not errors:
        return ErrorStats(None, None)
    return ErrorStats(math.fsum(abs(e) for e in errors) / len(errors), math.fsum(errors) / len(errors))


def window_skill(region_id: str, window: str, lead: int, buckets: list[ForecastSkillBucket], band_level: float,
                 now: datetime) -> ForecastSkill:
    """The skill of the buckets of one region, lead and window (all of them are counted)."""
    model = error_stats([b.yhat - b.observed for b in buckets])
    persistence = error_stats([b.persistence - b.observed for b in buckets if b.persistence is not None])
    climatology = error_stats([b.climatology - b.observed for b in buckets if b.climatology is not None])
    inside = sum(b.yhat_lower <= b.observed <= b.yhat_upper for b in buckets)
    return ForecastSkill(
        _id=ForecastSkill.make_id(region_id, window, lead), region_id=region_id, window=window, lead_hours=lead,
        count=len(buckets), model_mae=model.mae, model_bias=model.bias, persistence_mae=persistence.mae,
        persistence_bias=persistence.bias, climatology_mae=climatology.mae, climatology_bias=climatology.bias,
        coverage=inside / len(buckets) if buckets else None, band_level=band_level, updated_at=now)


def skill_windows(buckets: Iterable[ForecastSkillBucket], now: datetime) -> list[ForecastSkill]:
    """Every window and lead (1-24 h) of each region of `buckets`, ending at its newest scored hour;
    a lead without pairs in a window gets count 0 (and no figures), so an old figure never stays."""
    by_region: dict[str, list[ForecastSkillBucket]] = {}
    for bucket in buckets:
        by_region.setdefault(bucket.region_id, []).append(bucket)
    found = []
    for region_id, region_buckets in sorted(by_region.items()):
        newest = max(region_buckets, key=lambda b: (b.target_time, b.run_at))
        anchor = newest.target_time
        by_lead: dict[int, list[ForecastSkillBucket]] = {}
        for bucket in region_buckets:
            by_lead.setdefault(bucket.lead_hours, []).append(bucket)
        for window, span in WINDOWS.items():
            for lead in range(1, MAX_LEAD_HOURS + 1):
                inside = [b for b in by_lead.get(lead, []) if anchor - span < b.target_time <= anchor]
                found.append(window_skill(region_id, window, lead, inside, newest.band_level, now))
    return found


def advance(cursor: SkillCursor | None, stats: list[HourlyStats]) -> SkillCursor | None:
    """The cursor after reading `stats` (those computed at or after the cursor), or None when they
    hold nothing new: the stats of one batch share one computed_at, so the cursor's own instant is
    read again and counts as new only when more are there than last time."""
    if not stats:
        return None
    through = max(s.computed_at for s in stats)
    seen = sum(s.computed_at == through for s in stats)
    if cursor is not None and through == cursor.computed_through and seen <= cursor.seen_at_through:
        return None
    return SkillCursor(_id=CURSOR_ID, computed_through=through, seen_at_through=seen)


# --- MongoDB side ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SkillUpdate:
    stats_read: int = 0
    buckets_scored: int = 0
    regions: tuple[str, ...] = ()


class SkillTracker:
    """Called by the forecast refresher after each refresh; a no-op (one indexed query) when no
    hourly statistics were written since the last call. MongoDB errors propagate, as the refresher's."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utc_now):
        self.db = db
        self.clock = clock

    def _cursor(self) -> SkillCursor | None:
        found = valid_documents(SkillCursor, self.db[FORECAST_SKILL_CURSOR].find({"_id": CURSOR_ID}))
        return found[0] if found else None

    def _oldest_run_at(self) -> datetime | None:
        doc = next(iter(self.db[FORECAST_RUNS].find({"run_at": {"$type": "date"}}, {"run_at": 1})
                        .sort("run_at", 1).limit(1)), None)
        return None if doc is None else doc["run_at"]

    def update(self) -> SkillUpdate:
        cursor = self._cursor()
        # A stat older than every kept run cannot be the observation of one of its targets (runs forecast
        # the hours after their newest observation), so the first step starts at the oldest run.
        since = cursor.computed_through if cursor else self._oldest_run_at()
        if since is None:
            return SkillUpdate()
        stats = valid_documents(HourlyStats, self.db[HOURLY_STATS].find({"computed_at": {"$gte": since}}))
        moved = advance(cursor, stats)
        if moved is None:
            return SkillUpdate(stats_read=len(stats))
        now = self.clock()
        hours = [s.hour for s in stats]
        regions = sorted({s.region_id for s in stats})
        runs = valid_documents(ForecastRun, self.db[FORECAST_RUNS].find(
            {"region_id": {"$in": regions},
             "origin": {"$gte": min(hours) - MAX_LEAD_HOURS * HOUR, "$lt": max(hours)}}))
        buckets = score(stats, runs, now)
        upsert_all(self.db[FORECAST_SKILL_BUCKETS], buckets, ignore=frozenset({"updated_at"}))
        scored = sorted({b.region_id for b in buckets})
        if buckets:
            self._recompute_windows(scored, min(b.target_time for b in buckets), now)
        self.db[FORECAST_SKILL_CURSOR].replace_one({"_id": CURSOR_ID}, moved.to_document(), upsert=True)
        return SkillUpdate(stats_read=len(stats), buckets_scored=len(buckets), regions=tuple(scored))

    def _recompute_windows(self, regions: list[str], oldest_scored: datetime, now: datetime) -> None:
        # Each region's newest bucket is at or after the oldest hour scored now, so this holds its windows.
        kept = valid_documents(ForecastSkillBucket, self.db[FORECAST_SKILL_BUCKETS].find(
            {"region_id": {"$in": regions}, "target_time": {"$gt": oldest_scored - LONGEST_WINDOW}}))
        skills = skill_windows(kept, now)
        upsert_all(self.db[FORECAST_SKILL], skills, ignore=frozenset({"updated_at"}))
        newest = {}
        for b in kept:
            newest[b.region_id] = max(newest.get(b.region_id, b.target_time), b.target_time)
        # Buckets past every window are not needed any more (the index on region_id, target_time serves this).
        self.db[FORECAST_SKILL_BUCKETS].delete_many(
            {"region_id": {"$in": regions}, "target_time": {"$lte": min(newest.values()) - LONGEST_WINDOW}})
