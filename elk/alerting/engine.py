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
from meteoflow.contracts import MetricSample, NotificationKind, NotificationStatus, SupervisorEvent, describe_exit
from meteoflow.forecast_verdict import SkillFigures, judge
from meteoflow.freshness import Thresholds, classify


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
class HealthFacts:
    """The health sampler's recent samples (elk/health/), read from the metrics index or, when
    Elasticsearch is unavailable, from the sampler's memory."""

    lag: dict[str, list[MetricSample]] = field(default_factory=dict)  # consumer -> samples, newest first
    stores: dict[str, MetricSample] = field(default_factory=dict)  # kafka, mongodb, elasticsearch
    services: dict[str, MetricSample] = field(default_factory=dict)  # each supervised server or service
    forecasts: dict[str, MetricSample] = field(default_factory=dict)  # region_id -> forecast age
    skill: dict[str, MetricSample] = field(default_factory=dict)  # region_id -> 24 h forecast skill


def health_facts(samples: list[MetricSample], now: datetime, max_age_seconds: float) -> HealthFacts:
    """Group samples by kind and subject, newest first. A subject whose newest sample is older than
    `max_age_seconds` is left out: its source failed, and an old value must not pass for a current one."""
    by_key: dict[tuple[str, str], list[MetricSample]] = {}
    for sample in sorted(samples, key=lambda x: x.timestamp, reverse=True):
        by_key.setdefault((sample.kind, sample.subject), []).append(sample)
    facts = HealthFacts()
    for (kind, subject), series in by_key.items():
        if (now - series[0].timestamp).total_seconds() > max_age_seconds:
            continue
        if kind == "consumer_lag":
            facts.lag[subject] = series
        elif kind == "store_staleness":
            facts.stores[subject] = series[0]
        elif kind == "service":
            facts.services[subject] = series[0]
        elif kind == "forecast_age":
            facts.forecasts[subject] = series[0]
        elif kind == "forecast_skill":
            facts.skill[subject] = series[0]
    return facts


@dataclass(frozen=True)
class Facts:
    now: datetime
    regions: dict[str, RegionFacts] = field(default_factory=dict)
    last_observation_at: datetime | None = None  # any region
    first_observation_at: datetime | None = None  # earliest arrival in the lookback window
    last_progress_at: datetime | None = None  # latest streaming-batch log line
    deadletters_in_window: int = 0
    services: dict[str, ServiceFacts] = field(default_factory=dict)  # by service name
    health: HealthFacts = field(default_factory=HealthFacts)
    elasticsearch_error: str | None = None  # set when Elasticsearch could not be read (facts above are empty)


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
    title: str | None = None  # the message's headline when the rule's own title says too little

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
    silenced_by: str | None = None  # the silence that held it back (status "silenced"; elk/alerting/silences.py)


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
    pending_since: datetime | None = None  # when its pending period (re)started: opened_at, or when a hold ended
    inhibited_by: str | None = None  # "rule|subject" of the condition that explains it (held back, not sent)
    title: str | None = None
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
                    title=component_title(rules, name, "in crash-loop"),
                    summary=f"{name} keeps exiting (crash-loop, {ev.exits_in_window} recent exits); "
                            f"last {describe_exit(ev.exit_code, ev.last_error)}",
                    hint=f"./run.sh logs {name} and ./run.sh status show why; the supervisor keeps retrying, "
                         "so it recovers by itself once the cause is fixed.",
                    last_seen=latest.at, value=float(ev.exits_in_window),
                ))
        # The supervisor's state file says so too (sampled straight to Elasticsearch): a crash-loop of
        # the shipper itself, whose log events cannot be shipped, is still seen.
        logged = {c.subject for c in found if c.rule == "crash_loop"}
        for name, sample in facts.health.services.items():
            if sample.state == "crash-loop" and name not in logged:
                found.append(Condition(
                    rule="crash_loop", subject=name, severity=rule.severity,
                    title=component_title(rules, name, "in crash-loop"),
                    summary=f"{name} keeps exiting (crash-loop, {sample.restarts or 0} restarts); "
                            f"last {describe_exit(sample.last_exit_code, sample.last_error)}",
                    hint=f"./run.sh logs {name} and ./run.sh status show why; the supervisor keeps retrying, "
                         "so it recovers by itself once the cause is fixed.",
                    last_seen=sample.timestamp, value=float(sample.restarts or 0),
                ))

    found += _health_conditions(rules, facts, interval_seconds, silence)
    return {c.key: c for c in found}


