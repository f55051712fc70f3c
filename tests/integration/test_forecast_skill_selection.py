"""Per-region selection by tracked skill against the real FerretDB and the real forecasting API:
a region whose forecast_skill says persistence beats the served forecast is served persistence
(forecasts and forecast_runs labelled so, the switch logged with its figures); another keeps the model."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import SecretStr

from meteoflow.contracts import FORECAST_RUNS, FORECAST_SKILL, FORECASTS, ForecastRun, ForecastSkill, valid_documents
from streaming.forecasts import ForecastClient, ForecastRefresher
from streaming.records import latest_per_region
from tests.fakes.observations import simulated_observations
from tests.integration.test_forecast_history_skill import db, store  # noqa: F401 - the real store fixture
from tests.integration.test_streaming_real_api import API_KEY, forecasting_api  # noqa: F401 - the real API fixture

pytestmark = pytest.mark.integration
HOUR = timedelta(hours=1)


def seeded_skill(region: str, model_mae: float, persistence_mae: float, now: datetime) -> list[dict]:
    return [ForecastSkill(
        _id=ForecastSkill.make_id(region, "7d", lead), region_id=region, window="7d", lead_hours=lead, count=3,
        model_mae=model_mae, model_bias=0.0, persistence_mae=persistence_mae, persistence_bias=0.0,
        climatology_mae=None, climatology_bias=None, coverage=0.9, band_level=0.95, updated_at=now).to_document()
        for lead in range(1, 25)]


class RecordingClient(ForecastClient):
    """The real client (real HTTP to the real API) that also remembers which regions it was asked about."""

    def __init__(self, settings):
        super().__init__(settings)
        self.asked: list[str] = []

    def predict_batch(self, series):
        self.asked += [body["region_id"] for body in series]
        return super().predict_batch(series)


def test_a_region_whose_skill_favours_persistence_is_served_persistence(db, isolated, forecasting_api,  # noqa: F811
                                                                         caplog):
    settings = isolated.model_copy(update=dict(
        forecast_api_url_override=forecasting_api, forecast_api_key=SecretStr(API_KEY), forecast_horizon_hours=6,
        forecast_timeout_seconds=120, forecast_skill_min_pairs=48))
    now = datetime.now(timezone.utc)
    end = now.replace(minute=0, second=0, microsecond=0) - HOUR
    history = simulated_observations(regions=2, hours=30, per_hour=1, end=end)  # dakar, thies
    store(db, history)
    # 72 scored pairs each: persistence far better than the served forecast at dakar, far worse at thies.
    db[FORECAST_SKILL].insert_many(seeded_skill("dakar", 3.0, 0.5, now) + seeded_skill("thies", 0.8, 2.5, now))

    client = RecordingClient(settings)
    refresher = ForecastRefresher(db, settings, client=client, clock=lambda: now)
    refresher.mark(latest_per_region(history))
    with caplog.at_level(logging.INFO, logger="streaming.forecasts"):
        outcome = refresher.refresh()
    assert sorted(outcome.ok) == ["dakar", "thies"] and not (outcome.failed or outcome.errors)

    # Only thies went to the forecasting API; it serves what the API answered (its own label).
    assert client.asked == ["thies"]
    models = {r: {f["model"] for f in db[FORECASTS].find({"region_id": r})} for r in ("dakar", "thies")}
    assert models["dakar"] == {"persistence"} and len(models["thies"]) == 1 and models["thies"] != {"persistence"}
    assert db[FORECASTS].count_documents({"region_id": "dakar"}) == 6
    dakar_values = {f["yhat"] for f in db[FORECASTS].find({"region_id": "dakar"})}
    assert len(dakar_values) == 1  # persistence: every target gets the last observed hour's value
    runs = {r.region_id: r.model for r in valid_documents(ForecastRun, db[FORECAST_RUNS].find())}
    assert runs == {"dakar": "persistence", "thies": next(iter(models["thies"]))}
    switches = [r.getMessage() for r in caplog.records if "switches" in r.getMessage()]
    assert len(switches) == 1 and "dakar" in switches[0] and "0.50" in switches[0] and "3.00" in switches[0]

    # The next refresh keeps the choice and logs no new switch.
    caplog.clear()
    refresher.mark(latest_per_region(history))
    with caplog.at_level(logging.INFO, logger="streaming.forecasts"):
        refresher.refresh()
    assert {f["model"] for f in db[FORECASTS].find({"region_id": "dakar"})} == {"persistence"}
    assert not [r for r in caplog.records if "switches" in r.getMessage()]

    # While persistence is served, the served forecast's MAE is persistence's: a tie keeps it, until
    # it has been served forecast_model_retrial_hours; then the model is served again, on trial.
    db[FORECAST_SKILL].delete_many({"region_id": "dakar"})
    db[FORECAST_SKILL].insert_many(seeded_skill("dakar", 0.5, 0.5, now))
    for hours_later, served in ((23, {"persistence"}), (24, None)):
        later = now + timedelta(hours=hours_later)
        refresher.clock = lambda: later
        client.asked.clear()
        caplog.clear()
        refresher.mark(latest_per_region(history))
        with caplog.at_level(logging.INFO, logger="streaming.forecasts"):
            refresher.refresh()
        models = {f["model"] for f in db[FORECASTS].find({"region_id": "dakar"})}
        switches = [r.getMessage() for r in caplog.records if "switches" in r.getMessage()]
        if served:
            assert models == served and "dakar" not in client.asked and not switches
        else:
            assert models == models_thies_label(db) and "dakar" in client.asked
            assert len(switches) == 1 and "from persistence to model" in switches[0] and "a trial of the model after 24 h" in switches[0]


def models_thies_label(database) -> set[str]:
    """What the forecasting API labels its own forecasts (thies is served the model throughout)."""
    return {f["model"] for f in database[FORECASTS].find({"region_id": "thies"})}
