"""Silences and acknowledgements end to end: created through the web app's API, stored in the real
Elasticsearch, applied by the alerting service (fresh instances standing for restarts), with the
local Slack stand-in. Time is a fake clock stepped one evaluation at a time: nothing races."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from elk.alerting.engine import Incident
from elk.alerting.service import AlertingService
from elk.retention import apply_retention
from meteoflow.contracts import Acknowledgement, Silence
from meteoflow.es import make_es_client
from meteoflow.silences import SilenceStore
from tests.fakes.slack_server import SlackServer
from tests.integration.test_elk_alert_delivery import (
    INTERVAL, SILENT_AFTER_INTERVALS, FakeClock, alert_settings, arrive, incident_docs,
)
from webapp.app import create_app

pytestmark = pytest.mark.integration

SILENT_AFTER = SILENT_AFTER_INTERVALS * INTERVAL


class World:
    """The alerting service, the web app and the Slack stand-in over one isolated index prefix."""

    def __init__(self, settings, slack: SlackServer, clock: FakeClock):
        self.s, self.slack, self.clock = settings, slack, clock
        self.t0 = clock.now
        self.es = make_es_client(settings)
        self.offsets = count()
        self.alerting = AlertingService(settings, clock=clock)
        self.web = TestClient(create_app(settings, clock=clock))

    def arrive(self, *regions: str, at: float) -> None:
        arrive(self.es, self.s, {r: self.t0 + timedelta(seconds=at) for r in regions}, self.offsets)

    def evaluate_at(self, seconds: float, restart: bool = False) -> list[str]:
        """One evaluation at t0 + seconds (by a new service instance when `restart`); Slack's texts so far."""
        if restart:
            self.alerting = AlertingService(self.s, clock=self.clock)
        self.clock.now = self.t0 + timedelta(seconds=seconds)
        self.alerting.run_once()
        return [m["text"] for m in self.slack.messages]

    def incident(self, region: str, status: str | None = None) -> dict:
        [doc] = [d for d in incident_docs(self.es, self.s)
                 if d["subject"] == region and (status is None or d["status"] == status)]
        return doc


@pytest.fixture
def world(isolated, tmp_path):
    with SlackServer() as slack:
        s = alert_settings(isolated, tmp_path, slack.url, defaults={"reminder_after_seconds": 5})
        w = World(s, slack, FakeClock())
        with w.web:
            yield w
        w.es.close()


def notes(doc: dict) -> list[tuple]:
    return [(n["kind"], n["status"], n.get("silenced_by")) for n in doc["notifications"]]


def test_a_silenced_region_sends_nothing_is_recorded_silenced_and_the_silence_outlives_a_restart(world):
    world.arrive("dakar", "thies", at=0)
    created = world.web.post("/api/silences", json={
        "rule": "region_silence", "subject": "dakar", "duration_seconds": 60,
        "comment": "Dakar's station is being moved", "author": "awa"})
    assert created.status_code == 201, created.text
    sid = created.json()["silence"]["id"]

    [alert] = world.evaluate_at(SILENT_AFTER + 1)  # both regions silent; only Thiès is announced
    assert alert.startswith(":rotating_light:") and "Thies" in alert and "Dakar" not in alert
    assert notes(world.incident("dakar")) == [("alert", "silenced", sid)]
    assert world.incident("dakar")["pending_notifications"] == 0
    shown = world.web.get(f"/api/incidents/{quote(world.incident('dakar')['incident_id'], safe='')}").json()
    assert [(n["kind"], n["status"], n["silenced_by"]) for n in shown["incident"]["notifications"]] == [
        ("alert", "silenced", sid)]

    # Both recover: Thiès' recovery goes; Dakar's alert was never sent, so neither is its recovery.
    world.arrive("dakar", "thies", at=SILENT_AFTER + 2)
    [_, recovery] = world.evaluate_at(SILENT_AFTER + 2, restart=True)
    assert recovery.startswith(":white_check_mark:") and "Thies" in recovery and "Dakar" not in recovery
    assert notes(world.incident("dakar")) == [("alert", "silenced", sid), ("recovery", "silenced", sid)]

    # Dakar silent again, evaluated by yet another instance: the stored silence still holds.
    silent_again = 2 * SILENT_AFTER + 3
    world.arrive("thies", at=silent_again - 1)
    assert len(world.evaluate_at(silent_again, restart=True)) == 2
    assert notes(world.incident("dakar", "firing")) == [("alert", "silenced", sid)]

    # Expired by hand while Dakar still fires: it is announced now, once, as still firing.
    world.arrive("thies", at=silent_again + 1)
    assert world.web.delete(f"/api/silences/{sid}").json()["silence"]["state"] == "expired"
    texts = world.evaluate_at(silent_again + 1)
    assert len(texts) == 3 and texts[-1].startswith(":hourglass:") and "Still firing" in texts[-1] and "Dakar" in texts[-1]
    world.arrive("thies", at=silent_again + 2)
    assert len(world.evaluate_at(silent_again + 2)) == 3


