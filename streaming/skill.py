"""Forecast skill, computed as observations arrive: the served forecast, the forecasting API's own
forecast (served or not) and the two baselines (persistence, climatology) against what was
observed, per region and lead time (1-24 h), over rolling 24 h and 7 d windows.

Incremental, never a query over all history. The forecast refresher calls `SkillTracker.update`
after each refresh with the hourly means it has just read for the regions it refreshed (their
new observations included) and the runs it has just made. Each region's runs that may still be
observed at a lead of 1-24 h are kept in one small document (forecast_skill_targets), so no
search through forecast_runs is needed. Every observed hour that one of them targeted becomes
one bucket (forecast_skill_buckets, _id region|hour) holding the observed mean and, for each lead,
the newest run's forecast at that lead; a replay rewrites the same bucket. The region's windows
are then recomputed from its buckets of the last 7 days (at most 168) into forecast_skill.

The windows end at the region's newest scored hour (data time, not the wall clock), so a replay
of recorded days is scored as it was lived. An hour's late observation is rescored while runs
that targeted it are still kept (24 h after their origin).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable

from pymongo import ReplaceOne
from pymongo.database import Database

from meteoflow.clock import utc_now
from meteoflow.contracts import (
    FORECAST_SKILL, FORECAST_SKILL_BUCKETS, FORECAST_SKILL_TARGETS, ForecastLeadPair, ForecastRun, ForecastSkill,
    ForecastSkillBucket, ForecastTargets, doc_id, find_by_ids, valid_documents,
)
from meteoflow.contracts import hour_floor
from streaming.records import HOUR
from streaming.sinks import upsert_documents

MAX_LEAD_HOURS = 24
WINDOWS: dict[str, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
LONGEST_WINDOW = max(WINDOWS.values())
PRUNE_EVERY_SECONDS = 600.0


# --- pure parts ---------------------------------------------------------------------------
def lead_of(run: ForecastRun, target: datetime) -> int | None:
    """Hours from the run's origin hour to `target` (an hour start), or None when not a whole hour."""
    delta = target - hour_floor(run.origin)
    if target != hour_floor(target) or delta % HOUR:
        return None
    return delta // HOUR


def newer(a: ForecastRun, b: ForecastRun) -> bool:
    return (a.run_at, a.id) > (b.run_at, b.id)


def recent_runs(kept: Iterable[ForecastRun], new: Iterable[ForecastRun]) -> list[ForecastRun]:
    """The newest run of each origin hour, for the newest origin hour and the MAX_LEAD_HOURS before it:
    the only runs whose targets can still be observed at a lead of 1-24 h (the oldest one's lead-24
    target is the newest origin hour, being observed now). Oldest first."""
    by_origin: dict[datetime, ForecastRun] = {}
    for run in [*kept, *new]:
        origin = hour_floor(run.origin)
        if origin not in by_origin or newer(run, by_origin[origin]):
            by_origin[origin] = run
    if not by_origin:
        return []
    newest = max(by_origin)
    return [by_origin[o] for o in sorted(by_origin) if newest - o <= MAX_LEAD_HOURS * HOUR]


def score(region_id: str, observed: dict[datetime, float], runs: Iterable[ForecastRun],
          now: datetime) -> list[ForecastSkillBucket]:
    """One bucket per observed hour that a run targeted at a lead of 1-24 h, holding each lead's
    newest run's forecast of it."""
    chosen: dict[datetime, dict[int, tuple[ForecastRun, ForecastLeadPair]]] = {}
    for run in runs:
        for point in run.points:
            lead = lead_of(run, point.target_time)
            if lead is None or not 1 <= lead <= MAX_LEAD_HOURS or point.target_time not in observed:
                continue
            leads = chosen.setdefault(point.target_time, {})
            if lead in leads and not newer(run, leads[lead][0]):
                continue
            leads[lead] = (run, ForecastLeadPair(
                lead_hours=lead, run_at=run.run_at, model=point.served_model(run.model), yhat=point.yhat,
                yhat_lower=point.yhat_lower, yhat_upper=point.yhat_upper, band_level=run.band_level,
                persistence=run.persistence, climatology=point.climatology, api_yhat=point.api_forecast(run.model)))
    return [ForecastSkillBucket(_id=doc_id(region_id, target), region_id=region_id, target_time=target,
                                observed=observed[target], leads=[pair for _, pair in sorted(leads.values(),
                                                                                             key=lambda x: x[1].lead_hours)],
                                updated_at=now)
            for target, leads in sorted(chosen.items())]


