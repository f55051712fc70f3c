from datetime import datetime, timezone

import re

import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st
from pydantic import SecretStr

from elk.alerting.engine import Incident
from elk.alerting.slack import DIGEST_MAX_CHARS, escape, SlackSender, digest_message, incident_url, message, retry_after_seconds
from tests.fakes.slack_server import SlackServer

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def incident(**changes) -> Incident:
    inc = Incident(incident_id="region_silence|dakar|x", rule="region_silence", subject="dakar", severity="critical",
                   summary="No observation from Dakar for 5 min", hint="Look at the producer logs.",
                   region_id="dakar", region_name="Dakar", opened_at=T0, updated_at=T0,
                   last_seen=datetime(2026, 11, 26, 11, 55, tzinfo=timezone.utc), lag_seconds=42.0)
    for k, v in changes.items():
        setattr(inc, k, v)
    inc.add_notification("alert", T0)
    return inc


@pytest.fixture
def slack():
    with SlackServer(retry_after=0.2) as server:
        yield server


def sender(url: str, sleeps: list | None = None, **kw) -> SlackSender:
    return SlackSender(SecretStr(url), timeout=kw.pop("timeout", 2), backoff_initial=0.01,
                       sleep=(sleeps.append if sleeps is not None else (lambda s: None)), **kw)


def test_message_says_what_where_when_lag_and_where_to_look():
    inc = incident()
    body = message(inc, inc.notifications[0], "http://127.0.0.1:8080/")
    text = str(body)
    assert body["text"].startswith(":rotating_light: [CRITICAL] Region silent: Dakar")
    assert body["blocks"][0]["type"] == "header" and len(body["blocks"][0]["text"]["text"]) <= 150
    for expected in ("Dakar", "2026-11-26 11:55:00 UTC", "42 s", "Look at the producer logs", "http://127.0.0.1:8080/",
                     "region_silence|dakar|x|alert"):
        assert expected in text


def test_the_message_links_to_the_incident_page_with_its_id_encoded():
    inc = incident(incident_id="region_silence|dakar|20261126T120000.000000Z")
    text = str(message(inc, inc.notifications[0], "http://127.0.0.1:8080/#/status"))
    link = "http://127.0.0.1:8080/#/incidents/region_silence%7Cdakar%7C20261126T120000.000000Z"
    assert f"<{link}|Open the incident>" in text
    assert "<http://127.0.0.1:8080/#/status|Open the dashboard>" in text
    assert incident_url("http://h/app/", "a b:c|d") == "http://h/app/#/incidents/a%20b%3Ac%7Cd"


def test_a_digest_links_each_region_to_its_incident_and_cuts_between_lines():
    def region(n: int):
        inc = incident(incident_id=f"region_silence|region-{n:03d}|20261126T120000.000000Z", region_id=f"region-{n:03d}",
                       region_name=f"Region {n}")
        return inc, inc.notifications[0]

    body = digest_message([region(n) for n in range(3)], "http://127.0.0.1:8080/")
    lines = body["blocks"][2]["text"]["text"].splitlines()
    assert lines[1].startswith("• *<http://127.0.0.1:8080/#/incidents/region_silence%7Cregion-001%7C")
    assert lines[1].endswith("|Region 1>*: last seen 2026-11-26 11:55:00 UTC, lag 42 s")
    many = digest_message([region(n) for n in range(25)], "http://127.0.0.1:8080/")
    shown = many["blocks"][2]["text"]["text"]
    assert len(shown) <= 3000 and shown.count("<") == shown.count(">")  # no link cut in half
    kept = shown.count("#/incidents/")
    assert 0 < kept < 25 and shown.endswith(f"• ...and {25 - kept} more")
    assert len(shown) - len(shown.splitlines()[-1]) <= DIGEST_MAX_CHARS + 1


def test_recovery_and_reminder_messages_say_so():
    inc = incident()
    inc.status, inc.resolved_at = "resolved", datetime(2026, 11, 26, 12, 6, tzinfo=timezone.utc)
    inc.add_notification("recovery", inc.resolved_at)
    assert message(inc, inc.notifications[-1])["text"].startswith(":white_check_mark: [CRITICAL] Recovered: Region silent: Dakar (after 6.0 min)")
    inc.add_notification("reminder", inc.resolved_at)
    assert "Still firing" in message(inc, inc.notifications[-1])["text"]


def test_500_twice_then_ok_delivers_once(slack):
    slack.script = [500, 502]
    result = sender(slack.url).send({"text": "hi"})
    assert (result.outcome, result.attempts) == ("sent", 3)
    assert len(slack.messages) == 1 and len(slack.requests) == 3


def test_429_waits_retry_after(slack):
    slack.script = [429]
    sleeps = []
    result = sender(slack.url, sleeps).send({"text": "hi"})
    assert result.outcome == "sent" and sleeps == [0.2]
    assert retry_after_seconds("7", 1, 60) == 7 and retry_after_seconds("soon", 1, 60) == 1
    assert retry_after_seconds("3600", 1, 60) == 60