def component_title(rules: AlertRules, name: str, state: str) -> str:
    """The headline of a message about one server or service: what its absence means first
    (service_down's `impact`), e.g. "Elasticsearch shipping stopped (shipper down)"."""
    impact = rules.service_down.impact.get(name)
    return f"{impact} ({name} {state})" if impact else f"{name} {state}"


SERVICE_STATES = {
    "held": "stopped by the user (./run.sh down {name}); ./run.sh up {name} starts it again",
    "backoff": "exited and waits to be restarted by the supervisor",
}


def _health_conditions(rules: AlertRules, facts: Facts, interval_seconds: float,
                       silence: Thresholds) -> list[Condition]:
    """The rules on the health sampler's signals: consumer lag, services, stores, forecasts, and
    Elasticsearch itself."""
    found: list[Condition] = []
    now = facts.now
    health = facts.health

    rule = rules.service_down
    if rule.enabled:
        for name, sample in sorted(health.services.items()):
            if sample.up or sample.state in (None, "up", "crash-loop") or name in rule.ignore:
                continue  # a crash-loop is crash_loop's, with its exits and last error
            impact = rule.impact.get(name)
            how = SERVICE_STATES.get(sample.state, sample.state).format(name=name)
            last = describe_exit(sample.last_exit_code, sample.last_error) if sample.last_exit_code is not None \
                or sample.last_error else None
            found.append(Condition(
                rule="service_down", subject=name, severity=rule.severity, title=component_title(rules, name, "down"),
                summary=(f"{impact}: " if impact else "") + f"{name} is {sample.state}: {how}"
                        + (f"; last {last}" if last else "") + f" (restarts: {sample.restarts or 0})",
                hint=f"./run.sh status and ./run.sh logs {name} show why.",
                last_seen=sample.timestamp, value=0.0,
            ))

    rule = rules.consumer_lag
    if rule.enabled:
        limit = max(rule.threshold_intervals * interval_seconds, rule.min_threshold_seconds)
        for consumer, series in sorted(health.lag.items()):
            latest = series[0]
            too_old = latest.lag_seconds is not None and latest.lag_seconds > limit
            window = series[:rule.growing_samples]
            counts = [x.lag_records or 0 for x in reversed(window)]  # oldest first
            # A consumer that has processed nothing yet is starting (Spark takes a while), not stuck:
            # only the age of its oldest record can say it lags.
            growing = (len(window) == rule.growing_samples and latest.consumer_started is not False
                       and min(counts) > 0 and counts[-1] > counts[0] and all(b >= a for a, b in zip(counts, counts[1:])))
            if not (too_old or growing):
                continue
            what = CONSUMERS.get(consumer, f"consumer {consumer}")
            found.append(Condition(
                rule="consumer_lag", subject=consumer, severity=rule.severity,
                title=f"{what[0].upper()}{what[1:]} is behind Kafka",
                summary=f"{what[0].upper()}{what[1:]} has {latest.lag_records} records it has not processed, the oldest "
                        f"{_fmt_seconds(latest.lag_seconds)} old"
                        + (f" (threshold {_fmt_seconds(limit)})" if too_old else "")
                        + (f"; its lag grew over the last {len(window)} samples without a drop" if growing else ""),
                hint=f"./run.sh status and ./run.sh logs {consumer}; the Pipeline health page charts its lag.",
                last_seen=latest.timestamp, lag_seconds=latest.lag_seconds,
                value=float(latest.lag_records or 0), threshold=limit,
            ))

    rule = rules.store_behind
    if rule.enabled:
        limit = max(rule.threshold_intervals * interval_seconds, rule.min_threshold_seconds)
        for store, sample in sorted(health.stores.items()):
            if store == "kafka" or sample.staleness_seconds is None or sample.staleness_seconds <= limit:
                continue
            found.append(Condition(
                rule="store_behind", subject=store, severity=rule.severity,
                title=f"{STORES.get(store, store)} behind Kafka",
                summary=f"{STORES.get(store, store)}'s newest observation is {_fmt_seconds(sample.staleness_seconds)} "
                        f"behind Kafka's newest record (threshold {_fmt_seconds(limit)})",
                hint="The Pipeline health page shows each store's newest record; "
                     + ("the streaming job writes MongoDB." if store == "mongodb" else
                        "the shipper writes Elasticsearch."),
                last_seen=sample.newest_at, value=sample.staleness_seconds, threshold=limit,
            ))

    rule = rules.forecast_stale
    if rule.enabled:
        limit = max(rule.stale_after_intervals * interval_seconds, rule.min_stale_seconds)
        for region_id, sample in sorted(health.forecasts.items()):
            region = facts.regions.get(region_id)
            arriving = region is not None and classify(region.last_seen, now, silence) == "fresh"
            if not arriving or sample.age_seconds is None or sample.age_seconds <= limit:
                continue  # a region never forecast yet is waiting for history, not stale
            name = region.region_name or region_id
            found.append(Condition(
                rule="forecast_stale", subject=region_id, severity=rule.severity,
                summary=f"The latest forecast of {name} is {_fmt_seconds(sample.age_seconds)} old while its "
                        f"observations arrive (threshold {_fmt_seconds(limit)}; last status "
                        f"{sample.forecast_status or 'unknown'})",
                hint="Is the forecasting API up (./run.sh status)? The streaming job logs each forecast call "
                     "(service.name: streaming); the forecast_state collection keeps the last error.",
                region_id=region_id, region_name=region.region_name, last_seen=sample.model_run_at,
                value=sample.age_seconds, threshold=limit,
            ))

    found += _forecast_degraded(rules, facts)

    rule = rules.elasticsearch_unavailable
    if rule.enabled and facts.elasticsearch_error is not None:
        found.append(Condition(
            rule="elasticsearch_unavailable", subject="elasticsearch", severity=rule.severity,
            title="Elasticsearch unavailable",
            summary=f"The alerting service cannot read Elasticsearch ({facts.elasticsearch_error}): dashboards and "
                    "the rules on shipped data (region silence, lag, dead letters) are blind; what is still "
                    "watched comes from Kafka, MongoDB and the supervisor",
            hint="./run.sh status and ./run.sh logs elasticsearch show why.",
        ))
    return found


