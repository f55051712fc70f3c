"""Fault injection on the whole pipeline, with the simulator feeding all along.

Each scenario breaks one thing for real (kill -9, a server restart, an API outage, garbage
in the stream), lets the pipeline recover on its own, then `faults.check` proves:
MongoDB holds exactly the unique records produced, hourly stats equal a recomputation,
every region has forecasts ahead of its data, every malformed message is dead-lettered
with a reason, Elasticsearch holds exactly the records shipped from Kafka, and the alerting
service raised and cleared exactly the incidents the fault deserved (Slack got one alert
and one recovery for each, nothing else).

Run alone:  METEOFLOW_TEST_KEEP_STACK=1 .venv/bin/python -m pytest -m faults -p no:warnings
"""

from __future__ import annotations

import time

import pytest

from meteoflow.contracts import FORECAST_STATE
from tests.faults.harness import seeded_moments, wait_until

pytestmark = pytest.mark.faults

SEED = 20260101
API_OUTAGE_SECONDS = 60.0  # the figure


def wait_for_progress(faults, timeout: float = 240.0, what: str = "a new micro-batch of the streaming job") -> None:
    """Until the job logs a new completed micro-batch (its progress line, event.action streaming-batch)."""
    before = faults.batches_logged()
    wait_until(lambda: faults.batches_logged() > before, timeout, what)


def test_streaming_job_killed_three_times(faults):
    """kill -9 at three seeded random moments. The first two restart at once (no alert deserved:
    the gap stays under the stall threshold); after the third the job stays down longer than
    the threshold, which deserves exactly one streaming_stalled alert and its recovery."""
    moments = seeded_moments(SEED, 3, 0.0, 6.0)
    for number, moment in enumerate(moments, start=1):
        wait_for_progress(faults)
        time.sleep(moment)  # a seeded random point inside or between micro-batches
        faults.pipeline.kill("streaming")
        if number == 3:
            # Down until the alerting service notices (observations keep arriving in Elasticsearch
            # through the shipper, progress lines do not): bounded by the threshold plus a margin.
            faults.expected_incidents["streaming_stalled"] += 1
            wait_until(lambda: any(i.rule == "streaming_stalled" and i.status == "firing" for i in faults.incidents()),
                       faults.stalled_after + 90, "a streaming_stalled alert while the job is down")
        faults.pipeline.start("streaming")
    wait_for_progress(faults)
    faults.check("streaming kill -9 x3")


def test_kafka_broker_restart(faults):
    wait_for_progress(faults)
    faults.pipeline.restart_server("kafka", down_seconds=5)
    wait_for_progress(faults)
    faults.check("Kafka broker restart")


def test_mongodb_wire_server_restart(faults):
    wait_for_progress(faults)
    faults.pipeline.restart_server("ferretdb", down_seconds=5)
    wait_for_progress(faults)
    faults.check("FerretDB (MongoDB wire) restart")


def test_elasticsearch_restart(faults):
    wait_for_progress(faults)
    faults.pipeline.restart_server("elasticsearch", down_seconds=5)
    wait_for_progress(faults)
    faults.check("Elasticsearch restart")


def test_forecasting_api_down_for_60_seconds(faults):
    wait_for_progress(faults)
    faults.pipeline.stop_service("forecasting_api")
    began = time.monotonic()
    # Observations keep flowing while forecasts fail (and are marked for retry).
    wait_for_progress(faults, what="observations stored while the forecasting API is down")
    db = faults.db()
    try:
        wait_until(lambda: db[FORECAST_STATE].count_documents({"status": "failed", "needs_forecast": True}) > 0,
                   60, "regions marked for a forecast retry")
    finally:
        db.client.close()
    time.sleep(max(0.0, API_OUTAGE_SECONDS - (time.monotonic() - began)))
    faults.pipeline.start("forecasting_api")
    faults.check("forecasting API down 60 s")


def test_a_thousand_malformed_messages(faults):
    """Garbage mixed into the stream: every message dead-lettered with its reason; the spike of
    dead letters deserves one deadletter_spike alert, cleared once the window has passed."""
    faults.feeder.inject_malformed(1000)
    wait_until(lambda: len(faults.feeder.malformed) >= 1000, 120, "1,000 malformed messages acknowledged by Kafka")
    faults.expected_incidents["deadletter_spike"] += 1
    faults.check("1,000 malformed messages")
