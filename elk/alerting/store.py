"""Elasticsearch adapters of the alerting service: the facts the rules need, and the
incident state (one document per incident in the alerts index)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from elk.alerting.engine import Facts, HealthFacts, Incident, RegionFacts, ServiceFacts, health_facts
from elk.alerting.rules import AlertRules
from meteoflow.contracts import (
    BACKFILL_BATCH_PREFIX, STREAMING_BATCH_ACTION, SUPERVISOR_ACTIONS, Heartbeat, MetricSample, SupervisorEvent,
    counted_deadletters,
)
from meteoflow.settings import Settings

log = logging.getLogger("alerting")
MAX_REGIONS = 10_000
_SEARCH = dict(ignore_unavailable=True, allow_no_indices=True)


def _ms(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(float(value) / 1000, timezone.utc)


def _iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def region_facts_from_aggs(aggs: dict[str, Any]) -> dict[str, RegionFacts]:
    """Per region: when it was last ingested, and its latest live observation (by observed_at).

    Back-filled history is old on purpose, so it never counts as arrival lag."""
    regions = {}
    for bucket in aggs.get("regions", {}).get("buckets", []):
        hits = bucket["live"]["latest"]["hits"]["hits"]
        src = hits[0]["_source"] if hits else {}
        any_hits = bucket["any"]["hits"]["hits"]
        regions[bucket["key"]] = RegionFacts(
            region_id=bucket["key"],
            region_name=src.get("region_name") or (any_hits[0]["_source"].get("region_name") if any_hits else None),
            last_seen=_ms(bucket["last_seen"]["value"]),
            observed_at=_iso(src.get("observed_at")),
            lag_seconds=src.get("lag_seconds"),
        )
    return regions


def service_facts_from_aggs(aggs: dict[str, Any]) -> dict[str, ServiceFacts]:
    """Per server or service: the latest supervisor event about it (a malformed one is skipped)."""
    services = {}
    for bucket in aggs.get("services", {}).get("buckets", []):
        hits = bucket["latest"]["hits"]["hits"]
        src = hits[0]["_source"] if hits else {}
        # Log lines keep their dotted keys as written ("meteoflow.supervisor"); accept nested ones too.
        fields = src.get("meteoflow.supervisor") or (src.get("meteoflow") or {}).get("supervisor")
        action = src.get("event.action") or (src.get("event") or {}).get("action")
        try:
            event = SupervisorEvent.model_validate({**(fields or {}), "action": action})
            at = _iso(src.get("@timestamp"))
        except ValueError:  # pydantic's ValidationError too
            continue
        if at is not None:
            services[bucket["key"]] = ServiceFacts(at=at, event=event)
    return services


def health_window(settings: Settings, rules: AlertRules) -> tuple[float, float]:
    """(how far back the rules read health samples, the age past which a subject's newest sample is
    ignored): enough samples for `consumer_lag.growing_samples`, and 3 sampling intervals of slack."""
    every = settings.metrics_interval_seconds
    return every * (rules.consumer_lag.growing_samples + 2), max(3 * every, 2 * settings.alert_eval_interval_seconds)


def samples_from_aggs(aggs: dict[str, Any]) -> list[MetricSample]:
    """The samples of the per-(kind, subject) top_hits; a malformed document is skipped."""
    samples = []
    for kind in aggs.get("kinds", {}).get("buckets", []):
        for subject in kind.get("subjects", {}).get("buckets", []):
            for hit in subject["latest"]["hits"]["hits"]:
                try:
                    samples.append(MetricSample.model_validate(hit["_source"]))
                except ValidationError:
                    continue
    return samples


class FactsReader:
    def __init__(self, settings: Settings, es):
        self.settings = settings
        self.es = es

    def health(self, rules: AlertRules, now: datetime) -> HealthFacts:
        """Recent health samples (elk/health/), newest first per kind and subject."""
        lookback, max_age = health_window(self.settings, rules)
        resp = self.es.search(
            index=self.settings.index("metrics"), size=0, **_SEARCH,
            query={"range": {"@timestamp": {"gte": (now - timedelta(seconds=lookback)).isoformat()}}},
            aggs={"kinds": {"terms": {"field": "kind", "size": 10}, "aggs": {"subjects": {
                "terms": {"field": "subject", "size": MAX_REGIONS},
                "aggs": {"latest": {"top_hits": {"size": rules.consumer_lag.growing_samples,
                                                 "sort": [{"@timestamp": "desc"}]}}},
            }}}},
        )
        return health_facts(samples_from_aggs(resp.get("aggregations") or {}), now, max_age)

    def read(self, rules: AlertRules, now: datetime) -> Facts:
        s = self.settings
        since = now - timedelta(hours=rules.region_silence.lookback_hours)
        obs = self.es.search(
            index=s.index("observations"), size=0, **_SEARCH,
            query={"range": {"ingested_at": {"gte": since.isoformat()}}},
            aggs={
                "last_observation": {"max": {"field": "ingested_at"}},
                "first_observation": {"min": {"field": "ingested_at"}},
                "regions": {
                    "terms": {"field": "region_id", "size": MAX_REGIONS},
                    "aggs": {
                        "last_seen": {"max": {"field": "ingested_at"}},
                        "any": {"top_hits": {"size": 1, "_source": ["region_name"]}},
                        "live": {
                            "filter": {"bool": {"must_not": {"prefix": {"batch_id": BACKFILL_BATCH_PREFIX}}}},
                            "aggs": {"latest": {"top_hits": {
                                "size": 1,
                                "sort": [{"observed_at": "desc"}, {"ingested_at": "desc"}],
                                "_source": ["region_name", "observed_at", "ingested_at", "lag_seconds"],
                            }}},
                        },
                    },
                },
            },
        )
        aggs = obs.get("aggregations") or {}
        progress = self.es.search(
            index=s.index("logs"), size=0, **_SEARCH,
            query={"bool": {"filter": [
                {"term": {"event.action": STREAMING_BATCH_ACTION}},
                {"range": {"@timestamp": {"gte": since.isoformat()}}},
            ]}},
            aggs={"last": {"max": {"field": "@timestamp"}}},
        )
        window_start = now - timedelta(seconds=rules.deadletter_spike.window_seconds)
        dead = self.es.count(  # rejected records, each once (meteoflow/contracts/deadletters.py)
            index=s.index("deadletter"), **_SEARCH,
            query={"bool": {"filter": [counted_deadletters(s.topic_observations),
                                       {"range": {"failed_at": {"gte": window_start.isoformat()}}}]}},
        )
        supervisor = self.es.search(
            index=s.index("logs"), size=0, **_SEARCH,
            query={"bool": {"filter": [
                {"terms": {"event.action": list(SUPERVISOR_ACTIONS)}},
                {"range": {"@timestamp": {"gte": (now - timedelta(seconds=rules.crash_loop.window_seconds)).isoformat()}}},
            ]}},
            aggs={"services": {
                "terms": {"field": "meteoflow.supervisor.service", "size": 1000},
                "aggs": {"latest": {"top_hits": {"size": 1, "sort": [{"@timestamp": "desc"}]}}},
            }},
        )
        return Facts(
            now=now,
            regions=region_facts_from_aggs(aggs),
            last_observation_at=_ms((aggs.get("last_observation") or {}).get("value")),
            first_observation_at=_ms((aggs.get("first_observation") or {}).get("value")),
            last_progress_at=_ms(((progress.get("aggregations") or {}).get("last") or {}).get("value")),
            deadletters_in_window=int(dead["count"]),
            services=service_facts_from_aggs(supervisor.get("aggregations") or {}),
            health=self.health(rules, now),
        )


def write_heartbeat(settings: Settings, es, heartbeat: Heartbeat) -> None:
    es.index(index=settings.index("heartbeats"), id=heartbeat.service, document=heartbeat.model_dump(mode="json"))


class IncidentStore:
    """Incidents as documents `_id = incident_id`; writes refresh the (small) index so the next read sees them at once."""

    def __init__(self, settings: Settings, es):
        self.index = settings.index("alerts")
        self.es = es

    def save(self, incident: Incident) -> None:
        incident.refresh_pending()
        self.es.index(index=self.index, id=incident.incident_id,
                      document=incident.model_dump(mode="json", exclude_none=True), refresh=True)

    def _search(self, query: dict) -> list[Incident]:
        resp = self.es.search(index=self.index, query=query, size=1000, sort=[{"opened_at": "asc"}], **_SEARCH)
        return [Incident.model_validate(hit["_source"]) for hit in resp["hits"]["hits"]]

    def open(self) -> dict[tuple[str, str], Incident]:
        """Pending (condition seen, not yet held for its `for_seconds`) and firing incidents."""
        return {inc.key: inc for inc in self._search({"terms": {"status": ["pending", "firing"]}})}

    def with_pending(self) -> list[Incident]:
        return self._search({"range": {"pending_notifications": {"gt": 0}}})

    def sent_since(self, since: datetime) -> list[Incident]:
        """Incidents with a notification sent at or after `since` (message grouping reads them)."""
        return self._search({"range": {"notifications.sent_at": {"gte": since.isoformat()}}})

    def forget(self, incident: Incident) -> None:
        """A pending incident that never fired leaves no trace."""
        self.es.options(ignore_status=404).delete(index=self.index, id=incident.incident_id, refresh=True)

    def all(self) -> list[Incident]:
        """Every incident that fired (pending ones are not incidents yet)."""
        return self._search({"bool": {"must_not": {"term": {"status": "pending"}}}})


class MemoryIncidentStore:
    """The incidents the service keeps while Elasticsearch is unavailable, with the interface of
    IncidentStore. Kept in a JSON file too, so a restart while Elasticsearch is still down neither
    re-sends nor forgets; handed back to Elasticsearch once it answers again."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self.incidents: dict[str, Incident] = {}
        if path is not None and path.exists():
            try:
                raw = json.loads(path.read_text())
                self.incidents = {k: Incident.model_validate(v) for k, v in raw.items()}
            except (ValueError, ValidationError, AttributeError) as exc:
                log.warning("ignoring unreadable %s (%s)", path, type(exc).__name__)

    def _persist(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({k: v.model_dump(mode="json") for k, v in self.incidents.items()}))
            tmp.replace(self.path)
        except OSError as exc:  # a read-only disk costs the restart-safety, never the alert
            log.warning("cannot keep %s (%s)", self.path, exc)

    def seed(self, incidents: dict[tuple[str, str], Incident]) -> None:
        """What was open in Elasticsearch when it was last read, unless already known here."""
        for inc in incidents.values():
            self.incidents.setdefault(inc.incident_id, inc.model_copy(deep=True))
        self._persist()

    def save(self, incident: Incident) -> None:
        incident.refresh_pending()
        self.incidents[incident.incident_id] = incident.model_copy(deep=True)
        self._persist()

    def open(self) -> dict[tuple[str, str], Incident]:
        return {i.key: i.model_copy(deep=True) for i in self.incidents.values() if i.status in ("pending", "firing")}

    def with_pending(self) -> list[Incident]:
        return [i.model_copy(deep=True) for i in self.incidents.values() if i.pending_notifications > 0]

    def sent_since(self, since: datetime) -> list[Incident]:
        return [i.model_copy(deep=True) for i in self.incidents.values()
                if any(n.sent_at is not None and n.sent_at >= since for n in i.notifications)]

    def forget(self, incident: Incident) -> None:
        self.incidents.pop(incident.incident_id, None)
        self._persist()

    def all(self) -> list[Incident]:
        return [i.model_copy(deep=True) for i in self.incidents.values() if i.status != "pending"]

    def clear(self) -> None:
        self.incidents = {}
        if self.path is not None:
            self.path.unlink(missing_ok=True)
