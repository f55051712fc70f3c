"""Silences and acknowledgements in the alerting decisions: the pure logic (elk/alerting/silences.py,
`plan`'s `acknowledged`) and the service's delivery with fakes in place of Elasticsearch and Slack.
The same against the real Elasticsearch and a Slack stand-in: tests/integration/test_elk_silences_delivery.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from elk.alerting.engine import Condition, Incident, plan
from elk.alerting.rules import RULE_MODELS, parse_rules
from elk.alerting.service import AlertingService
from elk.alerting.silences import hold_back, matches, released, silenced_by
from elk.alerting.slack import Delivery
from meteoflow.contracts import ALERT_RULES, Silence
from meteoflow.settings import load_settings

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
INTERVAL = 30.0


def silence(rule: str | None = "region_silence", subject: str | None = "dakar", start=T0, hours=1.0,
            sid: str = "s1", **extra) -> Silence:
    return Silence(silence_id=sid, rule=rule, subject=subject, starts_at=start,
                   ends_at=start + timedelta(hours=hours), comment="maintenance", author="ops", created_at=start,
                   **extra)


def incident(rule="region_silence", subject="dakar", region_id="dakar", status="firing", kinds=("alert",),
             at=T0) -> Incident:
    inc = Incident(incident_id=f"{rule}|{subject}|x", rule=rule, subject=subject, region_id=region_id, status=status,
                   severity="critical", summary="No observation", opened_at=at, updated_at=at)
    for kind in kinds:
        inc.add_notification(kind, at)
    return inc


def test_the_rule_names_the_web_app_accepts_are_the_alerting_services():
    assert set(ALERT_RULES) == set(RULE_MODELS), "keep meteoflow.contracts.ALERT_RULES equal to RULE_MODELS"


# --- matching -------------------------------------------------------------------------------
@pytest.mark.parametrize("rule, subject, inc, expected", [
    ("region_silence", "dakar", incident(), True),
    (None, "dakar", incident(rule="arrival_lag"), True),  # a region: every rule about it
    ("region_silence", None, incident(subject="thies", region_id="thies"), True),  # a rule: every subject
    ("region_silence", "thies", incident(), False),
    ("arrival_lag", "dakar", incident(), False),
    (None, "shipper", incident(rule="crash_loop", subject="shipper", region_id=None), True),
    (None, "dakar", incident(rule="crash_loop", subject="shipper", region_id=None), False),
])
def test_a_silence_matches_by_rule_and_subject_or_region(rule, subject, inc, expected):
    assert matches(silence(rule, subject), inc, T0 + timedelta(minutes=1)) is expected


def test_a_silence_matches_only_while_active():
    s = silence(start=T0, hours=1)
    inc = incident()
    assert not matches(s, inc, T0 - timedelta(seconds=1))  # scheduled
    assert matches(s, inc, T0)
    assert matches(s, inc, T0 + timedelta(minutes=59))
    assert not matches(s, inc, T0 + timedelta(hours=1))  # ended
    expired = silence(expired_at=T0 + timedelta(minutes=10))
    assert matches(expired, inc, T0 + timedelta(minutes=9))
    assert not matches(expired, inc, T0 + timedelta(minutes=10))


# --- holding notifications back -------------------------------------------------------------
def test_a_matching_silence_holds_the_alert_back_and_names_itself():
    inc = incident()
    held = hold_back(inc, [silence(sid="other", subject="thies"), silence(sid="mine")], T0 + timedelta(minutes=1))
    assert [(n.kind, n.status, n.silenced_by) for n in held] == [("alert", "silenced", "mine")]
    assert inc.pending_notifications == 0


def test_without_a_matching_silence_nothing_is_held_back():
    inc = incident()
    assert hold_back(inc, [silence(subject="thies")], T0 + timedelta(minutes=1)) == []
    assert [n.status for n in inc.notifications] == ["pending"] and inc.pending_notifications == 1


def test_the_recovery_of_an_incident_nobody_was_told_about_is_held_back_too():
    inc = incident(kinds=("alert",))
    hold_back(inc, [silence(hours=1)], T0 + timedelta(minutes=1))
    inc.status = "resolved"
    inc.add_notification("recovery", T0 + timedelta(hours=2))  # the silence has ended by now
    [held] = hold_back(inc, [], T0 + timedelta(hours=2))
    assert (held.kind, held.status, held.silenced_by) == ("recovery", "silenced", "s1")


def test_the_recovery_goes_once_a_reminder_was_sent_after_the_silence():
    inc = incident(kinds=("alert",))
    hold_back(inc, [silence(hours=1)], T0 + timedelta(minutes=1))
    inc.add_notification("reminder", T0 + timedelta(hours=1))
    inc.notifications[-1].status = "sent"
    inc.status = "resolved"
    inc.add_notification("recovery", T0 + timedelta(hours=2))
    assert silenced_by(inc, inc.notifications[-1], [], T0 + timedelta(hours=2)) is None


def test_holding_back_keeps_the_order_alert_before_recovery():
    inc = incident(kinds=("alert",))
    inc.status = "resolved"
    inc.add_notification("recovery", T0)
    # The alert may go (no silence matched it): the recovery behind it is not looked at yet.
    assert hold_back(inc, [], T0) == []
    assert [n.status for n in inc.notifications] == ["pending", "pending"]


# --- a silence that ends while its incident still fires -------------------------------------
def test_an_incident_still_firing_when_its_silence_ends_gets_a_reminder_once():
    inc = incident()
    hold_back(inc, [silence(hours=1)], T0 + timedelta(minutes=1))
    during = T0 + timedelta(minutes=30)
    assert released([inc], [silence(hours=1)], during) == []
    after = T0 + timedelta(hours=1, seconds=1)
    assert released([inc], [], after) == [inc]
    assert [(n.kind, n.status) for n in inc.notifications] == [("alert", "silenced"), ("reminder", "pending")]
    assert released([inc], [], after + timedelta(seconds=30)) == []  # the reminder is on its way: once


def test_no_release_for_an_acknowledged_or_resolved_incident_or_one_already_told():
    acked = incident()
    hold_back(acked, [silence()], T0)
    assert released([acked], [], T0 + timedelta(hours=2), acknowledged=frozenset({acked.incident_id})) == []
    told = incident()
    told.notifications[0].status = "sent"
    assert released([told], [], T0 + timedelta(hours=2)) == []
    pending = incident(status="pending", kinds=())
    assert released([pending], [], T0 + timedelta(hours=2)) == []
    held = incident()
    hold_back(held, [silence()], T0)
    held.inhibited_by = "service_down|shipper"  # its cause is what is announced
    assert released([held], [], T0 + timedelta(hours=2)) == []


# --- acknowledgements stop reminders, not recoveries ----------------------------------------
def test_an_acknowledged_incident_gets_no_reminder_but_its_recovery():
    rules = parse_rules({"defaults": {"reminder_after_seconds": 600, "for_seconds": 0}})
    inc = incident()
    inc.notifications[0].status = "sent"
    cond = Condition(rule="region_silence", subject="dakar", severity="critical", summary="still silent", hint="",
                     region_id="dakar")
    later = T0 + timedelta(seconds=601)
    [reminded] = plan(later, {cond.key: cond}, {inc.key: inc}, rules, INTERVAL)
    assert [n.kind for n in reminded.notifications] == ["alert", "reminder"]
    [quiet] = plan(later, {cond.key: cond}, {inc.key: inc}, rules, INTERVAL, frozenset({inc.incident_id}))
    assert [n.kind for n in quiet.notifications] == ["alert"]
    [recovered] = plan(later, {}, {inc.key: inc}, rules, INTERVAL, frozenset({inc.incident_id}))
    assert recovered.status == "resolved" and [n.kind for n in recovered.notifications] == ["alert", "recovery"]


# --- the service's delivery, with fakes --------------------------------------------------------
class FakeIncidents:
    """IncidentStore's delivery-side interface over a dict."""

    def __init__(self, incidents):
        self.docs = {inc.incident_id: inc for inc in incidents}
        self.saves = 0

    def with_pending(self):
        return [Incident.model_validate_json(i.model_dump_json()) for i in self.docs.values() if i.pending_notifications]

    def sent_since(self, since):
        return []

    def save(self, inc):
        inc.refresh_pending()
        self.docs[inc.incident_id] = Incident.model_validate_json(inc.model_dump_json())
        self.saves += 1