def test_timeout_is_retried(slack):
    slack.script = [("timeout", 1.0)]
    result = sender(slack.url, timeout=0.3).send({"text": "hi"})
    assert result.outcome == "sent" and result.attempts == 2
    assert len(slack.messages) == 1


def test_still_failing_is_left_for_later_and_4xx_is_final(slack):
    slack.script = [500] * 3
    assert sender(slack.url, max_attempts=3).send({"text": "hi"}).outcome == "retry"
    assert slack.messages == []
    bad = sender(slack.url.replace("/services/", "/nothing/")).send({"text": "hi"})
    assert bad.outcome == "failed" and "404" in bad.error


def test_the_webhook_url_never_appears_in_errors():
    secret = "http://127.0.0.1:9/services/T000/B000/TOPSECRET"
    result = sender(secret, max_attempts=2).send({"text": "hi"})  # nothing listens on port 9
    assert result.outcome == "retry" and "TOPSECRET" not in (result.error or "")


# --- user-controlled text never becomes Slack markup (mentions, links) -------------------------

DASHBOARD = "http://127.0.0.1:8080/"
HOSTILE = ["<!channel>", "<!here|here>", "<@U123>", "<#C123>", "<!subteam^S123>", "<https://evil.example|click>",
           "a & b", "&lt;!channel&gt;", "x>y<z"]
# Our own markup: the links to the dashboard and to each incident's page, and nothing else.
OUR_LINK = re.compile(re.escape("<" + DASHBOARD) + r"[^<>|]*\|[^<>]*>")


def mrkdwn_texts(body: dict) -> list[str]:
    """Every text Slack parses as mrkdwn: the fallback `text`, and each mrkdwn object of the blocks."""
    texts = [body["text"]]
    for block in body["blocks"]:
        for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if obj and obj["type"] == "mrkdwn":
                texts.append(obj["text"])
    return texts


def assert_no_markup_from_users(body: dict) -> None:
    for text in mrkdwn_texts(body):
        bare = OUR_LINK.sub("", text)
        assert "<" not in bare and ">" not in bare, text
        assert not re.search(r"&(?!amp;|lt;|gt;)", bare), text  # every & is one of our entities


def hostile_incident(name: str, rid: str, subject: str, error: str) -> Incident:
    return incident(incident_id=f"region_silence|{rid}|x", subject=subject, region_id=rid, region_name=name,
                    summary=f"No observation from {name} ({error})", hint=f"./run.sh logs {subject}", title=None)


@pytest.mark.parametrize("evil", HOSTILE)
def test_hostile_region_names_do_not_ping_or_link(evil):
    for region in ({"region_name": evil}, {"region_name": None, "region_id": evil}):
        inc = incident(summary=f"No observation from {evil} (error: {evil})", hint=f"look at {evil}", **region)
        body = message(inc, inc.notifications[0], DASHBOARD)
        assert_no_markup_from_users(body)
        assert escape(evil) in body["blocks"][1]["text"]["text"]  # still shown, as text
    component = incident(region_id=None, region_name=None, subject=evil, summary=f"{evil} is down: {evil}")
    assert_no_markup_from_users(message(component, component.notifications[0], DASHBOARD))
    many = [hostile_incident(f"{evil} {n}", f"r{n}", evil, evil) for n in range(3)]
    assert_no_markup_from_users(digest_message([(i, i.notifications[0]) for i in many], DASHBOARD))


user_text = st.text(alphabet=st.sampled_from("<>&|!@#^:/.*_~`ab \n;") | st.characters(), min_size=1, max_size=60)


@hypothesis_settings(max_examples=200, deadline=None)
@given(name=user_text, rid=user_text, subject=user_text, error=user_text, digest=st.booleans())
def test_no_user_text_is_rendered_unescaped(name, rid, subject, error, digest):
    incidents = [hostile_incident(name, rid, subject, error), hostile_incident(error, subject, name, rid)]
    if digest:
        body = digest_message([(i, i.notifications[0]) for i in incidents], DASHBOARD)
    else:
        body = message(incidents[0], incidents[0].notifications[0], DASHBOARD)
    assert_no_markup_from_users(body)


def test_escape_follows_slacks_three_entities():
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    assert escape("&lt;") == "&amp;lt;"  # an entity typed by a user stays literal text


def test_an_incident_id_with_a_lone_surrogate_still_links():
    """Found by test_no_user_text_is_rendered_unescaped: quote() raised UnicodeEncodeError."""
    url = incident_url("http://127.0.0.1:8080/", "region_silence|\ud800|1")
    assert url == "http://127.0.0.1:8080/#/incidents/region_silence%7C%ED%A0%80%7C1"
