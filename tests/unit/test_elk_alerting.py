from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from elk.alerting.engine import (
    Facts, Incident, Notification, RegionFacts, ServiceFacts, abandoned, conditions, due_groups, last_sent_by_group,
    plan,
)
from elk.alerting.rules import AlertRules, Grouping, RulesError, load_rules, parse_rules
from elk.alerting.store import region_facts_from_aggs, service_facts_from_aggs
from meteoflow.contracts import (
    SERVICE_CRASH_LOOP_ACTION,
    SERVICE_EXITED_ACTION,
    SERVICE_RECOVERED_ACTION,
    SupervisorEvent,
)
from meteoflow.freshness import Thresholds, load_silence_rule, thresholds
from meteoflow.settings import REPO_ROOT, load_settings

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
SILENCE = Thresholds(late_after_seconds=60, silent_after_seconds=120)
INTERVAL = 30.0


def rules(**sections) -> AlertRules:
    base = {"streaming_stalled": {"enabled": False}, "deadletter_spike": {"enabled": False},
            "defaults": {"reminder_after_seconds": 600, "for_seconds": 0}}  # fire when first seen
    base.update(sections)
    return parse_rules(base)


def facts(now, **regions_last_seen) -> Facts:
    return Facts(now=now, regions={r: RegionFacts(r, r.title(), seen, seen, 5.0) for r, seen in regions_last_seen.items()},
                 last_observation_at=max(regions_last_seen.values(), default=None))


def step(r: AlertRules, f: Facts, open_: dict) -> tuple[list[Incident], dict]:
    """One evaluation, then the store round trip (JSON), as the service does it."""
    current = conditions(r, f, INTERVAL, SILENCE, open_)
    changed = plan(f.now, current, open_, r, INTERVAL)
    store = {k: v for k, v in open_.items()}
    for blip in abandoned(current, open_, r):
        store.pop(blip.key)
    for inc in changed:
        again = Incident.model_validate_json(inc.model_dump_json())
        if again.status in ("pending", "firing"):
            store[again.key] = again
        else:
            store.pop(again.key, None)
    return changed, store


# --- rules file --------------------------------------------------------------------------
def test_the_shipped_rules_file_loads_and_feeds_freshness():
    loaded = load_rules(REPO_ROOT / "elk" / "alert_rules.yaml")
    settings = load_settings(producer_source="simulator", simulator_interval_seconds=30)
    limits = thresholds(settings)
    assert limits.silent_after_seconds == loaded.region_silence.silent_after_intervals * 30
    assert load_silence_rule(settings.alert_rules_file).silent_after_intervals == loaded.region_silence.silent_after_intervals


@pytest.mark.parametrize("data, expected", [
    ({"arrival_lag": {"threshold_seconds": -5}}, "rule 'arrival_lag', field 'threshold_seconds'"),
    ({"region_silence": {"silent_after_intervals": "often"}}, "rule 'region_silence', field 'silent_after_intervals'"),
    ({"region_silence": {"silence_after": 3}}, "rule 'region_silence', field 'silence_after': unknown field"),
    ({"deadletter_spike": {"severity": "loud"}}, "rule 'deadletter_spike', field 'severity'"),
    ({"disk_full": {}}, "unknown rule(s) 'disk_full'"),
    ({"arrival_lag": [1, 2]}, "rule 'arrival_lag': expected a mapping"),
    ({"crash_loop": {"window_seconds": 0}}, "rule 'crash_loop', field 'window_seconds'"),
])
def test_bad_rules_are_refused_naming_rule_and_field(data, expected):
    with pytest.raises(RulesError) as err:
        parse_rules(data, "rules.yaml")
    assert expected in str(err.value) and str(err.value).startswith("rules.yaml")


def test_rules_file_errors_name_the_file(tmp_path: Path):
    bad = tmp_path / "r.yaml"
    bad.write_text("arrival_lag: {threshold_seconds: [}")
    with pytest.raises(RulesError, match="not valid YAML"):
        load_rules(bad)
    with pytest.raises(RulesError, match="not found"):
        load_rules(tmp_path / "missing.yaml")
    bad.write_text(yaml.safe_dump({"streaming_stalled": {"min_stalled_seconds": -1}}))
    with pytest.raises(RulesError, match=r"r\.yaml: rule 'streaming_stalled', field 'min_stalled_seconds'"):
        load_rules(bad)