def _forecast_degraded(rules: AlertRules, facts: Facts) -> list[Condition]:
    rule = rules.forecast_degraded
    if not rule.enabled:
        return []
    found = []
    for region_id, sample in sorted(facts.health.skill.items()):
        figures = SkillFigures(pairs=sample.skill_pairs or 0, model_mae=sample.model_mae,
                               persistence_mae=sample.persistence_mae, coverage=sample.coverage,
                               band_level=sample.band_level)
        verdict = judge(figures, rule)  # nothing below min_pairs: a new region, or one back from an outage
        if not verdict.degraded:
            continue
        worse = verdict.worse
        region = facts.regions.get(region_id)
        name = (region.region_name if region else None) or region_id
        found.append(Condition(
            rule="forecast_degraded", subject=region_id, severity=rule.severity,
            title=f"Forecast of {name} degraded",
            summary=f"Its forecasts of the last 24 h ({sample.skill_pairs} forecast/observation pairs, leads "
                    "1-24 h) did worse than they should: " + "; ".join(f"its {r}" for r in verdict.reasons),
            hint="The Forecast quality page and the forecast_skill collection show it by lead time against "
                 "persistence and same-hour-yesterday; forecast_runs keeps the runs themselves.",
            region_id=region_id, region_name=region.region_name if region else None, last_seen=sample.timestamp,
            value=sample.model_mae if worse else sample.coverage,
            threshold=(sample.persistence_mae * (1 + rule.mae_margin)) if worse else rule.min_coverage,
        ))
    return found