def merged_bucket(stored: ForecastSkillBucket | None, scored: ForecastSkillBucket) -> ForecastSkillBucket:
    """`scored` (the hour scored again now) over what was stored for it. A lead keeps its stored pair
    unless a run at least as new forecast it now: as data time moves on, the runs of the longer leads
    leave the kept targets, and scoring the hour again without them must not forget those leads.
    The observed value is the newest (a late observation corrects it)."""
    if stored is None:
        return scored
    leads = {p.lead_hours: p for p in stored.leads}
    for pair in scored.leads:
        if pair.lead_hours not in leads or pair.run_at >= leads[pair.lead_hours].run_at:
            leads[pair.lead_hours] = pair
    return scored.model_copy(update={"leads": [leads[lead] for lead in sorted(leads)]})


@dataclass(frozen=True)
class ErrorStats:
    mae: float | None
    bias: float | None  # mean(forecast - observed)


def error_stats(errors: list[float]) -> ErrorStats:
    if not errors:
        return ErrorStats(None, None)
    return ErrorStats(math.fsum(abs(e) for e in errors) / len(errors), math.fsum(errors) / len(errors))


def window_skill(region_id: str, window: str, lead: int, pairs: list[tuple[float, ForecastLeadPair]],
                 band_level: float, now: datetime) -> ForecastSkill:
    """The skill of (observed, forecast) pairs of one region, lead and window."""
    model = error_stats([p.yhat - obs for obs, p in pairs])
    persistence = error_stats([p.persistence - obs for obs, p in pairs if p.persistence is not None])
    climatology = error_stats([p.climatology - obs for obs, p in pairs if p.climatology is not None])
    api_errors = [p.api_yhat - obs for obs, p in pairs if p.api_yhat is not None]
    api = error_stats(api_errors)
    inside = sum(p.yhat_lower <= obs <= p.yhat_upper for obs, p in pairs)
    return ForecastSkill(
        _id=ForecastSkill.make_id(region_id, window, lead), region_id=region_id, window=window, lead_hours=lead,
        count=len(pairs), model_mae=model.mae, model_bias=model.bias, persistence_mae=persistence.mae,
        persistence_bias=persistence.bias, climatology_mae=climatology.mae, climatology_bias=climatology.bias,
        coverage=inside / len(pairs) if pairs else None, band_level=band_level, updated_at=now,
        api_count=len(api_errors), api_mae=api.mae, api_bias=api.bias)


def skill_windows(buckets: Iterable[ForecastSkillBucket], now: datetime) -> list[ForecastSkill]:
    """Every window and lead (1-24 h) of each region of `buckets`, ending at its newest scored hour;
    a lead without pairs in a window gets count 0 (and no figures), so an old figure never stays."""
    by_region: dict[str, list[ForecastSkillBucket]] = {}
    for bucket in buckets:
        by_region.setdefault(bucket.region_id, []).append(bucket)
    found = []
    for region_id, region_buckets in sorted(by_region.items()):
        anchor = max(b.target_time for b in region_buckets)
        band_level = max((p for b in region_buckets for p in b.leads), key=lambda p: p.run_at).band_level
        for window, span in WINDOWS.items():
            by_lead: dict[int, list[tuple[float, ForecastLeadPair]]] = {}
            for b in region_buckets:
                if anchor - span < b.target_time <= anchor:
                    for pair in b.leads:
                        by_lead.setdefault(pair.lead_hours, []).append((b.observed, pair))
            found += [window_skill(region_id, window, lead, by_lead.get(lead, []), band_level, now)
                      for lead in range(1, MAX_LEAD_HOURS + 1)]
    return found


