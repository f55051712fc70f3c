"""Forecast history and skill against the real FerretDB and the real forecasting API (Prophet):
two refreshes hours apart keep both runs, the hours observed in between are scored against the
first run and the baselines, a replay counts nothing twice, and old runs go with the retention."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import SecretStr

from meteoflow.contracts import (
    FORECAST_RUNS, FORECAST_SKILL, FORECAST_SKILL_BUCKETS, FORECAST_SKILL_TARGETS, FORECASTS, HOURLY_STATS, ForecastRun,
    ForecastSkill, ForecastSkillBucket, ForecastTargets, HourlyStats, valid_documents,
)
from meteoflow.mongo import database, make_mongo_client
from streaming.forecasts import ForecastRefresher
from streaming.records import latest_per_region
from streaming.sinks import HourlyStatsSink, ObservationSink, ensure_indexes
from tests.fakes.observations import simulated_observations
from tests.integration.test_streaming_real_api import API_KEY, forecasting_api  # noqa: F401 - the real API fixture

pytestmark = pytest.mark.integration
HOUR = timedelta(hours=1)


@pytest.fixture
def db(isolated):
    client = make_mongo_client(isolated)
    db = database(isolated, client)
    ensure_indexes(db)
    yield db
    client.drop_database(isolated.mongo_db)
    client.close()


def store(db, observations) -> None:
    now = datetime.now(timezone.utc)
    ObservationSink(db).write(observations, now)
    HourlyStatsSink(db).write(observations, now)


def skills(db) -> dict[tuple[str, str, int], ForecastSkill]:
    return {(s.region_id, s.window, s.lead_hours): s for s in valid_documents(ForecastSkill, db[FORECAST_SKILL].find())}


def test_runs_are_kept_and_the_hours_observed_after_them_are_scored_once(db, isolated, forecasting_api):  # noqa: F811
    settings = isolated.model_copy(update=dict(
        forecast_api_url_override=forecasting_api, forecast_api_key=SecretStr(API_KEY), forecast_horizon_hours=6,
        forecast_timeout_seconds=120, forecast_runs_retention_days=1))
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - 6 * HOUR
    history = simulated_observations(regions=2, hours=30, per_hour=1, end=end)  # dakar, thies
    short = [o for o in simulated_observations(regions=3, hours=3, per_hour=1, end=end) if o.region_id == "saint-louis"]
    store(db, history + short)
    # A run older than the retention, from a previous life of the deployment.
    expired = ForecastRun(_id="dakar|old", region_id="dakar", run_at=end - timedelta(days=2),
                          origin=end - timedelta(days=2), model="prophet", horizon_hours=1, band_level=0.95, points=[])
    db[FORECAST_RUNS].insert_one(expired.to_document())

    # Runs hours apart, as in production (a run's id is its region and second).
    now = datetime.now(timezone.utc)
    at = [now - 3 * HOUR]
    refresher = ForecastRefresher(db, settings, clock=lambda: at[0])
    refresher.mark(latest_per_region(history + short))
    first = refresher.refresh()
    assert sorted(first.ok) == ["dakar", "saint-louis", "thies"] and not (first.failed or first.errors)
    runs = {r.region_id: r for r in valid_documents(ForecastRun, db[FORECAST_RUNS].find())}
    assert set(runs) == {"dakar", "saint-louis", "thies"}  # the expired run is gone
    # 30 h of history is under the API's 2 days: it serves same hour yesterday, labelled climatology;
    # saint-louis (3 h) is under forecast_min_points: the job's own persistence baseline, labelled so.
    assert (runs["dakar"].model, runs["saint-louis"].model) == ("climatology", "persistence")
    assert {f["model"] for f in db[FORECASTS].find({"region_id": "saint-louis"})} == {"persistence"}
    assert len(runs["dakar"].points) == 6 and runs["dakar"].persistence is not None
    assert all(p.climatology is not None for p in runs["dakar"].points)  # 30 h of history: yesterday is known
    assert db[FORECAST_SKILL].count_documents({}) == 0  # nothing observed after a run yet

    # Three hours later: those hours are observed, and a second run is made from them.
    later = simulated_observations(regions=3, hours=3, per_hour=1, end=end + 3 * HOUR)
    store(db, later)
    at[0] = now
    refresher.mark(latest_per_region(later))
    second = refresher.refresh()
    assert sorted(second.ok) == ["dakar", "saint-louis", "thies"]
    assert db[FORECAST_RUNS].count_documents({}) == 6  # both runs of each region kept
    assert db[FORECASTS].count_documents({"region_id": "dakar"}) == 6  # forecasts: the latest run only

    observed = {(s.region_id, s.hour): s.temp_mean for s in valid_documents(HourlyStats, db[HOURLY_STATS].find())}
    found = skills(db)
    assert len(found) == 3 * 2 * 24
    for region, run in runs.items():
        for lead in (1, 2, 3):
            point = run.points[lead - 1]
            truth = observed[(region, point.target_time)]
            got = found[(region, "24h", lead)]
            assert got.count == 1 and found[(region, "7d", lead)].count == 1
            assert got.model_mae == pytest.approx(abs(point.yhat - truth))
            assert got.model_bias == pytest.approx(point.yhat - truth)
            assert got.persistence_mae == pytest.approx(abs(run.persistence - truth))
            assert got.coverage == float(point.yhat_lower <= truth <= point.yhat_upper)
            if point.climatology is None:
                assert got.climatology_mae is None
            else:
                assert got.climatology_mae == pytest.approx(abs(point.climatology - truth))
        assert found[(region, "24h", 4)].count == 0  # 4 h ahead of the first run: not observed yet
    buckets = valid_documents(ForecastSkillBucket, db[FORECAST_SKILL_BUCKETS].find())
    assert len(buckets) == 3 * 3 and all(len(b.leads) == 1 for b in buckets)  # 3 hours of 3 regions, 1 run each
    targets = {t.id: t for t in valid_documents(ForecastTargets, db[FORECAST_SKILL_TARGETS].find())}
    assert [r.id for r in targets["dakar"].runs] == [runs["dakar"].id, ForecastRun.make_id("dakar", now)]

    # A replay: the same observations written again and refreshed again.
    store(db, later)
    at[0] = now + HOUR
    refresher.mark(latest_per_region(later))
    refresher.refresh()
    assert db[FORECAST_SKILL_BUCKETS].count_documents({}) == 3 * 3
    again = skills(db)
    assert {k: (s.count, s.model_mae, s.persistence_mae) for k, s in again.items()} == {
        k: (s.count, s.model_mae, s.persistence_mae) for k, s in found.items()}
