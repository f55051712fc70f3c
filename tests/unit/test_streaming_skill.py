"""Forecast history, baseline forecasts and skill as pure functions on plain lists (streaming/baselines.py,
streaming/skill.py, the run building of streaming/forecasts.py)."""

import math
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from meteoflow.contracts import ForecastDocument, ForecastRun, ForecastRunPoint, ModelFacts, Prediction
from streaming.baselines import baseline_forecast, same_hour_before
from streaming.forecasts import RegionHistory, baseline_documents, forecast_runs, served_documents, served_model
from streaming.selection import Plan, LeadChoice
from meteoflow.contracts import hour_floor
from streaming.skill import lead_of, merged_bucket, recent_runs, score, skill_windows

H = timedelta(hours=1)
T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)  # origin hour of the first run
NOW = datetime(2026, 3, 3, tzinfo=timezone.utc)


def run(origin: datetime, yhats: list[float], region: str = "dakar", run_at: datetime | None = None,
        persistence: float | None = 20.0, climatology: float | None = None, half_band: float = 1.0,
        model: str = "prophet") -> ForecastRun:
    run_at = run_at or origin + timedelta(minutes=1)
    base = origin.replace(minute=0, second=0, microsecond=0)
    return ForecastRun(
        _id=ForecastRun.make_id(region, run_at), region_id=region, run_at=run_at, origin=origin, model=model,
        horizon_hours=len(yhats), band_level=0.9, persistence=persistence,
        points=[ForecastRunPoint(target_time=base + (i + 1) * H, yhat=y, yhat_lower=y - half_band,
                                 yhat_upper=y + half_band, climatology=climatology)
                for i, y in enumerate(yhats)])


# --- pairing ----------------------------------------------------------------------------------
def test_a_run_pairs_each_observed_target_with_its_lead_from_the_origin_hour():
    r = run(T0 + timedelta(minutes=20), [21.0, 22.0, 23.0])  # origin 12:20: targets 13:00, 14:00, 15:00
    assert [lead_of(r, p.target_time) for p in r.points] == [1, 2, 3]
    buckets = score("dakar", {T0 + H: 20.5, T0 + 3 * H: 24.0, T0 - H: 19.0}, [r], NOW)
    assert [(b.target_time, b.observed, [(p.lead_hours, p.yhat) for p in b.leads]) for b in buckets] == [
        (T0 + H, 20.5, [(1, 21.0)]), (T0 + 3 * H, 24.0, [(3, 23.0)])]  # 14:00 not observed yet, 11:00 not forecast
    assert buckets[0].id == "dakar|2026-03-01T13:00:00Z" and buckets[0].leads[0].run_at == r.run_at


def test_the_newest_run_at_a_lead_is_the_one_scored_and_leads_past_24_hours_are_not():
    old = run(T0, [30.0], run_at=T0 + timedelta(minutes=1))
    rerun = run(T0 + timedelta(minutes=30), [21.0], run_at=T0 + timedelta(minutes=31))  # same origin hour
    earlier = run(T0 - H, [0.0, 25.0])  # lead 2 for 13:00
    far = run(T0 - 30 * H, [0.0] * 31)  # 13:00 at lead 31
    (bucket,) = score("dakar", {T0 + H: 20.0}, [rerun, old, earlier, far], NOW)
    assert [(p.lead_hours, p.yhat, p.run_at) for p in bucket.leads] == [(1, 21.0, rerun.run_at), (2, 25.0, earlier.run_at)]


def test_only_the_newest_run_of_each_origin_hour_a_lead_of_24_hours_still_reaches_is_kept():
    runs = [run(T0 - h * H, [20.0]) for h in range(30)]
    rerun = run(T0 + timedelta(minutes=5), [21.0], run_at=T0 + timedelta(minutes=6))
    kept = recent_runs(runs[5:], runs[:5] + [rerun])
    # 12:00 and the 24 origin hours before it: the oldest one's lead-24 target is 12:00 itself.
    assert [hour_floor(r.origin) for r in kept] == [T0 - h * H for h in reversed(range(25))]
    assert kept[-1] is rerun  # the newer of the two runs of 12:00
    assert recent_runs([], []) == []


