"""Retention against the real Elasticsearch: exactly the documents older than the retention go,
from the logs, dead-letter, alerts and metrics indices; everything newer, and every observation, stays.

Documents are built by the shipper's own rules (elk/shipper/documents.py) and the incident
store, with event and shipping times in the past, as a machine running for weeks holds them."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from elasticsearch import helpers

from elk.alerting.engine import Incident, Notification
from elk.alerting.service import AlertingService
from elk.alerting.store import IncidentStore
from elk.retention import apply_retention
from elk.shipper.documents import iso, to_action
from meteoflow.contracts import MetricSample
from meteoflow.es import make_es_client
from tests.fakes.elk_records import dead_letter, log_line, observation, record

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc)
OLD = NOW - timedelta(days=20)  # beyond the 14-day default
RECENT = NOW - timedelta(days=13, hours=23)  # just inside it


def shipped(settings, topic: str, offset: int, value: bytes, at: datetime) -> dict:
    """The bulk action the shipper writes for this record when it ships it at `at`."""
    return to_action(settings, record(topic, value, offset=offset), now=at)


def ids(es, index: str) -> set[str]:
    es.indices.refresh(index=index)
    return {h["_id"] for h in es.search(index=index, size=100, query={"match_all": {}})["hits"]["hits"]}


def incident(name: str, status: str, opened: datetime, resolved: datetime | None, pending: bool = False) -> Incident:
    notes = [Notification(delivery_id=f"{name}|alert", kind="alert", status="sent", created_at=opened)]
    if resolved:
        notes.append(Notification(delivery_id=f"{name}|recovery", kind="recovery",
                                  status="pending" if pending else "sent", created_at=resolved))
    return Incident(incident_id=name, rule="region_silence", subject=name, status=status, severity="warning",
                    summary=name, opened_at=opened, updated_at=resolved or opened, resolved_at=resolved,
                    notifications=notes)


def test_retention_deletes_exactly_what_is_older_than_the_retention(isolated):
    s = isolated
    es = make_es_client(s)
    logs, dead, obs = s.topic_logs, s.topic_deadletter, s.topic_observations
    actions = {
        # logs: the line's own @timestamp decides; without a usable one, when it was shipped
        "log-old": shipped(s, logs, 0, log_line(**{"@timestamp": iso(OLD)}), OLD),
        "log-old-reshipped-today": shipped(s, logs, 1, log_line(**{"@timestamp": iso(OLD)}), NOW),
        "log-recent": shipped(s, logs, 2, log_line(**{"@timestamp": iso(RECENT)}), RECENT),
        "log-bad-time-old": shipped(s, logs, 3, log_line(**{"@timestamp": "last tuesday"}), OLD),
        "log-bad-time-new": shipped(s, logs, 4, log_line(**{"@timestamp": "last tuesday"}), NOW),
        # dead letters: failed_at; also a record the shipper itself refused long ago
        "dead-old": shipped(s, dead, 0, json.dumps({**json.loads(dead_letter()), "failed_at": iso(OLD)}).encode(), OLD),
        "dead-recent": shipped(s, dead, 1, json.dumps({**json.loads(dead_letter()), "failed_at": iso(RECENT)}).encode(),
                               RECENT),
        "refused-old": shipped(s, obs, 0, b"not json", OLD),
        # observations are the product's data: never deleted, however old
        "obs-old": shipped(s, obs, 1, json.dumps(observation(observed_at=OLD - timedelta(days=60)).to_json_dict()).encode(), OLD),
    }
    assert actions["refused-old"]["_index"] == s.index("deadletter")
    helpers.bulk(es, actions.values(), refresh=True)
    by_name = {name: a["_id"] for name, a in actions.items()}

    store = IncidentStore(s, es)
    for inc in [
        incident("resolved-old", "resolved", OLD - timedelta(hours=1), OLD),
        incident("resolved-old-recovery-unsent", "resolved", OLD - timedelta(hours=1), OLD, pending=True),
        incident("resolved-recent", "resolved", OLD, RECENT),
        incident("firing-since-long", "firing", OLD, None),
    ]:
        store.save(inc)

    samples = {"sample-old": OLD, "sample-recent": RECENT}
    helpers.bulk(es, ({"_index": s.index("metrics"), "_id": name,
                       "_source": MetricSample(timestamp=at, kind="consumer_lag", subject="shipper", lag_records=0)
                       .model_dump(mode="json", by_alias=True, exclude_none=True)}
                      for name, at in samples.items()), refresh=True)

    deleted = apply_retention(es, s, NOW)

    assert deleted == {"logs": 3, "deadletter": 2, "alerts": 1, "metrics": 1, "silences": 0, "acks": 0}
    assert ids(es, s.index("metrics")) == {"sample-recent"}
    assert ids(es, s.index("logs")) == {by_name["log-recent"], by_name["log-bad-time-new"]}
    assert ids(es, s.index("deadletter")) == {by_name["dead-recent"]}
    assert ids(es, s.index("observations")) == {by_name["obs-old"]}
    assert ids(es, s.index("alerts")) == {"resolved-old-recovery-unsent", "resolved-recent", "firing-since-long"}

    # The alerting service's own run (its client, its schedule) finds nothing more to delete.
    service = AlertingService(s, clock=lambda: NOW)
    service.retention_if_due()
    assert service.next_retention_at == NOW + timedelta(seconds=s.es_retention_interval_seconds)
    assert apply_retention(es, s, NOW) == {"logs": 0, "deadletter": 0, "alerts": 0, "metrics": 0, "silences": 0, "acks": 0}


def test_retention_on_a_fresh_install_without_indices_deletes_nothing_and_fails_nothing(isolated, caplog):
    with caplog.at_level(logging.INFO, logger="retention"):
        assert apply_retention(make_es_client(isolated), isolated, NOW) == {
            "logs": 0, "deadletter": 0, "alerts": 0, "metrics": 0, "silences": 0, "acks": 0}
    assert [r.fields["event.action"] for r in caplog.records] == ["es-retention"]