# --- MongoDB side ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SkillUpdate:
    buckets_scored: int = 0
    regions: tuple[str, ...] = ()


class SkillTracker:
    """Called by the forecast refresher, under its lock, after each refresh. Reads only small
    collections (one targets document per region, 7 days of buckets). MongoDB errors propagate,
    as the refresher's do."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utc_now):
        self.db = db
        self.clock = clock
        self._prune_due = 0.0  # monotonic time of the next pass deleting old buckets

    def update(self, observed: dict[str, dict[datetime, float]], runs: list[ForecastRun]) -> SkillUpdate:
        """`observed`: the hourly means just read per region (their recent history); `runs`: the runs
        just made."""
        regions = sorted(set(observed) | {r.region_id for r in runs})
        if not regions:
            return SkillUpdate()
        now = self.clock()
        kept = {t.id: t for t in valid_documents(ForecastTargets, self.db[FORECAST_SKILL_TARGETS].find(
            {"_id": {"$in": regions}}))}
        new_by_region: dict[str, list[ForecastRun]] = {}
        for run in runs:
            new_by_region.setdefault(run.region_id, []).append(run)
        buckets, writes = [], []
        for region in regions:
            before = kept[region].runs if region in kept else []
            recent = recent_runs(before, new_by_region.get(region, []))
            if region in new_by_region:
                writes.append(ReplaceOne({"_id": region}, ForecastTargets(
                    _id=region, region_id=region, runs=recent).to_document(), upsert=True))
            buckets += score(region, observed.get(region, {}), recent, now)
        if writes:
            self.db[FORECAST_SKILL_TARGETS].bulk_write(writes, ordered=False)
        if not buckets:
            return SkillUpdate()
        scored = sorted({b.region_id for b in buckets})
        raw = {d["_id"]: d for d in find_by_ids(self.db[FORECAST_SKILL_BUCKETS], [b.id for b in buckets])}
        stored = {b.id: b for b in valid_documents(ForecastSkillBucket, raw.values())}
        merged = [merged_bucket(stored.get(b.id), b).to_document() for b in buckets]
        # Nothing new (a refresh without a new hour, a replay): the windows stand as they are.
        if upsert_documents(self.db[FORECAST_SKILL_BUCKETS], merged, ignore=frozenset({"updated_at"}), existing=raw):
            self._recompute_windows(scored, min(b.target_time for b in buckets), now)
        return SkillUpdate(buckets_scored=len(buckets), regions=tuple(scored))

    def _recompute_windows(self, regions: list[str], oldest_scored: datetime, now: datetime) -> None:
        # Each region's newest bucket is at or after the oldest hour scored now, so this holds its windows.
        kept = valid_documents(ForecastSkillBucket, self.db[FORECAST_SKILL_BUCKETS].find(
            {"region_id": {"$in": regions}, "target_time": {"$gt": oldest_scored - LONGEST_WINDOW}}))
        # Replaced whole, as a region's forecasts are: a new hour changes most of its 48 documents, and
        # FerretDB (SQLite) updates one document at a time (~20 ms each) where a bulk insert is one write.
        skills = skill_windows(kept, now)
        self.db[FORECAST_SKILL].delete_many({"region_id": {"$in": regions}})
        self.db[FORECAST_SKILL].insert_many([s.to_document() for s in skills], ordered=False)
        if time.monotonic() >= self._prune_due:
            # Buckets past every window are not needed any more; the windows skip them anyway, so this
            # pass (over the whole collection in FerretDB) runs at most every PRUNE_EVERY_SECONDS.
            newest = min(max(b.target_time for b in kept if b.region_id == r) for r in regions)
            self.db[FORECAST_SKILL_BUCKETS].delete_many({"target_time": {"$lte": newest - LONGEST_WINDOW}})
            self._prune_due = time.monotonic() + PRUNE_EVERY_SECONDS
