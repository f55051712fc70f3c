"""Alerting against the real Kafka and Elasticsearch, with a local Slack webhook stand-in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from elasticsearch.helpers import bulk
from pydantic import SecretStr

from elk.alerting.service import AlertingService
from elk.alerting.slack import SlackSender
from elk.shipper.documents import to_action
from meteoflow.contracts import STREAMING_BATCH_ACTION
from meteoflow.es import make_es_client
from meteoflow.kafka import make_producer
from meteoflow.settings import REPO_ROOT
from tests.fakes.elk_records import dead_letter, log_line, observation, record
from tests.fakes.ping_server import PingServer
from tests.fakes.slack_server import SlackServer
from tests.integration.test_elk_shipping import Running
from webapp.store import Store
from webapp.views import alerting_status

pytestmark = pytest.mark.integration

INTERVAL = 2.0  # simulated producer interval
SILENT_AFTER_INTERVALS = 4
EVAL = 1.0


def write_rules(path: Path, **sections) -> Path:
    rules = {
        # Fire when first seen and send at once: these tests measure delivery, not grouping.
        "defaults": {"reminder_after_seconds": 600, "for_seconds": 0, "group_wait_seconds": 0,
                     "group_interval_seconds": 0},
        "region_silence": {"late_after_intervals": 2, "silent_after_intervals": SILENT_AFTER_INTERVALS,
                           "lookback_hours": 1},
        "arrival_lag": {"enabled": False},
        "streaming_stalled": {"enabled": False},
        "deadletter_spike": {"enabled": False},
    }
    for name, values in sections.items():
        rules[name] = {**rules.get(name, {}), **values}
    path.write_text(yaml.safe_dump(rules))
    return path


def alert_settings(base, tmp_path, slack_url: str | None, **rules):
    return base.model_copy(update=dict(
        producer_source="simulator", simulator_interval_seconds=INTERVAL, alert_eval_interval_seconds=EVAL,
        alert_rules_file=write_rules(tmp_path / "rules.yaml", **rules),
        slack_webhook_url=SecretStr(slack_url) if slack_url else None,
    ))


def env_for(s) -> dict[str, str]:
    """The environment that makes `python -m elk.alerting` use settings `s`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METEOFLOW_")}
    values = dict(
        ES_PORT=s.es_port, KAFKA_PORT=s.kafka_port, ES_INDEX_PREFIX=s.es_index_prefix, TOPIC_LOGS=s.topic_logs,
        TOPIC_OBSERVATIONS=s.topic_observations, TOPIC_DEADLETTER=s.topic_deadletter,
        PRODUCER_SOURCE=s.producer_source, SIMULATOR_INTERVAL_SECONDS=s.simulator_interval_seconds,
        ALERT_EVAL_INTERVAL_SECONDS=s.alert_eval_interval_seconds, ALERT_RULES_FILE=s.alert_rules_file,
        SLACK_WEBHOOK_URL=s.slack_webhook_url.get_secret_value(), RUN_DIR=s.run_dir,
        ALERTING_METRICS_PORT=s.alerting_metrics_port,
    )
    env.update({f"METEOFLOW_{k}": str(v) for k, v in values.items()})
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def start_alerting(s, log_path: Path) -> subprocess.Popen:
    out = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "elk.alerting"], env=env_for(s), cwd=log_path.parent,
                            stdout=out, stderr=subprocess.STDOUT)


class Feeder(threading.Thread):
    """Produces one observation per region every INTERVAL seconds, like the simulator."""

    def __init__(self, settings, regions):
        super().__init__(daemon=True)
        self.producer = make_producer(settings, client_id="elk-test-feeder")
        self.topic = settings.topic_observations
        self.regions = set(regions)
        self.paused: set[str] = set()
        self.last_sent: dict[str, float] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        while not self.stop.is_set():
            with self.lock:
                active = self.regions - self.paused
                for region in sorted(active):
                    obs = observation(region)
                    self.producer.send(self.topic, key=obs.key, value=obs.to_message()).get(timeout=10)
                    self.last_sent[region] = time.time()
            self.stop.wait(INTERVAL)
        self.producer.close()

    def pause(self, region) -> float:
        with self.lock:  # no send in flight once this returns
            self.paused.add(region)
            return self.last_sent[region]

    def resume(self, region):
        with self.lock:
            self.paused.discard(region)


