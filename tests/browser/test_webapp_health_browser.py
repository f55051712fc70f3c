"""The pipeline-health page's Services panel, consumer-lag charts and store staleness in headless
Chromium, over health samples seeded as the sampler writes them (MetricSample documents built by
elk/health/signals.py): half an hour of lag history, then a fresh sampling round every second, so
nothing here depends on how fast the page loads. Screenshots: images/health.png, health-phone.png.

The story on screen: the shipper was stopped for 12 minutes and caught up after its restart; the
streaming job is in a crash loop, so its lag grows and MongoDB falls behind Kafka."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta

import pytest

from elk.health.signals import (
    ConsumerReading, PartitionReading, consumer_lag_sample, forecast_age_samples, service_samples,
    store_staleness_samples,
)
from elk.templates import install_templates
from meteoflow.contracts import ForecastState, MetricSample, SupervisedProcess, SupervisorState
from tests.browser.conftest import webapp_settings
from tests.browser.seeding import Seeder, utcnow

pytestmark = [pytest.mark.browser, pytest.mark.integration]

STEP = timedelta(seconds=15)
STREAMING_ERROR = "pymongo.errors.ServerSelectionTimeoutError: 127.0.0.1:27017: [Errno 111] Connection refused"


def lag(consumer: str, when: datetime, records: int, seconds: float) -> MetricSample:
    reading = ConsumerReading(consumer, {("weather.observations", 0): PartitionReading(
        beginning=0, end=records, position=0, oldest_unprocessed_at=when - timedelta(seconds=seconds))})
    return consumer_lag_sample(when, reading)


def lag_at(consumer: str, when: datetime, t0: datetime) -> MetricSample:
    """The story's lag of `consumer` at `when` (minutes before t0; after t0 the trends go on)."""
    m = (t0 - when).total_seconds() / 60
    if consumer == "streaming":
        if m > 8:  # a batch of 14 records every 30 s, processed by the next sample
            return lag(consumer, when, 14, 12.0) if int(m * 4) % 2 else lag(consumer, when, 0, 0.0)
        return lag(consumer, when, 14 + int((8 - m) * 28), 20 + (8 - m) * 60)
    if 4 < m <= 16:  # the shipper stopped: 28 records a minute pile up
        return lag(consumer, when, int((16 - m) * 28), (16 - m) * 60)
    if 3 < m <= 4:  # restarted: it catches up within a minute
        return lag(consumer, when, int((m - 3) * 336), (m - 3) * 720)
    return lag(consumer, when, 0, 0.0)


def sampling_round(now: datetime, t0: datetime) -> list[MetricSample]:
    up_since = t0 - timedelta(hours=5, minutes=12)
    processes = {name: SupervisedProcess(state="up", since=up_since)
                 for name in ("kafka", "elasticsearch", "ferretdb", "forecasting_api", "webapp", "alerting")}
    processes["shipper"] = SupervisedProcess(state="up", since=t0 - timedelta(minutes=4), restarts=1, last_exit_code=-15)
    processes["streaming"] = SupervisedProcess(state="crash-loop", since=t0 - timedelta(minutes=3), restarts=7,
                                               last_exit_code=1, last_error=STREAMING_ERROR)
    processes["producer"] = SupervisedProcess(state="held", since=t0 - timedelta(minutes=1), last_exit_code=-15)
    kafka_newest = now - timedelta(seconds=10)
    stores = {"elasticsearch": now - timedelta(seconds=9), "mongodb": t0 - timedelta(minutes=8)}
    forecasts = [ForecastState(_id=r, region_id=r, needs_forecast=False, last_observed_at=t0 - timedelta(minutes=m),
                               status="ok", last_success_at=t0 - timedelta(minutes=m))
                 for r, m in (("dakar", 6), ("thies", 14), ("kaolack", 31))]
    return (service_samples(now, SupervisorState(pid=4242, processes=processes))
            + store_staleness_samples(now, kafka_newest, stores)
            + forecast_age_samples(now, forecasts)
            + [lag_at("shipper", now, t0), lag_at("streaming", now, t0)])


