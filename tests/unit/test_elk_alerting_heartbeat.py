"""The dead-man's switch: pings to a local receiver, and the web app's decision that alerting stopped."""

import logging
from datetime import datetime, timedelta, timezone

from pydantic import SecretStr

from elk.alerting.heartbeat import Pinger, masked
from tests.fakes.ping_server import PingServer
from webapp.views import alerting_status

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def test_a_ping_is_one_get_to_the_url():
    with PingServer() as hc:
        assert Pinger(SecretStr(hc.url)).ping() is True
        assert [(p["method"], p["path"]) for p in hc.pings] == [("GET", hc.path)]


def test_a_failed_ping_is_logged_with_the_url_masked_and_never_raises(caplog):
    caplog.set_level(logging.WARNING, logger="alerting")
    with PingServer(status=503) as hc:
        assert Pinger(SecretStr(hc.url)).ping() is False
        down = hc.url
    assert Pinger(SecretStr(down), timeout=1).ping() is False  # nobody listens any more
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "HTTP 503" in text and "ConnectionError" in text and "SECRET" not in text
    assert masked("https://user:pw@hc-ping.com:8443/abc-123?x=1") == "https://hc-ping.com:8443/***"


def test_without_a_url_nothing_is_pinged():
    assert Pinger(None).ping() is False


def test_alerting_is_stale_after_three_evaluation_intervals():
    beat = {"service": "alerting", "at": (NOW - timedelta(seconds=90)).isoformat(), "interval_seconds": 30.0}
    assert alerting_status(beat, NOW)["stale"] is False  # exactly 3 intervals: still fine
    late = alerting_status(beat, NOW + timedelta(seconds=1))
    assert late == {"last_evaluation_at": "2026-12-01T11:58:30Z", "interval_seconds": 30.0, "stale": True}
    assert alerting_status(None, NOW)["stale"] is None  # never ran: unknown, no banner
