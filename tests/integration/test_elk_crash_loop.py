"""A crash-loop reported by the supervisor of ./run.sh becomes a crash_loop incident: the
supervisor's own JSON lines, made into log documents by the shipper's code, indexed with the
real template, read back by the alerting service's Elasticsearch query."""

import logging
from datetime import datetime, timezone

import pytest

from elk.alerting.engine import conditions
from elk.alerting.rules import load_rules
from elk.alerting.store import FactsReader
from elk.shipper.documents import to_action
from meteoflow.kafka import KafkaRecord
from elk.shipper.service import bulk_operations
from meteoflow.contracts import SERVICE_CRASH_LOOP_ACTION, SERVICE_RECOVERED_ACTION
from meteoflow.es import make_es_client
from meteoflow.freshness import thresholds
from stack.supervisor import Supervisor
from tests.fakes.flaky_service import ERROR_LINE, EXIT_CODE, FlakyService, JsonLines
from tests.faults.harness import wait_until

pytestmark = pytest.mark.integration


def test_a_crash_loop_in_the_logs_index_opens_then_clears_the_incident(isolated, tmp_path):
    settings = isolated.model_copy(update=dict(
        run_dir=tmp_path, supervisor_backoff_initial_seconds=0.05, supervisor_backoff_max_seconds=0.3,
        supervisor_crash_loop_exits=3, supervisor_healthy_after_seconds=1.0))
    lines = JsonLines()
    log = logging.getLogger("test-supervisor-es")
    log.addHandler(lines)
    log.propagate = False
    log.setLevel(logging.INFO)
    flaky = FlakyService(settings)
    supervisor = Supervisor(settings, [flaky], log, say=lambda _text: None)
    es = make_es_client(settings)
    rules = load_rules(settings.alert_rules_file)

    def ship() -> None:
        actions = [to_action(settings, KafkaRecord(settings.topic_logs, 0, n, b"supervisor", line.encode()))
                   for n, line in enumerate(lines.lines)]
        assert {a["_index"] for a in actions} == {settings.index("logs")}
        resp = es.bulk(operations=bulk_operations(actions), refresh=True)
        assert not resp["errors"], resp

    def firing() -> dict:
        facts = FactsReader(settings, es).read(rules, datetime.now(timezone.utc))
        return conditions(rules, facts, settings.effective_interval_seconds, thresholds(settings, rules.region_silence))

    try:
        wait_until(lambda: supervisor.check() or lines.of(SERVICE_CRASH_LOOP_ACTION), 60, "a crash-loop", every=0.1)
        ship()
        cond = firing()[("crash_loop", "flaky")]
        assert cond.severity == "critical" and f"exit {EXIT_CODE}: {ERROR_LINE}" in cond.summary

        (tmp_path / "fixed").touch()
        wait_until(lambda: supervisor.check() or lines.of(SERVICE_RECOVERED_ACTION), 60, "the recovery", every=0.1)
        ship()
        assert ("crash_loop", "flaky") not in firing()
    finally:
        flaky.stop()
        log.removeHandler(lines)
