"""Empty and error states in the browser: a pipeline that has stored nothing yet, and a
MongoDB that cannot be reached (the UI says so and keeps polling)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import free_port

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_nothing_stored_yet_shows_an_empty_state(page, start_webapp):
    url = start_webapp()
    page.goto(f"{url}/#/")
    empty = page.locator("[data-testid=empty]")
    empty.wait_for()
    assert "No observations yet" in empty.inner_text()
    page.goto(f"{url}/#/status")
    page.get_by_text("No region has sent data yet.").wait_for()
    page.get_by_text("No streaming batch reported yet.").wait_for()
    page.get_by_text("No health samples yet.").wait_for()
    page.goto(f"{url}/#/region/atlantis")
    page.get_by_text('No region "atlantis".').wait_for()


def test_unreachable_database_shows_an_error_and_keeps_polling(page, start_webapp):
    url = start_webapp(mongo_port=free_port())  # nothing listens there
    page.goto(f"{url}/#/")
    error = page.get_by_role("alert")
    error.wait_for(timeout=30_000)
    assert "MongoDB is unavailable" in error.inner_text() and "Retrying every 1 s" in error.inner_text()
    # The health panels read Elasticsearch only: they keep answering without MongoDB.
    page.goto(f"{url}/#/status")
    page.get_by_role("alert").wait_for(timeout=30_000)
    page.get_by_text("No health samples yet.").wait_for()