# --- region silence: one alert, reminders, one recovery -------------------------------------
def test_silence_opens_one_incident_then_reminds_then_recovers():
    r = rules(arrival_lag={"enabled": False})
    seen = T0
    changed, store = step(r, facts(T0 + timedelta(seconds=100), dakar=seen, thies=seen), {})
    assert changed == []  # 100 s < 120 s: not silent yet

    now = T0 + timedelta(seconds=121)
    changed, store = step(r, facts(now, dakar=seen, thies=now), store)
    [inc] = changed
    assert (inc.rule, inc.subject, inc.status) == ("region_silence", "dakar", "firing")
    assert inc.incident_id == "region_silence|dakar|20261126T120201.000000Z"
    assert [(n.kind, n.status, n.delivery_id) for n in inc.notifications] == [
        ("alert", "pending", inc.incident_id + "|alert")]
    assert inc.last_seen == seen and inc.pending_notifications == 1

    # Later evaluations of the same silence (also by a restarted service reading the store): no new message.
    for later in (150, 300, 700):
        now = T0 + timedelta(seconds=later)
        changed, store = step(r, facts(now, dakar=seen, thies=now), store)
        assert [n.kind for n in changed[0].notifications] == ["alert"]
    # Reminder once reminder_after_seconds (600) passed since the alert.
    now = T0 + timedelta(seconds=121 + 600)
    changed, store = step(r, facts(now, dakar=seen, thies=now), store)
    assert [n.delivery_id.rsplit("|", 1)[1] for n in changed[0].notifications] == ["alert", "reminder-1"]
    # Data again: one recovery.
    now = T0 + timedelta(seconds=800)
    changed, store = step(r, facts(now, dakar=now, thies=now), store)
    [inc] = changed
    assert inc.status == "resolved" and inc.resolved_at == now
    assert [n.kind for n in inc.notifications] == ["alert", "reminder", "recovery"]
    changed, store = step(r, facts(now + timedelta(seconds=1), dakar=now, thies=now), store)
    assert changed == [] and store == {}


def test_a_region_silent_longer_than_the_lookback_stays_alerted():
    r = rules(arrival_lag={"enabled": False})
    now = T0 + timedelta(seconds=200)
    _, store = step(r, facts(now, dakar=T0), {})
    # The region fell out of the lookback window: facts no longer list it.
    changed, store = step(r, facts(now + timedelta(days=3), thies=now + timedelta(days=3)), store)
    assert changed[0].status == "firing" and changed[0].subject == "dakar"
    assert [n.kind for n in changed[0].notifications] == ["alert", "reminder"]


def test_no_reminders_when_disabled():
    r = rules(arrival_lag={"enabled": False}, defaults={"reminder_after_seconds": 0})
    _, store = step(r, facts(T0 + timedelta(seconds=200), dakar=T0), {})
    changed, _ = step(r, facts(T0 + timedelta(days=1), dakar=T0), store)
    assert [n.kind for n in changed[0].notifications] == ["alert"]


# --- arrival lag (latest observation only) ------------------------------------------------
def test_region_facts_take_the_latest_live_observation_not_the_backfill():
    def bucket(key, live_hits):
        return {"key": key, "last_seen": {"value": T0.timestamp() * 1000},
                "any": {"hits": {"hits": [{"_source": {"region_name": key.title()}}]}},
                "live": {"latest": {"hits": {"hits": live_hits}}}}

    aggs = {"regions": {"buckets": [
        bucket("dakar", [{"_source": {"region_name": "Dakar", "observed_at": "2026-11-26T11:59:00Z",
                                      "lag_seconds": 60.0}}]),
        bucket("thies", []),  # only back-filled history so far: no arrival lag to judge
    ]}}
    regions = region_facts_from_aggs(aggs)
    assert regions["dakar"].lag_seconds == 60.0 and regions["dakar"].last_seen == T0
    assert regions["dakar"].region_name == "Dakar"
    assert regions["thies"].lag_seconds is None and regions["thies"].region_name == "Thies"
    assert regions["thies"].last_seen == T0  # silence is still judged on every arrival


