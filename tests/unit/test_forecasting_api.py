"""The forecasting API through HTTP (FastAPI TestClient, real Prophet fits in the real worker pool)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from forecasting_api.app import create_app
from tests.fakes.prometheus import Scrape
from tests.fakes.temperature_series import as_points, daily_cycle

HISTORY = 168  # 7 days, what the streaming job sends (forecast_history_days)
HORIZON = 24


@pytest.fixture(scope="module")
def client(test_settings):
    settings = test_settings.model_copy(update=dict(forecast_workers=2, forecast_max_body_bytes=200_000))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def body(seed: int = 1, hours: int = HISTORY, **extra) -> dict:
    return {"latitude": 14.69, "longitude": -17.44, "data": as_points(daily_cycle(hours, seed=seed)), **extra}


def health(client) -> dict:
    response = client.get("/health")
    assert response.status_code == 200
    return response.json()


def assert_named(response, status: int, field: str) -> str:
    assert response.status_code == status, response.text
    details = response.json()["detail"]
    assert any(d["field"] == field for d in details), details
    return next(d["message"] for d in details if d["field"] == field)


# --- forecast quality -------------------------------------------------------------------------
def test_forecast_beats_persistence_and_band_holds_truth(client):
    mae_ratio, coverages = [], []
    for seed in (11, 12, 13):
        full = daily_cycle(HISTORY + HORIZON, seed=seed)
        history, truth = full[:HISTORY], [value for _, value in full[HISTORY:]]
        response = client.post("/predict", json={"latitude": 14.7, "longitude": -17.4, "region_id": f"r{seed}",
                                                  "data": as_points(history), "horizon_hours": HORIZON})
        assert response.status_code == 200, response.text
        result = response.json()
        predictions = result["predictions"]
        # the horizon's hourly steps, strictly after the last input timestamp
        expected_times = [history[-1][0] + timedelta(hours=h) for h in range(1, HORIZON + 1)]
        assert [datetime.fromisoformat(p["timestamp"]) for p in predictions] == expected_times
        assert all(p["lower"] <= p["temperature"] <= p["upper"] for p in predictions)
        assert result["region_id"] == f"r{seed}"
        assert result["model"]["seasonalities"] == ["daily"]  # 7 days: no weekly, no yearly
        assert result["model"]["points_used"] == HISTORY

        model_mae = sum(abs(p["temperature"] - t) for p, t in zip(predictions, truth)) / HORIZON
        persistence_mae = sum(abs(history[-1][1] - t) for t in truth) / HORIZON
        assert model_mae < persistence_mae, (seed, model_mae, persistence_mae)
        mae_ratio.append(model_mae / persistence_mae)
        coverages.append(sum(p["lower"] <= t <= p["upper"] for p, t in zip(predictions, truth)) / HORIZON)
    assert all(c >= 0.7 for c in coverages), coverages
    print(f"MAE / persistence MAE: {[round(r, 2) for r in mae_ratio]}; band coverage: {coverages}")


def test_same_input_gives_the_same_forecast_after_a_refit(client):
    request = body(seed=21)
    first = client.post("/predict", json=request).json()
    client.app.state.forecaster.cache.clear()
    client.app.state.response_cache.clear()
    fits_before = health(client)["fits"]
    second = client.post("/predict", json=request).json()
    assert second["model"]["cached"] is False and health(client)["fits"] == fits_before + 1
    assert second["predictions"] == first["predictions"]


def test_ancestor_body_shape_is_accepted(client):
    # The ancestor's client sent only latitude, longitude and data, to /predict/ with a slash.
    response = client.post("/predict/", json=body(seed=3))
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == HORIZON and {"timestamp", "temperature"} <= set(predictions[0])


def test_weekly_seasonality_with_two_weeks_and_duplicates_reported(client):
    request = body(seed=4, hours=14 * 24 + 1)
    request["data"].insert(10, dict(request["data"][9], y=request["data"][9]["y"] + 1))
    response = client.post("/predict", json={**request, "horizon_hours": 6})
    assert response.status_code == 200, response.text
    model = response.json()["model"]
    assert model["seasonalities"] == ["daily", "weekly"]
    assert model["duplicates_merged"] == 1 and model["points_used"] == 14 * 24 + 1
    assert len(response.json()["predictions"]) == 6


# --- validation ----------------------------------------------------------------------------------
def _with_point(index: int, **point) -> dict:
    request = body()
    request["data"][index] = {**request["data"][index], **point}
    return request


def _swapped(i: int) -> dict:
    request = body()
    request["data"][i], request["data"][i + 1] = request["data"][i + 1], request["data"][i]
    return request


VALIDATION_CASES = {
    "too few points": (body(hours=23), "data"),
    "y is a NaN string": (_with_point(3, y="NaN"), "data[3].y"),
    "y is an Infinity string": (_with_point(4, y="-Infinity"), "data[4].y"),
    "y is not a number": (_with_point(5, y="warm"), "data[5].y"),
    "y implausible": (_with_point(6, y=300.0), "data[6].y"),
    "ds unparseable": (_with_point(3, ds="not a time"), "data[3].ds"),
    "ds missing": (_with_point(2, ds=None), "data[2].ds"),
    "ds out of order": (_swapped(9), "data[10].ds"),
    "horizon zero": (body(horizon_hours=0), "horizon_hours"),
    "horizon too long": (body(horizon_hours=169), "horizon_hours"),
    "latitude out of range": (body(latitude=91), "latitude"),
    "data missing": ({"latitude": 1, "longitude": 1}, "data"),
}


@pytest.mark.parametrize("case", VALIDATION_CASES, ids=list(VALIDATION_CASES))
def test_invalid_request_is_422_naming_the_field(client, case):
    request, field = VALIDATION_CASES[case]
    message = assert_named(client.post("/predict", json=request), 422, field)
    assert message


def test_bare_nan_in_json_is_422(client):
    # Python's json (and so a careless client) writes NaN, which is not JSON but is parsed by the server.
    raw = json.dumps(_with_point(7, y=float("nan")))
    assert "NaN" in raw
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert "finite" in assert_named(response, 422, "data[7].y")


def test_non_json_body_is_422(client):
    response = client.post("/predict", content=b"{latitude: 1", headers={"content-type": "application/json"})
    assert "JSON" in assert_named(response, 422, "body")


def test_body_that_is_not_utf8_is_422(client):
    response = client.post("/predict", content=b'\xff\xfe{"a"', headers={"content-type": "application/json"})
    assert "JSON" in assert_named(response, 422, "body")


def test_unknown_path_keeps_the_error_shape(client):
    assert_named(client.get("/nowhere"), 404, "request")


def test_body_too_large_by_content_length_is_413(client):
    huge = {"latitude": 1, "longitude": 1, "data": [{"ds": "2024-01-01T00:00:00Z", "y": 1.0}] * 20_000}
    response = client.post("/predict", json=huge)
    assert "limit is 200000" in assert_named(response, 413, "body")


def test_body_too_large_without_content_length_is_413(client):
    def chunks():  # chunked upload: no Content-Length, the middleware must count the bytes
        yield b'{"latitude": 1, "longitude": 1, "data": ['
        for _ in range(10_000):
            yield b'{"ds": "2024-01-01T00:00:00Z", "y": 1.0},'
        yield b"]}"

    response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert_named(response, 413, "body")


# --- batch -----------------------------------------------------------------------------------------
def test_batch_with_one_bad_series_returns_the_others(client):
    bad = _with_point(12, ds="2024-99-99")
    response = client.post("/predict/batch", json={"series": [
        body(seed=31, region_id="dakar"), {**bad, "region_id": "thies"}, body(seed=32, region_id="kaolack"),
        {"latitude": "north", "longitude": 0, "data": "none", "region_id": "louga"},
    ]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["status"] for r in results] == ["ok", "error", "ok", "error"]
    assert [r["region_id"] for r in results] == ["dakar", "thies", "kaolack", "louga"]
    assert results[1]["error"]["field"] == "series[1].data[12].ds"
    assert results[3]["error"]["field"] == "series[3].latitude" and "more error" in results[3]["error"]["message"]
    assert len(results[0]["forecast"]["predictions"]) == HORIZON
    assert results[0]["forecast"]["predictions"] != results[2]["forecast"]["predictions"]


def test_batch_envelope_errors_are_422(client):
    assert_named(client.post("/predict/batch", json={"series": []}), 422, "series")
    assert_named(client.post("/predict/batch", json={"series": [1]}), 422, "series[0]")


# --- cache and concurrency ------------------------------------------------------------------------
def test_repeated_request_is_served_from_cache(client):
    request = body(seed=41)
    first = client.post("/predict", json=request).json()
    before = health(client)
    second = client.post("/predict", json={**request, "region_id": "other-name"}).json()
    after = health(client)
    assert first["model"]["cached"] is False and second["model"]["cached"] is True
    assert second["predictions"] == first["predictions"]
    assert second["region_id"] == "other-name"
    assert after["fits"] == before["fits"]  # no refit
    assert after["cache"]["hits"] == before["cache"]["hits"] + 1


def test_concurrent_requests_do_not_corrupt_the_cache(client):
    # Four regions at clearly different levels, each requested by three threads at once.
    levels = {"cold": -5.0, "mild": 10.0, "warm": 25.0, "hot": 40.0}
    requests = {}
    for n, (name, level) in enumerate(levels.items()):
        points = [(when, value - 25.0 + level) for when, value in daily_cycle(72, seed=50 + n)]
        requests[name] = {"latitude": 1, "longitude": 1, "region_id": name, "data": as_points(points)}
    fits_before = health(client)["fits"]
    answers: dict[str, list[dict]] = {name: [] for name in levels}
    errors = []

    def ask(name: str):
        try:
            response = client.post("/predict", json=requests[name])
            assert response.status_code == 200, response.text
            answers[name].append(response.json())
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(name,)) for name in levels for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert health(client)["fits"] == fits_before + len(levels)  # one fit per distinct series, however raced
    for name, level in levels.items():
        first, *others = answers[name]
        assert all(other["predictions"] == first["predictions"] for other in others)
        mean = sum(p["temperature"] for p in first["predictions"]) / HORIZON
        assert abs(mean - level) < 5, (name, mean)  # each answer belongs to its own series
        again = client.post("/predict", json=requests[name]).json()
        assert again["model"]["cached"] is True and again["predictions"] == first["predictions"]


# --- service endpoints -----------------------------------------------------------------------------
def test_health_and_docs(client):
    status = health(client)
    assert status["status"] == "ok" and status["version"]
    assert {"size", "capacity", "hits", "misses", "evictions"} <= set(status["cache"])
    assert status["workers"] == 2
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/predict", "/predict/batch", "/health"} <= set(paths)


def test_metrics_count_requests_per_route_forecasts_fits_and_cache_hits(client):
    def scrape():
        response = client.get("/metrics")
        assert response.status_code == 200
        return Scrape(response.text)

    before = scrape()
    request = body(seed=61)
    assert client.post("/predict", json=request).status_code == 200  # a fit
    assert client.post("/predict", json=request).status_code == 200  # the same body: from the response cache
    assert client.post("/predict", json=body(seed=62, hours=10)).status_code == 422  # too few points: an error
    assert client.post("/predict/batch", json={"series": [body(seed=61), {"latitude": "north"}]}).status_code == 200
    assert client.get("/nowhere/at/all").status_code == 404
    after = scrape()

    def grew(name, **labels):
        return (after.value(name, **labels) or 0) - (before.value(name, **labels) or 0)

    requests = "meteoflow_forecasting_api_http_requests_total"
    assert grew(requests, method="POST", route="/predict", status="200") == 2
    assert grew(requests, method="POST", route="/predict", status="422") == 1
    assert grew(requests, method="POST", route="/predict/batch", status="200") == 1
    assert grew(requests, method="GET", route="(unmatched)", status="404") == 1
    assert grew("meteoflow_forecasting_api_http_request_duration_seconds_count", method="POST", route="/predict") == 3
    assert grew("meteoflow_forecasting_api_forecasts_total", outcome="ok") == 3  # two /predict, one batch item
    assert grew("meteoflow_forecasting_api_forecasts_total", outcome="error") == 2
    assert grew("meteoflow_forecasting_api_fits_total") == 1
    assert grew("meteoflow_forecasting_api_cache_hits_total") == 1  # the batch's item (a body of its own)
    assert grew("meteoflow_forecasting_api_response_cache_hits_total") == 1
    assert after.value("meteoflow_forecasting_api_response_cache_entries") >= 1
    assert after.value("meteoflow_forecasting_api_workers") == 2
    assert after.value("meteoflow_forecasting_api_fits_in_flight") == 0
    assert "/nowhere" not in after.text  # raw paths never become labels


def test_slow_fit_is_504_alone_and_an_item_error_in_a_batch(test_settings):
    settings = test_settings.model_copy(update=dict(forecast_workers=1, forecast_timeout_seconds=0.001,
                                                    forecast_cache_size=0))
    with TestClient(create_app(settings)) as slow:
        assert_named(slow.post("/predict", json=body(seed=61)), 504, "data")
        response = slow.post("/predict/batch", json={"series": [body(seed=62), body(hours=5)]})
        assert response.status_code == 200
        first, second = response.json()["results"]
        assert first["status"] == "error" and first["error"]["field"] == "series[0].data"
        assert "forecast_timeout_seconds" in first["error"]["message"] and "cancelled" in first["error"]["message"]
        assert second["error"]["field"] == "series[1].data"
        status = health(slow)
        # Each Prophet fit past its timeout was stopped by replacing its worker, not left running.
        assert status["failures"] == 2 and status["timeouts"] == 2 and status["worker_restarts"] == 2


def test_model_failure_is_returned_not_raised():
    from forecasting_api.model import ModelConfig, forecast

    result = forecast((0, 3600), (1.0,), 3, ModelConfig())  # mismatched lengths: pandas refuses
    assert result["ok"] is False and "could not be fitted" in result["message"]