def is_alert(region_name, kind=":rotating_light:"):
    return lambda m: m["text"].startswith(kind) and region_name in m["text"]


def incident_docs(es, s) -> list[dict]:
    es.indices.refresh(index=s.index("alerts"), ignore_unavailable=True)
    hits = es.search(index=s.index("alerts"), size=100, ignore_unavailable=True)["hits"]["hits"]
    return [h["_source"] for h in hits]


def last_ingested(es, s, region) -> datetime:
    es.indices.refresh(index=s.index("observations"))
    resp = es.search(index=s.index("observations"), size=0, query={"term": {"region_id": region}},
                     aggs={"last": {"max": {"field": "ingested_at"}}})
    return datetime.fromtimestamp(resp["aggregations"]["last"]["value"] / 1000, timezone.utc)


def test_silence_alert_once_survives_restart_then_one_recovery(isolated, tmp_path):
    with SlackServer() as slack:
        s = alert_settings(isolated, tmp_path, slack.url)
        es = make_es_client(s)
        silent_after = SILENT_AFTER_INTERVALS * INTERVAL
        feeder = Feeder(s, ["dakar", "thies"])
        feeder.start()
        first = second = None
        try:
            with Running(s):
                first = start_alerting(s, tmp_path / "alerting-1.log")
                time.sleep(3 * INTERVAL)  # both regions seen, and fresh
                assert slack.messages == []

                last_record = feeder.pause("dakar")
                [alert] = slack.wait_for(1, timeout=silent_after + 20, predicate=is_alert("Dakar"))
                ingested = last_ingested(es, s, "dakar").timestamp()
                from_record, from_ingest = alert["at"] - last_record, alert["at"] - ingested
                print(f"\nsilence alert: {from_record:.2f} s after the last record was produced, "
                      f"{from_ingest:.2f} s after it was ingested (threshold {silent_after:.0f} s + "
                      f"evaluation every {EVAL:.0f} s)")
                # Bound: the threshold, one evaluation interval, and the HTTP round trip / ES refresh.
                assert silent_after < from_ingest <= silent_after + EVAL + 1.5
                assert "Last seen" in str(alert["blocks"]) and "Where to look" in str(alert["blocks"])

                # The alert is recorded as sent before the service is killed mid-incident.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    docs = incident_docs(es, s)
                    if docs and docs[0]["notifications"][0]["status"] == "sent":
                        break
                    time.sleep(0.2)
                [doc] = incident_docs(es, s)
                assert (doc["rule"], doc["region_id"], doc["status"]) == ("region_silence", "dakar", "firing")
                first.send_signal(signal.SIGKILL)
                first.wait(10)

                second = start_alerting(s, tmp_path / "alerting-2.log")
                time.sleep(6 * EVAL + 3)  # several evaluations by the new process (incl. its start-up)
                assert len(slack.messages) == 1, [m["text"] for m in slack.messages]
                assert second.poll() is None, (tmp_path / "alerting-2.log").read_text()

                feeder.resume("dakar")
                recovered = slack.wait_for(1, timeout=15, predicate=is_alert("Dakar", ":white_check_mark:"))
                assert len(recovered) == 1
                time.sleep(3 * EVAL)
                assert [m["text"][:30] for m in slack.messages] == [m["text"][:30] for m in (alert, recovered[0])]
                assert not any("Thies" in m["text"] for m in slack.messages)
                [doc] = incident_docs(es, s)
                assert doc["status"] == "resolved"
                assert [(n["kind"], n["status"]) for n in doc["notifications"]] == [("alert", "sent"), ("recovery", "sent")]
        finally:
            feeder.stop.set()
            feeder.join(10)
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    proc.wait(15)
        for log in tmp_path.glob("alerting-*.log"):
            assert "XXXXSECRETXXXX" not in log.read_text(), "the webhook URL was logged"


def index_docs(es, s, records, now):
    actions = [to_action(s, rec, now) for rec in records]
    ok, errors = bulk(es, actions, refresh="wait_for")
    assert ok == len(actions) and not errors


def silent_region(es, s, region="kaolack", seconds_ago=60.0):
    old = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    obs = observation(region, observed_at=old - timedelta(seconds=5))
    index_docs(es, s, [record(s.topic_observations, obs.to_message(), offset=1)], old)


