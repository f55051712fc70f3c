"""Silences and acknowledgements in Elasticsearch (contracts.Silence, contracts.Acknowledgement).

One adapter for both sides: the web app writes them (its API and UI) and lists them, the
alerting service reads the active silences and the acknowledgements of its open incidents once
per evaluation. Silences are documents `_id = silence_id` in `<prefix>-silences`,
acknowledgements `_id = incident_id` in `<prefix>-acks`. Writes refresh the (small) indices so
the next read sees them at once. A missing index is an empty list, not an error.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Iterable

from elasticsearch import ConflictError
from pydantic import ValidationError

from meteoflow.contracts import Acknowledgement, Silence
from meteoflow.errors import describe_errors
from meteoflow.settings import Settings

log = logging.getLogger("silences")

_SEARCH = dict(ignore_unavailable=True, allow_no_indices=True)
MAX_SILENCES = 1000  # active and scheduled ones: far more than people create by hand


def active_query(now: datetime) -> dict[str, Any]:
    """Silences active at `now`: started, not ended, not expired by hand."""
    at = now.isoformat()
    return {"bool": {
        "filter": [{"range": {"starts_at": {"lte": at}}}, {"range": {"ends_at": {"gt": at}}}],
        "must_not": [{"range": {"expired_at": {"lte": at}}}],
    }}


def ended_after_query(since: datetime) -> dict[str, Any]:
    """Silences not ended before `since` (active, scheduled, or ended since then)."""
    at = since.isoformat()
    return {"bool": {"filter": [{"range": {"ends_at": {"gte": at}}}],
                     "must_not": [{"range": {"expired_at": {"lt": at}}}]}}


def _parse(model, hits: list[dict[str, Any]]) -> list:
    """Stored documents as models; one written by hand that does not fit is skipped with a warning."""
    out = []
    for hit in hits:
        try:
            out.append(model.model_validate(hit["_source"]))
        except ValidationError as exc:
            log.warning("skipping malformed %s %s: %s", model.__name__, hit.get("_id"),
                        describe_errors(exc, default_field="document"))
    return out


class SilenceStore:
    def __init__(self, settings: Settings, es):
        self.silence_index = settings.index("silences")
        self.ack_index = settings.index("acks")
        self.es = es

    # --- silences ------------------------------------------------------------------------
    def save_silence(self, silence: Silence) -> None:
        self.es.index(index=self.silence_index, id=silence.silence_id,
                      document=silence.model_dump(mode="json", exclude_none=True), refresh=True)

    def silence(self, silence_id: str) -> Silence | None:
        resp = self.es.search(index=self.silence_index, query={"ids": {"values": [silence_id]}}, size=1, **_SEARCH)
        found = _parse(Silence, resp["hits"]["hits"])
        return found[0] if found else None

    def active_silences(self, now: datetime) -> list[Silence]:
        """One query: what the alerting service applies in an evaluation."""
        resp = self.es.search(index=self.silence_index, query=active_query(now), size=MAX_SILENCES, **_SEARCH)
        return _parse(Silence, resp["hits"]["hits"])

    def silences(self, ended_since: datetime, limit: int = 200) -> list[Silence]:
        """Active and scheduled silences, and those that ended after `ended_since`, newest first."""
        resp = self.es.search(index=self.silence_index, query=ended_after_query(ended_since), size=limit,
                              sort=[{"created_at": {"order": "desc", "unmapped_type": "date"}}], **_SEARCH)
        return _parse(Silence, resp["hits"]["hits"])

    # --- acknowledgements ---------------------------------------------------------------
    def save_ack(self, ack: Acknowledgement) -> bool:
        """Record `ack`; False when the incident was acknowledged already (the first one stands)."""
        try:
            self.es.create(index=self.ack_index, id=ack.incident_id, document=ack.model_dump(mode="json"),
                           refresh=True)
        except ConflictError:
            return False
        return True

    def acks(self, incident_ids: Iterable[str]) -> dict[str, Acknowledgement]:
        """The acknowledgements of these incidents, by incident id (one query)."""
        ids = sorted(set(incident_ids))
        if not ids:
            return {}
        resp = self.es.search(index=self.ack_index, query={"ids": {"values": ids}}, size=len(ids), **_SEARCH)
        return {ack.incident_id: ack for ack in _parse(Acknowledgement, resp["hits"]["hits"])}