# --- windows ----------------------------------------------------------------------------------
def test_windows_sum_errors_of_the_model_and_both_baselines_and_the_band_coverage():
    # Four hours observed at lead 1: model errors +1, -1, +3, 0; persistence 20 vs observed; band +-1.
    observed = [20.0, 22.0, 18.0, 21.0]
    runs = [run(T0 + i * H, [21.0], climatology=observed[i] + 0.5) for i in range(4)]
    buckets = score("dakar", {T0 + (i + 1) * H: observed[i] for i in range(4)}, runs, NOW)
    skills = {(s.window, s.lead_hours): s for s in skill_windows(buckets, NOW)}
    assert len(skills) == 2 * 24
    s = skills[("24h", 1)]
    assert s.count == 4 and s.model_mae == pytest.approx(5 / 4) and s.model_bias == pytest.approx(3 / 4)
    assert s.persistence_mae == pytest.approx((0 + 2 + 2 + 1) / 4) and s.persistence_bias == pytest.approx(-1 / 4)
    assert s.climatology_mae == pytest.approx(0.5) and s.climatology_bias == pytest.approx(0.5)
    assert s.coverage == pytest.approx(3 / 4) and s.band_level == 0.9  # 18.0 is outside [20, 22]
    assert skills[("7d", 1)].count == 4
    empty = skills[("24h", 2)]
    assert (empty.count, empty.model_mae, empty.coverage, empty.climatology_mae) == (0, None, None, None)


def test_windows_end_at_the_regions_newest_scored_hour_and_drop_what_is_older():
    runs = [run(T0 + h * H, [20.0]) for h in (0, 30, 200)]  # targets 13:00, +30 h, +200 h
    buckets = score("dakar", {T0 + (h + 1) * H: 21.0 for h in (0, 30, 200)}, runs, NOW)
    skills = {(s.window, s.lead_hours): s for s in skill_windows(buckets, NOW)}
    assert skills[("24h", 1)].count == 1  # only the newest hour is within 24 h of itself
    assert skills[("7d", 1)].count == 1  # 200 h later: the first two are more than 168 h before


def test_a_baseline_missing_at_run_time_leaves_its_figures_out_not_zero():
    r = run(T0, [21.0], persistence=None, climatology=None)
    s = {(x.window, x.lead_hours): x for x in skill_windows(score("dakar", {T0 + H: 20.0}, [r], NOW), NOW)}[("24h", 1)]
    assert (s.count, s.model_mae, s.persistence_mae, s.climatology_mae) == (1, 1.0, None, None)


# --- replay idempotence -----------------------------------------------------------------------
def test_a_replayed_observation_or_run_rewrites_the_same_bucket_and_counts_once():
    r = run(T0, [21.0, 22.0])
    first = score("dakar", {T0 + H: 20.0}, [r], NOW)
    again = score("dakar", {T0 + H: 20.0}, recent_runs([r], [r]), NOW)  # the run kept, then made again
    assert [b.to_document() for b in again] == [b.to_document() for b in first]
    stored = {b.id: b for b in first}
    stored.update({b.id: b for b in again})  # upserts by _id
    assert skill_windows(stored.values(), NOW)[0].count == 1
    # A second observation in the same hour changes its mean: the same bucket, rescored.
    (rescored,) = score("dakar", {T0 + H: 21.0}, [r], NOW)
    stored[rescored.id] = rescored
    windows = skill_windows(stored.values(), NOW)
    assert (windows[0].count, windows[0].model_mae) == (1, 0.0)


def lived(hours: int, skipped: frozenset[int] = frozenset()) -> dict:
    """Data time moving on one hour at a time, as the refresher lives it: a run at every origin hour
    (but `skipped` ones), each refresh scoring every observed hour against the runs still kept and
    storing the buckets as SkillTracker.update does (merged over what is stored, by _id)."""
    stored, kept, observed = {}, [], {}
    for h in range(hours):
        origin = T0 + h * H
        observed[origin] = 20.0 + h % 5
        new = [] if h in skipped else [run(origin, [20.0 + lead for lead in range(1, 25)])]
        kept = recent_runs(kept, new)
        for bucket in score("dakar", observed, kept, NOW):
            stored[bucket.id] = merged_bucket(stored.get(bucket.id), bucket)
    return stored