def test_webhook_500_twice_then_200_delivers_exactly_once(isolated, tmp_path):
    with SlackServer() as slack:
        s = alert_settings(isolated, tmp_path, slack.url)
        es = make_es_client(s)
        silent_region(es, s)
        service = AlertingService(s, sender=SlackSender(s.slack_webhook_url, backoff_initial=0.05))
        slack.script = [500, 500]
        service.run_once()
        assert len(slack.messages) == 1 and [r["status"] for r in slack.requests] == [500, 500, 200]
        service.run_once()
        AlertingService(s).run_once()  # a fresh instance reads the same state: nothing to send
        assert len(slack.messages) == 1
        [doc] = incident_docs(es, s)
        [note] = doc["notifications"]
        assert (note["status"], note["attempts"]) == ("sent", 3) and doc["pending_notifications"] == 0


def test_slack_down_for_a_while_the_message_waits_then_goes_once(isolated, tmp_path):
    with SlackServer() as slack:
        s = alert_settings(isolated, tmp_path, slack.url)
        es = make_es_client(s)
        silent_region(es, s)
        service = AlertingService(s, sender=SlackSender(s.slack_webhook_url, backoff_initial=0.01, max_attempts=3))
        slack.script = [500, 429, 503]  # the whole first cycle fails
        service.run_once()
        assert slack.messages == []
        [doc] = incident_docs(es, s)
        assert doc["notifications"][0]["status"] == "pending" and "503" in doc["notifications"][0]["last_error"]
        service.run_once()
        service.run_once()
        assert len(slack.messages) == 1


def test_without_webhook_alerts_are_recorded_and_logged(isolated, tmp_path, caplog):
    s = alert_settings(isolated, tmp_path, None)
    es = make_es_client(s)
    silent_region(es, s, region="louga")
    caplog.set_level("INFO", logger="alerting")
    AlertingService(s).run_once()
    [doc] = incident_docs(es, s)
    assert doc["region_id"] == "louga" and doc["notifications"][0]["status"] == "logged"
    assert any("alert region_silence|louga" in r.getMessage() for r in caplog.records)


def test_streaming_stalled_and_deadletter_spike(isolated, tmp_path):
    s = alert_settings(isolated, tmp_path, None,
                       region_silence={"enabled": False},
                       streaming_stalled={"enabled": True, "stalled_after_intervals": 3, "min_stalled_seconds": 0},
                       deadletter_spike={"enabled": True, "max_count": 3, "window_seconds": 60})
    es = make_es_client(s)
    now = datetime.now(timezone.utc)
    obs = observation("fatick")
    index_docs(es, s, [record(s.topic_observations, obs.to_message(), offset=1)], now)
    old_progress = log_line(**{"event.action": STREAMING_BATCH_ACTION, "@timestamp":
                               (now - timedelta(seconds=30)).isoformat().replace("+00:00", "Z")})
    index_docs(es, s, [record(s.topic_logs, old_progress, offset=1)], now)
    service = AlertingService(s)

    def reject(offsets) -> None:
        """Each record twice: the streaming job's dead letter, and the shipper's own rejection of it."""
        bad = [record(s.topic_observations, b'{"temp": 900}', offset=o) for o in offsets]
        letters = [record(s.topic_deadletter, dead_letter(source_offset=o, source_topic=s.topic_observations), offset=o)
                   for o in offsets]
        index_docs(es, s, bad + letters, now)

    reject([100, 101])  # 4 documents, 2 records: no spike above 3
    service.run_once()
    assert {d["rule"] for d in incident_docs(es, s)} == {"streaming_stalled"}
    reject([102, 103])
    service.run_once()
    firing = {(d["rule"], d["status"]) for d in incident_docs(es, s)}
    assert firing == {("streaming_stalled", "firing"), ("deadletter_spike", "firing")}
    assert next(d for d in incident_docs(es, s) if d["rule"] == "deadletter_spike")["value"] == 4
    # The job reports progress again: the stall clears, the spike stays.
    index_docs(es, s, [record(s.topic_logs, log_line(**{"event.action": STREAMING_BATCH_ACTION}), offset=2)],
               datetime.now(timezone.utc))
    service.run_once()
    status = {d["rule"]: d["status"] for d in incident_docs(es, s)}
    assert status == {"streaming_stalled": "resolved", "deadletter_spike": "firing"}


