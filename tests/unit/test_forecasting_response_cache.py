"""The forecasting API's response cache: an identical repeat of a request (same path, same body
bytes) is answered from the bytes of its kept answer, and that answer is the one the normal path
would give (every forecast from the forecast cache). Fake fits in the real worker pool."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from pydantic import SecretStr

from forecasting_api.app import create_app
from forecasting_api.engine import Forecaster
from tests.fakes import fits
from tests.fakes.temperature_series import as_points, daily_cycle

KEY = "test-forecast-key-0123456789"


def series(seed: int, hours: int = 48, **extra) -> dict:
    return {"latitude": 14.69, "longitude": -17.44, "region_id": f"r{seed}",
            "data": as_points(daily_cycle(hours, seed=seed)), **extra}


def raw(payload: dict) -> bytes:
    return json.dumps(payload).encode()


def app_with(test_settings, **update):
    settings = test_settings.model_copy(update=dict(forecast_workers=1, forecast_timeout_seconds=1.0, **update))
    return create_app(settings, forecaster=Forecaster(settings, fit=fits.warm_echo, initializer=fits.no_init))


@pytest.fixture(scope="module")
def client(test_settings):
    with TestClient(app_with(test_settings)) as test_client:
        yield test_client


def post(client, path: str, body: bytes, **headers):
    return client.post(path, content=body, headers={"Content-Type": "application/json", **headers})


def counts(client) -> tuple[int, int]:
    health = client.get("/health").json()
    return health["response_cache"]["hits"], health["fits"]


def test_an_identical_repeat_gets_what_the_forecast_cache_would_answer(client):
    body = raw({"series": [series(1), series(2), {"latitude": "north"}]})
    first = post(client, "/predict/batch", body)
    assert first.status_code == 200, first.text
    assert [item["status"] for item in first.json()["results"]] == ["ok", "ok", "error"]
    assert not any(item["forecast"]["model"]["cached"] for item in first.json()["results"][:2])
    hits, fits_before = counts(client)

    repeat = post(client, "/predict/batch", body)
    assert counts(client) == (hits + 1, fits_before)  # answered whole, without a fit
    client.app.state.response_cache.clear()
    normal = post(client, "/predict/batch", body)  # the normal path: parsed, validated, forecast cache
    assert counts(client) == (hits + 1, fits_before)
    assert repeat.json() == normal.json()
    assert repeat.headers["content-type"] == "application/json"
    assert all(item["forecast"]["model"]["cached"] and not item["forecast"]["model"]["warm_started"]
               for item in repeat.json()["results"][:2])
    assert repeat.json()["results"][2] == first.json()["results"][2]  # the input's own error repeats


def test_the_key_is_the_exact_bytes_and_the_path(client):
    payload = series(3)
    assert post(client, "/predict", raw(payload)).status_code == 200
    hits, _ = counts(client)
    assert post(client, "/predict", raw(payload) + b" ").status_code == 200  # same JSON, other bytes
    assert post(client, "/predict/batch", raw({"series": [payload]})).status_code == 200
    assert counts(client)[0] == hits
    assert post(client, "/predict", raw(payload)).status_code == 200
    assert counts(client)[0] == hits + 1


def test_an_answer_with_a_failed_forecast_is_asked_again(client):
    hanging = series(4)
    hanging["data"][0]["y"] = fits.HANG
    body = raw({"series": [hanging, series(5)]})
    for _ in range(2):
        results = post(client, "/predict/batch", body).json()["results"]
        assert [r["status"] for r in results] == ["error", "ok"] and "cancelled" in results[0]["error"]["message"]
    assert client.get("/health").json()["timeouts"] >= 2  # the second was a fit again, not a kept answer


def test_a_refused_request_is_never_kept(client):
    body = raw(series(6, hours=3))  # too few points: 422
    hits, _ = counts(client)
    for _ in range(2):
        assert post(client, "/predict", body).status_code == 422
    assert counts(client)[0] == hits


def test_a_kept_answer_still_needs_the_key(test_settings):
    with TestClient(app_with(test_settings, forecast_api_key=SecretStr(KEY))) as keyed:
        body = raw(series(7))
        assert post(keyed, "/predict", body, **{"X-API-Key": KEY}).status_code == 200
        assert post(keyed, "/predict", body, **{"X-API-Key": KEY}).status_code == 200
        assert keyed.get("/health").json()["response_cache"]["hits"] == 1
        assert post(keyed, "/predict", body).status_code == 401
        assert post(keyed, "/predict", body, **{"X-API-Key": KEY[:-1] + "x"}).status_code == 401


def test_size_zero_turns_it_off(test_settings):
    with TestClient(app_with(test_settings, forecast_response_cache_size=0)) as client:
        body = raw(series(8))
        for _ in range(2):
            assert post(client, "/predict", body).status_code == 200
        health = client.get("/health").json()
        assert health["response_cache"]["hits"] == 0 and health["cache"]["hits"] == 1


ENTRY = st.one_of(
    st.builds(lambda seed, hours: series(seed, hours), st.integers(10, 14), st.sampled_from([24, 48])),
    st.builds(lambda seed: series(seed, hours=2), st.integers(10, 14)),  # too few points: an item error
    st.dictionaries(st.sampled_from(["latitude", "data", "region_id"]), st.one_of(st.none(), st.text(max_size=5)),
                    max_size=3),
)


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(ENTRY, min_size=1, max_size=4), path=st.sampled_from(["/predict/batch", "/predict"]))
def test_a_repeat_always_equals_the_normal_paths_answer(client, entries, path):
    body = raw({"series": entries} if path.endswith("batch") else entries[0])
    first = post(client, path, body)
    repeat = post(client, path, body)
    client.app.state.response_cache.clear()
    normal = post(client, path, body)
    assert first.status_code == repeat.status_code == normal.status_code
    assert repeat.json() == normal.json()
