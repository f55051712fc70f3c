"""Schemathesis against the API's own OpenAPI document, over a live uvicorn on 127.0.0.1:
generated valid and invalid requests never get a 5xx, and responses match the documented schemas."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from forecasting_api.app import create_app


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(test_settings):
    host = test_settings.bind_host
    settings_ = test_settings.model_copy(update=dict(forecast_workers=2, forecast_max_body_bytes=100_000,
                                                     forecast_api_port=free_port(host)))
    server = uvicorn.Server(uvicorn.Config(create_app(settings_), host=host, port=settings_.forecast_api_port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://{host}:{settings_.forecast_api_port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_generated_requests_never_get_a_server_error(base_url):
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [schema[path][method] for path, method in
                  (("/predict", "POST"), ("/predict/batch", "POST"), ("/health", "GET"))]
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    strategy = st.one_of(*(op.as_strategy(generation_mode=mode) for op in operations for mode in modes))
    seen: dict[str, int] = {}

    @given(case=strategy)
    @settings(max_examples=60, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call(base_url=base_url)
        seen[f"{case.method} {case.path} {response.status_code}"] = seen.get(
            f"{case.method} {case.path} {response.status_code}", 0) + 1
        case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                 response_schema_conformance])

    run()
    print(seen)
    # The run really exercised the service: every operation was called, and bad input was rejected.
    assert {key.rsplit(" ", 1)[0] for key in seen} == {"POST /predict", "POST /predict/batch", "GET /health"}
    assert any(key.endswith(" 422") for key in seen)
