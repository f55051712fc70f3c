"""Empty and error states in the browser: a pipeline that has stored nothing yet, and a
MongoDB that cannot be reached (the UI says so and keeps polling)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Service, free_port, get_json, wait_for
from tests.conftest import isolated_settings

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def start_webapp(stack, tmp_path, built_frontend):
    started: list[Service] = []

    def start(**overrides) -> str:
        settings = isolated_settings(stack, tmp_path, webapp_port=free_port(), webapp_refresh_seconds=1.0, **overrides)
        svc = Service("webapp", settings, tmp_path).start()
        started.append(svc)
        url = f"http://{settings.bind_host}:{settings.webapp_port}"
        wait_for("the web app", lambda: get_json(f"{url}/health")["status"] == "ok", 60, [svc])
        return url

    yield start
    for svc in started:
        svc.stop()


def test_nothing_stored_yet_shows_an_empty_state(page, start_webapp):
    url = start_webapp()
    page.goto(f"{url}/#/")
    empty = page.locator("[data-testid=empty]")
    empty.wait_for()
    assert "No observations yet" in empty.inner_text()
    page.goto(f"{url}/#/status")
    page.get_by_text("No region has sent data yet.").wait_for()
    page.get_by_text("No streaming batch reported yet.").wait_for()
    page.goto(f"{url}/#/region/atlantis")
    page.get_by_text('No region "atlantis".').wait_for()


def test_unreachable_database_shows_an_error_and_keeps_polling(page, start_webapp):
    url = start_webapp(mongo_port=free_port())  # nothing listens there
    page.goto(f"{url}/#/")
    error = page.get_by_role("alert")
    error.wait_for(timeout=30_000)
    assert "MongoDB is unavailable" in error.inner_text() and "Retrying every 1 s" in error.inner_text()
