"""The weather pages' API (GET /api/overview, the kept forecast runs, GET /api/forecast-quality)
against the real FerretDB and Elasticsearch, over documents seeded in the shapes the pipeline
writes (tests/browser/seeding.py: the streaming job's builders and contracts.ForecastRun/ForecastSkill)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from meteoflow.contracts import BACKFILL_BATCH_PREFIX
from meteoflow.freshness import thresholds
from tests.browser.seeding import REGIONS, Seeder, utcnow
from webapp.app import create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def seeder(isolated):
    s = Seeder(isolated, regions=REGIONS[:3])
    yield s
    s.close()


@pytest.fixture
def api(isolated):
    with TestClient(create_app(isolated)) as client:
        yield client


def iso(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_id(when):
    """A run's run_at as the API names it: to the millisecond."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def test_overview_cards_put_problems_first_with_the_observations_own_age(isolated, seeder, api):
    limits = thresholds(isolated)
    now = utcnow()
    dakar, thies, louis = REGIONS[:3]
    history = seeder.history(hours=12, step_minutes=60, regions=[dakar, louis])
    seeder.store(history)
    # Thiès' last record arrived long ago: silent. Dakar's forecast is a labelled baseline, Saint-Louis'
    # model does worse than persistence over the last 24 h: degraded.
    seeder.store(seeder.history(hours=3, step_minutes=60, regions=[thies]),
                 ingested_at=now - timedelta(seconds=limits.silent_after_seconds + 30))
    latest = max(o.observed_at for o in history if o.region_id == "dakar")
    seeder.forecast("dakar", latest, hours=24, model="persistence")
    seeder.skill("saint-louis", model_mae=2.0, persistence_mae=1.0)
    seeder.skill("dakar", model_mae=0.8, persistence_mae=1.5)

    body = api.get("/api/overview").json()
    order = [c["region"]["region_id"] for c in body["cards"]]
    assert order == ["thies", "saint-louis", "dakar"], order
    cards = {c["region"]["region_id"]: c for c in body["cards"]}
    assert cards["thies"]["problem"] == "silent"
    assert cards["saint-louis"]["problem"] == "degraded" and "persistence" in cards["saint-louis"]["degraded_reason"]
    assert cards["dakar"]["problem"] is None and not cards["dakar"]["degraded"]

    dakar_card = cards["dakar"]
    assert dakar_card["forecast_model"] == "persistence" and dakar_card["forecast_is_baseline"]
    assert len(dakar_card["next_hours"]) == 6
    assert all(p["target_time"] > iso(latest) for p in dakar_card["next_hours"])
    # The observation's own age, not the arrival's.
    assert abs(dakar_card["observed_age_seconds"] - (now - latest).total_seconds()) < 120
    # Today's range: the local day of the latest observation, from its hourly stats.
    day_temps = [o.temp for o in history if o.region_id == "dakar" and o.observed_at.date() == latest.date()]
    assert dakar_card["today"]["day"] == latest.date().isoformat()
    assert dakar_card["today"]["high"] == pytest.approx(max(day_temps))
    assert dakar_card["today"]["low"] == pytest.approx(min(day_temps))
    assert body["backfill"] == {"running": False, "regions": [], "newest_observed_at": None}


def test_overview_says_when_a_backfill_is_running(seeder, api):
    old = utcnow() - timedelta(days=3)
    replayed = [o.model_copy(update={"batch_id": f"{BACKFILL_BATCH_PREFIX}{o.batch_id}"})
                for o in seeder.history(hours=6, step_minutes=60, end=old, regions=REGIONS[:1])]
    seeder.store(replayed)  # arriving now
    body = api.get("/api/overview").json()
    card = body["cards"][0]
    assert card["from_backfill"] and card["region"]["freshness"] == "fresh"
    assert card["observed_age_seconds"] > 2 * 86400, "a replayed observation is shown with its own age"
    assert card["today"]["is_today"] is False
    assert body["backfill"]["running"] and body["backfill"]["regions"] == ["dakar"]
    assert body["backfill"]["newest_observed_at"] == iso(max(o.observed_at for o in replayed))