def test_arrival_lag_fires_above_threshold_and_clears():
    r = rules(region_silence={"enabled": False}, arrival_lag={"threshold_seconds": 600})
    late = Facts(now=T0, regions={"dakar": RegionFacts("dakar", "Dakar", T0, T0 - timedelta(hours=1), 3600.0),
                                  "thies": RegionFacts("thies", "Thies", T0, T0, 10.0)})
    found = conditions(r, late, INTERVAL, SILENCE)
    assert list(found) == [("arrival_lag", "dakar")]
    assert found[("arrival_lag", "dakar")].lag_seconds == 3600.0 and "60 min" in found[("arrival_lag", "dakar")].summary


# --- streaming stalled, dead-letter spike ------------------------------------------------------
def test_streaming_stalled_only_while_observations_keep_arriving():
    r = rules(region_silence={"enabled": False}, arrival_lag={"enabled": False},
              streaming_stalled={"stalled_after_intervals": 3, "min_stalled_seconds": 60})
    limit = 90  # 3 x 30 s
    now = T0
    fresh = now - timedelta(seconds=5)
    assert conditions(r, Facts(now, last_observation_at=fresh, last_progress_at=now - timedelta(seconds=limit - 1)),
                      INTERVAL, SILENCE) == {}
    stalled = conditions(r, Facts(now, last_observation_at=fresh, last_progress_at=now - timedelta(seconds=limit + 1)),
                         INTERVAL, SILENCE)
    assert list(stalled) == [("streaming_stalled", "streaming")]
    # A fresh start (no progress line yet): stalled only once records waited past the limit.
    assert conditions(r, Facts(now, last_observation_at=fresh,
                               first_observation_at=now - timedelta(seconds=limit - 1)), INTERVAL, SILENCE) == {}
    waited = Facts(now, last_observation_at=fresh, first_observation_at=now - timedelta(seconds=limit + 1))
    assert list(conditions(r, waited, INTERVAL, SILENCE)) == [("streaming_stalled", "streaming")]
    # Nothing arriving at all is the silence rule's business, not this one's.
    assert conditions(r, Facts(now, last_observation_at=now - timedelta(hours=1)), INTERVAL, SILENCE) == {}


def test_deadletter_spike_above_max_count():
    r = rules(region_silence={"enabled": False}, arrival_lag={"enabled": False},
              deadletter_spike={"max_count": 3, "window_seconds": 60})
    assert conditions(r, Facts(T0, deadletters_in_window=3), INTERVAL, SILENCE) == {}
    found = conditions(r, Facts(T0, deadletters_in_window=4), INTERVAL, SILENCE)
    assert found[("deadletter_spike", "deadletter")].value == 4


def test_disabled_rule_keeps_its_incidents_open():
    r = rules(arrival_lag={"enabled": False})
    _, store = step(r, facts(T0 + timedelta(seconds=200), dakar=T0), {})
    off = rules(arrival_lag={"enabled": False}, region_silence={"enabled": False})
    changed, store = step(off, facts(T0 + timedelta(seconds=300), dakar=T0 + timedelta(seconds=299)), store)
    assert changed == [] and list(store) == [("region_silence", "dakar")]


# --- crash-loop: what the supervisor of ./run.sh logged ------------------------------------------
def supervisor(at: datetime, action: str, state: str, service: str = "streaming") -> ServiceFacts:
    return ServiceFacts(at, SupervisorEvent(action=action, service=service, state=state, exit_code=1,
                                            last_error="ValueError: bad record 42", exits_in_window=5, restarts=4))


