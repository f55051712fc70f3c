"""Retention in Elasticsearch: log lines, dead letters, health samples, resolved alert incidents, ended
silences and the acknowledgements of closed incidents older than METEOFLOW_ES_RETENTION_DAYS are
deleted (documents matching a query, in batches), so those indices stop growing on a machine left
running for months. An active or scheduled silence, and the acknowledgement of an open incident,
are never deleted, however old.

Observations are never deleted: they are the product's data. The indices keep their names and
the documents their ids, so the shipper, Logstash and every reader work as before (why this and
not ILM: docs/reliability.md, "Disk use"). The alerting service runs `apply_retention` at start
and then every METEOFLOW_ES_RETENTION_INTERVAL_SECONDS, natively and in Docker.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any, Collection

from meteoflow.settings import Settings

log = logging.getLogger("retention")

# A document's age is the time of the event it records. One whose field is missing, or was not
# indexed (the logs template ignores malformed values), is aged by when it was shipped instead,
# so no document escapes retention.
AGE_FIELDS = {"logs": "@timestamp", "deadletter": "failed_at"}
FALLBACK_AGE_FIELD = "ingested_at"
# Written straight to Elasticsearch by Meteoflow's own code (not shipped), so the time field is
# always there: the health samples of the alerting service (elk/health/).
DIRECT_AGE_FIELDS = {"metrics": "@timestamp"}

# Caps one run's work per index, so a first run over months of backlog cannot hold up alert
# evaluation for long: what is left goes in the next runs.
MAX_DOCS_PER_RUN = 50_000
BATCH = 1000
REQUEST_TIMEOUT_SECONDS = 60.0


def _older(field: str, cutoff: str) -> dict[str, Any]:
    return {"range": {field: {"lt": cutoff}}}


def retention_queries(settings: Settings, now: datetime,
                      open_incidents: Collection[str] = ()) -> dict[str, dict[str, Any]]:
    """Per index kind, the query matching the documents retention deletes at `now`
    (`open_incidents`: the ids of the pending and firing incidents, whose acks stay)."""
    cutoff = (now - timedelta(days=settings.es_retention_days)).isoformat()
    queries = {
        kind: {"bool": {"minimum_should_match": 1, "should": [
            _older(field, cutoff),
            {"bool": {"must_not": [{"exists": {"field": field}}], "filter": [_older(FALLBACK_AGE_FIELD, cutoff)]}},
        ]}}
        for kind, field in AGE_FIELDS.items()
    }
    queries.update({kind: _older(field, cutoff) for kind, field in DIRECT_AGE_FIELDS.items()})
    # An incident goes once it has been resolved that long and has no notification left to send.
    queries["alerts"] = {"bool": {
        "filter": [{"term": {"status": "resolved"}}, _older("resolved_at", cutoff)],
        "must_not": [{"range": {"pending_notifications": {"gt": 0}}}],
    }}
    # A silence goes once it ended that long ago (its end, or when it was expired by hand): an
    # active or scheduled one ends after now, so never before the cutoff.
    queries["silences"] = {"bool": {"minimum_should_match": 1, "should": [
        _older("ends_at", cutoff), _older("expired_at", cutoff)]}}
    # An acknowledgement goes once that old and its incident is no longer open.
    queries["acks"] = {"bool": {"filter": [_older("at", cutoff)],
                                "must_not": [{"ids": {"values": sorted(open_incidents)}}]}}
    return queries


def open_incident_ids(es, settings: Settings) -> list[str]:
    """The pending and firing incidents (a few per rule and region): their acknowledgements stay."""
    resp = es.search(index=settings.index("alerts"), query={"terms": {"status": ["pending", "firing"]}},
                     size=10_000, _source=False, ignore_unavailable=True, allow_no_indices=True)
    return [hit["_id"] for hit in resp["hits"]["hits"]]


def delete_operations(hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bulk deletes of search hits, each only if the document is unchanged since the search: one
    rewritten meanwhile (an incident saved again) is left alone, as delete_by_query's conflicts=proceed."""
    return [{"delete": {"_index": h["_index"], "_id": h["_id"], "if_seq_no": h["_seq_no"],
                        "if_primary_term": h["_primary_term"]}} for h in hits]


def count_deleted(bulk_response: dict[str, Any]) -> int:
    """Deleted documents in a bulk response; gone already (404) or changed (409) are skipped, anything else raises."""
    deleted = 0
    for item in bulk_response["items"]:
        result = item["delete"]
        if result.get("result") == "deleted":
            deleted += 1
        elif result.get("status") not in (404, 409):
            raise RuntimeError(f"deleting {result.get('_id')} from {result.get('_index')} failed: {result.get('error')}")
    return deleted


def delete_matching(es, index: str, query: dict[str, Any], limit: int = MAX_DOCS_PER_RUN) -> int:
    """Delete up to `limit` documents matching `query`, a batch at a time.

    Search + bulk delete rather than _delete_by_query: the native Elasticsearch (the integ-test-zip
    distribution) has no reindex module, hence no _delete_by_query; this works on both paths."""
    deleted = 0
    while deleted < limit:
        hits = es.search(index=index, query=query, size=min(BATCH, limit - deleted), sort=["_doc"], _source=False,
                         seq_no_primary_term=True, track_total_hits=False,
                         ignore_unavailable=True, allow_no_indices=True)["hits"]["hits"]
        if not hits:
            break
        # refresh: the next search must no longer see what this batch deleted
        went = count_deleted(es.bulk(operations=delete_operations(hits), refresh=True))
        deleted += went
        if not went:
            break  # every hit changed under us: leave them to the next run
    return deleted


def apply_retention(es, settings: Settings, now: datetime) -> dict[str, int]:
    """Delete what `retention_queries` match; return how many documents went, per kind.

    Errors (Elasticsearch unreachable, refused) propagate: the caller decides when to retry."""
    started = time.monotonic()
    client = es.options(request_timeout=REQUEST_TIMEOUT_SECONDS)
    queries = retention_queries(settings, now, open_incident_ids(client, settings))
    deleted = {kind: delete_matching(client, settings.index(kind), query) for kind, query in queries.items()}
    capped = [kind for kind, n in deleted.items() if n >= MAX_DOCS_PER_RUN]
    cutoff = now - timedelta(days=settings.es_retention_days)
    log.info(
        "es retention: deleted %s (older than %d days, before %s)%s", deleted, settings.es_retention_days,
        cutoff.isoformat(timespec="seconds"), f"; more left in {capped} for the next run" if capped else "",
        extra={"fields": {
            "event.action": "es-retention",
            "event.duration": int((time.monotonic() - started) * 1e9),
            "meteoflow.retention": {"days": settings.es_retention_days, "cutoff": cutoff.isoformat(),
                                    "deleted": deleted, "more_left": capped},
        }},
    )
    return deleted
