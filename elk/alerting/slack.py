"""Slack incoming-webhook messages (Block Kit) and their delivery with retries.

`message` is pure. `SlackSender.send` retries 429 (honouring Retry-After), 5xx,
timeouts and connection errors with exponential backoff, and gives up on other
4xx answers (a wrong URL or payload will not get better). The webhook URL is a
secret: it never appears in a log line or an error text.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Literal
from urllib.parse import quote

import requests
from pydantic import SecretStr

from elk.alerting.engine import Incident, Notification

RULE_TITLES = {
    "region_silence": "Region silent",
    "arrival_lag": "Data arriving late",
    "streaming_stalled": "Streaming job stalled",
    "deadletter_spike": "Dead-letter spike",
    "crash_loop": "Service in crash-loop",
    "service_down": "Service down",
    "consumer_lag": "Consumer behind Kafka",
    "store_behind": "Store behind Kafka",
    "forecast_stale": "Forecast stale",
    "forecast_degraded": "Forecast degraded",
    "elasticsearch_unavailable": "Elasticsearch unavailable",
}
ICONS = {"alert": ":rotating_light:", "reminder": ":hourglass:", "recovery": ":white_check_mark:"}


def escape(text: str) -> str:
    """Text for a Slack mrkdwn field: `&`, `<` and `>` are Slack's control characters (links,
    mentions such as <!channel> or <@U123>), so every string Meteoflow did not write itself -
    region names and ids, subjects, summaries holding error text - is entity-encoded, as Slack's
    formatting reference asks. Our own links are added around escaped text, never from it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _when(value: datetime | None) -> str:
    if value is None:
        return "never (in the lookback window)"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _lag(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} s"


def incident_url(web_app: str, incident_id: str) -> str:
    """The web app's page of one incident. Ids hold `|` and `:`, which would end a Slack link: encoded."""
    # errors="surrogatepass": an id made from JSON text may hold a lone surrogate ("\\ud800"),
    # which UTF-8 cannot encode; it must still give a link, never raise out of a notification.
    return f"{web_app.split('#', 1)[0]}#/incidents/{quote(incident_id, safe='', errors='surrogatepass')}"


def _where_to_look(hint: str | None, where_to_look: str | None, incident_id: str | None = None) -> str:
    lines = [escape(hint)] if hint else []
    if where_to_look:
        if incident_id:
            lines.append(f"<{incident_url(where_to_look, incident_id)}|Open the incident> "
                         "(acknowledge it, or silence what it matches)")
        lines.append(f"<{where_to_look}|Open the dashboard>")
    return "\n".join(lines)


def message(incident: Incident, notification: Notification, where_to_look: str | None = None) -> dict:
    """The webhook body: a plain-text fallback plus Block Kit blocks."""
    title = incident.title or RULE_TITLES.get(incident.rule, incident.rule)
    region = incident.region_name or incident.region_id
    subject = f"{title}: {region}" if region else title
    if notification.kind == "recovery":
        duration = (incident.resolved_at or notification.created_at) - incident.opened_at
        headline = f"Recovered: {subject} (after {duration.total_seconds() / 60:.1f} min)"
    elif notification.kind == "reminder":
        headline = f"Still firing: {subject} (since {_when(incident.opened_at)})"
    else:
        headline = f"{subject}"
    # The header is plain_text (never parsed for links or mentions): it keeps the raw text.
    text = f"{ICONS[notification.kind]} [{incident.severity.upper()}] {headline}"
    fields = [
        f"*Rule*\n`{escape(incident.rule)}`",
        f"*Region*\n{escape(region)}" if region else f"*Subject*\n{escape(incident.subject)}",
        f"*Last seen*\n{_when(incident.last_seen)}",
        f"*Lag*\n{_lag(incident.lag_seconds)}",
        f"*Opened*\n{_when(incident.opened_at)}",
        f"*Status*\n{incident.status}",
    ]
    look = _where_to_look(incident.hint, where_to_look, incident.incident_id)
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": escape(incident.summary)[:3000]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if look:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Where to look*\n{look}"[:3000]}})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn",
         "text": f"incident `{escape(incident.incident_id)}` · delivery `{escape(notification.delivery_id)}`"}]})
    return {"text": escape(f"{text}: {incident.summary}"), "blocks": blocks}


