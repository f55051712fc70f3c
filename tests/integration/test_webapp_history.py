"""The daily history routes against the real FerretDB, over daily statistics written by the
streaming job's own sinks (observations, then DailyStatsSink)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from meteoflow.contracts import RegionHistoryResponse, YesterdayResponse
from meteoflow.mongo import database, make_mongo_client
from streaming.daily import DailyStatsSink
from streaming.sinks import ObservationSink
from tests.fakes.observations import simulated_observations
from webapp.app import create_app

pytestmark = pytest.mark.integration
NOW = datetime(2026, 6, 10, 12, tzinfo=timezone.utc)
MIDNIGHT = NOW.replace(hour=0)


@pytest.fixture
def api(isolated):
    client = make_mongo_client(isolated)
    db = database(isolated, client)
    # 7, 8 and 9 June for three regions, and one day of Dakar six weeks earlier (in 1y, not in 30d).
    observations = (simulated_observations(regions=3, hours=72, per_hour=2, end=MIDNIGHT)
                    + simulated_observations(regions=1, hours=3, per_hour=1, end=datetime(2026, 5, 1, 6, tzinfo=timezone.utc)))
    ObservationSink(db).write(observations, NOW)
    DailyStatsSink(db).write(observations, NOW)
    with TestClient(create_app(isolated, clock=lambda: NOW)) as http:
        yield http, observations
    client.drop_database(isolated.mongo_db)
    client.close()


@pytest.mark.parametrize("window, first, days", [("7d", "2026-06-04", 3), ("30d", "2026-05-12", 3), ("1y", "2025-06-11", 4)])
def test_region_history_over_each_window(api, window, first, days):
    http, observations = api
    body = RegionHistoryResponse.model_validate(http.get("/api/regions/dakar/history", params={"window": window}).json())
    assert (body.window, body.start, body.end) == (window, first, "2026-06-10")
    assert len(body.days) == days and [d.day for d in body.days] == sorted(d.day for d in body.days)
    june8 = [o.temp for o in observations if o.region_id == "dakar" and o.observed_at.day == 8 and o.observed_at.month == 6]
    (day,) = [d for d in body.days if d.day == "2026-06-08"]
    assert (day.temp_min, day.temp_max, day.count) == (min(june8), max(june8), len(june8))
    assert day.precipitation_mm == 0 and day.precipitation_hours == 0  # the simulated records carry no rain


def test_yesterday_lists_every_region(api):
    http, _ = api
    body = YesterdayResponse.model_validate(http.get("/api/history/yesterday").json())
    assert body.day == "2026-06-09"
    assert [r.region_id for r in body.regions] == ["dakar", "saint-louis", "thies"]
    assert all(r.day == "2026-06-09" and r.count == 48 for r in body.regions)


def test_unknown_region_and_bad_window_are_refused(api):
    http, _ = api
    assert http.get("/api/regions/nowhere/history").status_code == 404
    response = http.get("/api/regions/dakar/history", params={"window": "2y"})
    assert response.status_code == 422 and "window" in response.text
