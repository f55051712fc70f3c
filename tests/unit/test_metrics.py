"""meteoflow.metrics: the exporter of the loop services (off, on, port taken), the /metrics and
per-route request metrics of the FastAPI services, the health gauges, and the README naming
every metric. Expositions are parsed with prometheus_client's parser (tests/fakes/prometheus.py)."""

from __future__ import annotations

import logging
import re
import socket
from datetime import datetime, timedelta, timezone

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from elk.alerting.rules import RULE_MODELS
from meteoflow import metrics as m
from meteoflow.contracts import MetricSample
from meteoflow.settings import REPO_ROOT, SettingsError, load_settings
from tests.fakes.prometheus import Scrape, from_registry, scrape

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- settings ---------------------------------------------------------------------------------
def test_each_loop_service_has_its_own_metrics_port_and_0_turns_it_off():
    s = load_settings()
    ports = {service: getattr(s, setting) for service, setting in m.METRICS_PORT_SETTINGS.items()}
    assert ports == {"producer": 9191, "streaming": 9192, "shipper": 9193, "alerting": 9194}
    assert s.metrics_bind_host is None  # the exporters then bind METEOFLOW_BIND_HOST (127.0.0.1)
    assert load_settings(shipper_metrics_port=0).shipper_metrics_port == 0


