"""The fault suite's pipeline: its OWN Kafka, Elasticsearch and FerretDB (run directory
.run/faults, ports shifted by 20000, never the shared test stack that other tests use),
the real forecasting API, streaming job, shipper and alerting service as subprocesses,
a local Slack webhook recorder, and a feeder thread publishing simulator observations.

One pipeline serves every scenario of the module (starting Elasticsearch alone takes most
of a minute on 2 cores); each scenario injects its fault, then `FaultContext.check` pauses
the feeder and proves the end state exactly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from pydantic import SecretStr

from elk.alerting.store import IncidentStore
from meteoflow.contracts import FORECAST_STATE, FORECASTS, OBSERVATIONS, STREAMING_BATCH_ACTION, doc_id
from meteoflow.es import make_es_client
from meteoflow.kafka import make_consumer
from meteoflow.mongo import database, make_mongo_client
from meteoflow.settings import REPO_ROOT, Settings
from producer.regions import load_regions
from tests.fakes.observations import recompute_hourly_stats, stored_hourly_stats
from tests.fakes.slack_server import SlackServer
from tests.faults.harness import Feeder, Pipeline, pipeline_settings, wait_until

PORT_OFFSET = int(os.environ.get("METEOFLOW_FAULTS_PORT_OFFSET", "20000"))
RUN_DIR = REPO_ROOT / ".run" / "faults"
REGIONS = 6  # the first six regions of Senegal: every one gets forecasts after every fault
EXPECTED_INTERVAL = 30.0  # the declared producer interval that alert thresholds scale with
STALLED_AFTER = 75.0  # streaming_stalled fires after this long without a streaming batch
DEADLETTER_WINDOW = 40.0  # deadletter_spike counts dead letters over this window
SILENT_AFTER_INTERVALS = 10  # 300 s: longer than any outage here, so region_silence must stay quiet

ALERT_RULES = {
    "defaults": {"reminder_after_seconds": 0},  # one alert and one recovery per incident, no reminders
    "region_silence": {"late_after_intervals": 4, "silent_after_intervals": SILENT_AFTER_INTERVALS,
                       "lookback_hours": 1},
    # The feeder publishes simulated history (observed_at in the past), so the arrival lag is large
    # by construction; that rule is covered by the alerting tests, not here.
    "arrival_lag": {"enabled": False},
    # The feeder replays hours of history in minutes, so forecast/observation pairs pile up for the
    # few hours it covers, where "the last value" is nearly exact: a forecast's skill cannot be judged
    # on that, and the rule's verdict (pending for 30 min) kept an incident open past every check.
    # How it fires is proved in tests/integration/test_forecast_degraded_rule.py and the unit tests.
    "forecast_degraded": {"enabled": False},
    "streaming_stalled": {"stalled_after_intervals": STALLED_AFTER / EXPECTED_INTERVAL,
                          "min_stalled_seconds": STALLED_AFTER, "for_seconds": None},  # None: one evaluation
    "deadletter_spike": {"max_count": 10, "window_seconds": DEADLETTER_WINDOW},
    # Longer than any outage here (the restart scenario runs the service's evaluation without
    # Elasticsearch and its hand-back, with a pending incident that is then forgotten). How it
    # fires is proved in tests/integration/test_elk_alerting_without_es.py.
    "elasticsearch_unavailable": {"for_seconds": 600},
}
_DELIVERY = re.compile(r"delivery `([^`]+)`")


def shipped_rules_with(overrides: dict) -> dict:
    """elk/alert_rules.yaml with some rules' settings overridden: the shipped pending periods
    and root-cause tree are what the scenarios must hold for."""
    rules = yaml.safe_load((REPO_ROOT / "elk" / "alert_rules.yaml").read_text())
    for name, values in overrides.items():
        rules[name] = {**(rules.get(name) or {}), **values}
    return rules


def fault_settings(tmp_dir, slack_url: str) -> Settings:
    rules = tmp_dir / "alert_rules.yaml"
    rules.write_text(yaml.safe_dump(shipped_rules_with(ALERT_RULES)))
    return pipeline_settings(
        RUN_DIR, PORT_OFFSET,
        kafka_partitions=3,
        streaming_trigger_seconds=2.0, streaming_max_offsets_per_trigger=5000,
        forecast_horizon_hours=6, forecast_history_days=2, forecast_retry_seconds=5.0,
        forecast_timeout_seconds=30.0, forecast_workers=1,
        simulator_interval_seconds=EXPECTED_INTERVAL, alert_eval_interval_seconds=2.0,
        alert_rules_file=rules, slack_webhook_url=SecretStr(slack_url), shipper_batch_size=500,
    )


class FaultContext:
    def __init__(self, settings: Settings, pipeline: Pipeline, feeder: Feeder | None, slack: SlackServer):
        self.settings = settings
        self.pipeline = pipeline
        self.feeder = feeder
        self.slack = slack
        self.expected_incidents: Counter[str] = Counter()  # rule -> incidents deserved so far
        # The test module reads the threshold here: importing this conftest by name would load a second copy.
        self.stalled_after = STALLED_AFTER

    @property
    def region_ids(self) -> list[str]:
        return sorted(r.id for r in self.feeder.regions)

    # --- reading the stores ---------------------------------------------------------------------
    def db(self):
        return database(self.settings, make_mongo_client(self.settings, serverSelectionTimeoutMS=3000))

    def es(self):
        return make_es_client(self.settings, request_timeout=10, max_retries=0)

    def batches_logged(self) -> int:
        """Completed micro-batches so far, from the job's own progress lines (its log file spans restarts)."""
        marker = f'"event.action":"{STREAMING_BATCH_ACTION}"'.encode()
        try:
            return self.pipeline.services["streaming"].log_file.read_bytes().count(marker)
        except FileNotFoundError:
            return 0

    def streaming_started(self) -> bool:
        """The job's log says its query is running (the line it writes right after starting it)."""
        try:
            return b'"message":"streaming ' in self.pipeline.services["streaming"].log_file.read_bytes()
        except FileNotFoundError:
            return False

    def stored_count(self) -> int:
        db = self.db()
        try:
            return db[OBSERVATIONS].count_documents({})
        finally:
            db.client.close()

    def incidents(self):
        es = self.es()
        try:
            es.indices.refresh(index=self.settings.index("alerts"), ignore_unavailable=True)
            return IncidentStore(self.settings, es).all()
        finally:
            es.close()

    def topic_end_offsets(self, topic: str) -> dict[int, int]:
        consumer = make_consumer(self.settings, None)
        try:
            from kafka.structs import TopicPartition

            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
            return {tp.partition: off for tp, off in consumer.end_offsets(parts).items()}
        finally:
            consumer.close()

    def read_topic(self, topic: str) -> list:
        """Every record of a topic, from the beginning to the end offsets at call time."""
        from kafka.structs import TopicPartition

        ends = self.topic_end_offsets(topic)
        consumer = make_consumer(self.settings, None)
        try:
            parts = [TopicPartition(topic, p) for p in ends]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            records = []
            deadline = datetime.now(timezone.utc) + timedelta(seconds=60)
            while any(consumer.position(tp) < ends[tp.partition] for tp in parts):
                assert datetime.now(timezone.utc) < deadline, f"could not read {topic} to its end"
                for batch in consumer.poll(timeout_ms=1000).values():
                    records.extend(r for r in batch if r.offset < ends[r.partition])
            return records
        finally:
            consumer.close()

    # --- the proof after each scenario --------------------------------------------------------
    def check(self, scenario: str) -> dict:
        """Pause the feeder, then prove the end state exactly (each part polled to a deadline)."""
        self.feeder.pause()
        try:
            facts = {"scenario": scenario, "streaming_restarts_by_supervisor": self.pipeline.restarts.get("streaming", 0)}
            facts.update(self._check_mongo())
            facts.update(self._check_deadletters())
            facts.update(self._check_elasticsearch())
            facts.update(self._check_alerts())
            print(f"\n[faults] {scenario}: {json.dumps(facts, default=str)}", flush=True)
            return facts
        finally:
            self.feeder.resume()

    def _check_mongo(self) -> dict:
        expected = self.feeder.unique
        want_ids = {doc_id(region, when) for region, when in expected}
        db = self.db()
        try:
            wait_until(lambda: db[OBSERVATIONS].count_documents({}) >= len(want_ids), 300,
                       f"{len(want_ids)} observations in MongoDB")
            stored_ids = [d["_id"] for d in db[OBSERVATIONS].find({}, {"_id": 1})]
            assert len(stored_ids) == len(set(stored_ids)) == len(want_ids), "duplicated or extra observations"
            assert set(stored_ids) == want_ids, "MongoDB does not hold exactly the produced records"

            produced = list(expected.values())
            wanted_stats = recompute_hourly_stats(produced)
            wait_until(lambda: stored_hourly_stats(db) == wanted_stats, 120, "hourly stats equal to a recomputation")

            last_by_region = {region: max(when for r, when in expected if r == region) for region in self.region_ids}

            def ahead_of_the_data(region: str) -> bool:
                mine = list(db[FORECASTS].find({"region_id": region}))
                return (len(mine) == self.settings.forecast_horizon_hours
                        and all(f["target_time"] > last_by_region[region] for f in mine))

            def forecasts_done():
                # The job stores a batch's observations before it marks their regions for a
                # forecast: until then a region can look done with the previous run's forecast.
                # So wait for forecasts ahead of each region's newest record, not only for "ok".
                states = list(db[FORECAST_STATE].find({}, {"needs_forecast": 1, "status": 1}))
                ok = sorted(s["_id"] for s in states if s.get("status") == "ok" and not s.get("needs_forecast"))
                return ok == self.region_ids and all(ahead_of_the_data(r) for r in self.region_ids)

            wait_until(forecasts_done, 240, f"forecasts ahead of the data for every region {self.region_ids}")
            return {"observations": len(want_ids), "kafka_sends_retried": self.feeder.send_failures,
                    "hourly_stats": len(wanted_stats)}
        finally:
            db.client.close()

    def _check_deadletters(self) -> dict:
        malformed = {(m.partition, m.offset) for m in self.feeder.malformed}
        letters = [json.loads(r.value) for r in self.read_topic(self.settings.topic_deadletter)]
        streaming = [dl for dl in letters if dl["service"] == "streaming"]
        if malformed:
            wait_until(lambda: malformed <= {(dl["source_partition"], dl["source_offset"]) for dl in
                                             (json.loads(r.value) for r in self.read_topic(self.settings.topic_deadletter))
                                             if dl["service"] == "streaming"}, 120, "every malformed message dead-lettered")
            letters = [json.loads(r.value) for r in self.read_topic(self.settings.topic_deadletter)]
            streaming = [dl for dl in letters if dl["service"] == "streaming"]
        coords = {(dl["source_partition"], dl["source_offset"]) for dl in streaming}
        assert coords == malformed, "a valid record was dead-lettered, or a malformed one was not"
        assert all(dl["reason"].strip() and dl["source_topic"] == self.settings.topic_observations
                   for dl in streaming)
        return {"malformed": len(malformed), "dead_letter_messages": len(streaming),
                "dead_letter_kinds": dict(Counter(m.kind for m in self.feeder.malformed))}

    def _check_elasticsearch(self) -> dict:
        s = self.settings
        indices = ",".join(s.index(k) for k in ("observations", "logs", "deadletter"))
        ends = {t: self.topic_end_offsets(t) for t in (s.topic_observations, s.topic_deadletter, s.topic_logs)}
        es = self.es()

        def count(index: str, topic: str, partition: int | None = None, below: int | None = None) -> int:
            filters = [{"term": {"kafka.topic": topic}}]
            if partition is not None:
                filters.append({"term": {"kafka.partition": partition}})
                filters.append({"range": {"kafka.offset": {"lt": below}}})
            es.indices.refresh(index=index, ignore_unavailable=True)
            return es.count(index=index, query={"bool": {"filter": filters}}, ignore_unavailable=True)["count"]

        try:
            for topic, parts in ends.items():
                for partition, end in parts.items():
                    wait_until(lambda: count(indices, topic, partition, end) == end, 240,
                               f"Elasticsearch to hold {topic}[{partition}] offsets 0..{end - 1}")
            obs_total = sum(ends[s.topic_observations].values())
            malformed = len(self.feeder.malformed)
            # Nothing more than what was shipped (no duplicate of an _id across indices)...
            assert count(indices, s.topic_observations) == obs_total
            # ...valid observations in their index, the malformed ones refused into the dead-letter index.
            assert count(s.index("observations"), s.topic_observations) == obs_total - malformed
            assert count(s.index("deadletter"), s.topic_observations) == malformed
            return {"es_observations": obs_total - malformed,
                    "es_deadletters": sum(ends[s.topic_deadletter].values()) + malformed,
                    "es_log_lines": sum(ends[s.topic_logs].values())}
        finally:
            es.close()

    def _check_alerts(self) -> dict:
        def settled():
            incidents = self.incidents()
            if any(i.status == "firing" or i.pending_notifications for i in incidents):
                return None
            return (incidents,)  # truthy even when no incident was ever raised (a scenario run alone)

        (incidents,) = wait_until(settled, 240, "every incident resolved and every Slack message delivered")
        raised = Counter(i.rule for i in incidents)
        assert raised == self.expected_incidents, f"alerts raised {dict(raised)}, deserved {dict(self.expected_incidents)}"
        delivered = Counter()
        for message in self.slack.messages:
            for block in message.get("blocks", []):
                for element in block.get("elements", []):
                    delivered.update(_DELIVERY.findall(element.get("text", "")))
        want = Counter({f"{i.incident_id}|{kind}": 1 for i in incidents for kind in ("alert", "recovery")})
        assert delivered == want, f"Slack got {dict(delivered)}, expected one alert and one recovery per incident"
        return {"incidents": {i.incident_id: i.status for i in incidents}, "slack_messages": len(self.slack.messages)}


