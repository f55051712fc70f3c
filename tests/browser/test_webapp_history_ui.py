"""The history views (issue 17) in headless Chromium over seeded data: daily_stats, rain_models and
rain_predictions documents built by the contracts (tests/browser/seeding.py), read back through the
real store by the web app's history routes. The History panel switches windows; the overview cards
show yesterday and the rain chance (none where the region has no prediction); the quality page
compares the rain classifiers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.browser.conftest import seeded_app_settings, serving
from tests.browser.seeding import Seeder, utcnow

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def history_app(stack, tmp_path_factory, built_frontend):
    tmp = tmp_path_factory.mktemp("history")
    settings = seeded_app_settings(stack, tmp)
    seeder = Seeder(settings)
    regions = {r[0]: r for r in seeder.regions}
    end = utcnow().replace(second=0, microsecond=0)
    seeder.store(seeder.history(hours=6, step_minutes=60, end=end, regions=[regions[r] for r in ("dakar", "thies", "saint-louis")]))
    seeder.daily("dakar", 400, end)  # more than the year window holds
    seeder.daily("thies", 3, end)
    trained_at = end - timedelta(hours=5)
    seeder.rain_model(trained_at)
    seeder.rain_prediction("dakar", 0.42, trained_at)
    seeder.rain_prediction("thies", 0.004, trained_at)
    try:
        with serving(settings, tmp) as url:
            yield url
    finally:
        seeder.close()


def test_overview_cards_show_yesterday_and_the_rain_chance_where_there_is_one(page, history_app):
    page.goto(f"{history_app}/#/")
    card = lambda rid: page.locator(f"[data-testid=region-card][data-region-id='{rid}']")  # noqa: E731
    card("dakar").get_by_test_id("rain-chance").wait_for()
    assert card("dakar").get_by_test_id("rain-chance").inner_text() == "Rain in the next 3 h: 42 %"
    assert "<1 %" in card("thies").get_by_test_id("rain-chance").inner_text()
    assert re.search(r"Yesterday\s*↑ -?\d+°C\s*↓ -?\d+°C\s*\d+(\.\d)? mm", card("dakar").get_by_test_id("yesterday").inner_text())
    # Saint-Louis has neither daily statistics nor a prediction: nothing shown rather than blanks.
    assert card("saint-louis").get_by_test_id("rain-chance").count() == 0
    assert card("saint-louis").get_by_test_id("yesterday").count() == 0


def test_region_history_panel_switches_between_7_days_30_days_and_a_year(page, history_app):
    page.goto(f"{history_app}/#/region/dakar")
    panel = page.get_by_test_id("history-panel")
    chart = panel.get_by_test_id("history-chart")
    chart.locator("canvas").wait_for()
    assert panel.get_attribute("data-window") == "7d" and chart.get_attribute("data-points") == "7"
    for window, days in (("30d", "30"), ("1y", "365"), ("7d", "7")):
        page.get_by_test_id(f"history-{window}").click()
        page.wait_for_function(
            "([w, n]) => { const p = document.querySelector('[data-testid=history-panel]');"
            " const c = p && p.querySelector('[data-testid=history-chart]');"
            " return p.dataset.window === w && c && c.dataset.points === n; }", arg=[window, days])
        assert page.get_by_test_id(f"history-{window}").get_attribute("aria-pressed") == "true"
        assert re.search(rf"{days} of the days .* have statistics", panel.get_by_test_id("history-note").inner_text())
    box = chart.locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    tip = chart.get_by_test_id("chart-tooltip")
    tip.wait_for()
    assert "Precipitation" in tip.inner_text() and "max" in tip.inner_text()


def test_quality_page_compares_the_rain_classifiers(page, history_app):
    page.goto(f"{history_app}/#/quality")
    models = page.locator("[data-testid=rain-model]")
    models.first.wait_for()
    assert [models.nth(i).get_attribute("data-model") for i in range(models.count())] == ["decision_tree", "gbt"]
    gbt = page.locator("[data-testid=rain-model][data-model=gbt]")
    assert gbt.get_attribute("data-selected") == "true" and "served" in gbt.inner_text()
    assert gbt.get_by_test_id("rain-auc").inner_text() == "0.830"
    assert "Rain, predicted rain" in gbt.get_by_test_id("rain-confusion").inner_text()
    assert "Trained" in page.get_by_test_id("rain-models").inner_text()
