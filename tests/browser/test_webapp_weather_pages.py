"""The weather pages in headless Chromium over seeded data (the pipeline's own document builders,
tests/browser/seeding.py), so every state is on screen at once: a silent region, a degraded
forecast, a baseline forecast, a back-fill replaying three-day-old observations, kept forecast runs
and their skill. Screenshots: images/overview.png, overview-phone.png, region.png, quality.png.

Freshness thresholds are those of OpenWeatherMap's default 15 min interval (late after 30 min), far
longer than these tests: the seeded arrivals stay fresh without a feeding thread."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from meteoflow.contracts import BACKFILL_BATCH_PREFIX
from meteoflow.freshness import thresholds
from tests.browser.conftest import seeded_app_settings, serving
from tests.browser.seeding import Seeder, utcnow

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def weather_app(stack, tmp_path_factory, built_frontend):
    tmp = tmp_path_factory.mktemp("weather")
    settings = seeded_app_settings(stack, tmp)
    limits = thresholds(settings)
    seeder = Seeder(settings)
    regions = {r[0]: r for r in seeder.regions}
    end = utcnow().replace(second=0, microsecond=0)
    live = [regions[r] for r in ("dakar", "thies", "saint-louis")]
    history = seeder.history(hours=48, step_minutes=60, end=end, regions=live)
    seeder.store(history)
    # Kaolack stopped reporting: its last record arrived past the silent threshold.
    seeder.store(seeder.history(hours=6, step_minutes=60, end=end - timedelta(hours=2), regions=[regions["kaolack"]]),
                 ingested_at=utcnow() - timedelta(seconds=limits.silent_after_seconds + 60))
    # Ziguinchor is being back-filled: observations of three days ago arriving now.
    old = seeder.history(hours=6, step_minutes=60, end=end - timedelta(days=3), regions=[regions["ziguinchor"]])
    seeder.store([o.model_copy(update={"batch_id": BACKFILL_BATCH_PREFIX + o.batch_id}) for o in old])
    for rid in ("dakar", "thies"):
        seeder.forecast(rid, end, hours=24)
    seeder.forecast("saint-louis", end, hours=24, model="persistence")
    for hours_before, bias in ((30, 1.2), (20, -0.8), (6, 0.4)):
        seeder.forecast_run("dakar", end - timedelta(hours=hours_before), bias=bias)
    seeder.skill("dakar", model_mae=0.7, persistence_mae=1.4, climatology_mae=1.1, coverage=0.91)
    seeder.skill("thies", model_mae=1.9, persistence_mae=0.5, climatology_mae=1.3, coverage=0.71)
    seeder.skill("saint-louis", model_mae=1.1, persistence_mae=1.3, climatology_mae=1.0, coverage=0.86)
    seeder.skill("dakar", window="7d", model_mae=0.9, persistence_mae=1.5, climatology_mae=1.2)
    try:
        with serving(settings, tmp) as url:
            yield url
    finally:
        seeder.close()


def cards_in_order(page) -> list[str]:
    cards = page.locator("[data-testid=region-card]")
    return [cards.nth(i).get_attribute("data-region-id") for i in range(cards.count())]


def test_overview_puts_problems_first_says_a_backfill_runs_and_maps_the_regions(page, weather_app, images_dir, browser):
    page.goto(f"{weather_app}/#/")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=region-card]').length === 5")
    order = cards_in_order(page)
    assert order[:2] == ["kaolack", "thies"], order  # silent, then the degraded forecast
    card = lambda rid: page.locator(f"[data-testid=region-card][data-region-id='{rid}']")  # noqa: E731
    assert "Silent" in card("kaolack").get_by_test_id("card-problem").inner_text()
    assert "persistence" in card("thies").get_by_test_id("card-problem").inner_text()

    # A back-filled observation shows its own age and is never badged fresh; the page says why.
    zig = card("ziguinchor")
    assert zig.get_attribute("data-observation") == "old"
    assert zig.get_by_test_id("freshness-badge").inner_text().strip() == "Back-filled"
    assert re.match(r"Observed 3 d ago", zig.get_by_test_id("observed-age").inner_text())
    assert "Back-filling history" in page.get_by_test_id("backfill-banner").inner_text()

    dakar = card("dakar")
    assert dakar.get_by_test_id("freshness-badge").inner_text().strip() == "Fresh"
    assert re.match(r"Observed (\d+ min ago|just now|\d+ s ago)", dakar.get_by_test_id("observed-age").inner_text())
    assert dakar.locator("[data-testid=forecast-strip] li").count() == 6
    assert re.search(r"Today\s*↑ -?\d+°C\s*↓ -?\d+°C", dakar.get_by_test_id("today-range").inner_text())
    assert card("saint-louis").get_by_test_id("baseline-tag").count() == 1
    assert dakar.get_by_test_id("baseline-tag").count() == 0
    # Operator details stay on the health pages.
    body = page.inner_text("main")
    assert "lag" not in body.lower() and "sim-" not in body and BACKFILL_BATCH_PREFIX not in body

    spots = page.locator("[data-testid=map-region]")
    assert spots.count() == 5
    page.get_by_test_id("map-by-freshness").click()
    assert page.get_by_test_id("region-map").get_attribute("data-colouring") == "freshness"
    assert page.locator("[data-testid=map-region][data-region-id=kaolack]").get_attribute("data-colour") == "#dc2626"
    page.get_by_test_id("map-by-temperature").click()
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar stays on top of a full-page shot
    page.screenshot(path=str(images_dir / "overview.png"), full_page=True)

    phone = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True)
    try:
        small = phone.new_page()
        small.goto(f"{weather_app}/#/")
        small.locator("[data-testid=region-card]").first.wait_for()
        assert small.evaluate("document.documentElement.scrollWidth") <= 375
        small.screenshot(path=str(images_dir / "overview-phone.png"))
    finally:
        phone.close()


def test_region_page_draws_a_past_run_against_what_happened_with_tooltips_and_zoom(page, weather_app, images_dir):
    page.goto(f"{weather_app}/#/region/dakar")
    chart = page.get_by_test_id("temp-chart")
    chart.locator("canvas").wait_for()
    assert int(chart.get_attribute("data-points")) >= 48
    for series in ("humidity", "wind_speed", "pressure"):
        assert page.get_by_test_id(f"chart-{series}").locator("canvas").count() == 1
    assert page.get_by_test_id("chart-precipitation").count() == 0  # these observations carry no rain_1h
    assert "Prophet model" in page.get_by_test_id("forecast-note").inner_text()

    picker = page.get_by_test_id("run-picker")
    page.wait_for_function("() => document.querySelector('[data-testid=run-picker]').options.length === 4")
    picker.select_option(index=2)  # the run made 20 h before the latest observation
    verdict = page.get_by_test_id("run-verdict")
    verdict.wait_for()
    assert re.search(r"mean error \d+\.\d °C over 2\d hours", verdict.inner_text()), verdict.inner_text()

    over = chart.locator(".u-over")
    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    tip = chart.get_by_test_id("chart-tooltip")
    tip.wait_for()
    assert "Observed" in tip.inner_text() and "Past run" in tip.inner_text()
    # Hovering one chart moves the cursor of the others (one shared cursor).
    page.get_by_test_id("chart-humidity").get_by_test_id("chart-tooltip").wait_for()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(images_dir / "region.png"), full_page=True)

    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 40, steps=5)
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('[data-testid=temp-chart]').dataset.zoomed === 'true'")
    over.dblclick()
    page.wait_for_function("() => document.querySelector('[data-testid=temp-chart]').dataset.zoomed === 'false'")


def test_forecast_quality_page_shows_skill_by_lead_time_and_the_worst_regions(page, weather_app, images_dir):
    page.goto(f"{weather_app}/#/")
    page.get_by_role("link", name="Forecast quality").click()
    rows = page.locator("[data-testid=quality-row]")
    rows.first.wait_for()
    assert [rows.nth(i).get_attribute("data-region-id") for i in range(rows.count())] == ["thies", "saint-louis", "dakar"]
    assert "worse than the best baseline" in rows.first.inner_text() and "degraded" in rows.first.inner_text()
    assert "better than the best baseline" in rows.nth(2).inner_text()
    assert page.get_by_test_id("mae-chart").locator("canvas").count() == 1
    assert page.get_by_test_id("coverage-chart").locator("canvas").count() == 1
    over = page.get_by_test_id("mae-chart").locator(".u-over")
    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2)
    tip = page.get_by_test_id("mae-chart").get_by_test_id("chart-tooltip")
    tip.wait_for()
    assert re.search(r"\d+ h ahead", tip.inner_text()) and "Persistence" in tip.inner_text()
    assert re.search(r"Model \(served or not\): \d+\.\d\d", tip.inner_text()), tip.inner_text()
    page.mouse.move(0, 0)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(images_dir / "quality.png"), full_page=True)

    page.get_by_test_id("quality-region").select_option("dakar")
    page.get_by_role("heading", name=re.compile("Error by lead time · Dakar")).wait_for()
    page.get_by_test_id("quality-window").select_option("7d")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=quality-row]').length === 1")