def test_crash_loop_is_one_incident_per_service_until_it_recovers():
    r = rules(region_silence={"enabled": False}, arrival_lag={"enabled": False})
    f = Facts(T0, services={"streaming": supervisor(T0, SERVICE_CRASH_LOOP_ACTION, "crash-loop"),
                            "kafka": supervisor(T0, SERVICE_EXITED_ACTION, "backoff", "kafka")})
    changed, store = step(r, f, {})
    [inc] = changed  # kafka exited once and is being restarted: no alert
    assert (inc.rule, inc.subject, inc.severity, inc.status) == ("crash_loop", "streaming", "critical", "firing")
    assert inc.summary == "streaming keeps exiting (crash-loop, 5 recent exits); last exit 1: ValueError: bad record 42"
    assert "./run.sh logs streaming" in inc.hint

    # The episode goes on (each retry logs an exit still in crash-loop): the same incident, no new message.
    later = T0 + timedelta(seconds=300)
    changed, store = step(r, Facts(later, services={
        "streaming": supervisor(later, SERVICE_EXITED_ACTION, "crash-loop")}), store)
    assert [(i.incident_id, [n.kind for n in i.notifications]) for i in changed] == [(inc.incident_id, ["alert"])]

    recovered = T0 + timedelta(seconds=400)
    changed, store = step(r, Facts(recovered, services={
        "streaming": supervisor(recovered, SERVICE_RECOVERED_ACTION, "up")}), store)
    [inc] = changed
    assert inc.status == "resolved" and [n.kind for n in inc.notifications] == ["alert", "recovery"]
    assert store == {}


def test_a_crash_loop_nobody_reports_any_more_resolves_after_the_window():
    r = rules(region_silence={"enabled": False}, arrival_lag={"enabled": False}, crash_loop={"window_seconds": 600})
    looping = {"ferretdb": supervisor(T0, SERVICE_CRASH_LOOP_ACTION, "crash-loop", "ferretdb")}
    assert list(conditions(r, Facts(T0 + timedelta(seconds=600), services=looping), INTERVAL, SILENCE)) == [
        ("crash_loop", "ferretdb")]
    assert conditions(r, Facts(T0 + timedelta(seconds=601), services=looping), INTERVAL, SILENCE) == {}
    off = rules(region_silence={"enabled": False}, arrival_lag={"enabled": False}, crash_loop={"enabled": False})
    assert conditions(off, Facts(T0, services=looping), INTERVAL, SILENCE) == {}


def test_service_facts_take_the_latest_supervisor_event_and_skip_malformed_ones():
    def bucket(key, source):
        return {"key": key, "latest": {"hits": {"hits": [{"_source": source}]}}}

    event = {"service": "streaming", "state": "crash-loop", "exit_code": 3, "last_error": "boom",
             "exits_in_window": 5, "restarts": 4}
    aggs = {"services": {"buckets": [
        bucket("streaming", {"@timestamp": "2026-11-26T12:00:00.000Z", "event.action": SERVICE_CRASH_LOOP_ACTION,
                             "meteoflow.supervisor": event}),
        bucket("kafka", {"@timestamp": "2026-11-26T12:00:00.000Z", "event.action": SERVICE_EXITED_ACTION,
                         "meteoflow.supervisor": {"service": "kafka", "state": "sleepy"}}),
        bucket("webapp", {"event.action": SERVICE_EXITED_ACTION, "meteoflow.supervisor": event}),  # no time
    ]}}
    facts = service_facts_from_aggs(aggs)
    assert list(facts) == ["streaming"]
    assert facts["streaming"].at == T0 and facts["streaming"].event.exit_code == 3
    assert service_facts_from_aggs({}) == {}


# --- pending period (for_seconds) ----------------------------------------------------------------
def test_a_condition_fires_only_once_it_has_held_for_its_pending_period():
    r = rules(arrival_lag={"enabled": False}, region_silence={"for_seconds": 60})
    first = T0 + timedelta(seconds=121)
    changed, store = step(r, facts(first, dakar=T0), {})
    [inc] = changed
    assert (inc.status, inc.notifications, inc.opened_at) == ("pending", [], first)  # nothing to send yet
    changed, store = step(r, facts(first + timedelta(seconds=59), dakar=T0), store)
    assert changed[0].status == "pending"
    fired = first + timedelta(seconds=60)
    changed, store = step(r, facts(fired, dakar=T0), store)
    [inc] = changed
    assert (inc.status, inc.opened_at) == ("firing", first)
    assert [(n.kind, n.created_at) for n in inc.notifications] == [("alert", fired)]


