"""The alerting loop: read facts, plan incidents, record them, then notify.

Order matters for "never lost, never twice": an incident and its pending
notification are written to Elasticsearch BEFORE Slack is called, and the
notification is marked sent right after Slack confirmed it. A restart reads the
same incidents back, so it neither re-opens an incident nor forgets a pending
message. (The one window left is a crash between Slack's 200 and the write that
records it; Slack webhooks take no idempotency key, so nothing can close it.)
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Callable

from elastic_transport import TransportError
from elasticsearch import ApiError

from elk.alerting.engine import (
    Facts, HealthFacts, Incident, Notification, abandoned, conditions, due_groups, last_sent_by_group, plan,
)
from elk.alerting.heartbeat import Pinger
from elk.alerting.rules import RULE_MODELS, AlertRules, load_rules
from elk.alerting.silences import hold_back, released
from elk.alerting.slack import SlackSender, digest_message
from elk.alerting.store import FactsReader, IncidentStore, MemoryIncidentStore, health_window, write_heartbeat
from elk.health.sampler import HealthSampler, start_sampler_thread
from elk.retention import apply_retention
from meteoflow.clock import utc_now
from meteoflow.contracts import Heartbeat, Silence
from meteoflow.es import make_es_client
from meteoflow.freshness import thresholds
from meteoflow.metrics import AlertingMetrics, HealthMetrics
from meteoflow.settings import Settings
from meteoflow.silences import SilenceStore

log = logging.getLogger("alerting")

# What can still be evaluated without Elasticsearch: the health sampler reads Kafka, MongoDB and the
# supervisor's state file directly, and keeps its recent samples in memory.
RULES_WITHOUT_ELASTICSEARCH = frozenset({"service_down", "crash_loop", "consumer_lag", "store_behind",
                                         "elasticsearch_unavailable"})



def _describe_es_error(exc: Exception) -> str:
    """Short and free of the URL's credentials: the type, and for an answer its HTTP status and
    Elasticsearch's error type (e.g. `BadRequestError, HTTP 400 strict_dynamic_mapping_exception`)."""
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "meta", None), "status", None)
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return f"{type(exc).__name__}" + (f", HTTP {status}" if status else "") + (f" {kind}" if isinstance(kind, str) else "")