def test_an_hour_scored_again_after_its_long_lead_runs_left_the_targets_keeps_those_leads():
    # The bug: each refresh rescored every recent hour with only the runs still kept, and replaced
    # the bucket, so an hour ended with its lead-1 pair alone and the 7-day figures were lead 1's.
    stored = lived(60)
    assert len(stored) == 59 and all(
        [p.lead_hours for p in b.leads] == list(range(1, min((b.target_time - T0) // H, 24) + 1))
        for b in stored.values())
    counts = {w.lead_hours: w.count for w in skill_windows(stored.values(), NOW) if w.window == "7d"}
    assert counts[1] == 59 and counts[24] == 59 - 23  # every hour observed after a run at that lead


def test_a_newer_run_at_a_lead_replaces_the_stored_pair_and_an_older_one_does_not():
    first = run(T0, [21.0, 22.0], run_at=T0 + timedelta(minutes=1))
    rerun = run(T0 + timedelta(minutes=30), [25.0], run_at=T0 + timedelta(minutes=31))
    earlier = run(T0 - H, [0.0, 23.0])
    (stored,) = score("dakar", {T0 + H: 20.0}, [first, earlier], NOW)
    (newer,) = score("dakar", {T0 + H: 20.5}, [rerun], NOW)
    merged = merged_bucket(stored, newer)
    assert [(p.lead_hours, p.yhat) for p in merged.leads] == [(1, 25.0), (2, 23.0)] and merged.observed == 20.5
    assert [(p.lead_hours, p.yhat) for p in merged_bucket(newer, stored).leads] == [(1, 25.0), (2, 23.0)]
    assert merged_bucket(None, newer) is newer


@settings(max_examples=60, deadline=None)
@given(hours=st.integers(min_value=1, max_value=50), skipped=st.frozensets(st.integers(0, 49), max_size=20))
def test_every_lead_a_run_forecast_for_an_observed_hour_stays_scored_whatever_the_order(hours, skipped):
    stored = lived(hours, skipped)
    for bucket in stored.values():
        target_hour = (bucket.target_time - T0) // H
        expected = [target_hour - origin for origin in range(max(0, target_hour - 24), target_hour)
                    if origin not in skipped]
        assert sorted(p.lead_hours for p in bucket.leads) == sorted(expected)


# --- baseline forecasts -----------------------------------------------------------------------
def hourly(hours: int, last: datetime = T0) -> dict[datetime, float]:
    return {last - h * H: 20.0 + (h % 24) / 2 for h in reversed(range(hours))}


def test_with_less_than_a_day_persistence_is_served_with_a_band_from_the_observed_changes_over_each_lead():
    model, preds = baseline_forecast(hourly(5), horizon_hours=4, band_level=0.95)
    assert model == "persistence"
    assert [p.timestamp for p in preds] == [T0 + i * H for i in (1, 2, 3, 4)]
    assert {p.temperature for p in preds} == {20.0}  # the last observed hour's value
    widths = [p.upper - p.lower for p in preds]
    # A steady trend of 0.5 C an hour: the changes over 1, 2 and 3 hours grow linearly (a random walk's
    # sqrt would make the 3 h band 1.7x the 1 h one, not 3x)...
    assert widths[1] == pytest.approx(2 * widths[0]) and widths[2] == pytest.approx(3 * widths[0])
    # ...and 4 h, with a single such change seen, falls back to sqrt(4) x the hourly spread, kept no narrower.
    assert widths[3] == pytest.approx(widths[2])
    assert all(p.lower < p.temperature < p.upper for p in preds)


def test_the_persistence_band_holds_its_level_on_a_daily_cycle():
    """On a clean daily cycle with noise, the band at each lead holds about its nominal share of
    what follows (it is the spread of the very changes the forecast misses)."""
    rng = random.Random(3)
    cycle = lambda h: 25.0 + 6.0 * math.sin(2 * math.pi * (h % 24) / 24)  # noqa: E731
    inside = total = 0
    for origin in range(20, 200, 7):
        history = {T0 + (h - origin) * H: cycle(h) + rng.gauss(0, 0.3) for h in range(origin - 20, origin + 1)}
        _, preds = baseline_forecast(history, horizon_hours=6, band_level=0.9)
        for step, p in enumerate(preds, start=1):
            truth = cycle(origin + step) + rng.gauss(0, 0.3)
            inside += p.lower <= truth <= p.upper
            total += 1
    assert 0.8 <= inside / total <= 1.0, inside / total


def test_with_a_day_of_history_same_hour_yesterday_is_served():
    history = hourly(30)
    model, preds = baseline_forecast(history, horizon_hours=6, band_level=0.9)
    assert model == "climatology"
    assert [p.temperature for p in preds] == [history[p.timestamp - timedelta(hours=24)] for p in preds]
    assert same_hour_before(T0 + 30 * H, T0) == T0 - 18 * H  # lead 30 (18:00): 18:00 of the day before the origin


def test_no_history_no_baseline_and_one_point_gets_the_assumed_spread():
    assert baseline_forecast({}, 6, 0.95) is None
    model, preds = baseline_forecast({T0: 25.0}, 1, 0.95)
    assert model == "persistence" and preds[0].upper - preds[0].lower == pytest.approx(2 * 1.959964, rel=1e-4)


def test_baseline_documents_label_the_model_and_runs_keep_the_baselines_of_each_target():
    points = [(T0 - h * H + timedelta(minutes=10), 20.0 + h) for h in range(30)]  # 30 hours, last 12:10
    hist = RegionHistory("dakar", 14.7, -17.4, T0 + timedelta(minutes=10), points)
    short = RegionHistory("thies", 14.8, -16.9, T0, [(T0, 25.0)])
    empty = RegionHistory("louga", 15.6, -16.2, T0, [])
    docs, served = baseline_documents([hist, short, empty], ["dakar", "thies", "louga"], NOW, 3, 0.95)
    assert served == ["dakar", "thies"]
    assert {(d.region_id, d.model) for d in docs} == {("dakar", "climatology"), ("thies", "persistence")}
    runs = {r.region_id: r for r in forecast_runs(docs, [hist, short, empty], band_level=0.95)}
    dakar = runs["dakar"]
    assert (dakar.model, dakar.run_at, dakar.origin, dakar.persistence) == ("climatology", NOW, hist.last_observed_at, 20.0)
    assert [p.climatology for p in dakar.points] == [43.0, 42.0, 41.0]  # 13:00 yesterday was 23 h before 12:00
    assert [p.yhat for p in dakar.points] == [43.0, 42.0, 41.0]
    assert runs["thies"].points[0].climatology is None and runs["thies"].persistence == 25.0


def test_a_prophet_run_keeps_every_point_with_the_served_model():
    hist = RegionHistory("dakar", 14.7, -17.4, T0, [(T0 - h * H, 20.0) for h in range(30)])
    docs = [ForecastDocument.from_prediction("dakar", Prediction(timestamp=T0 + i * H, temperature=21.0, lower=20.0,
                                                                 upper=22.0), NOW, 2) for i in (2, 1)]
    (kept,) = forecast_runs(docs, [hist], band_level=0.8)
    assert kept.id == "dakar|2026-03-03T00:00:00.000Z" and kept.model == "prophet" and kept.horizon_hours == 2
    assert [p.target_time for p in kept.points] == [T0 + H, T0 + 2 * H] and kept.band_level == 0.8


def test_a_plan_serves_a_baseline_at_its_leads_and_the_run_keeps_the_apis_forecast_everywhere():
    points = [(T0 - h * H + timedelta(minutes=10), 20.0 + h) for h in range(30)]  # 30 hours, last 12:10
    hist = RegionHistory("dakar", 14.7, -17.4, T0 + timedelta(minutes=10), points)
    api_docs = [ForecastDocument.from_prediction("dakar", Prediction(timestamp=T0 + i * H, temperature=30.0 + i,
                                                                     lower=29.0, upper=40.0), NOW, 4, "blend")
                for i in range(1, 5)]
    plan = Plan({1: LeadChoice(1, "persistence"), 2: LeadChoice(2, "persistence"), 4: LeadChoice(4, "climatology")})
    served = served_documents(api_docs, [hist], {"dakar": plan}, NOW, 4, 0.95)
    assert [(d.model, d.yhat) for d in served] == [
        ("persistence", 20.0), ("persistence", 20.0), ("blend", 33.0), ("climatology", 40.0)]  # 16:00 yesterday
    assert served_documents(api_docs, [hist], {}, NOW, 4, 0.95) == api_docs  # no plan: the API's forecast
    (kept,) = forecast_runs(served, [hist], 0.95, api_docs)
    assert kept.model == "blend"  # the API's label; each point says what it served
    assert [(p.model, p.yhat, p.api_yhat) for p in kept.points] == [
        ("persistence", 20.0, 31.0), ("persistence", 20.0, 32.0), ("blend", 33.0, 33.0), ("climatology", 40.0, 34.0)]
    # Scored: the served forecast and the API's own at every lead.
    (bucket,) = score("dakar", {T0 + 2 * H: 21.0}, [kept], NOW)
    (pair,) = bucket.leads
    assert (pair.lead_hours, pair.model, pair.yhat, pair.api_yhat) == (2, "persistence", 20.0, 32.0)
    figures = {s.window: s for s in skill_windows([bucket], NOW) if s.lead_hours == 2}["24h"]
    assert (figures.model_mae, figures.api_mae, figures.api_count, figures.persistence_mae) == (1.0, 11.0, 1, 1.0)


def test_a_run_point_written_before_api_yhat_was_kept_had_it_only_when_the_model_was_served():
    old = run(T0, [21.0, 22.0], model="blend")
    assert [p.api_forecast(old.model) for p in old.points] == [21.0, 22.0]
    baseline = run(T0, [21.0], model="persistence")
    assert baseline.points[0].api_forecast(baseline.model) is None
    (bucket,) = score("dakar", {T0 + H: 20.0}, [baseline], NOW)
    (lead_1,) = [s for s in skill_windows([bucket], NOW) if s.window == "7d" and s.lead_hours == 1]
    assert (lead_1.count, lead_1.api_count, lead_1.api_mae, lead_1.model_mae) == (1, 0, None, 1.0)


def test_the_served_model_is_read_from_the_facts_when_the_api_says_it():
    # An API of an earlier version does not say which model it served: it was Prophet.
    assert served_model(ModelFacts(points_used=30, fit_seconds=0.1, seasonalities=["daily"])) == "prophet"
    for told in ("blend", "climatology", "prophet"):
        assert served_model(ModelFacts(points_used=30, fit_seconds=0.1, seasonalities=[], model=told)) == told
