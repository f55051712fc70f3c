"""GET /api/incidents (the incidents history, filtered and paged), GET /api/incidents/{id} (one
incident, its notifications and acknowledgement), POST /api/incidents/{id}/ack (no more reminders)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Path as PathParam, Query

from meteoflow.contracts import AckRequest, AckResponse, Acknowledgement, ErrorBody, IncidentResponse, IncidentsResponse
from webapp import views
from webapp.routes.common import (
    INVALID, STORE_DOWN, WRITE_REFUSED, WRITER, ClockDep, StoreDep, invalid, not_found, query_time,
)
from webapp.store import Store

log = logging.getLogger("webapp")

MAX_INCIDENTS_PAGE = 200
MAX_OFFSET = 10_000  # Elasticsearch's from + size limit

router = APIRouter(tags=["incidents"])


def known_incident(store: Store, incident_id: str) -> dict[str, Any]:
    source = store.incident(incident_id)
    if source is None or source.get("status") == "pending":
        raise HTTPException(status_code=404, detail=f"unknown incident '{incident_id}'")
    return source


@router.get("/api/incidents", response_model=IncidentsResponse, responses={**INVALID, **STORE_DOWN},
            summary="The incidents history, newest first")
def incidents(
    store: StoreDep, clock: ClockDep,
    status: Literal["firing", "resolved"] | None = Query(None, description="firing or resolved"),
    rule: str | None = Query(None, min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$"),
    subject: str | None = Query(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                                description="A region id (or a service, consumer, store)"),
    severity: Literal["info", "warning", "critical"] | None = Query(None),
    since: datetime | None = Query(None, description="Incidents still open at or after this time"),
    until: datetime | None = Query(None, description="Incidents opened at or before this time"),
    limit: int = Query(50, ge=1, le=MAX_INCIDENTS_PAGE),
    offset: int = Query(0, ge=0, le=MAX_OFFSET - MAX_INCIDENTS_PAGE),
) -> dict[str, Any]:
    since, until = (query_time(name, value) for name, value in (("since", since), ("until", until)))
    if since is not None and until is not None and until < since:
        raise invalid("query", "until", "must not be before since", until)
    total, sources = store.incidents(views.incident_query(status, rule, subject, severity, since, until),
                                     limit, offset)
    acks = store.silences.acks(s.get("incident_id") for s in sources if s.get("incident_id"))
    return {
        "generated_at": views.iso(clock()), "total": total, "limit": limit, "offset": offset,
        "incidents": [views.incident_body(s, acks.get(s.get("incident_id"))) for s in sources],
    }


@router.get("/api/incidents/{incident_id}", response_model=IncidentResponse,
            responses={**not_found("incident"), **INVALID, **STORE_DOWN},
            summary="One incident, its notifications and acknowledgement")
def incident(store: StoreDep, clock: ClockDep,
             incident_id: str = PathParam(..., min_length=1, max_length=512)) -> dict[str, Any]:
    source = known_incident(store, incident_id)
    ack = store.silences.acks([incident_id]).get(incident_id)
    return {"generated_at": views.iso(clock()), "incident": views.incident_body(source, ack)}


@router.post("/api/incidents/{incident_id}/ack", status_code=201, response_model=AckResponse, dependencies=WRITER,
             responses={**WRITE_REFUSED, **not_found("incident"),
                        409: {"model": ErrorBody, "description": "Resolved, or acknowledged already"},
                        **INVALID, **STORE_DOWN},
             summary="Acknowledge a firing incident: no more reminders")
def acknowledge(body: AckRequest, store: StoreDep, clock: ClockDep,
                incident_id: str = PathParam(..., min_length=1, max_length=512)) -> dict[str, Any]:
    source = known_incident(store, incident_id)
    if source.get("status") != "firing":
        raise HTTPException(status_code=409, detail=f"incident '{incident_id}' is {source.get('status')}: "
                                                    "only a firing incident can be acknowledged")
    ack = Acknowledgement(incident_id=incident_id, author=body.author, comment=body.comment, at=clock())
    if not store.silences.save_ack(ack):
        first = store.silences.acks([incident_id]).get(incident_id)
        by = f" by {first.author} at {views.iso(first.at)}" if first else ""
        raise HTTPException(status_code=409, detail=f"incident '{incident_id}' is acknowledged already{by}")
    log.info("incident %s acknowledged by %s", incident_id, ack.author,
             extra={"fields": {"event.action": "incident-acknowledged",
                               "meteoflow.alert": {"incident_id": incident_id, "author": ack.author}}})
    return {"acknowledgement": {"incident_id": incident_id, **views.acknowledgement_body(ack)}}
