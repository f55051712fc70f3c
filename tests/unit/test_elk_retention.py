"""Elasticsearch retention: the queries (pure), the adapter's calls, and how the alerting service
schedules it. What the queries really delete is checked against Elasticsearch in
tests/integration/test_elk_retention.py."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest

from elk.alerting import service as alerting_service
from elk.alerting.rules import load_rules
from elk.alerting.service import AlertingService
from elk.retention import AGE_FIELDS, DIRECT_AGE_FIELDS, FALLBACK_AGE_FIELD, count_deleted, delete_operations, retention_queries
from elk.templates import load_templates
from meteoflow.settings import load_settings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def test_retention_covers_logs_deadletters_metrics_alerts_silences_acks_never_observations():
    queries = retention_queries(load_settings(), NOW)
    assert set(queries) == {"logs", "deadletter", "alerts", "metrics", "silences", "acks"}


def test_cutoff_is_retention_days_before_now_on_the_event_time_then_the_shipping_time():
    queries = retention_queries(load_settings(es_retention_days=3), NOW)
    cutoff = (NOW - timedelta(days=3)).isoformat()
    assert queries["logs"]["bool"]["should"] == [
        {"range": {"@timestamp": {"lt": cutoff}}},
        {"bool": {"must_not": [{"exists": {"field": "@timestamp"}}],
                  "filter": [{"range": {"ingested_at": {"lt": cutoff}}}]}},
    ]
    assert queries["deadletter"]["bool"]["should"][0] == {"range": {"failed_at": {"lt": cutoff}}}
    assert queries["deadletter"]["bool"]["minimum_should_match"] == 1


def test_only_resolved_incidents_with_nothing_left_to_send_expire():
    alerts = retention_queries(load_settings(es_retention_days=14), NOW)["alerts"]["bool"]
    assert {"term": {"status": "resolved"}} in alerts["filter"]
    assert {"range": {"resolved_at": {"lt": (NOW - timedelta(days=14)).isoformat()}}} in alerts["filter"]
    assert alerts["must_not"] == [{"range": {"pending_notifications": {"gt": 0}}}]


def test_every_field_retention_reads_is_a_date_in_its_index_template():
    templates = load_templates("p")
    for kind, field in [*AGE_FIELDS.items(), *((k, FALLBACK_AGE_FIELD) for k in AGE_FIELDS), ("alerts", "resolved_at"),
                        *DIRECT_AGE_FIELDS.items(), ("silences", "ends_at"), ("silences", "expired_at"), ("acks", "at")]:
        properties = templates[f"p-{kind}"]["template"]["mappings"]["properties"]
        assert properties[field]["type"] == "date", (kind, field)


def test_silences_expire_once_ended_that_long_ago_by_their_end_or_expiry():
    cutoff = (NOW - timedelta(days=14)).isoformat()
    silences = retention_queries(load_settings(es_retention_days=14), NOW)["silences"]["bool"]
    assert silences["minimum_should_match"] == 1
    assert silences["should"] == [{"range": {"ends_at": {"lt": cutoff}}}, {"range": {"expired_at": {"lt": cutoff}}}]


def test_acks_of_open_incidents_stay_however_old():
    cutoff = (NOW - timedelta(days=14)).isoformat()
    acks = retention_queries(load_settings(es_retention_days=14), NOW, ["b|x|1", "a|y|2"])["acks"]["bool"]
    assert acks["filter"] == [{"range": {"at": {"lt": cutoff}}}]
    assert acks["must_not"] == [{"ids": {"values": ["a|y|2", "b|x|1"]}}]


def test_health_samples_expire_by_their_timestamp():
    metrics = retention_queries(load_settings(es_retention_days=14), NOW)["metrics"]
    assert metrics == {"range": {"@timestamp": {"lt": (NOW - timedelta(days=14)).isoformat()}}}


@pytest.mark.parametrize("days", [0, -1])
def test_retention_days_below_one_is_refused(days):
    with pytest.raises(Exception, match="METEOFLOW_ES_RETENTION_DAYS"):
        load_settings(es_retention_days=days)


def test_each_hit_is_deleted_only_if_unchanged_since_the_search():
    hits = [{"_index": "mf-alerts", "_id": "a|b|c", "_seq_no": 7, "_primary_term": 1, "_score": None}]
    assert delete_operations(hits) == [
        {"delete": {"_index": "mf-alerts", "_id": "a|b|c", "if_seq_no": 7, "if_primary_term": 1}}]


def test_gone_or_changed_documents_are_skipped_other_failures_raise():
    def item(**result):
        return {"delete": {"_index": "mf-logs", "_id": "x", **result}}

    assert count_deleted({"items": [item(result="deleted", status=200), item(result="not_found", status=404),
                                    item(status=409, error={"type": "version_conflict_engine_exception"})]}) == 1
    with pytest.raises(RuntimeError, match="deleting x from mf-logs failed.*cluster_block"):
        count_deleted({"items": [item(status=403, error={"type": "cluster_block_exception"})]})


# --- scheduling in the alerting service ------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
def service(monkeypatch):
    clock = Clock()
    settings = load_settings(es_retention_interval_seconds=3600, slack_webhook_url=None)
    svc = AlertingService(settings, rules=load_rules(settings.alert_rules_file), es=object(), clock=clock)
    runs = []

    def fake_apply(es, s, now):
        runs.append(now)
        if getattr(svc, "fail_retention", False):
            raise ConnectionError("elasticsearch down")
        return {}

    monkeypatch.setattr(alerting_service, "apply_retention", fake_apply)
    # No health sampler: it would open real clients to the default ports and run() would wait for it.
    monkeypatch.setattr(svc, "start_health_sampler", lambda stop: None)
    svc.clock_, svc.retention_runs = clock, runs
    return svc


def test_retention_runs_at_start_then_once_per_interval(service):
    service.retention_if_due()
    service.clock_.now = NOW + timedelta(minutes=59)
    service.retention_if_due()
    service.clock_.now = NOW + timedelta(minutes=60)
    service.retention_if_due()
    assert service.retention_runs == [NOW, NOW + timedelta(minutes=60)]


def test_a_failed_retention_is_a_warning_retried_next_interval_and_alerting_goes_on(service, caplog):
    service.fail_retention = True
    stop = threading.Event()
    evaluations = []

    def evaluate_then_stop():
        evaluations.append(service.clock_.now)
        stop.set()

    service.run_once = evaluate_then_stop
    with caplog.at_level(logging.WARNING, logger="alerting"):
        service.run(stop)  # returns: the failure did not escape the loop
    assert evaluations == [NOW] and service.retention_runs == [NOW]
    assert any("es retention failed" in r.getMessage() for r in caplog.records)
    service.clock_.now = NOW + timedelta(minutes=30)
    service.retention_if_due()
    assert service.retention_runs == [NOW]  # not hammered: next try after the interval
    service.clock_.now = NOW + timedelta(hours=1)
    service.retention_if_due()
    assert service.retention_runs == [NOW, NOW + timedelta(hours=1)]