LOG_TAIL_LINES = 60
FAILED_LOGS_DIR = REPO_ROOT / ".run" / "failed-faults"  # outside RUN_DIR: the next start wipes that


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed scenario keeps its evidence: the services' logs are copied where the next run
    will not wipe them, and the tails of the streaming job's and forecasting API's logs go into
    the failure report (so a CI log shows what the job was doing when the wait ran out)."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    logs = RUN_DIR / "logs"
    if not logs.is_dir():
        return
    kept = FAILED_LOGS_DIR / item.name
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(logs, kept)
    for name in ("streaming", "forecasting_api", "ferretdb"):
        lines = (logs / f"{name}.log").read_text(errors="replace").splitlines() if (logs / f"{name}.log").exists() else []
        tail = "\n".join(line[:600] for line in lines[-LOG_TAIL_LINES:])
        report.sections.append((f"{name}.log, last {LOG_TAIL_LINES} lines (all logs kept in {kept})", tail))


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    slack = SlackServer().__enter__()
    settings = fault_settings(tmp_path_factory.mktemp("faults"), slack.url)
    pipeline = Pipeline(settings, ["kafka", "elasticsearch", "ferretdb"],
                        ["forecasting_api", "shipper", "alerting", "streaming"])
    feeder = None
    try:
        pipeline.start_servers()
        for name in ("forecasting_api", "shipper", "alerting", "streaming"):
            pipeline.start(name)
        context = FaultContext(settings, pipeline, None, slack)
        # Nothing is published before the query runs: Spark's start-up (tens of seconds on a loaded
        # 2-core machine) must not count as a stall, which would raise an alert no fault deserved.
        wait_until(context.streaming_started, 300, "the streaming query to start")
        regions = load_regions()[:REGIONS]
        start = (datetime.now(timezone.utc) - timedelta(days=60)).replace(minute=0, second=0, microsecond=0)
        feeder = Feeder(settings, regions, start, step_minutes=20, tick_seconds=0.5)
        context.feeder = feeder
        feeder.backfill(hours=26)  # enough hourly points for a forecast from the first batch on
        wait_until(lambda: context.batches_logged() > 0, 300, "the first micro-batch")
        feeder.begin()
        yield context
    finally:
        if feeder is not None:
            feeder.stop()
        pipeline.stop_all()
        slack.__exit__(None, None, None)
