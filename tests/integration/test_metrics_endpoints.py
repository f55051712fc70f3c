"""Prometheus /metrics of the real services, started by the stack's own code (stack.services, as
./run.sh starts them) against the test stack's Kafka, Elasticsearch and FerretDB, and scraped over
HTTP: the counters move with the real work. The streaming job's and the forecasting API's endpoints
are checked where those processes already run (test_streaming_job.py, test_streaming_real_api.py)."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from meteoflow.es import make_es_client
from tests.fakes.prometheus import Scrape, scrape
from tests.faults.harness import service, wait_until

pytestmark = pytest.mark.integration

REGIONS = [{"id": "dakar", "name": "Dakar", "lat": 14.69, "lon": -17.44},
           {"id": "thies", "name": "Thies", "lat": 14.79, "lon": -16.93}]


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def metrics_url(settings, setting: str) -> str:
    return f"http://{settings.metrics_bind_host or settings.bind_host}:{getattr(settings, setting)}/metrics"


def scraped_when(url: str, ready) -> Scrape | None:
    """One scrape of `url` if `ready(scrape)` holds (a missing sample counts as not ready)."""
    scraped = scrape(url)
    try:
        return scraped if ready(scraped) else None
    except TypeError:  # a sample not there yet: None compared with a number
        return None


def es_count(settings) -> int:
    es = make_es_client(settings)
    try:
        es.indices.refresh(index=settings.index("observations"), ignore_unavailable=True)
        return es.count(index=settings.index("observations"), ignore_unavailable=True)["count"]
    finally:
        es.close()


def test_the_loop_services_and_the_web_app_serve_counts_of_their_real_work(isolated, tmp_path):
    regions = tmp_path / "regions.json"
    regions.write_text(json.dumps(REGIONS))
    s = isolated.model_copy(update=dict(
        run_dir=tmp_path / "run", regions_file=regions, producer_source="simulator", simulator_backfill_hours=3,
        simulator_speed=36_000.0, simulator_interval_seconds=2.0, alert_eval_interval_seconds=2.0,
        metrics_interval_seconds=1.0, webapp_port=free_port(isolated.bind_host)))
    started = []
    try:
        for name in ("shipper", "alerting", "webapp", "producer"):
            started.append(service(s, name))
            started[-1].start(log=lambda _: None)

        producer_url = metrics_url(s, "producer_metrics_port")
        # The back-fill (3 hours x 2 regions) is published first; then a live batch every 2 s.
        producer = wait_until(lambda: scraped_when(producer_url, lambda x: x.value(
            "meteoflow_producer_records_published_total", topic=s.topic_observations) >= 6), 60,
            "the producer's published counter")
        published = producer.value("meteoflow_producer_records_published_total", topic=s.topic_observations)
        assert producer.value("meteoflow_build_info", service="producer") == 1.0
        assert producer.value("meteoflow_producer_runs_total", outcome="ok") >= 1
        assert producer.value("meteoflow_producer_last_success_timestamp_seconds") > 0

        # The shipper's counters reach what the producer published, and so does Elasticsearch.
        shipper_url = metrics_url(s, "shipper_metrics_port")
        shipper = wait_until(lambda: scraped_when(shipper_url, lambda x: x.value(
            "meteoflow_shipper_documents_indexed_total", index=s.index("observations")) >= published), 60,
            f"the shipper's indexed counter to reach {published}")
        assert shipper.value("meteoflow_shipper_records_consumed_total", topic=s.topic_observations) >= published
        assert shipper.value("meteoflow_shipper_documents_indexed_total", index=s.index("logs")) > 0  # services log
        assert shipper.value("meteoflow_shipper_last_commit_timestamp_seconds") > 0
        assert es_count(s) >= published

        # The alerting service: evaluation rounds, and the health samples as gauges.
        alerting_url = metrics_url(s, "alerting_metrics_port")
        alerting = wait_until(lambda: scraped_when(alerting_url, lambda x: x.value(
            "meteoflow_alerting_evaluations_total", outcome="ok") >= 1 and x.value(
            "meteoflow_health_consumer_lag_records", consumer="shipper") is not None), 60,
            "an evaluation round and a health sample")
        assert alerting.value("meteoflow_alerting_last_evaluation_timestamp_seconds") > 0
        assert alerting.value("meteoflow_health_store_newest_record_timestamp_seconds", store="kafka") > 0
        assert alerting.labels("meteoflow_alerting_incidents_firing", "rule") >= {"region_silence", "crash_loop"}

        # The web app: its requests per route template on its own port.
        web = f"http://{s.bind_host}:{s.webapp_port}"
        with urllib.request.urlopen(f"{web}/api/regions", timeout=10) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"{web}/metrics", timeout=10) as resp:
            webapp = Scrape(resp.read().decode())
        assert webapp.value("meteoflow_webapp_http_requests_total", method="GET", route="/api/regions",
                            status="200") == 1.0
        assert webapp.value("meteoflow_build_info", service="webapp") == 1.0
    finally:
        for proc in reversed(started):
            proc.stop()
