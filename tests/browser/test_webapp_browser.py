"""The web app in headless Chromium, the way a person uses it, over live data
(see conftest.py for the pipeline and seeded modes). Screenshots go to images/.

The test that stops a region's data runs last in this module: the others need every
region fresh.
"""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TEMP = re.compile(r"^-?\d+(\.\d+)?°[CF]$")


def open_page(page, live_app, route: str = "/"):
    page.goto(f"{live_app.url}/#{route}")
    return page


def test_overview_lists_every_region_with_a_number(page, live_app):
    open_page(page, live_app, "/")
    cards = page.locator("[data-testid=region-card]")
    cards.first.wait_for()
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=region-card]').length >= {len(live_app.region_ids)}")
    shown = {cards.nth(i).get_attribute("data-region-id"): cards.nth(i) for i in range(cards.count())}
    assert set(live_app.region_ids) <= set(shown)
    for region_id in live_app.region_ids:
        temp = shown[region_id].locator("[data-testid=region-temp]").inner_text().strip()
        assert TEMP.match(temp), f"{region_id}: temperature shown as {temp!r}"
        assert shown[region_id].locator("[data-testid=weather-icon]").get_attribute("aria-label")
        assert shown[region_id].locator("[data-testid=freshness-badge]").get_attribute("data-freshness") == "fresh"
    # The screenshots of the overview and region pages are made over seeded data showing every
    # state at once (test_webapp_weather_pages.py).


def test_units_toggle_converts_and_is_remembered(page, live_app):
    open_page(page, live_app, "/")
    temp = page.locator("[data-testid=region-temp]").first
    temp.wait_for()
    assert temp.inner_text().endswith("°C")
    page.get_by_role("button", name="°F").click()
    assert page.get_by_role("button", name="°F").get_attribute("aria-pressed") == "true"
    page.wait_for_function("() => document.querySelector('[data-testid=region-temp]').textContent.endsWith('°F')")
    page.reload()
    page.locator("[data-testid=region-temp]").first.wait_for()
    assert page.locator("[data-testid=region-temp]").first.inner_text().endswith("°F")
    page.get_by_role("button", name="°C").click()


def test_region_page_draws_observations_and_forecast(page, live_app):
    open_page(page, live_app, "/")
    # Keyboard: focus the region's link and press Enter.
    link = page.locator(f"[data-region-id='{live_app.forecast_region}'] h2 a")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"#/region/{live_app.forecast_region}$"))
    chart = page.locator("[data-testid=temp-chart]")
    chart.locator("canvas").wait_for()
    # The forecast appears once the streaming job got one from the forecasting API; the page polls.
    page.wait_for_function("() => document.querySelector('[data-testid=forecast-note]').textContent.startsWith('Forecast:')",
                           timeout=300_000)
    assert int(chart.get_attribute("data-points")) >= 24, "at least a day of points"
    assert page.locator("[data-testid=hourly-table] tbody tr").count() >= 12
    assert page.get_by_role("img", name=re.compile("Temperature in .*forecast of the next")).count() == 1


def test_status_page_shows_each_regions_last_seen_time(page, live_app, images_dir):
    open_page(page, live_app, "/status")
    rows = page.locator("[data-testid=status-row]")
    rows.first.wait_for()
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=status-row]').length >= {len(live_app.region_ids)}")
    seen = {rows.nth(i).get_attribute("data-region-id"): rows.nth(i) for i in range(rows.count())}
    for region_id in live_app.region_ids:
        cell = seen[region_id].locator("[data-testid=last-seen]")
        assert cell.get_attribute("data-last-seen"), region_id
        assert re.match(r"^\d\d:\d\d:\d\d ", cell.inner_text()), cell.inner_text()
    assert page.locator("[data-testid=tile-arrivals] .tile-value").inner_text() != "0"
    if live_app.mode == "seeded":
        assert page.locator("[data-testid=throughput-chart]").count() == 1
    page.wait_for_timeout(300)
    page.screenshot(path=str(images_dir / "status.png"), full_page=True)


def test_badge_turns_late_when_a_regions_data_stops_without_a_reload(page, live_app):
    loads = []
    page.on("load", lambda _: loads.append(1))
    open_page(page, live_app, "/")
    stale = page.locator(f"[data-region-id='{live_app.stale_region}'] [data-testid=freshness-badge]")
    stale.wait_for()
    assert stale.get_attribute("data-freshness") == "fresh"
    page.evaluate("window.__sameDocument = 'still here'")
    loads_before = len(loads)

    live_app.stop_region(live_app.stale_region)
    limits = live_app.api("/api/config")["thresholds"]
    page.wait_for_function(
        f"() => document.querySelector(\"[data-region-id='{live_app.stale_region}'] [data-testid=freshness-badge]\")"
        ".dataset.freshness === 'late'",
        timeout=(limits["late_after_seconds"] + 120) * 1000,
        polling=250,
    )
    assert page.evaluate("window.__sameDocument") == "still here", "the page was reloaded"
    assert len(loads) == loads_before
    others = [r for r in live_app.region_ids if r != live_app.stale_region]
    fresh = [
        page.locator(f"[data-region-id='{r}'] [data-testid=freshness-badge]").get_attribute("data-freshness")
        for r in others
    ]
    assert fresh.count("fresh") == len(others), f"other regions should keep arriving: {dict(zip(others, fresh))}"


def test_status_page_shows_the_alert_raised_for_the_silent_region(page, live_app, images_dir):
    if not live_app.alerting:
        pytest.skip("the alerting service runs in pipeline mode only (seeded mode has no alert engine)")
    limits = live_app.api("/api/config")["thresholds"]
    open_page(page, live_app, "/status")
    row = page.locator(f"[data-testid=status-row][data-region-id='{live_app.stale_region}']")
    row.wait_for()
    alert = page.locator("[data-testid=alert].alert-active", has_text=re.compile(live_app.stale_region, re.I))
    alert.wait_for(timeout=(limits["silent_after_seconds"] + 120) * 1000)
    assert row.locator("[data-testid=freshness-badge]").get_attribute("data-freshness") in {"late", "silent"}
    page.wait_for_timeout(300)
    page.screenshot(path=str(images_dir / "status-alert.png"), full_page=True)
