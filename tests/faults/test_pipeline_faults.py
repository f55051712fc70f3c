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
from pathlib import Path

import pytest

from meteoflow.contracts import FORECAST_STATE
from tests.faults.harness import MALFORMED_KINDS, poison_payloads, seeded_moments, wait_until

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
    # The job's Spark driver, as the stack starts it, compiles with C1 only (streaming.spark.STREAMING_CONF).
    assert "-XX:TieredStopAtLevel=1" in spark_driver_command(faults.pipeline.services["streaming"].recorded_pid())
    faults.check("streaming kill -9 x3")


def spark_driver_command(job_pid: int | None) -> str:
    """The command line of the JVM the streaming job (pid) started: its descendant running SparkSubmit."""
    parents: dict[str, str] = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                parents[entry.name] = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
        except OSError:  # gone meanwhile
            continue
    family, grew = {str(job_pid)}, True
    while grew:
        grown = family | {pid for pid, parent in parents.items() if parent in family}
        grew, family = grown != family, grown
    for pid in sorted(family - {str(job_pid)}):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "SparkSubmit" in command:
            return command
    raise AssertionError(f"no Spark driver JVM under the streaming job (pid {job_pid})")


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


def test_poison_records_cost_only_themselves(faults):
    """The records that once stopped Meteoflow for good (issue 12: 100,000 '[', a 5,000-digit
    number, times in year 1, 9999 and 2190, 400 KB of non-UTF-8, NaN, NUL, lone surrogates...)
    mixed in with the simulator's records on every topic: every valid record is stored and
    shipped, every poison record is dead-lettered with a reason, and no service restarts."""
    restarts_before = dict(faults.pipeline.restarts)
    pids_before = {name: svc.recorded_pid() for name, svc in faults.pipeline.services.items()}
    wait_for_progress(faults)
    faults.feeder.inject_poison()
    wait_until(lambda: any(m.kind == "deep-nesting" for m in faults.feeder.malformed), 120,
               "the poison records acknowledged by Kafka")
    # Poison on the shipper's other topics: dead letters whose failed_at is out of range, log lines
    # Elasticsearch could not parse. Each must become a dead-letter document, and cost nothing more.
    unparseable = [
        (faults.settings.topic_deadletter,
         b'{"reason":"x","service":"fault-suite","failed_at":"0001-01-01T00:00:00+14:00","payload":""}'),
        (faults.settings.topic_deadletter,
         b'{"reason":"x","service":"fault-suite","failed_at":"9999-12-31T23:59:59-14:00","payload":""}'),
        (faults.settings.topic_logs, b"[" * 100_000),
        (faults.settings.topic_logs, b'{"n": ' + b"1" * 5000 + b"}"),
        (faults.settings.topic_logs, b"\xff\xfe" * 200_000),
        (faults.settings.topic_logs, b'{"message": NaN}'),
        (faults.settings.topic_logs, b'{"message": "\\ud800"}'),
        (faults.settings.topic_logs, b""),
    ]
    producer = faults.feeder.publisher.producer
    sent = set()
    for topic, payload in unparseable:
        meta = producer.send(topic, value=payload).get(timeout=30)
        sent.add((topic, meta.partition, meta.offset))
    # Dead letters of the poison (streaming's and the shipper's) exceed the spike threshold. They
    # arrive all at once, so wait for the alert itself: the check would otherwise race its pending period.
    faults.expected_incidents["deadletter_spike"] += 1
    wait_until(lambda: sum(i.rule == "deadletter_spike" for i in faults.incidents())
               == faults.expected_incidents["deadletter_spike"], 120, "the dead-letter spike alert")
    facts = faults.check("poison records")

    poison = {(m.partition, m.offset) for m in faults.feeder.malformed if m.kind not in MALFORMED_KINDS}
    assert len(poison) == len(poison_payloads({"x": 1})) and facts["malformed"] >= len(poison)
    es = faults.es()
    try:
        es.indices.refresh(index=faults.settings.index("deadletter"))
        hits = es.search(index=faults.settings.index("deadletter"), size=100, query={"bool": {"filter": [
            {"terms": {"kafka.topic": [faults.settings.topic_deadletter, faults.settings.topic_logs]}},
            {"term": {"service": "shipper"}}]}})["hits"]["hits"]
    finally:
        es.close()
    shipped = {(h["_source"]["kafka"]["topic"], h["_source"]["kafka"]["partition"], h["_source"]["kafka"]["offset"]):
               h["_source"]["reason"] for h in hits}
    assert sent <= set(shipped), "a poison record on the logs or dead-letter topic was not dead-lettered"
    assert all(shipped[coords].startswith("shipper: ") for coords in sent)
    assert faults.pipeline.restarts == restarts_before, "a service restarted because of a record"
    assert {name: svc.recorded_pid() for name, svc in faults.pipeline.services.items()} == pids_before