def test_past_runs_are_listed_and_verified_against_what_happened(seeder, api):
    # Observations on the hour, as the run's targets are, so each target has its own observation.
    history = seeder.history(hours=36, step_minutes=60, end=utcnow().replace(minute=0), regions=REGIONS[:1])
    seeder.store(history)
    latest = max(o.observed_at for o in history)
    old = seeder.forecast_run("dakar", latest - timedelta(hours=20), bias=1.5)
    new = seeder.forecast_run("dakar", latest - timedelta(hours=2), model="climatology")
    seeder.forecast_run("dakar", latest - timedelta(days=10))  # outside the window

    runs = api.get("/api/regions/dakar/forecast-runs", params={"hours": 24}).json()["runs"]
    assert [r["run_at"] for r in runs] == [run_id(new.run_at), run_id(old.run_at)]
    assert runs[0]["model"] == "climatology" and runs[0]["is_baseline"] and not runs[1]["is_baseline"]

    body = api.get(f"/api/regions/dakar/forecast-runs/{runs[1]['run_at']}").json()
    assert body["run"]["run_at"] == run_id(old.run_at)
    assert len(body["points"]) == 24
    verified = [p for p in body["points"] if p["observed"] is not None]
    # Hourly observations up to `latest`: the run's targets from origin+1 h to latest are verified.
    assert len(verified) == body["verification"]["verified"] == 20
    observed = {iso(o.observed_at): o.temp for o in history}
    for p in verified:
        assert p["observed"] == observed[p["target_time"]]
        assert p["error"] == pytest.approx(p["yhat"] - p["observed"], abs=1e-3)
    mae = sum(abs(p["error"]) for p in verified) / len(verified)
    assert body["verification"]["mae"] == pytest.approx(mae, abs=1e-3)
    assert body["observations"][0]["observed_at"] <= iso(old.origin - timedelta(hours=11))

    missing = api.get(f"/api/regions/dakar/forecast-runs/{iso(latest - timedelta(minutes=7))}")
    assert missing.status_code == 404
    bad = api.get("/api/regions/dakar/forecast-runs/yesterday")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "run_at"
    assert api.get("/api/regions/atlantis/forecast-runs").status_code == 404


def test_forecast_quality_by_lead_time_and_region_worst_first(seeder, api):
    history = seeder.history(hours=2, step_minutes=60)
    seeder.store(history)
    seeder.skill("dakar", model_mae=0.8, persistence_mae=1.5, climatology_mae=1.0)
    seeder.skill("thies", model_mae=2.0, persistence_mae=1.0, climatology_mae=1.1, coverage=0.6)
    seeder.skill("thies", window="7d", model_mae=1.0)

    body = api.get("/api/forecast-quality", params={"window": "24h"}).json()
    assert [r["region_id"] for r in body["regions"]] == ["thies", "dakar"]
    thies, dakar = body["regions"]
    assert thies["region_name"] == "Thiès" and thies["degraded"] and thies["skill"] < 0
    assert dakar["skill"] > 0 and not dakar["degraded"] and dakar["best_baseline"] in {"persistence", "climatology"}
    assert [lead["lead_hours"] for lead in body["by_lead"]] == list(range(1, 25))
    first = body["by_lead"][0]
    assert first["count"] == 40
    assert first["model_mae"] == pytest.approx((0.8 + 2.0) * (1 + 1 / 24) / 2, abs=1e-3)
    # The model's own forecast, scored whether or not served (seeded 10% above the served one).
    assert first["api_mae"] == pytest.approx((0.8 + 2.0) * (1 + 1 / 24) / 2 * 1.1, abs=2e-3)
    assert body["band_level"] == 0.9

    one = api.get("/api/forecast-quality", params={"window": "24h", "region": "dakar"}).json()
    assert one["region_id"] == "dakar" and one["by_lead"][0]["count"] == 20
    week = api.get("/api/forecast-quality", params={"window": "7d"}).json()
    assert [r["region_id"] for r in week["regions"]] == ["thies"]
    bad = api.get("/api/forecast-quality", params={"window": "1y"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "window"


def test_forecast_quality_is_empty_before_any_skill(api):
    body = api.get("/api/forecast-quality").json()
    assert body["by_lead"] == [] and body["regions"] == [] and body["band_level"] is None