class FakeSender:
    def __init__(self):
        self.bodies = []

    def send(self, body):
        self.bodies.append(body)
        return Delivery("sent", 1)


@pytest.fixture
def service():
    settings = load_settings(slack_webhook_url=None)
    rules = parse_rules({"defaults": {"group_wait_seconds": 0, "group_interval_seconds": 0}})
    svc = AlertingService(settings, rules=rules, es=object(), sender=FakeSender(), clock=lambda: T0 + timedelta(minutes=1))
    return svc


def test_deliver_records_a_silenced_alert_and_does_not_call_slack(service):
    dakar, thies = incident(), incident(subject="thies", region_id="thies")
    service.store = FakeIncidents([dakar, thies])
    service.silences = [silence(subject="dakar", sid="maint-dakar")]
    assert service.deliver() == 1
    [body] = service.sender.bodies
    assert "thies" in str(body) and "region_silence|dakar" not in str(body)
    [note] = service.store.docs[dakar.incident_id].notifications
    assert (note.status, note.silenced_by, note.attempts, note.sent_at) == ("silenced", "maint-dakar", 0, None)
    assert service.store.docs[thies.incident_id].notifications[0].status == "sent"
    assert service.deliver() == 0 and len(service.sender.bodies) == 1  # nothing pending any more


def test_deliver_without_readable_silences_sends_as_before(service):
    service.store = FakeIncidents([incident()])
    service.silences = None  # Elasticsearch could not give them: fail open
    assert service.deliver() == 1
    assert len(service.sender.bodies) == 1


def test_reading_silences_fails_open_with_a_warning(service, caplog):
    from elastic_transport import ConnectionError as EsConnectionError

    class Unreachable:
        def acks(self, ids):
            raise EsConnectionError("down")

        def active_silences(self, now):
            raise EsConnectionError("down")

    service.silence_store = Unreachable()
    with caplog.at_level("WARNING", logger="alerting"):
        acknowledged, silences = service.read_silences(T0, {("region_silence", "dakar"): incident()})
    assert acknowledged == frozenset() and silences is None
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "silences unreadable" in messages and "acknowledgements unreadable" in messages
