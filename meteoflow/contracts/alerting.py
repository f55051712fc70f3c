"""Silences and acknowledgements: written by the web app, read by the alerting service."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from meteoflow.contracts.common import Comment, Author, IncidentId, RuleName, Subject, UtcTime, _blank_is_none

# --- silences and acknowledgements (indices <prefix>-silences and <prefix>-acks) ----------
# Written by the web app (its API and UI), read by the alerting service at each evaluation
# (elk/alerting/silences.py). Acknowledgements live in their own index, `_id` = incident_id,
# never on the incident documents: the alerting service rewrites those whole.
ALERT_RULES = ("region_silence", "arrival_lag", "streaming_stalled", "deadletter_spike", "crash_loop", "consumer_lag",
               "service_down", "store_behind", "forecast_stale", "forecast_degraded", "elasticsearch_unavailable")
"""The rules of the alerting service (elk/alerting/rules.py RULE_MODELS; a unit test keeps them
equal), so the web app can refuse a silence for a rule that does not exist."""
SILENCE_MAX_SECONDS = 30 * 24 * 3600  # longer than a month is not a silence but a disabled rule
# A notification of an incident (elk/alerting/engine.py), as the web app shows it too.
NotificationKind = Literal["alert", "reminder", "recovery"]
NotificationStatus = Literal["pending", "sent", "logged", "failed", "silenced"]
SilenceState = Literal["scheduled", "active", "expired"]


class Silence(BaseModel):
    """Alertmanager's silence: while active, the notifications of every incident it matches are
    recorded with status "silenced" (and `silenced_by` = silence_id) instead of being sent.

    Matchers are exact and both must hold when set; at least one is set. `subject` matches an
    incident's subject or its region, so a silence on a region covers every rule about it."""

    model_config = ConfigDict(extra="forbid")

    silence_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    rule: RuleName | None = None
    subject: Subject | None = Field(None, validate_default=True)
    starts_at: UtcTime
    ends_at: UtcTime
    comment: Comment
    author: Author
    created_at: UtcTime
    expired_at: UtcTime | None = None  # expired by hand (DELETE /api/silences/{id}) at this time

    @field_validator("rule", "subject", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_is_none(value)

    @field_validator("subject")
    @classmethod
    def _one_matcher(cls, value: str | None, info: ValidationInfo) -> str | None:
        # "rule" missing from info.data: it was invalid and has its own error already.
        if value is None and "rule" in info.data and info.data["rule"] is None:
            raise ValueError("a silence needs at least one matcher: rule or subject (a region)")
        return value

    @field_validator("ends_at")
    @classmethod
    def _bounded(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("starts_at")
        if start is not None:
            if value <= start:
                raise ValueError("must be after starts_at")
            if value - start > timedelta(seconds=SILENCE_MAX_SECONDS):
                raise ValueError(f"must be at most {SILENCE_MAX_SECONDS // 86400} days after starts_at")
        return value

    def is_active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at and (self.expired_at is None or now < self.expired_at)

    def state(self, now: datetime) -> SilenceState:
        if now >= self.ends_at or (self.expired_at is not None and now >= self.expired_at):
            return "expired"
        return "scheduled" if now < self.starts_at else "active"

    def matches(self, rule: str, subject: str, region_id: str | None = None) -> bool:
        """Whether the matchers select an incident of `rule` about `subject` (region `region_id`)."""
        return (self.rule is None or self.rule == rule) and (self.subject is None or self.subject in (subject, region_id))


class Acknowledgement(BaseModel):
    """Someone is on it: the incident gets no more reminders (its recovery is still sent)."""

    model_config = ConfigDict(extra="forbid")

    incident_id: IncidentId
    author: Author
    comment: Comment
    at: UtcTime


class SilenceRequest(BaseModel):
    """The body of POST /api/silences: the matchers, from when (default now) until when (ends_at,
    or duration_seconds after the start), why and who. The web app turns it into a Silence."""

    model_config = ConfigDict(extra="forbid")

    rule: RuleName | None = None
    subject: Subject | None = None
    starts_at: UtcTime | None = None
    ends_at: UtcTime | None = None
    duration_seconds: float | None = Field(None, gt=0, le=SILENCE_MAX_SECONDS, validate_default=True)
    comment: Comment
    author: Author

    @field_validator("rule", "subject", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_is_none(value)

    @field_validator("duration_seconds")
    @classmethod
    def _one_end(cls, value: float | None, info: ValidationInfo) -> float | None:
        if "ends_at" not in info.data:
            return value  # ends_at was invalid: its own error says so
        if value is None and info.data["ends_at"] is None:
            raise ValueError("give ends_at or duration_seconds")
        if value is not None and info.data["ends_at"] is not None:
            raise ValueError("give ends_at or duration_seconds, not both")
        return value


class AckRequest(BaseModel):
    """The body of POST /api/incidents/{id}/ack."""

    model_config = ConfigDict(extra="forbid")

    author: Author
    comment: Comment
