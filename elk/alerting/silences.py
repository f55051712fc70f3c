"""Silences and acknowledgements in the alerting decisions, as pure functions.

A silence (meteoflow.contracts.Silence, created in the web app) holds back the notifications
of the incidents it matches while it is active: they are recorded with status "silenced" and
the silence's id, never sent. An acknowledged incident gets no more reminders (`plan`'s
`acknowledged`); its recovery still goes out. Like Alertmanager: the recovery of an incident
nobody was told about (every alert and reminder silenced) is held back too, and an incident
still firing when its silence ends is announced then, as a reminder, not left until the next
reminder is due.
"""

from __future__ import annotations

from datetime import datetime

from elk.alerting.engine import Incident, Notification
from meteoflow.contracts import Silence


def matches(silence: Silence, incident: Incident, now: datetime) -> bool:
    return silence.is_active(now) and silence.matches(incident.rule, incident.subject, incident.region_id)


def silenced_by(incident: Incident, note: Notification, silences: list[Silence], now: datetime) -> str | None:
    """The id of the silence that holds `note` back now, or None when it may go out."""
    for silence in silences:
        if matches(silence, incident, now):
            return silence.silence_id
    if note.kind == "recovery":
        told = [n for n in incident.notifications if n.kind != "recovery"]
        if told and all(n.status == "silenced" for n in told):
            return told[-1].silenced_by
    return None


def hold_back(incident: Incident, silences: list[Silence], now: datetime) -> list[Notification]:
    """Mark "silenced" the incident's pending notifications that a silence holds back, oldest
    first, up to the first one that may go out (order is kept); return those it marked."""
    held = []
    for note in incident.notifications:
        if note.status != "pending":
            continue
        by = silenced_by(incident, note, silences, now)
        if by is None:
            break
        note.status, note.silenced_by = "silenced", by
        held.append(note)
    incident.refresh_pending()
    return held


def released(incidents: list[Incident], silences: list[Silence], now: datetime,
             acknowledged: frozenset[str] = frozenset()) -> list[Incident]:
    """Firing incidents whose every alert and reminder was silenced, that no silence matches any
    more, nobody acknowledged and no cause holds back (`inhibited_by`): each gets a reminder now
    (Alertmanager notifies an alert whose silence ended). Changes them in place; returns them."""
    out = []
    for inc in incidents:
        told = [n for n in inc.notifications if n.kind != "recovery"]
        if (inc.status == "firing" and inc.inhibited_by is None and told and all(n.status == "silenced" for n in told)
                and inc.incident_id not in acknowledged and not any(matches(s, inc, now) for s in silences)):
            inc.add_notification("reminder", now)
            out.append(inc)
    return out