CONSUMERS = {"streaming": "the streaming job", "shipper": "Elasticsearch shipping (the shipper)"}
STORES = {"mongodb": "MongoDB", "elasticsearch": "Elasticsearch"}


def held_back(current: dict[tuple[str, str], Condition], rules: AlertRules) -> dict[tuple[str, str], str]:
    """Conditions another current condition explains (rules.inhibit): key -> "rule|subject" of the cause.

    A source holds whether it is pending or firing, so a symptom whose `for` is shorter than its
    cause's never goes out first. A condition is held only by a source that ranks before it (the
    first `inhibit` entry and source matcher it matches; a condition that is no source ranks last):
    two conditions that could explain each other never hold each other back, and a chain of causes
    (Kafka -> shipper -> region silence) holds every symptom down the chain."""
    def rank(key: tuple[str, str]) -> tuple[float, float]:
        for n, inh in enumerate(rules.inhibit):
            for m, matcher in enumerate(inh.source):
                if matcher.matches(*key):
                    return (n, m)
        return (float("inf"), float("inf"))

    held: dict[tuple[str, str], str] = {}
    for target in current:
        for source in sorted(current, key=rank):
            if rank(source) >= rank(target):
                break
            if any(inh.holds(source, target) for inh in rules.inhibit):
                held[target] = "|".join(source)
                break
    return held


def _apply_condition(inc: Incident, cond: Condition, now: datetime) -> None:
    inc.summary = cond.summary
    inc.title = cond.title
    inc.hint = cond.hint
    inc.severity = cond.severity
    inc.region_name = cond.region_name or inc.region_name
    inc.last_seen = cond.last_seen or inc.last_seen
    inc.lag_seconds = cond.lag_seconds if cond.lag_seconds is not None else inc.lag_seconds
    inc.value = cond.value
    inc.threshold = cond.threshold
    inc.updated_at = now


def plan(now: datetime, current: dict[tuple[str, str], Condition], open_incidents: dict[tuple[str, str], Incident],
         rules: AlertRules, eval_interval: float, acknowledged: frozenset[str] = frozenset()) -> list[Incident]:
    """Incidents to write: new pending ones, those that fire (with their alert), reminders
    due (none for the `acknowledged` incident ids), and recoveries. Pending ones whose condition
    cleared are `abandoned`, not here.

    A condition another one explains (`held_back`, the rules file's `inhibit`) stays pending and
    sends nothing; when the hold ends its pending period (at least one evaluation interval) starts
    again, so the moments in which a cause has recovered and its symptoms have not yet cleared send
    nothing either. One that had
    already fired sends no reminder while held, and its recovery as usual."""
    changed: list[Incident] = []
    enabled = {name for name in RULE_MODELS if getattr(rules, name).enabled}
    held = held_back(current, rules)
    for key, cond in current.items():
        inc = open_incidents.get(key)
        if inc is None:
            inc = Incident(incident_id=incident_id(cond.rule, cond.subject, now), rule=cond.rule, status="pending",
                           subject=cond.subject, severity=cond.severity, summary=cond.summary,
                           region_id=cond.region_id, opened_at=now, updated_at=now)
        else:
            inc = inc.model_copy(deep=True)
        _apply_condition(inc, cond, now)
        was_held, inc.inhibited_by = inc.inhibited_by, held.get(key)
        if inc.inhibited_by is not None or (was_held is not None and inc.status == "pending"):
            inc.pending_since = now
        if inc.status == "pending":
            need = rules.pending_for(cond.rule, eval_interval)
            if inc.pending_since is not None:  # it was held: one more evaluation at least, so the cause's data can catch up
                need = max(need, eval_interval)
            since = inc.pending_since or inc.opened_at
            if inc.inhibited_by is None and (now - since).total_seconds() >= need:
                inc.status = "firing"
                inc.add_notification("alert", now)
        elif inc.inhibited_by is None:
            every = rules.reminder_after(cond.rule)
            if every > 0 and inc.incident_id not in acknowledged and (now - inc.last_notified_at()) >= timedelta(seconds=every):
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
