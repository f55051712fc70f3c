"""The streaming job against the real forecasting API (`python -m forecasting_api`, Prophet)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from pydantic import SecretStr

from meteoflow.contracts import FORECAST_STATE, FORECASTS
from meteoflow.kafka import make_producer
from meteoflow.mongo import database, make_mongo_client
from meteoflow.settings import REPO_ROOT
from streaming.job import run_until_idle
from tests.fakes.observations import recompute_hourly_stats, simulated_observations, stored_hourly_stats
from tests.fakes.prometheus import scrape

pytestmark = pytest.mark.integration
log = logging.getLogger("test-streaming-real-api")
API_KEY = "integration-forecast-key"  # the API runs with a key: the streaming job must send it


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture
def forecasting_api(isolated, tmp_path):
    if not (REPO_ROOT / "forecasting_api" / "__main__.py").exists():
        pytest.skip("the forecasting API has no entry point yet")
    port = free_port(isolated.bind_host)
    env = dict(os.environ, METEOFLOW_FORECAST_API_PORT=str(port), METEOFLOW_TOPIC_LOGS=isolated.topic_logs,
               METEOFLOW_KAFKA_PORT=str(isolated.kafka_port), METEOFLOW_RUN_DIR=str(isolated.run_dir),
               METEOFLOW_FORECAST_API_KEY=API_KEY)
    with open(tmp_path / "forecasting_api.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "forecasting_api"], cwd=REPO_ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://{isolated.bind_host}:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "forecasting_api.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "forecasting API did not become healthy"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_forecasts_from_the_real_api_follow_the_last_observation(isolated, spark, forecasting_api, tmp_path):
    settings = isolated.model_copy(update=dict(forecast_api_url_override=forecasting_api, forecast_horizon_hours=12,
                                               forecast_timeout_seconds=120, forecast_api_key=SecretStr(API_KEY)))
    observations = simulated_observations(regions=2, hours=72, per_hour=1)
    producer = make_producer(settings, client_id="test-streaming")
    for obs in observations:
        producer.send(settings.topic_observations, key=obs.key, value=obs.to_message())
    producer.flush(timeout=30)
    producer.close(timeout=5)

    lines = run_until_idle(settings, spark, log)

    client = make_mongo_client(settings)
    db = database(settings, client)
    try:
        # Forecasts are off the write path: no batch waited for one; the job refreshed them at the end.
        assert lines and sum(line.forecast.ok for line in lines) == 0
        assert stored_hourly_stats(db) == recompute_hourly_stats(observations)
        states = {s["_id"]: s for s in db[FORECAST_STATE].find()}
        assert {r: (s["status"], s["needs_forecast"]) for r, s in states.items()} == {
            "dakar": ("ok", False), "thies": ("ok", False)}
        for region in ("dakar", "thies"):
            last = max(o.observed_at for o in observations if o.region_id == region)
            forecasts = sorted(db[FORECASTS].find({"region_id": region}), key=lambda f: f["target_time"])
            assert len(forecasts) == 12
            assert forecasts[0]["target_time"] > last
            for f in forecasts:
                assert f["yhat_lower"] <= f["yhat"] <= f["yhat_upper"]
                assert 10 < f["yhat"] < 40  # the simulated daily cycle is 21..31 C
        # The API's own /metrics (the real process, its service registry) saw those forecasts.
        with pytest.raises(urllib.error.HTTPError, match="401"):  # the key guards /metrics too
            scrape(f"{forecasting_api}/metrics")
        scraped = scrape(f"{forecasting_api}/metrics", headers={"Authorization": f"Bearer {API_KEY}"})
        assert scraped.value("meteoflow_build_info", service="forecasting_api") == 1.0
        assert scraped.value("meteoflow_forecasting_api_http_requests_total", method="POST", route="/predict/batch",
                             status="200") >= 1
        assert scraped.value("meteoflow_forecasting_api_forecasts_total", outcome="ok") >= 2
        assert scraped.value("meteoflow_forecasting_api_fits_total") >= 2
        assert scraped.value("meteoflow_forecasting_api_worker_restarts_total") == 0
        # The key is never logged, by the API (its output and its log file) or by the streaming job.
        logs = [tmp_path / "forecasting_api.log", *(isolated.run_dir / "logs").glob("*.log*")]
        assert logs[0].read_text() and not [p for p in logs if p.is_file() and API_KEY in p.read_text(errors="replace")]
        assert not [line for line in lines if API_KEY in str(line)]
    finally:
        client.drop_database(settings.mongo_db)
        client.close()
