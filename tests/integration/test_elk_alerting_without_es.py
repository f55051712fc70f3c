"""Alerting while Elasticsearch cannot be reached: the service names the outage from its own
memory (a real client against a port nothing listens on), then hands what it kept back to the
real Elasticsearch of the test stack once that answers, and sends the recovery from there."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from elk.alerting.rules import RULE_MODELS, load_rules, parse_rules
from elk.alerting.service import AlertingService
from elk.alerting.store import FactsReader, IncidentStore
from meteoflow.es import make_es_client
from meteoflow.metrics import AlertingMetrics
from tests.fakes.slack_server import SlackServer
from tests.fakes.prometheus import from_registry
from tests.integration.test_elk_alert_delivery import incident_docs

pytestmark = pytest.mark.integration


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_elasticsearch_outage_is_named_then_handed_back_with_its_recovery(isolated, tmp_path):
    shipped = load_rules(isolated.alert_rules_file).model_dump()
    shipped["defaults"].update(for_seconds=0, group_wait_seconds=0, group_interval_seconds=0)
    shipped["elasticsearch_unavailable"]["for_seconds"] = 0
    rules = parse_rules(shipped)
    now = [datetime.now(timezone.utc)]
    with SlackServer() as slack:
        s = isolated.model_copy(update=dict(run_dir=tmp_path, alert_eval_interval_seconds=1.0,
                                            slack_webhook_url=SecretStr(slack.url)))
        unreachable = make_es_client(s.model_copy(update=dict(es_port=unused_port())), max_retries=0,
                                     request_timeout=2)
        metrics = AlertingMetrics(RULE_MODELS, CollectorRegistry())
        svc = AlertingService(s, rules=rules, es=unreachable, clock=lambda: now[0], metrics=metrics)
        for _ in range(2):
            svc.evaluation_round()
            now[0] += timedelta(seconds=1)
        assert len(slack.messages) == 1  # one message over two rounds
        assert slack.messages[0]["text"].startswith(":rotating_light: [CRITICAL] Elasticsearch unavailable: ")
        assert "cannot read Elasticsearch (ConnectionError)" in slack.messages[0]["text"]
        assert (tmp_path / "alerting" / "incidents-without-elasticsearch.json").exists()

        # Elasticsearch answers again (the real one): the outage resolves there, once.
        es = make_es_client(s)
        svc.es, svc.facts, svc.store = es, FactsReader(s, es), IncidentStore(s, es)
        svc.evaluation_round()
        assert len(slack.messages) == 2 and slack.messages[1]["text"].startswith(
            ":white_check_mark: [CRITICAL] Recovered: Elasticsearch unavailable")
        (doc,) = incident_docs(es, s)
        assert doc["rule"] == "elasticsearch_unavailable" and doc["status"] == "resolved"
        assert [(n["kind"], n["status"]) for n in doc["notifications"]] == [("alert", "sent"), ("recovery", "sent")]
        assert not (tmp_path / "alerting" / "incidents-without-elasticsearch.json").exists()
        now[0] += timedelta(seconds=1)
        svc.evaluation_round()
        assert len(slack.messages) == 2
    # What Prometheus was told meanwhile: two rounds without Elasticsearch, then two with it.
    scraped = from_registry(metrics.registry)
    assert {o: scraped.value("meteoflow_alerting_evaluations_total", outcome=o)
            for o in ("ok", "without_elasticsearch", "failed")} == {"ok": 2, "without_elasticsearch": 2, "failed": 0}
    assert scraped.value("meteoflow_alerting_slack_deliveries_total", outcome="sent") == 2
    for kind in ("alert", "recovery"):
        assert scraped.value("meteoflow_alerting_notifications_total", rule="elasticsearch_unavailable", kind=kind) == 1
    assert scraped.value("meteoflow_alerting_incidents_firing", rule="elasticsearch_unavailable") == 0
