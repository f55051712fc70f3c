"""Per-lead selection by tracked skill against the real FerretDB and the real forecasting API: at the
leads where a region's forecast_skill says persistence beats the model's own forecast, persistence is
served (labelled so in forecasts and forecast_runs, the change logged with its figures) while the
model's forecast is still asked for and kept; another region keeps the model everywhere."""

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


def seeded_skill(region: str, api_mae: float, persistence_mae: float, now: datetime,
                 leads: range = range(1, 25)) -> list[dict]:
    """7 d skill documents with 20 scored pairs of the API's own forecast at each of `leads`."""
    return [ForecastSkill(
        _id=ForecastSkill.make_id(region, "7d", lead), region_id=region, window="7d", lead_hours=lead, count=20,
        model_mae=api_mae, model_bias=0.0, persistence_mae=persistence_mae, persistence_bias=0.0,
        climatology_mae=None, climatology_bias=None, coverage=0.9, band_level=0.95, updated_at=now,
        api_count=20, api_mae=api_mae, api_bias=0.0).to_document()
        for lead in leads]


class RecordingClient(ForecastClient):
    """The real client (real HTTP to the real API) that also remembers which regions it was asked about."""

    def __init__(self, settings):
        super().__init__(settings)
        self.asked: list[str] = []

    def predict_batch(self, series):
        self.asked += [body["region_id"] for body in series]
        return super().predict_batch(series)


def test_persistence_is_served_at_the_leads_where_its_skill_beats_the_models(db, isolated,  # noqa: F811
                                                                                forecasting_api, caplog):
    settings = isolated.model_copy(update=dict(
        forecast_api_url_override=forecasting_api, forecast_api_key=SecretStr(API_KEY), forecast_horizon_hours=6,
        forecast_timeout_seconds=120, forecast_skill_min_pairs=12,
        forecast_refit_min_seconds=0))  # each refresh below refits the same data, under a new skill
    now = datetime.now(timezone.utc)
    end = now.replace(minute=0, second=0, microsecond=0) - HOUR
    history = simulated_observations(regions=2, hours=30, per_hour=1, end=end)  # dakar, thies
    store(db, history)
    # dakar: persistence far better than the model at 1-3 h, far worse after; thies: the model everywhere.
    db[FORECAST_SKILL].insert_many(seeded_skill("dakar", 3.0, 0.5, now, range(1, 4))
                                   + seeded_skill("dakar", 0.8, 2.5, now, range(4, 25))
                                   + seeded_skill("thies", 0.8, 2.5, now))

    client = RecordingClient(settings)
    refresher = ForecastRefresher(db, settings, client=client, clock=lambda: now)
    refresher.mark(latest_per_region(history))
    with caplog.at_level(logging.INFO, logger="streaming.forecasts"):
        outcome = refresher.refresh()
    assert sorted(outcome.ok) == ["dakar", "thies"] and not (outcome.failed or outcome.errors)

    # Both went to the forecasting API: the model's forecast is kept (and scored) where it is not served.
    assert sorted(client.asked) == ["dakar", "thies"]
    label = models_thies_label(db)
    assert len(label) == 1 and label != {"persistence"}  # the API's label (climatology on 30 h of history)
    dakar = sorted(db[FORECASTS].find({"region_id": "dakar"}), key=lambda f: f["target_time"])
    assert [f["model"] for f in dakar] == ["persistence"] * 3 + [next(iter(label))] * 3
    assert len({f["yhat"] for f in dakar[:3]}) == 1  # persistence: the last observed hour's value
    runs = {r.region_id: r for r in valid_documents(ForecastRun, db[FORECAST_RUNS].find())}
    assert {r: run.model for r, run in runs.items()} == {"dakar": next(iter(label)), "thies": next(iter(label))}
    dakar_run = runs["dakar"]
    assert [p.model for p in dakar_run.points] == [f["model"] for f in dakar]
    assert all(p.api_yhat is not None for p in dakar_run.points)
    assert [p.api_yhat for p in dakar_run.points[3:]] == [p.yhat for p in dakar_run.points[3:]]
    switches = [r.getMessage() for r in caplog.records if "now serves" in r.getMessage()]
    assert len(switches) == 1 and "dakar" in switches[0] and "persistence at 1-3 h" in switches[0]
    assert "0.50" in switches[0] and "3.00" in switches[0]

    # The next refresh keeps the plan and logs no new switch.
    caplog.clear()
    refresher.mark(latest_per_region(history))
    with caplog.at_level(logging.INFO, logger="streaming.forecasts"):
        refresher.refresh()
    assert [f["model"] for f in sorted(db[FORECASTS].find({"region_id": "dakar"}), key=lambda f: f["target_time"])][:3] \
        == ["persistence"] * 3
    assert not [r for r in caplog.records if "now serves" in r.getMessage()]

    # Once the model's own skill beats persistence at those leads too, the next refresh serves it there:
    # no trial period, the model was scored all along.
    db[FORECAST_SKILL].delete_many({"region_id": "dakar"})
    db[FORECAST_SKILL].insert_many(seeded_skill("dakar", 0.5, 1.0, now))
    caplog.clear()
    refresher.mark(latest_per_region(history))
    with caplog.at_level(logging.INFO, logger="streaming.forecasts"):
        refresher.refresh()
    assert {f["model"] for f in db[FORECASTS].find({"region_id": "dakar"})} == label
    switches = [r.getMessage() for r in caplog.records if "now serves" in r.getMessage()]
    assert len(switches) == 1 and "the model at every lead (before: persistence at 1-3 h" in switches[0]


def models_thies_label(database) -> set[str]:
    """What the forecasting API labels its own forecasts (thies is served the model throughout)."""
    return {f["model"] for f in database[FORECASTS].find({"region_id": "thies"})}