DIGEST_MAX_LINES = 25
DIGEST_MAX_CHARS = 2900  # a section's text holds 3000 characters; the "...and N more" line fits after


def digest_message(items: list[tuple[Incident, Notification]], where_to_look: str | None = None) -> dict:
    """One message for several incidents of the same rule and kind (e.g. every region of a
    stopped producer going silent at once): one post instead of a flood."""
    if len(items) == 1:
        return message(items[0][0], items[0][1], where_to_look)
    first_inc, first_note = items[0]
    title = RULE_TITLES.get(first_inc.rule, first_inc.rule)
    kind = first_note.kind
    verb = {"alert": "", "reminder": "Still firing: ", "recovery": "Recovered: "}[kind]
    severity = max((inc.severity for inc, _ in items), key=lambda s: s == "critical").upper()
    noun = "regions" if first_inc.region_id else "components"
    text = f"{ICONS[kind]} [{severity}] {verb}{title}: {len(items)} {noun}"
    lines: list[str] = []
    for inc, _note in items[:DIGEST_MAX_LINES]:
        name = escape(inc.region_name or inc.region_id or inc.subject)
        if where_to_look:  # each line links to its incident's page
            name = f"<{incident_url(where_to_look, inc.incident_id)}|{name}>"
        detail = f"last seen {_when(inc.last_seen)}, lag {_lag(inc.lag_seconds)}" if inc.region_id else escape(inc.summary)
        if kind == "recovery":
            minutes = ((inc.resolved_at or _note.created_at) - inc.opened_at).total_seconds() / 60
            detail = f"after {minutes:.1f} min"
        line = f"• *{name}*: {detail}"
        if sum(len(x) + 1 for x in lines) + len(line) > DIGEST_MAX_CHARS:
            break  # cut between lines, never inside a link
        lines.append(line)
    if len(items) > len(lines):
        lines.append(f"• ...and {len(items) - len(lines)} more")
    look = _where_to_look(first_inc.hint, where_to_look)
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": escape(f"{title} for {len(items)} {noun} (rule `{first_inc.rule}`):")}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}},
    ]
    if look:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Where to look*\n{look}"[:3000]}})
    ids = ", ".join(f"`{escape(note.delivery_id)}`" for _inc, note in items[:5]) + (" ..." if len(items) > 5 else "")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"deliveries {ids}"[:3000]}]})
    names = ", ".join(inc.region_name or inc.region_id or inc.subject for inc, _ in items)
    return {"text": escape(f"{text}: {names}"), "blocks": blocks}


@dataclass
class Delivery:
    outcome: Literal["sent", "retry", "failed"]
    attempts: int
    error: str | None = None


class SlackSender:
    def __init__(self, webhook_url: SecretStr, timeout: float = 5.0, max_attempts: int = 5,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0, max_retry_after: float = 120.0,
                 sleep: Callable[[float], None] = time.sleep, session: requests.Session | None = None):
        self._url = webhook_url
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._session = session or requests.Session()

    def _hide(self, text: str) -> str:
        url = self._url.get_secret_value()
        return text.replace(url, "<webhook>") if url else text

    def send(self, body: dict) -> Delivery:
        wait = self.backoff_initial
        error = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                resp = self._session.post(self._url.get_secret_value(), json=body, timeout=self.timeout)
            except requests.RequestException as exc:
                # Type only: requests' messages embed the URL, which is the secret.
                error = f"{type(exc).__name__}"
                pause = wait
            else:
                if resp.status_code == 200:
                    return Delivery("sent", attempt)
                detail = self._hide(resp.text[:200])
                error = f"HTTP {resp.status_code}: {detail}"
                if resp.status_code == 429:
                    pause = retry_after_seconds(resp.headers.get("Retry-After"), wait, self.max_retry_after)
                elif resp.status_code >= 500:
                    pause = wait
                else:
                    return Delivery("failed", attempt, error)
            if attempt < self.max_attempts:
                self._sleep(pause)
                wait = min(self.backoff_max, wait * 2)
        return Delivery("retry", self.max_attempts, error)


def retry_after_seconds(header: str | None, default: float, cap: float) -> float:
    try:
        value = float(header) if header is not None else default
    except ValueError:
        value = default
    return max(0.0, min(value, cap))
