"""Alert logic as pure functions: facts + open incidents -> incidents to write.

Nothing here does I/O. `conditions` says what is wrong right now; `plan` turns that
and the open incidents (read back from Elasticsearch) into new or updated
incidents, each carrying the notifications still to deliver. A new condition is
first a "pending" incident, sent nothing, and fires once it has held for its
rule's `for_seconds` (Prometheus' `for:`). `due_groups` decides which pending
notifications go out now, one message per rule and kind (Alertmanager's
group_wait / group_interval). Incident and delivery ids are deterministic, so a
restart re-reads the same state and never opens the same incident twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from elk.alerting.rules import RULE_MODELS, AlertRules, Grouping
from meteoflow.contracts import SupervisorEvent, describe_exit
from meteoflow.freshness import Thresholds, classify

NotificationKind = Literal["alert", "reminder", "recovery"]
NotificationStatus = Literal["pending", "sent", "logged", "failed"]


@dataclass(frozen=True)
class RegionFacts:
    region_id: str
    region_name: str | None = None
    last_seen: datetime | None = None  # when its latest record was ingested (wall clock)
    observed_at: datetime | None = None  # of its latest observation
    lag_seconds: float | None = None  # of its latest observation


@dataclass(frozen=True)
class ServiceFacts:
    """The latest event of the supervisor of ./run.sh about one server or service."""

    at: datetime
    event: SupervisorEvent


@dataclass(frozen=True)
class Facts:
    now: datetime
    regions: dict[str, RegionFacts] = field(default_factory=dict)
    last_observation_at: datetime | None = None  # any region
    first_observation_at: datetime | None = None  # earliest arrival in the lookback window
    last_progress_at: datetime | None = None  # latest streaming-batch log line
    deadletters_in_window: int = 0
    services: dict[str, ServiceFacts] = field(default_factory=dict)  # by service name


@dataclass(frozen=True)
class Condition:
    """One thing wrong right now, keyed by (rule, subject)."""

    rule: str
    subject: str
    severity: str
    summary: str
    hint: str
    region_id: str | None = None
    region_name: str | None = None
    last_seen: datetime | None = None
    lag_seconds: float | None = None
    value: float | None = None
    threshold: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.subject)


class Notification(BaseModel):
    delivery_id: str
    kind: NotificationKind
    status: NotificationStatus = "pending"
    created_at: datetime
    sent_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None


class Incident(BaseModel):
    incident_id: str
    rule: str
    subject: str
    status: Literal["pending", "firing", "resolved"] = "firing"
    severity: str
    summary: str
    hint: str | None = None
    region_id: str | None = None
    region_name: str | None = None
    opened_at: datetime  # when the condition was first seen (pending from then on; it fires with its alert)
    updated_at: datetime
    resolved_at: datetime | None = None
    last_seen: datetime | None = None
    lag_seconds: float | None = None
    value: float | None = None
    threshold: float | None = None
    notifications: list[Notification] = []
    pending_notifications: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.subject)

    def add_notification(self, kind: NotificationKind, now: datetime) -> None:
        suffix = kind if kind != "reminder" else f"reminder-{sum(n.kind == 'reminder' for n in self.notifications) + 1}"
        self.notifications.append(Notification(delivery_id=f"{self.incident_id}|{suffix}", kind=kind, created_at=now))
        self.refresh_pending()

    def refresh_pending(self) -> None:
        self.pending_notifications = sum(n.status == "pending" for n in self.notifications)

    def last_notified_at(self) -> datetime:
        return max(n.created_at for n in self.notifications if n.kind in ("alert", "reminder"))


def incident_id(rule: str, subject: str, opened_at: datetime) -> str:
    return f"{rule}|{subject}|{opened_at.strftime('%Y%m%dT%H%M%S.%fZ')}"


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else (now - then).total_seconds()


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def conditions(rules: AlertRules, facts: Facts, interval_seconds: float, silence: Thresholds,
               open_incidents: dict[tuple[str, str], Incident] | None = None) -> dict[tuple[str, str], Condition]:
    """Everything wrong at `facts.now`, per enabled rule."""
    open_incidents = open_incidents or {}
    found: list[Condition] = []
    now = facts.now

    if rules.region_silence.enabled:
        # A region silent for longer than the lookback is still known through its open incident.
        known = dict(facts.regions)
        for rule, subject in open_incidents:
            if rule == "region_silence" and subject not in known:
                inc = open_incidents[(rule, subject)]
                known[subject] = RegionFacts(subject, inc.region_name, inc.last_seen)
        for region in known.values():
            if classify(region.last_seen, now, silence) == "silent":
                name = region.region_name or region.region_id
                found.append(Condition(
                    rule="region_silence", subject=region.region_id, severity=rules.region_silence.severity,
                    summary=f"No observation from {name} for {_fmt_seconds(_age(now, region.last_seen))} "
                            f"(expected every {_fmt_seconds(interval_seconds)}, silent after "
                            f"{_fmt_seconds(silence.silent_after_seconds)})",
                    hint="Is the producer running? Look at its logs (service.name: producer) and at "
                         f"region_id: {region.region_id} in the observations index.",
                    region_id=region.region_id, region_name=region.region_name, last_seen=region.last_seen,
                    lag_seconds=region.lag_seconds, value=_age(now, region.last_seen),
                    threshold=silence.silent_after_seconds,
                ))

    if rules.arrival_lag.enabled:
        limit = rules.arrival_lag.threshold_seconds
        for region in facts.regions.values():
            if region.lag_seconds is not None and region.lag_seconds > limit:
                name = region.region_name or region.region_id
                found.append(Condition(
                    rule="arrival_lag", subject=region.region_id, severity=rules.arrival_lag.severity,
                    summary=f"Latest observation of {name} arrived {_fmt_seconds(region.lag_seconds)} after it "
                            f"was observed (threshold {_fmt_seconds(limit)})",
                    hint="The source delivers old data: check the producer's source and OpenWeatherMap's "
                         "`dt`, and the lag percentiles on the dashboard.",
                    region_id=region.region_id, region_name=region.region_name, last_seen=region.last_seen,
                    lag_seconds=region.lag_seconds, value=region.lag_seconds, threshold=limit,
                ))

    rule = rules.streaming_stalled
    if rule.enabled:
        limit = max(rule.stalled_after_intervals * interval_seconds, rule.min_stalled_seconds)
        obs_age = _age(now, facts.last_observation_at)
        progress_age = _age(now, facts.last_progress_at)
        arriving = obs_age is not None and obs_age <= limit
        # With no progress line at all yet (a fresh start), the job is stalled only once
        # records have waited longer than the limit: Spark takes a while to start.
        waiting = progress_age if progress_age is not None else _age(now, facts.first_observation_at)
        if arriving and waiting is not None and waiting > limit:
            found.append(Condition(
                rule="streaming_stalled", subject="streaming", severity=rule.severity,
                summary="Observations keep arriving but the streaming job reported no batch "
                        + ("in the lookback window" if progress_age is None else f"for {_fmt_seconds(progress_age)}")
                        + f" (threshold {_fmt_seconds(limit)})",
                hint="Look at the streaming job's logs (service.name: streaming) and its Spark checkpoint.",
                last_seen=facts.last_progress_at, value=progress_age, threshold=limit,
            ))

    rule = rules.deadletter_spike
    if rule.enabled and facts.deadletters_in_window > rule.max_count:
        found.append(Condition(
            rule="deadletter_spike", subject="deadletter", severity=rule.severity,
            summary=f"{facts.deadletters_in_window} records dead-lettered in the last "
                    f"{_fmt_seconds(rule.window_seconds)} (more than {rule.max_count})",
            hint="Read the reasons in the dead-letter index (field `reason`, `service`).",
            value=float(facts.deadletters_in_window), threshold=float(rule.max_count),
        ))

    rule = rules.crash_loop
    if rule.enabled:
        for name, latest in facts.services.items():
            ev = latest.event
            # Its latest event still says crash-loop (a "service-recovered" one would not), and is recent.
            if ev.state == "crash-loop" and (now - latest.at).total_seconds() <= rule.window_seconds:
                found.append(Condition(
                    rule="crash_loop", subject=name, severity=rule.severity,
                    summary=f"{name} keeps exiting (crash-loop, {ev.exits_in_window} recent exits); "
                            f"last {describe_exit(ev.exit_code, ev.last_error)}",
                    hint=f"./run.sh logs {name} and ./run.sh status show why; the supervisor keeps retrying, "
                         "so it recovers by itself once the cause is fixed.",
                    last_seen=latest.at, value=float(ev.exits_in_window),
                ))
    return {c.key: c for c in found}


def _apply_condition(inc: Incident, cond: Condition, now: datetime) -> None:
    inc.summary = cond.summary
    inc.hint = cond.hint
    inc.severity = cond.severity
    inc.region_name = cond.region_name or inc.region_name
    inc.last_seen = cond.last_seen or inc.last_seen
    inc.lag_seconds = cond.lag_seconds if cond.lag_seconds is not None else inc.lag_seconds
    inc.value = cond.value
    inc.threshold = cond.threshold
    inc.updated_at = now


def plan(now: datetime, current: dict[tuple[str, str], Condition], open_incidents: dict[tuple[str, str], Incident],
         rules: AlertRules, eval_interval: float) -> list[Incident]:
    """Incidents to write: new pending ones, those that fire (with their alert), reminders
    due, and recoveries. Pending ones whose condition cleared are `abandoned`, not here."""
    changed: list[Incident] = []
    enabled = {name for name in RULE_MODELS if getattr(rules, name).enabled}
    for key, cond in current.items():
        inc = open_incidents.get(key)
        if inc is None:
            inc = Incident(incident_id=incident_id(cond.rule, cond.subject, now), rule=cond.rule, status="pending",
                           subject=cond.subject, severity=cond.severity, summary=cond.summary,
                           region_id=cond.region_id, opened_at=now, updated_at=now)
        else:
            inc = inc.model_copy(deep=True)
        _apply_condition(inc, cond, now)
        if inc.status == "pending":
            if (now - inc.opened_at).total_seconds() >= rules.pending_for(cond.rule, eval_interval):
                inc.status = "firing"
                inc.add_notification("alert", now)
        else:
            every = rules.reminder_after(cond.rule)
            if every > 0 and (now - inc.last_notified_at()) >= timedelta(seconds=every):
                inc.add_notification("reminder", now)
        changed.append(inc)
    for key, inc in open_incidents.items():
        if key in current or inc.status != "firing" or inc.rule not in enabled:
            continue  # a disabled rule's incidents stay as they are
        inc = inc.model_copy(deep=True)
        inc.status = "resolved"
        inc.resolved_at = now
        inc.updated_at = now
        inc.add_notification("recovery", now)
        changed.append(inc)
    return changed


def abandoned(current: dict[tuple[str, str], Condition], open_incidents: dict[tuple[str, str], Incident],
              rules: AlertRules) -> list[Incident]:
    """Pending incidents whose condition cleared before they fired: a blip, forgotten."""
    return [inc for key, inc in open_incidents.items()
            if inc.status == "pending" and key not in current and getattr(rules, inc.rule).enabled]


GroupKey = tuple[str, NotificationKind]  # (rule, kind): one message per rule and kind


def last_sent_by_group(incidents: list[Incident]) -> dict[GroupKey, datetime]:
    """When each group last went out, from the notifications recorded in the incidents."""
    last: dict[GroupKey, datetime] = {}
    for inc in incidents:
        for note in inc.notifications:
            if note.status == "sent" and note.sent_at is not None:
                key = (inc.rule, note.kind)
                last[key] = max(last.get(key, note.sent_at), note.sent_at)
    return last


def due_groups(heads: list[tuple[Incident, Notification]], last_sent: dict[GroupKey, datetime], now: datetime,
               grouping: Grouping) -> list[list[tuple[Incident, Notification]]]:
    """The groups to send now, from each incident's oldest pending notification (`heads`).

    A group waits `grouping.wait` after its oldest notification was created, so what starts
    in the next rounds joins the same message, and at least `grouping.interval` after the
    group last went out. Both times come from Elasticsearch, so a restart keeps them."""
    groups: dict[GroupKey, list[tuple[Incident, Notification]]] = {}
    for inc, note in heads:
        groups.setdefault((inc.rule, note.kind), []).append((inc, note))
    due = []
    for key, items in groups.items():
        ready = min(note.created_at for _inc, note in items) + timedelta(seconds=grouping.wait)
        if key in last_sent:
            ready = max(ready, last_sent[key] + timedelta(seconds=grouping.interval))
        if now >= ready:
            due.append(items)
    return due