class FakeClock:
    def __init__(self):
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def arrive(es, s, at: dict[str, datetime], offsets) -> None:
    """Each region's observation ingested at its own time (what the shipper would write)."""
    for region, when in at.items():
        obs = observation(region, observed_at=when)
        index_docs(es, s, [record(s.topic_observations, obs.to_message(), offset=next(offsets))], when)


def test_a_producer_outage_is_one_digest_alert_and_one_digest_recovery(isolated, tmp_path):
    """Every region going silent at once (the producer stopped) must not flood Slack, even when
    the regions cross the threshold in different evaluation rounds and the service restarts
    in between. Time is a fake clock stepped one evaluation at a time: nothing races."""
    regions = ["dakar", "thies", "kolda"]
    with SlackServer() as slack:
        s = alert_settings(isolated, tmp_path, slack.url, defaults={
            "for_seconds": EVAL, "group_wait_seconds": 2 * EVAL, "group_interval_seconds": 10 * EVAL})
        es = make_es_client(s)
        clock = FakeClock()
        t0, offsets = clock.now, iter(range(1000))
        silent_after = SILENT_AFTER_INTERVALS * INTERVAL
        # Last records 0.6 s apart: dakar and thies go silent in one round, kolda in the next.
        arrive(es, s, {r: t0 + timedelta(seconds=0.6 * n) for n, r in enumerate(regions)}, offsets)
        service = AlertingService(s, clock=clock)

        def evaluate_at(seconds: float, svc=None) -> list[str]:
            clock.now = t0 + timedelta(seconds=seconds)
            (svc or service).run_once()
            return [m["text"] for m in slack.messages]

        assert evaluate_at(silent_after) == []  # fresh enough
        assert evaluate_at(silent_after + 1) == []  # dakar, thies pending (for: 1 s)
        assert evaluate_at(silent_after + 2) == []  # they fire, kolda pending; the group waits 2 s
        service = AlertingService(s, clock=clock)  # a restart reads the group's state back
        assert evaluate_at(silent_after + 3) == []  # kolda fires and joins the waiting group
        [alert] = evaluate_at(silent_after + 4)
        assert alert.startswith(":rotating_light:") and "3 regions" in alert
        assert all(r.title() in alert for r in regions)
        assert evaluate_at(silent_after + 8) == [alert]  # nothing new to say

        # Data again, thies one round later than the others: one recovery message.
        back = t0 + timedelta(seconds=silent_after + 9)
        arrive(es, s, {"dakar": back, "kolda": back}, offsets)
        assert evaluate_at(silent_after + 9) == [alert]  # dakar, kolda recovered; the group waits
        arrive(es, s, {"thies": back + timedelta(seconds=1)}, offsets)
        assert evaluate_at(silent_after + 10) == [alert]
        [_, recovery] = evaluate_at(silent_after + 11, AlertingService(s, clock=clock))  # restarted again
        assert evaluate_at(silent_after + 12) == [alert, recovery]
        assert recovery.startswith(":white_check_mark:") and "3 regions" in recovery
        assert {d["status"] for d in incident_docs(es, s)} == {"resolved"}


def test_the_heartbeat_url_gets_one_ping_per_evaluation_and_the_web_app_sees_the_last_one(isolated, tmp_path):
    with PingServer() as hc:
        s = alert_settings(isolated, tmp_path, None).model_copy(update={"alert_heartbeat_url": SecretStr(hc.url)})
        es = make_es_client(s)
        clock = FakeClock()
        service = AlertingService(s, clock=clock)
        for _ in range(3):
            clock.now += timedelta(seconds=EVAL)
            service.run_once()
        assert [p["method"] for p in hc.pings] == ["GET"] * 3
        es.indices.refresh(index=s.index("heartbeats"))
        store = Store(s, es=es)
        try:
            beat = store.heartbeat("alerting")
        finally:
            store.close()
        assert alerting_status(beat, clock.now)["stale"] is False
        assert alerting_status(beat, clock.now + timedelta(seconds=3 * EVAL + 0.1))["stale"] is True
