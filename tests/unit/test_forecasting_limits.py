"""The forecasting API's limits, its bounded queue (429 + Retry-After), fits cancelled at their
timeout, and the optional API key. Fake fit functions (tests/fakes/fits.py) run in real worker
processes, without Prophet; the queue tests use an in-process pool whose fits the test finishes."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from concurrent.futures import Future

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

import meteoflow.auth
from forecasting_api.app import create_app
from forecasting_api.engine import Forecaster
from tests.fakes.temperature_series import as_points, daily_cycle
from forecasting_api.workers import CallTimedOut, WorkerPool, WorkerUnavailable
from meteoflow.settings import SettingsError, load_settings
from tests.faults.harness import wait_until
from tests.fakes import fits
from tests.fakes.prometheus import Scrape

# It only bounds the fits that never return, and each of those waits for it in full (three do). It
# counts from when a ready worker gets the call (not its start-up), and the fake fits answer in
# about a millisecond: 1 s is still hundreds of times what a quick call needs on a loaded machine.
TIMEOUT = 1.0


def body(seed: int = 1, hours: int = 48, **extra) -> dict:
    return {"latitude": 14.69, "longitude": -17.44, "data": as_points(daily_cycle(hours, seed=seed)), **extra}


def hanging(seed: int = 1) -> dict:
    request = body(seed)
    request["data"][0]["y"] = fits.HANG
    return request


def detail(response, status: int, field: str) -> str:
    assert response.status_code == status, response.text
    return next(d["message"] for d in response.json()["detail"] if d["field"] == field)


def fake_fit_app(settings, **update):
    settings = settings.model_copy(update=dict(forecast_workers=1, forecast_timeout_seconds=TIMEOUT, **update))
    return create_app(settings, forecaster=Forecaster(settings, fit=fits.instant, initializer=fits.no_init))


# --- the worker pool ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pool():
    workers = WorkerPool(1, timeout=TIMEOUT, initializer=fits.no_init)
    assert workers.wait_ready(60)
    yield workers
    workers.close()


def test_pool_answers_and_a_failing_call_leaves_the_worker_alive(pool):
    pid = pool.submit(fits.pid).result()
    assert pool.submit(fits.echo, 1, "two").result() == (1, "two")
    with pytest.raises(RuntimeError, match="ValueError: bad input"):
        pool.submit(fits.raises, "bad input").result()
    assert pool.submit(fits.pid).result() == pid


def test_a_call_past_the_timeout_is_cancelled_by_replacing_its_worker(pool):
    pid = pool.submit(fits.pid).result()
    restarts = pool.stats.restarts
    with pytest.raises(CallTimedOut, match=f"cancelled after {TIMEOUT:g} s"):
        pool.submit(fits.never_returns).result()
    assert pool.stats.timeouts >= 1 and pool.stats.restarts == restarts + 1
    new_pid = pool.submit(fits.pid).result()  # the next call succeeds, in a fresh process
    assert new_pid != pid


def test_a_worker_that_dies_is_replaced(pool):
    pid = pool.submit(fits.pid).result()
    with pytest.raises(WorkerUnavailable, match="exit code 3"):
        pool.submit(fits.exits, 3).result()
    assert pool.submit(fits.pid).result() != pid


def test_workers_run_at_the_lower_cpu_priority_they_are_given(pool):
    # Fits yield the cores to the pipeline (forecast_worker_nice); the server keeps its own priority.
    server = os.nice(0)
    niced = WorkerPool(1, timeout=TIMEOUT, initializer=fits.no_init, nice=5)
    try:
        assert niced.submit(fits.niceness).result(timeout=60) == min(19, server + 5)
    finally:
        niced.close()
    assert pool.submit(fits.niceness).result() == server and os.nice(0) == server


def test_a_worker_that_cannot_start_fails_its_calls_instead_of_hanging():
    broken = WorkerPool(1, timeout=TIMEOUT, initializer=fits.never_returns, startup_timeout=0.5)
    try:
        assert broken.wait_ready(60)
        with pytest.raises(WorkerUnavailable, match="did not start within 0.5 s"):
            broken.submit(fits.pid).result(timeout=60)
    finally:
        broken.close()


# --- cancellation through the API ------------------------------------------------------------------
def test_a_fit_that_never_returns_is_504_at_the_timeout_and_the_next_request_succeeds(test_settings):
    with TestClient(fake_fit_app(test_settings)) as client:
        message = detail(client.post("/predict", json=hanging()), 504, "data")
        assert f"forecast_timeout_seconds={TIMEOUT:g}" in message and "cancelled" in message
        response = client.post("/predict", json=body(seed=2))
        assert response.status_code == 200, response.text
        # In a batch the hanging series is its own error; the other is answered (by the new worker).
        batch = client.post("/predict/batch", json={"series": [hanging(seed=3), body(seed=4)]}).json()["results"]
        assert [r["status"] for r in batch] == ["error", "ok"]
        assert "cancelled" in batch[0]["error"]["message"] and batch[0]["error"]["field"] == "series[0].data"
        health = client.get("/health").json()
        assert health["timeouts"] == 2 and health["worker_restarts"] == 2 and health["in_flight"] == 0
        scraped = Scrape(client.get("/metrics").text)
        assert scraped.value("meteoflow_forecasting_api_fit_timeouts_total") == 2
        assert scraped.value("meteoflow_forecasting_api_worker_restarts_total") == 2


# --- size limits -----------------------------------------------------------------------------------
def test_points_and_series_over_their_limits_are_refused_naming_the_limit(test_settings):
    with TestClient(fake_fit_app(test_settings, forecast_max_points=48, forecast_max_batch_series=2)) as client:
        assert client.post("/predict", json=body(hours=48)).status_code == 200  # exactly the limit
        message = detail(client.post("/predict", json=body(hours=49)), 413, "data")
        assert message == "49 points; the limit is 48 per series (forecast_max_points)"
        results = client.post("/predict/batch", json={"series": [body(hours=49), body(hours=30)]}).json()["results"]
        assert [r["status"] for r in results] == ["error", "ok"]
        assert results[0]["error"] == {"field": "series[0].data", "message": message}
        three = {"series": [body(seed=n) for n in range(3)]}
        assert detail(client.post("/predict/batch", json=three), 413, "series") == (
            "3 series; the limit is 2 per batch (forecast_max_batch_series)")


def test_limit_settings_that_cannot_work_together_are_refused():
    with pytest.raises(SettingsError, match=r"forecast_max_pending_fits \(10\) must be at least "
                                            r"forecast_max_batch_series \(500\)"):
        load_settings(forecast_max_pending_fits=10)
    with pytest.raises(SettingsError, match=r"forecast_max_points \(100\) must be at least "
                                            r"forecast_history_days\*24\+1 \(169\)"):
        load_settings(forecast_max_points=100, forecast_history_days=7)
    assert load_settings(forecast_history_days=90).forecast_max_points >= 90 * 24 + 1  # the default fits


# --- the bounded queue ------------------------------------------------------------------------------
class HeldPool:
    """In-process stand-in for WorkerPool: every fit waits until the test releases it."""

    def __init__(self):
        self.calls: list[tuple[Future, tuple]] = []

    def submit(self, fn, *args) -> Future:
        future = Future()
        future.set_running_or_notify_cancel()
        self.calls.append((future, (fn, args)))
        return future

    def release(self) -> None:
        for future, (fn, args) in self.calls:
            if not future.done():
                future.set_result(fn(*args))

    def wait_ready(self, timeout=None) -> bool:
        return True

    def close(self) -> None:
        self.release()


def test_queue_full_is_429_with_retry_after_and_frees_up_when_fits_finish(test_settings):
    settings = test_settings.model_copy(update=dict(forecast_workers=1, forecast_max_pending_fits=2))
    held = HeldPool()
    forecaster = Forecaster(settings, fit=fits.instant, pool=held)
    with TestClient(create_app(settings, forecaster=forecaster)) as client:
        # A forecast in the cache first: it needs no fit, so a full queue does not refuse it.
        cached = body(seed=9)
        first = threading.Thread(target=client.post, args=("/predict",), kwargs={"json": cached})
        first.start()
        wait_until(lambda: len(held.calls) == 1, 30, "the first fit started", every=0.01)
        held.release()
        first.join()

        answers: list = []
        waiting = [threading.Thread(target=lambda s=s: answers.append(client.post("/predict", json=body(seed=s))))
                   for s in (1, 2)]
        for thread in waiting:
            thread.start()
        wait_until(lambda: forecaster.stats()["in_flight"] == 2, 30, "two fits pending", every=0.01)

        refused = client.post("/predict", json=body(seed=3))
        message = detail(refused, 429, "request")
        assert "2 fits are pending and this request needs 1 more; the limit is 2 (forecast_max_pending_fits)" in message
        assert int(refused.headers["Retry-After"]) >= 1
        batch = client.post("/predict/batch", json={"series": [body(seed=4), cached]})  # whole batch or nothing
        assert batch.status_code == 429 and int(batch.headers["Retry-After"]) >= 1
        assert len(held.calls) == 3  # neither started a fit
        hit = client.post("/predict", json=cached)
        assert hit.status_code == 200 and hit.json()["model"]["cached"] is True

        held.release()
        for thread in waiting:
            thread.join()
        assert [a.status_code for a in answers] == [200, 200]
        accepted = threading.Thread(target=lambda: answers.append(client.post("/predict", json=body(seed=3))))
        accepted.start()
        wait_until(lambda: len(held.calls) == 4, 30, "the refused request's fit started once there was room",
                   every=0.01)
        held.release()
        accepted.join()
        assert answers[-1].status_code == 200
        health = client.get("/health").json()
        assert health["rejected"] == 2 and health["max_pending"] == 2
        scraped = Scrape(client.get("/metrics").text)
        assert scraped.value("meteoflow_forecasting_api_rejected_total") == 2
        assert scraped.value("meteoflow_forecasting_api_http_requests_total", method="POST", route="/predict",
                             status="429") == 1


# --- API key ---------------------------------------------------------------------------------------
KEY = "test-forecast-key-0123456789"


@pytest.fixture(scope="module")
def keyed(test_settings):
    settings = test_settings.model_copy(update=dict(forecast_api_key=SecretStr(KEY), forecast_workers=1))
    forecaster = Forecaster(settings, fit=fits.instant, initializer=fits.no_init)
    with TestClient(create_app(settings, forecaster=forecaster)) as client:
        yield client


@pytest.mark.parametrize("method, path", [("POST", "/predict"), ("POST", "/predict/batch"), ("GET", "/metrics")])
def test_every_endpoint_but_health_needs_the_key(keyed, method, path):
    payload = {"series": [body()]} if path.endswith("batch") else body()
    kwargs = {"json": payload} if method == "POST" else {}
    assert "no API key" in detail(keyed.request(method, path, **kwargs), 401, "X-API-Key")
    wrong = keyed.request(method, path, headers={"X-API-Key": KEY[:-1] + "x"}, **kwargs)
    assert "wrong" in detail(wrong, 401, "X-API-Key") and wrong.headers["WWW-Authenticate"] == "Bearer"
    assert keyed.request(method, path, headers={"X-API-Key": KEY}, **kwargs).status_code == 200
    assert keyed.request(method, path, headers={"Authorization": f"Bearer {KEY}"}, **kwargs).status_code == 200


def test_health_and_the_api_description_stay_open(keyed):
    assert keyed.get("/health").status_code == 200
    schema = keyed.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKeyHeader"] == {"type": "apiKey", "in": "header",
                                                                      "name": "X-API-Key"}
    assert keyed.get("/docs").status_code == 200


def test_the_key_is_compared_in_constant_time_and_never_logged(keyed, monkeypatch, caplog):
    compared = []

    def spy(a, b):
        compared.append((a, b))
        return a == b

    monkeypatch.setattr(meteoflow.auth.hmac, "compare_digest", spy)  # the shared check (meteoflow.auth)
    caplog.set_level(logging.DEBUG)
    assert keyed.post("/predict", json=body(seed=5), headers={"X-API-Key": KEY}).status_code == 200
    assert keyed.post("/predict", json=body(seed=5), headers={"X-API-Key": "guess"}).status_code == 401
    key_digest = hashlib.sha256(KEY.encode()).digest()
    assert compared == [(key_digest, key_digest), (hashlib.sha256(b"guess").digest(), key_digest)]
    assert caplog.records and KEY not in caplog.text
    assert KEY not in repr(keyed.app.state.forecaster.__dict__)
    with pytest.raises(SettingsError) as refused:
        load_settings(forecast_api_key=KEY, forecast_max_pending_fits=1)
    assert KEY not in str(refused.value)


# --- warm-start memory ---------------------------------------------------------------------------------
def test_warm_start_parameters_are_kept_per_region_in_a_bounded_lru(test_settings):
    settings = test_settings.model_copy(update=dict(forecast_workers=1, forecast_warm_start_regions=2))
    forecaster = Forecaster(settings, fit=fits.warm_echo, initializer=fits.no_init)
    with TestClient(create_app(settings, forecaster=forecaster)) as client:
        def ask(region: str | None, seed: int) -> dict:
            response = client.post("/predict", json={**body(seed=seed), "region_id": region})
            assert response.status_code == 200, response.text
            return response.json()["model"]

        assert ask("a", 1)["warm_started"] is False  # nothing kept yet
        assert ask("a", 2)["warm_started"] is True  # the first fit's parameters
        kept = forecaster.warm.get("a")  # the second fit's parameters; it was sent the first's, which got none
        assert kept["received"] is not None and kept["received"]["received"] is None
        ask("b", 3)
        ask("c", 4)  # a third region: the least recently used ("a") is forgotten
        assert client.get("/health").json()["warm_regions"] == 2
        assert ask("a", 5)["warm_started"] is False
        assert ask(None, 6)["warm_started"] is False  # without a region id there is nothing to start from