@pytest.fixture
def health_app(stack, tmp_path, start_webapp):
    settings = webapp_settings(stack, tmp_path)
    install_templates(settings)
    seeder = Seeder(settings)
    t0 = utcnow()
    start = t0 - timedelta(minutes=30)
    seeder.metrics([lag_at(c, start + k * STEP, t0) for k in range(120) for c in ("shipper", "streaming")])
    seeder.metrics(sampling_round(t0, t0))
    stop = threading.Event()

    def feed() -> None:  # the sampler, every second instead of 15 s: the page never sees a stale sample
        while not stop.wait(1.0):
            seeder.metrics(sampling_round(utcnow(), t0))

    thread = threading.Thread(target=feed, name="health-feed", daemon=True)
    thread.start()
    try:
        yield start_webapp(settings)
    finally:
        stop.set()
        thread.join(10)
        seeder.close()


def test_services_panel_lag_charts_and_store_staleness_render(page, browser, health_app, images_dir):
    page.goto(f"{health_app}/#/status")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=service]').length === 9")
    services = page.locator("[data-testid=service]")
    shown = {services.nth(i).get_attribute("data-service"): services.nth(i) for i in range(9)}
    assert shown["kafka"].get_attribute("data-state") == "up"
    assert re.search(r"up 5 h 1\d min", shown["kafka"].inner_text())
    loop = shown["streaming"]
    assert loop.get_attribute("data-state") == "crash-loop"
    assert loop.locator("[data-testid=service-badge]").inner_text().startswith("Crash loop")
    assert loop.locator("[data-testid=service-error]").inner_text().endswith(STREAMING_ERROR)
    assert "7 restarts" in loop.inner_text() and "last exit 1" in loop.inner_text()
    assert shown["producer"].locator("[data-testid=service-badge]").inner_text().startswith("Held")
    assert "last signal SIGTERM" in shown["shipper"].inner_text()

    for consumer in ("shipper", "streaming"):
        chart = page.locator(f"[data-testid=lag-chart][data-consumer={consumer}]")
        for key in ("lag_records", "lag_seconds"):
            d = chart.locator(f"[data-testid=lag-line-{key}]").get_attribute("d")
            assert len(re.findall(r"[ML]", d)) >= 55, f"{consumer} {key}: a point per 30 s bucket"
    assert "peak 336 records, 12.0 min" in page.locator("[data-consumer=shipper] title").text_content()
    streaming_now = page.locator("[data-testid=consumer][data-consumer=streaming] [data-testid=consumer-now]").inner_text()
    assert re.match(r"^\d{3} records · \d+\.\d min behind$", streaming_now), streaming_now

    stores = page.locator("[data-testid=store]")
    assert [stores.nth(i).get_attribute("data-store") for i in range(3)] == ["kafka", "elasticsearch", "mongodb"]
    assert [stores.nth(i).get_attribute("data-status") for i in range(3)] == ["reference", "in_step", "far_behind"]
    assert "behind Kafka" in stores.nth(2).inner_text()

    page.wait_for_timeout(300)  # let the charts settle at their measured width
    # The health part of the page only: the seeded pipeline has no regions to show below it.
    top = page.locator("[data-testid=services-panel]").bounding_box()
    bottom = page.locator("[data-testid=lag-panel]").bounding_box()
    page.screenshot(path=str(images_dir / "health.png"), full_page=True, clip={
        "x": 0, "y": top["y"] - 16, "width": 1280, "height": bottom["y"] + bottom["height"] - top["y"] + 32})

    # A wider window: fewer, wider buckets over 2 h, picked with the keyboard.
    page.locator("[data-testid=lag-window]").select_option("120")
    page.wait_for_function("() => document.querySelector('[data-consumer=shipper] title')?.textContent.includes('120 minutes')")

    phone = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True)
    try:
        small = phone.new_page()
        small.goto(f"{health_app}/#/status")
        small.locator("[data-testid=lag-chart]").first.wait_for()
        assert small.evaluate("document.documentElement.scrollWidth") <= 375, "no sideways scrolling on a phone"
        small.wait_for_timeout(300)
        # The panel's top just below the sticky top bar, as someone scrolling to it sees it.
        small.evaluate("window.scrollTo(0, document.querySelector('[data-testid=services-panel]').offsetTop"
                       " - document.querySelector('.topbar').offsetHeight - 8)")
        small.screenshot(path=str(images_dir / "health-phone.png"))
    finally:
        phone.close()
