"""The incidents page in the browser: create a silence and acknowledge an incident the way a
person does, over incidents written by the alerting service's own store. Screenshots go to images/."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from elk.alerting.engine import Incident
from elk.alerting.store import IncidentStore
from meteoflow.es import make_es_client
from tests.browser.conftest import free_port, get_json, serving
from tests.conftest import isolated_settings

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def incident(rule: str, region: str, name: str, status: str, minutes_ago: float, notes: list[tuple[str, str]],
             summary: str) -> Incident:
    opened = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    inc = Incident(incident_id=f"{rule}|{region}|{opened:%Y%m%dT%H%M%S.%fZ}", rule=rule, subject=region,
                   region_id=region, region_name=name, status=status, severity="critical", summary=summary,
                   hint="Is the producer running? Look at its logs.", opened_at=opened, updated_at=opened,
                   last_seen=opened - timedelta(minutes=3),
                   resolved_at=opened + timedelta(minutes=12) if status == "resolved" else None)
    for kind, state in notes:
        inc.add_notification(kind, opened if kind == "alert" else opened + timedelta(minutes=12))
        note = inc.notifications[-1]
        note.status = state
        if state == "sent":
            note.sent_at, note.attempts = note.created_at + timedelta(seconds=1), 1
        if state == "silenced":
            note.silenced_by = "0f3c9a1e5b7d4c2a"
    return inc


@pytest.fixture
def incidents_app(stack, tmp_path, built_frontend):
    settings = isolated_settings(stack, tmp_path, webapp_port=free_port(), webapp_refresh_seconds=1.0)
    from elk.templates import install_templates

    install_templates(settings)
    es = make_es_client(settings)
    store = IncidentStore(settings, es)
    seeded = [
        incident("region_silence", "dakar", "Dakar", "firing", 8, [("alert", "sent")],
                 "No observation from Dakar for 8 min (expected every 30 s, silent after 2 min)"),
        incident("region_silence", "ziguinchor", "Ziguinchor", "resolved", 95, [("alert", "silenced"), ("recovery", "silenced")],
                 "No observation from Ziguinchor for 4 min (expected every 30 s, silent after 2 min)"),
        incident("arrival_lag", "thies", "Thiès", "resolved", 300, [("alert", "sent"), ("recovery", "sent")],
                 "Latest observation of Thiès arrived 2.1 h after it was observed (threshold 90 min)"),
    ]
    for inc in seeded:
        store.save(inc)
    es.close()
    with serving(settings, tmp_path) as url:
        yield url, {inc.subject: inc.incident_id for inc in seeded}


def test_create_a_silence_and_acknowledge_an_incident(page, incidents_app, images_dir, browser, tmp_path):
    url, ids = incidents_app
    page.goto(f"{url}/#/incidents")
    page.get_by_role("link", name="Incidents", exact=True).wait_for()
    assert page.get_by_role("link", name="Incidents", exact=True).get_attribute("aria-current") == "page"
    items = page.locator("[data-testid=incident]")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=incident]').length === 3")
    assert [items.nth(i).get_attribute("data-incident-id") for i in range(3)] == [ids["dakar"], ids["ziguinchor"], ids["thies"]]
    ziguinchor = page.locator(f"[data-incident-id='{ids['ziguinchor']}'] [data-testid=notification]")
    assert [ziguinchor.nth(i).get_attribute("data-status") for i in range(2)] == ["silenced", "silenced"]

    # A silence sent without its required fields: each is named, and the failure is announced.
    form = page.locator("[data-testid=silence-form]")
    form.get_by_role("button", name="Create silence").click()
    assert "not created" in page.get_by_role("alert").inner_text()
    for field in ("silence-subject", "silence-comment", "silence-author"):
        page.locator(f"[data-testid={field}-error]").wait_for()
        assert form.locator(f"#{field}").get_attribute("aria-invalid") == "true"

    form.get_by_label("Rule").select_option(label="Region silence")
    form.get_by_label("Region (or service)").fill("kaolack")
    form.get_by_label("Duration").select_option(label="2 hours")
    form.get_by_label("Why").fill("Kaolack's station is being moved to the airport")
    form.get_by_label("Your name").fill("Awa")
    form.get_by_role("button", name="Create silence").click()
    page.get_by_text(re.compile(r"Silence created: Region silence · kaolack until")).wait_for()
    row = page.locator("[data-testid=silence-row][data-state=active]")
    row.wait_for()
    assert "kaolack" in row.inner_text() and "Awa" in row.inner_text()
    [silence] = get_json(f"{url}/api/silences")["silences"]
    assert (silence["rule"], silence["subject"], silence["state"]) == ("region_silence", "kaolack", "active")

    # Acknowledge the firing incident; the name typed for the silence is remembered.
    dakar = page.locator(f"[data-incident-id='{ids['dakar']}']")
    dakar.get_by_role("button", name=re.compile("Acknowledge")).click()
    ack = dakar.locator("[data-testid=ack-form]")
    assert ack.get_by_label("Your name").input_value() == "Awa"
    comment = ack.get_by_label("What are you doing about it?")
    assert page.evaluate("document.activeElement.id") == comment.get_attribute("id")  # focus is in the first empty field
    comment.fill("Restarting the producer on the Dakar gateway")
    ack.get_by_role("button", name="Acknowledge").click()
    dakar.locator("[data-testid=ack-badge]").wait_for()
    assert dakar.locator("[data-testid=ack-badge]").inner_text() == "Acknowledged by Awa"
    assert get_json(f"{url}/api/incidents/{quote(ids['dakar'], safe='')}")["incident"]["acknowledgement"]["author"] == "Awa"
    page.wait_for_timeout(300)
    page.screenshot(path=str(images_dir / "incidents.png"), full_page=True)

    # The incident's own page: what Slack links to.
    page.goto(f"{url}/#/incidents/{quote(ids['dakar'], safe='')}")
    detail = page.locator("[data-testid=incident-detail]")
    detail.wait_for()
    assert page.locator("#page-title").inner_text() == "Region silence · Dakar"
    assert "Restarting the producer" in page.locator("[data-testid=acknowledgement]").inner_text()
    assert page.locator("[data-testid=notifications-table] [data-testid=notification]").get_attribute("data-status") == "sent"
    page.wait_for_timeout(300)
    page.screenshot(path=str(images_dir / "incident.png"), full_page=True)

    phone = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True)
    try:
        small = phone.new_page()
        small.goto(f"{url}/#/incidents")
        small.locator("[data-testid=silence-row]").first.wait_for()
        small.screenshot(path=str(tmp_path / "incidents-phone.png"), full_page=True)
        wide = small.evaluate("""[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 376)
            .slice(0, 5).map(e => e.tagName + '.' + e.className)""")
        assert small.evaluate("document.documentElement.scrollWidth") <= 375, wide  # no sideways scrolling
    finally:
        phone.close()
