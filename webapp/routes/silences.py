"""GET /api/silences (active, scheduled and recently ended), POST /api/silences (matching incidents
are recorded, not sent), DELETE /api/silences/{id} (expire it now)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Path as PathParam
from pydantic import ValidationError

from meteoflow.contracts import (
    ALERT_RULES, SILENCE_MAX_SECONDS, Silence, SilenceRequest, SilenceResponse, SilencesResponse,
)
from webapp import views
from webapp.routes.common import (
    INVALID, STORE_DOWN, WRITE_REFUSED, WRITER, ClockDep, StoreDep, as_request_error, invalid, not_found,
)

log = logging.getLogger("webapp")

RECENT_SILENCES_DAYS = 7  # GET /api/silences lists those that ended this recently, besides the current ones
SILENCE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

router = APIRouter(tags=["silences"])


@router.get("/api/silences", response_model=SilencesResponse, responses=STORE_DOWN,
            summary="Active, scheduled and recently ended silences")
def silences(store: StoreDep, clock: ClockDep) -> dict[str, Any]:
    now = clock()
    found = store.silences.silences(ended_since=now - timedelta(days=RECENT_SILENCES_DAYS))
    return {
        "generated_at": views.iso(now),
        "rules": list(ALERT_RULES),
        "max_seconds": SILENCE_MAX_SECONDS,
        "silences": views.sort_silences(views.silence_body(s, now) for s in found),
    }


@router.post("/api/silences", status_code=201, response_model=SilenceResponse, dependencies=WRITER,
             responses={**WRITE_REFUSED, **INVALID, **STORE_DOWN},
             summary="Create a silence: the incidents it matches are recorded, not sent")
def create_silence(body: SilenceRequest, store: StoreDep, clock: ClockDep) -> dict[str, Any]:
    now = clock()
    if body.rule is not None and body.rule not in ALERT_RULES:
        raise invalid("body", "rule", f"unknown rule '{body.rule}'; known: {', '.join(ALERT_RULES)}", body.rule)
    starts_at = body.starts_at or now
    if starts_at > now + timedelta(seconds=SILENCE_MAX_SECONDS):
        raise invalid("body", "starts_at", f"must be at most {SILENCE_MAX_SECONDS // 86400} days from now",
                      starts_at)
    by_duration = body.ends_at is None
    ends_at = starts_at + timedelta(seconds=body.duration_seconds) if by_duration else body.ends_at
    if ends_at <= now:
        raise invalid("body", "duration_seconds" if by_duration else "ends_at",
                      "the silence would end in the past", ends_at)
    try:
        silence = Silence(silence_id=uuid.uuid4().hex, rule=body.rule, subject=body.subject, starts_at=starts_at,
                          ends_at=ends_at, comment=body.comment, author=body.author, created_at=now)
    except ValidationError as exc:
        raise as_request_error(exc, {"ends_at": "duration_seconds"} if by_duration else None) from None
    store.silences.save_silence(silence)
    log.info("silence %s created by %s (rule %s, subject %s, until %s)", silence.silence_id, silence.author,
             silence.rule or "any", silence.subject or "any", views.iso(silence.ends_at),
             extra={"fields": {"event.action": "silence-created",
                               "meteoflow.silence": silence.model_dump(mode="json", exclude={"comment"})}})
    return {"silence": views.silence_body(silence, now)}


@router.delete("/api/silences/{silence_id}", response_model=SilenceResponse, dependencies=WRITER,
               responses={**WRITE_REFUSED, **not_found("silence"), **INVALID, **STORE_DOWN},
               summary="Expire a silence now")
def expire_silence(store: StoreDep, clock: ClockDep,
                   silence_id: str = PathParam(..., pattern=SILENCE_ID_PATTERN)) -> dict[str, Any]:
    now = clock()
    silence = store.silences.silence(silence_id)
    if silence is None:
        raise HTTPException(status_code=404, detail=f"unknown silence '{silence_id}'")
    if silence.state(now) != "expired":  # expiring an expired silence changes nothing
        silence = silence.model_copy(update={"expired_at": now})
        store.silences.save_silence(silence)
        log.info("silence %s expired", silence_id, extra={"fields": {"event.action": "silence-expired",
                                                                    "meteoflow.silence": {"silence_id": silence_id}}})
    return {"silence": views.silence_body(silence, now)}