def test_an_acknowledged_incident_sends_no_reminder_but_its_recovery(world):
    world.arrive("dakar", "thies", at=0)
    [alert] = world.evaluate_at(SILENT_AFTER + 1)
    assert "2 regions" in alert  # one digest for both
    dakar = world.incident("dakar")["incident_id"]
    acked = world.web.post(f"/api/incidents/{quote(dakar, safe='')}/ack",
                           json={"author": "awa", "comment": "Restarting the producer"})
    assert acked.status_code == 201, acked.text

    # Reminders are due 5 s after the alert: Thiès gets one, Dakar (acknowledged) none, also after a restart.
    texts = world.evaluate_at(SILENT_AFTER + 7, restart=True)
    assert len(texts) == 2 and texts[1].startswith(":hourglass:") and "Thies" in texts[1] and "Dakar" not in texts[1]
    assert [n["kind"] for n in world.incident("dakar")["notifications"]] == ["alert"]
    texts = world.evaluate_at(SILENT_AFTER + 14)
    assert len(texts) == 3 and not any("Dakar" in t for t in texts[1:])  # Thiès' second reminder only

    world.arrive("dakar", at=SILENT_AFTER + 15)
    texts = world.evaluate_at(SILENT_AFTER + 15)
    assert texts[-1].startswith(":white_check_mark:") and "Dakar" in texts[-1]
    assert notes(world.incident("dakar")) == [("alert", "sent", None), ("recovery", "sent", None)]
    body = world.web.get(f"/api/incidents/{quote(dakar, safe='')}").json()["incident"]
    assert body["status"] == "resolved" and body["acknowledgement"]["author"] == "awa"


def test_retention_keeps_current_silences_and_the_acks_of_open_incidents(isolated):
    s = isolated.model_copy(update={"es_retention_days": 14})
    es = make_es_client(s)
    store = SilenceStore(s, es)
    now = FakeClock().now

    def silence(sid: str, start_days: float, days: float, expired_days: float | None = None) -> Silence:
        start = now - timedelta(days=start_days)
        return Silence(silence_id=sid, subject="dakar", starts_at=start, ends_at=start + timedelta(days=days),
                       comment="c", author="a", created_at=start,
                       expired_at=None if expired_days is None else now - timedelta(days=expired_days))

    for sil in (silence("active-long", 20, 30), silence("scheduled", -1, 1), silence("ended-old", 40, 1),
                silence("ended-recently", 20, 10), silence("expired-old", 25, 30, expired_days=20)):
        store.save_silence(sil)
    incidents = AlertingService(s, es=es).store
    for iid, status in (("region_silence|dakar|old-open", "firing"), ("region_silence|thies|old-closed", "resolved")):
        opened = now - timedelta(days=30)
        incidents.save(Incident(incident_id=iid, rule="region_silence", subject=iid.split("|")[1], status=status,
                                   severity="critical", summary="s", opened_at=opened, updated_at=opened,
                                   resolved_at=opened + timedelta(days=1) if status == "resolved" else None))
        assert store.save_ack(Acknowledgement(incident_id=iid, author="a", comment="c", at=opened))
    assert store.save_ack(Acknowledgement(incident_id="region_silence|kolda|recent", author="a", comment="c",
                                          at=now - timedelta(days=1)))

    deleted = apply_retention(es, s, now)
    assert (deleted["silences"], deleted["acks"]) == (2, 1)
    left = {x.silence_id for x in store.silences(ended_since=datetime(1970, 1, 1, tzinfo=timezone.utc))}
    assert left == {"active-long", "scheduled", "ended-recently"}
    assert set(store.acks(["region_silence|dakar|old-open", "region_silence|thies|old-closed",
                           "region_silence|kolda|recent"])) == {"region_silence|dakar|old-open", "region_silence|kolda|recent"}
    es.close()