def test_a_blip_shorter_than_the_pending_period_is_forgotten_without_a_message():
    r = rules(arrival_lag={"enabled": False}, region_silence={"for_seconds": 60})
    _, store = step(r, facts(T0 + timedelta(seconds=121), dakar=T0), {})
    back = T0 + timedelta(seconds=150)
    current = conditions(r, facts(back, dakar=back), INTERVAL, SILENCE, store)
    assert plan(back, current, store, r, INTERVAL) == []  # no recovery for what never fired
    assert [i.subject for i in abandoned(current, store, r)] == ["dakar"]


def test_the_pending_period_defaults_to_one_evaluation_interval_and_rules_may_override():
    r = parse_rules({"defaults": {"for_seconds": 45}, "crash_loop": {"for_seconds": 0}})
    assert (r.pending_for("region_silence", 30.0), r.pending_for("crash_loop", 30.0)) == (45.0, 0.0)
    assert parse_rules({}).pending_for("streaming_stalled", 30.0) == 30.0
    shipped = load_rules(REPO_ROOT / "elk" / "alert_rules.yaml")
    assert shipped.pending_for("streaming_stalled", 30.0) > 60  # Spark's start-up is no incident


# --- grouping (group_wait / group_interval) across evaluations -----------------------------------
class FakeClock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def pending_alert(subject: str, created: datetime, rule: str = "region_silence", kind: str = "alert"):
    inc = Incident(incident_id=f"{rule}|{subject}", rule=rule, subject=subject, severity="critical",
                   summary=subject, opened_at=created, updated_at=created)
    note = Notification(delivery_id=f"{inc.incident_id}|{kind}", kind=kind, created_at=created)
    inc.notifications.append(note)
    return inc, note


def test_what_starts_within_group_wait_goes_out_as_one_message_even_across_rounds():
    clock = FakeClock(T0)
    grouping = Grouping(wait=60, interval=300)
    heads = [pending_alert("dakar", clock())]
    assert due_groups(heads, {}, clock(), grouping) == []  # waiting for others to join
    heads.append(pending_alert("thies", clock.advance(30)))  # the next evaluation round
    heads.append(pending_alert("one", clock(), rule="streaming_stalled"))
    assert due_groups(heads, {}, clock.advance(29), grouping) == []
    [group] = due_groups(heads, {}, clock.advance(1), grouping)  # 60 s after the first: both together
    assert [inc.subject for inc, _ in group] == ["dakar", "thies"]


def test_after_a_message_the_group_waits_group_interval_and_recoveries_are_their_own_group():
    clock = FakeClock(T0)
    grouping = Grouping(wait=60, interval=300)
    sent = {("region_silence", "alert"): T0}
    late = [pending_alert("kolda", clock.advance(100))]
    assert due_groups(late, sent, clock.advance(100), grouping) == []  # 200 s after the last message
    assert len(due_groups(late, sent, clock.advance(100), grouping)) == 1  # 300 s
    recovery = [pending_alert("dakar", T0 + timedelta(seconds=10), kind="recovery")]
    assert len(due_groups(recovery, sent, T0 + timedelta(seconds=70), grouping)) == 1


def test_when_each_group_last_went_out_is_read_from_the_recorded_notifications():
    dakar, alert = pending_alert("dakar", T0)
    alert.status, alert.sent_at = "sent", T0 + timedelta(seconds=5)
    thies, late = pending_alert("thies", T0)
    late.status, late.sent_at = "sent", T0 + timedelta(seconds=9)
    kolda, _waiting = pending_alert("kolda", T0)
    assert last_sent_by_group([dakar, thies, kolda]) == {("region_silence", "alert"): T0 + timedelta(seconds=9)}


def test_grouping_defaults_scale_with_the_evaluation_interval():
    assert parse_rules({}).grouping(30.0) == Grouping(wait=60.0, interval=300.0)
    assert parse_rules({"defaults": {"group_wait_seconds": 5, "group_interval_seconds": 0}}).grouping(30.0) == \
        Grouping(wait=5.0, interval=0.0)