class AlertingService:
    def __init__(self, settings: Settings, rules: AlertRules | None = None, es=None,
                 sender: SlackSender | None = None, clock: Callable[[], datetime] = utc_now,
                 metrics: AlertingMetrics | None = None):
        self.settings = settings
        self.metrics = metrics or AlertingMetrics(RULE_MODELS)
        self.rules = rules or load_rules(settings.alert_rules_file)
        self.es = es or make_es_client(settings, max_retries=1, request_timeout=10)
        self.facts = FactsReader(settings, self.es)
        self.store = IncidentStore(settings, self.es)
        if sender is None and settings.slack_webhook_url is not None:
            sender = SlackSender(settings.slack_webhook_url,
                                 max_attempts=5, backoff_max=min(30.0, settings.alert_eval_interval_seconds * 4))
        self.sender = sender
        self.clock = clock
        self.pinger = Pinger(settings.alert_heartbeat_url)
        self.silence = thresholds(settings, self.rules.region_silence)
        self.grouping = self.rules.grouping(settings.alert_eval_interval_seconds)
        self.where_to_look = self.rules.defaults.dashboard_url or f"http://{settings.bind_host}:{settings.webapp_port}/"
        self.next_retention_at: datetime | None = None  # None: due at the first round
        self.sampler: HealthSampler | None = None
        self.last_open: dict[tuple[str, str], Incident] = {}  # as read from Elasticsearch at the last round
        self.memory = MemoryIncidentStore(settings.run_dir / "alerting" / "incidents-without-elasticsearch.json")
        self.silence_store = SilenceStore(settings, self.es)
        self.silences: list[Silence] | None = None  # active ones, read at each evaluation (None: unknown)
        self.last_silences: list[Silence] = []  # as last read: they still hold while Elasticsearch is down

    # --- one evaluation ---------------------------------------------------------------
    def evaluate(self) -> list[Incident]:
        now = self.clock()
        open_incidents = self.store.open()
        facts = self.facts.read(self.rules, now)
        acknowledged, self.silences = self.read_silences(now, open_incidents)
        if self.silences is not None:
            self.last_silences = self.silences
        changed = self._evaluate(self.store, facts, open_incidents, acknowledged)
        self.last_open = self.store.open()
        return changed

    def _health_from_memory(self, now: datetime) -> HealthFacts:
        if self.sampler is None:
            return HealthFacts()
        return self.sampler.health(now, health_window(self.settings, self.rules)[1])

    def evaluate_without_elasticsearch(self, error: str) -> list[Incident]:
        """Elasticsearch cannot be read: say so, and evaluate what the health sampler's memory still
        shows, keeping the incidents in a local store (seeded with those last read from Elasticsearch,
        so an incident that is already open is not opened twice)."""
        now = self.clock()
        # Unreadable with the rest: those last read hold until they end (a silence set for planned
        # Elasticsearch maintenance must hold during it); nothing else is known.
        self.silences = [s for s in self.last_silences if s.is_active(now)]
        self.memory.seed({k: v for k, v in self.last_open.items() if k[0] in RULES_WITHOUT_ELASTICSEARCH})
        facts = Facts(now=now, health=self._health_from_memory(now), elasticsearch_error=error)
        open_incidents = {k: v for k, v in self.memory.open().items() if k[0] in RULES_WITHOUT_ELASTICSEARCH}
        # The other rules' incident gauges keep what Elasticsearch last said: unknown now, not zero.
        return self._evaluate(self.memory, facts, open_incidents, rules=RULES_WITHOUT_ELASTICSEARCH)

    def hand_back(self) -> None:
        """Elasticsearch answers again: resolve `elasticsearch_unavailable`, and give everything kept
        locally meanwhile back to the incidents index, where the next evaluation goes on with it.
        Nothing local changes until every write went through, so a failed hand-back is simply retried.

        The outage's own incident is written too before it ends: Elasticsearch that answers reads but
        refuses writes (read-only indices once the disk passes its flood stage) is still unavailable,
        and its outage must stay open to fire even when nothing else is kept to prove it."""
        if not self.memory.incidents:
            return
        self.store.open()  # raises while Elasticsearch still does not answer
        for inc in self.memory.incidents.values():
            self.store.save(inc.model_copy(deep=True))  # raises while it refuses writes
        now = self.clock()
        outage = {k: v for k, v in self.memory.open().items() if k[0] == "elasticsearch_unavailable"}
        for blip in abandoned({}, outage, self.rules):
            self.store.forget(blip)
        resolved = plan(now, {}, outage, self.rules, self.settings.alert_eval_interval_seconds)
        self._record(self.store, resolved, now)  # its recovery goes out with the next delivery
        log.info("elasticsearch answers again; %d incidents kept meanwhile are back in it", len(self.memory.incidents))
        self.memory.clear()

    def _evaluate(self, store, facts: Facts, open_incidents: dict[tuple[str, str], Incident],
                  acknowledged: frozenset[str] = frozenset(), rules: frozenset[str] | None = None) -> list[Incident]:
        now = facts.now
        interval = self.settings.alert_eval_interval_seconds
        current = conditions(self.rules, facts, self.settings.effective_interval_seconds, self.silence, open_incidents)
        blips = abandoned(current, open_incidents, self.rules)
        for blip in blips:
            store.forget(blip)
        changed = plan(now, current, open_incidents, self.rules, interval, acknowledged)
        if self.silences is not None:
            released(changed, self.silences, now, acknowledged)  # their silence ended: announce them now
        self._record(store, changed, now)
        forgotten = {blip.key for blip in blips}
        still_open = {key: inc for key, inc in open_incidents.items() if key not in forgotten}
        self.metrics.incidents({**still_open, **{inc.key: inc for inc in changed}}.values(), rules)
        return changed

    def _record(self, store, changed: list[Incident], now: datetime) -> None:
        for inc in changed:
            store.save(inc)  # recorded before anything is sent
            newest = inc.notifications[-1] if inc.notifications else None
            if newest is not None and newest.status == "pending" and newest.created_at == now:
                self.metrics.notifications.labels(inc.rule, newest.kind).inc()
                level = logging.INFO if newest.kind == "recovery" else logging.WARNING
                log.log(level, "%s %s: %s", newest.kind, inc.incident_id, inc.summary, extra={"fields": {
                    "event.action": f"alert-{newest.kind}",
                    "meteoflow.alert": {"incident_id": inc.incident_id, "rule": inc.rule, "subject": inc.subject,
                                        "region_id": inc.region_id, "status": inc.status},
                }})

    def deliver(self, store=None) -> int:
        """Deliver pending notifications; returns how many Slack messages were sent.

        Each incident's notifications go in order (alert before recovery): only its oldest
        pending one is considered per round. Those of the same rule and kind are sent as ONE
        digest message once their group is due (`due_groups`: group_wait / group_interval),
        so a producer outage is one alert, not one per region, even across evaluations.
        """
        store = store or self.store
        now = self.clock()
        last_sent = last_sent_by_group(store.sent_since(now - timedelta(seconds=self.grouping.interval)))
        sent = 0
        for _round in range(3):  # an alert and its recovery may both be due: send both now
            sent_in_round = self._deliver_round(store, now, last_sent)
            sent += sent_in_round
            if not sent_in_round:
                break
        return sent

    def _deliver_round(self, store, now: datetime, last_sent: dict) -> int:
        sent = 0
        heads: list[tuple[Incident, Notification]] = []
        for inc in store.with_pending():
            held = hold_back(inc, self.silences or [], now)
            if held:
                store.save(inc)  # recorded as silenced, never sent
                for h in held:
                    log.info("%s %s silenced by %s", h.kind, inc.incident_id, h.silenced_by, extra={"fields": {
                        "event.action": "alert-silenced", "meteoflow.alert": {
                            "incident_id": inc.incident_id, "rule": inc.rule, "subject": inc.subject,
                            "kind": h.kind, "silenced_by": h.silenced_by}}})
            note = next((n for n in inc.notifications if n.status == "pending"), None)
            if note is None:
                continue
            if self.sender is None:
                for pending in inc.notifications:
                    if pending.status == "pending":
                        pending.status = "logged"  # no webhook configured: the log line is the alert
                store.save(inc)
                continue
            heads.append((inc, note))
        for items in due_groups(heads, last_sent, now, self.grouping):
            result = self.sender.send(digest_message(items, self.where_to_look))
            self.metrics.slack.labels(result.outcome).inc()
            if result.outcome == "sent":
                sent += 1
                last_sent[(items[0][0].rule, items[0][1].kind)] = now
            elif result.outcome == "failed":
                log.error("slack refused %s for good: %s", items[0][1].delivery_id, result.error)
            else:
                log.warning("slack unavailable for %s (%s); will retry", items[0][1].delivery_id, result.error)
            for inc, note in items:
                note.attempts += result.attempts
                note.last_error = result.error
                if result.outcome == "sent":
                    note.status = "sent"
                    note.sent_at = self.clock()
                elif result.outcome == "failed":
                    note.status = "failed"
                store.save(inc)
        return sent

    def read_silences(self, now: datetime, open_incidents: dict) -> tuple[frozenset[str], list[Silence] | None]:
        """The acknowledged open incidents and the active silences (one query each). When
        Elasticsearch cannot give them, alerting fails open: reminders and messages go as before."""
        try:
            acknowledged = frozenset(self.silence_store.acks(inc.incident_id for inc in open_incidents.values()))
        except (TransportError, ApiError) as exc:
            log.warning("acknowledgements unreadable (%s); reminders go as usual", type(exc).__name__)
            acknowledged = frozenset()
        try:
            silences = self.silence_store.active_silences(now)
        except (TransportError, ApiError) as exc:
            log.warning("silences unreadable (%s); notifications are sent as usual", type(exc).__name__)
            silences = None
        return acknowledged, silences

    def run_once(self) -> None:
        self.hand_back()
        self.evaluate()
        self.deliver()
        # Only a completed evaluation counts as alive (a failed read raised before this).
        write_heartbeat(self.settings, self.es, Heartbeat(
            service="alerting", at=self.clock(), interval_seconds=self.settings.alert_eval_interval_seconds))
        self.ping()

    def ping(self) -> None:
        """The dead-man's switch, counted when one is configured."""
        if self.pinger.configured:
            self.metrics.pings.labels("ok" if self.pinger.ping() else "failed").inc()

    def evaluation_round(self) -> None:
        started = self.clock()
        outcome = "failed"
        try:
            self.run_once()
            outcome = "ok"
        except (TransportError, ApiError) as exc:
            # No facts from it, so nothing of what it holds is decided; what the health sampler still
            # sees (Kafka, MongoDB, the supervisor) is evaluated and delivered, and the outage named.
            log.warning("elasticsearch unavailable (%s); evaluating without it", type(exc).__name__)
            if self.run_without_elasticsearch(_describe_es_error(exc)):
                outcome = "without_elasticsearch"
        finally:
            self.metrics.evaluated(outcome, started, self.clock())

    def run_without_elasticsearch(self, error: str) -> bool:
        """True when the round evaluated and delivered what it could without Elasticsearch."""
        try:
            self.evaluate_without_elasticsearch(error)
            self.deliver(self.memory)
            self.ping()  # this evaluation ran and delivered: the service is alive
            return True
        except Exception:  # noqa: BLE001 - never let the fallback stop the loop
            log.exception("evaluation without elasticsearch failed")
            return False

    def retention_if_due(self) -> None:
        """Elasticsearch retention (elk/retention.py) at the first round, then every interval.

        It runs here because this service runs wherever Elasticsearch does (natively and in
        Docker). A failure is a warning and waits for the next interval: it never stops alerting."""
        now = self.clock()
        if self.next_retention_at is not None and now < self.next_retention_at:
            return
        interval = self.settings.es_retention_interval_seconds
        self.next_retention_at = now + timedelta(seconds=interval)
        try:
            apply_retention(self.es, self.settings, now)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, alerting goes on
            log.warning("es retention failed (%s: %s); next try in %.0f s", type(exc).__name__, str(exc)[:300],
                        interval, extra={"fields": {"event.action": "es-retention", "event.outcome": "failure"}})

    def start_health_sampler(self, stop: threading.Event) -> threading.Thread | None:
        """Health signals (elk/health/) every METEOFLOW_METRICS_INTERVAL_SECONDS, in their own thread
        with their own clients: a slow or failing source never delays or breaks an evaluation."""
        try:
            self.sampler = HealthSampler(self.settings, make_es_client(self.settings, max_retries=1, request_timeout=10),
                                         metrics=HealthMetrics(self.metrics.registry))
            return start_sampler_thread(self.sampler, self.settings.metrics_interval_seconds, stop)
        except Exception as exc:  # noqa: BLE001 - alerting goes on without health signals
            log.warning("health sampling not started (%s: %s)", type(exc).__name__, str(exc)[:300])
            return None

    def run(self, stop: threading.Event) -> None:
        sampler = self.start_health_sampler(stop)
        log.info("alerting every %.1f s; silent after %.0f s; slack %s; es retention %d days, every %.0f s",
                 self.settings.alert_eval_interval_seconds, self.silence.silent_after_seconds,
                 "configured" if self.sender else "not configured (log only)",
                 self.settings.es_retention_days, self.settings.es_retention_interval_seconds)
        while not stop.is_set():
            started = self.clock()
            self.evaluation_round()
            self.retention_if_due()  # after the evaluation, so a slow deletion never delays the first one
            elapsed = (self.clock() - started).total_seconds()
            stop.wait(max(0.0, self.settings.alert_eval_interval_seconds - elapsed))
        if sampler is not None:
            sampler.join(timeout=30)