@pytest.mark.parametrize("field, value, message", [
    ("producer_metrics_port", -1, "METEOFLOW_PRODUCER_METRICS_PORT=-1"),
    ("alerting_metrics_port", 70000, "METEOFLOW_ALERTING_METRICS_PORT=70000"),
    ("metrics_bind_host", "0.0.0.0 x", "METEOFLOW_METRICS_BIND_HOST='0.0.0.0 x'"),
])
def test_bad_metrics_settings_name_the_variable(field, value, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(**{field: value})


# --- the exporter of the loop services -----------------------------------------------------------
def test_service_registry_has_process_metrics_and_names_service_and_version():
    from meteoflow import __version__

    scraped = from_registry(m.service_registry("shipper"))
    assert scraped.value("meteoflow_build_info", service="shipper", version=__version__) == 1.0
    assert scraped.value("process_resident_memory_bytes") > 0  # Linux: from /proc
    assert scraped.value("python_info") == 1.0


def test_the_exporter_serves_the_registry_on_the_service_port_and_stops(caplog):
    port = free_port()
    registry = m.service_registry("shipper")
    shipper = m.ShipperMetrics(registry)
    shipper.consumed.labels("weather.observations").inc(3)
    caplog.set_level(logging.INFO, logger="metrics")
    with m.serve_metrics("shipper", load_settings(shipper_metrics_port=port), registry) as exporter:
        assert exporter.running and exporter.url == f"http://127.0.0.1:{port}/metrics"
        scraped = scrape(exporter.url)
        assert scraped.value("meteoflow_shipper_records_consumed_total", topic="weather.observations") == 3.0
        assert scraped.value("meteoflow_build_info", service="shipper") == 1.0
    assert f"Prometheus metrics on http://127.0.0.1:{port}/metrics" in caplog.text
    with pytest.raises(OSError):  # closed: nothing listens any more
        scrape(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_port_0_serves_nothing_and_says_so(caplog):
    caplog.set_level(logging.INFO, logger="metrics")
    exporter = m.serve_metrics("producer", load_settings(producer_metrics_port=0), CollectorRegistry())
    assert not exporter.running and exporter.url is None
    exporter.close()  # harmless
    assert "METEOFLOW_PRODUCER_METRICS_PORT=0" in caplog.text


def test_a_taken_port_is_an_error_naming_the_setting_and_the_service_goes_on(caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="metrics"):
            exporter = m.serve_metrics("streaming", load_settings(streaming_metrics_port=port), CollectorRegistry())
    assert not exporter.running
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"METEOFLOW_STREAMING_METRICS_PORT={port}" in line and f"127.0.0.1:{port}" in line
    assert "goes on without /metrics" in line
    # The metric set still records (into a registry nobody serves): instrumented code never branches.
    m.StreamingMetrics().batches.inc()


def test_the_metrics_bind_host_overrides_the_bind_host():
    port = free_port()
    settings = load_settings(alerting_metrics_port=port, metrics_bind_host="127.0.0.1", bind_host="localhost")
    with m.serve_metrics("alerting", settings, CollectorRegistry()) as exporter:
        assert exporter.url == f"http://127.0.0.1:{port}/metrics"
        assert scrape(exporter.url).samples == []


# --- FastAPI: /metrics and requests per route template ---------------------------------------------
def small_app() -> tuple[FastAPI, m.HttpMetrics]:
    app = FastAPI()
    http = m.HttpMetrics("webapp")
    m.instrument_app(app, http)

    @app.get("/api/regions/{region_id}")
    def region(region_id: str):
        if region_id == "boom":
            raise RuntimeError("unexpected")
        if region_id == "nowhere":
            raise HTTPException(404, "unknown region")
        return {"region_id": region_id}

    @app.get("/{path:path}")  # a catch-all like the web app's SPA fallback
    def spa(path: str):
        return {"page": path}

    return app, http


def test_requests_are_counted_per_route_template_and_status_never_per_raw_path():
    app, _ = small_app()
    with TestClient(app, raise_server_exceptions=False) as client:
        for region in ("dakar", "thies", "nowhere"):
            client.get(f"/api/regions/{region}")
        assert client.get("/api/regions/boom").status_code == 500
        client.get("/some/page")
        client.request("BREW", "/api/regions/dakar")  # any token is a method to the server
        response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    scraped = Scrape(response.text)
    name = "meteoflow_webapp_http_requests_total"
    assert scraped.value(name, method="GET", route="/api/regions/{region_id}", status="200") == 2.0
    assert scraped.value(name, method="GET", route="/api/regions/{region_id}", status="404") == 1.0
    assert scraped.value(name, method="GET", route="/api/regions/{region_id}", status="500") == 1.0
    assert scraped.value(name, method="GET", route="/{path:path}", status="200") == 1.0
    assert scraped.value(name, method="other", route="/api/regions/{region_id}", status="405") == 1.0
    assert scraped.labels(name, "route") == {"/api/regions/{region_id}", "/{path:path}"}  # no raw path
    assert scraped.value("meteoflow_webapp_http_request_duration_seconds_count", method="GET",
                         route="/api/regions/{region_id}") == 4.0


def test_metrics_is_served_before_a_catch_all_route_and_counts_its_own_scrapes():
    app, http = small_app()
    with TestClient(app) as client:
        client.get("/metrics")
        second = Scrape(client.get("/metrics").text)
        openmetrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert second.value("meteoflow_webapp_http_requests_total", route="/metrics", status="200") == 1.0
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
    assert from_registry(http.registry).value("meteoflow_webapp_http_requests_total", route="/metrics") == 3.0


def test_unrouted_requests_share_one_route_label():
    app = FastAPI()
    http = m.HttpMetrics("forecasting_api")
    m.instrument_app(app, http)
    with TestClient(app) as client:
        for path in ("/a", "/b/c", "/d?e=f"):
            assert client.get(path).status_code == 404
    scraped = from_registry(http.registry)
    assert scraped.value("meteoflow_forecasting_api_http_requests_total", route=m.UNMATCHED_ROUTE, status="404") == 3.0


# --- health samples as gauges ----------------------------------------------------------------------
def samples(now: datetime, lag: int | None = 12) -> list[MetricSample]:
    return [
        MetricSample(timestamp=now, kind="consumer_lag", subject="shipper", lag_records=lag, lag_seconds=None),
        MetricSample(timestamp=now, kind="consumer_lag", subject="streaming", lag_records=0, lag_seconds=0.0,
                     consumer_started=False),
        MetricSample(timestamp=now, kind="store_staleness", subject="mongodb", staleness_seconds=42.5,
                     newest_at=now - timedelta(seconds=60), age_seconds=60.0),
        MetricSample(timestamp=now, kind="service", subject="shipper", state="crash-loop", up=0, uptime_seconds=0.0,
                     restarts=5, last_error="secret-looking text never becomes a label"),
        MetricSample(timestamp=now, kind="forecast_age", subject="dakar", age_seconds=1800.0),
    ]


def test_health_samples_become_gauges_and_an_unknown_value_has_no_series():
    health = m.HealthMetrics()
    before = from_registry(health.registry)
    assert before.value("meteoflow_health_consumer_lag_records", consumer="shipper") is None
    assert before.value("meteoflow_health_last_sample_timestamp_seconds") is None

    health.update(samples(T0), T0, failed=["kafka:newest"])
    s = from_registry(health.registry)
    assert s.value("meteoflow_health_consumer_lag_records", consumer="shipper") == 12.0
    assert s.value("meteoflow_health_consumer_lag_seconds", consumer="shipper") is None  # lag_seconds unknown
    assert s.value("meteoflow_health_consumer_lag_seconds", consumer="streaming") == 0.0
    assert s.value("meteoflow_health_consumer_started", consumer="streaming") == 0.0  # still starting
    assert s.value("meteoflow_health_consumer_started", consumer="shipper") is None  # not known
    assert s.value("meteoflow_health_store_staleness_seconds", store="mongodb") == 42.5
    assert s.value("meteoflow_health_store_newest_record_timestamp_seconds", store="mongodb") == (
        T0 - timedelta(seconds=60)).timestamp()
    assert s.value("meteoflow_health_service_up", service="shipper") == 0.0
    assert s.value("meteoflow_health_service_restarts", service="shipper") == 5.0
    assert s.value("meteoflow_health_forecast_age_seconds", region="dakar") == 1800.0
    assert s.value("meteoflow_health_last_sample_timestamp_seconds") == T0.timestamp()
    assert s.value("meteoflow_health_source_failures_total", source="kafka:newest") == 1.0
    assert s.value("meteoflow_health_source_failures_total", source="supervisor") == 0.0
    assert "secret-looking" not in s.text

    # The next round replaces the whole picture: what it did not sample is gone, not stale.
    later = T0 + timedelta(seconds=15)
    health.update([x for x in samples(later, lag=3) if x.kind == "consumer_lag"], later)
    s = from_registry(health.registry)
    assert s.value("meteoflow_health_consumer_lag_records", consumer="shipper") == 3.0
    assert s.value("meteoflow_health_store_staleness_seconds", store="mongodb") is None
    assert s.value("meteoflow_health_last_sample_timestamp_seconds") == later.timestamp()


# --- alerting gauges -----------------------------------------------------------------------------------
def test_incident_gauges_count_open_incidents_per_rule_and_reset_to_zero():
    from types import SimpleNamespace as NS

    alerting = m.AlertingMetrics(RULE_MODELS)
    alerting.incidents([NS(rule="region_silence", status="firing"), NS(rule="region_silence", status="firing"),
                        NS(rule="crash_loop", status="pending")])
    s = from_registry(alerting.registry)
    assert s.value("meteoflow_alerting_incidents_firing", rule="region_silence") == 2.0
    assert s.value("meteoflow_alerting_incidents_pending", rule="crash_loop") == 1.0
    assert s.value("meteoflow_alerting_incidents_firing", rule="arrival_lag") == 0.0
    alerting.incidents([])
    assert from_registry(alerting.registry).value("meteoflow_alerting_incidents_firing", rule="region_silence") == 0.0


# --- every metric is documented ---------------------------------------------------------------------------
def every_metric_set(registry: CollectorRegistry) -> None:
    stats = {"workers": 1, "fits": 0, "coalesced": 0, "failures": 0, "in_flight": 0, "cache": {}}
    m.ProducerMetrics(registry)
    m.StreamingMetrics(registry)
    m.ShipperMetrics(registry)
    m.AlertingMetrics(RULE_MODELS, registry)
    m.HealthMetrics(registry)
    m.ForecastingApiMetrics(lambda: stats, registry)
    m.WebappMetrics(registry)


def exposed_names() -> set[str]:
    registry = m.service_registry("any")
    every_metric_set(registry)
    suffix = {"counter": "_total", "info": "_info"}
    return {f.name + suffix.get(f.type, "") for f in registry.collect() if f.name.startswith("meteoflow_")}


def readme_prometheus_section() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index("## Prometheus")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_every_metric_is_documented_in_the_readme_and_nothing_documented_is_gone():
    names = exposed_names()
    assert len(names) > 40
    documented = set(re.findall(r"`(meteoflow_[a-z_]+)", readme_prometheus_section()))
    assert sorted(names - documented) == [], "README.md's Prometheus section lacks these metrics"
    assert sorted(documented - names) == [], "README.md's Prometheus section names metrics that do not exist"


def test_metric_names_follow_prometheus_conventions():
    for name in exposed_names():
        assert re.fullmatch(r"meteoflow_[a-z_]+", name), name
    units = ("_seconds", "_total", "_records", "_info", "_up", "_restarts", "_entries", "_workers", "_in_flight",
             "_firing", "_pending", "_started", "_celsius", "_ratio")
    for name in exposed_names():
        assert name.endswith(units), f"{name}: say the unit in the name"


def test_the_readme_scrape_config_targets_every_endpoint_on_its_default_port():
    import yaml

    block = re.search(r"```yaml\n(.*?)```", readme_prometheus_section(), re.S).group(1)
    [job] = yaml.safe_load(block)["scrape_configs"]
    targets = {c["labels"]["component"]: c["targets"] for c in job["static_configs"]}
    s = load_settings()
    ports = {service: getattr(s, setting) for service, setting in m.METRICS_PORT_SETTINGS.items()}
    ports.update(forecasting_api=s.forecast_api_port, webapp=s.webapp_port)
    assert targets == {name: [f"{s.bind_host}:{port}"] for name, port in ports.items()}
