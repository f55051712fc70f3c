"""GET /api/health's pure parts: reading the metrics index's aggregations (fakes in the shape
Elasticsearch answers), stale samples, the empty and unavailable states, store status."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from meteoflow.settings import load_settings
from webapp import views
from webapp.app import create_app

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
INTERVAL = 15.0
WINDOW = (NOW - timedelta(minutes=30), NOW)


def ms(when: datetime) -> float:
    return when.timestamp() * 1000


def at(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")


def latest_aggs(samples: list[dict], newest: datetime | None = None) -> dict:
    """What Store.health_latest gets back from Elasticsearch for these samples."""
    kinds: dict[str, dict[str, dict]] = {}
    for s in samples:
        kinds.setdefault(s["kind"], {})[s["subject"]] = s
    if newest is None and samples:
        newest = max(views.as_utc(s["@timestamp"]) for s in samples)
    return {
        "newest": {"value": ms(newest) if newest else None},
        "recent": {"doc_count": len(samples), "kinds": {"buckets": [
            {"key": kind, "doc_count": len(subjects), "subjects": {"buckets": [
                {"key": subject, "doc_count": 1,
                 "latest": {"hits": {"total": {"value": 1}, "hits": [{"_id": f"{kind}-{subject}", "_source": src}]}}}
                for subject, src in subjects.items()]}}
            for kind, subjects in kinds.items()]}},
    }


def series_aggs(per_consumer: dict[str, list[tuple[datetime, float | None, float | None]]]) -> dict:
    return {"consumers": {"buckets": [
        {"key": name, "doc_count": len(points), "over_time": {"buckets": [
            {"key": ms(t), "key_as_string": t.isoformat(), "doc_count": 0 if r is None else 2,
             "lag_records": {"value": r}, "lag_seconds": {"value": s}} for t, r, s in points]}}
        for name, points in per_consumer.items()]}}


def service(name, seconds_ago=5, **fields):
    return {"@timestamp": at(seconds_ago), "kind": "service", "subject": name, **fields}


def body(latest=None, series=None, errors=None):
    return views.health_body(latest, series, NOW, INTERVAL, WINDOW, 30, far_behind_after=60.0, errors=errors)


def test_each_service_reports_its_latest_sample_and_a_masked_error_stays_as_written():
    samples = [
        service("kafka", state="up", up=1, uptime_seconds=3600.0, restarts=0),
        service("streaming", state="crash-loop", up=0, uptime_seconds=0.0, restarts=6, last_exit_code=1,
                last_error="ValueError: bad URI mongodb://***@db"),
        service("shipper", state="held", up=0, uptime_seconds=0.0, restarts=0),
    ]
    b = body(latest_aggs(samples))
    assert b["state"] == "ok" and b["message"] is None
    rows = {s["name"]: s for s in b["services"]}
    assert [s["name"] for s in b["services"]] == ["kafka", "shipper", "streaming"]
    assert rows["kafka"] == {"name": "kafka", "state": "up", "up": True, "uptime_seconds": 3600.0, "restarts": 0,
                             "last_exit_code": None, "last_error": None, "sampled_at": "2026-03-01T11:59:55Z",
                             "sample_age_seconds": 5.0, "stale": False}
    loop = rows["streaming"]
    assert (loop["state"], loop["up"], loop["restarts"], loop["last_exit_code"]) == ("crash-loop", False, 6, 1)
    assert loop["last_error"] == "ValueError: bad URI mongodb://***@db"
    assert rows["shipper"]["state"] == "held"


def test_a_sample_older_than_three_intervals_is_stale_not_current():
    samples = [service("kafka", 40, state="up", up=1), service("webapp", 46, state="up", up=1)]
    rows = {s["name"]: s for s in body(latest_aggs(samples))["services"]}
    assert rows["kafka"]["stale"] is False  # 40 s <= 3 x 15 s
    assert rows["webapp"]["stale"] is True and rows["webapp"]["sample_age_seconds"] == 46.0


def test_when_every_sample_is_old_the_whole_body_says_samples_stopped():
    b = body(latest_aggs([service("kafka", 600, state="up", up=1)]))
    assert b["state"] == "stale" and "stopped" in b["message"] and "last known" in b["message"]
    assert b["newest_sample_age_seconds"] == 600.0 and b["services"][0]["stale"] is True


def test_samples_older_than_the_lookback_leave_only_the_newest_time():
    b = body(latest_aggs([], newest=NOW - timedelta(days=3)))
    assert b["state"] == "stale" and b["services"] == [] and b["newest_sample_at"] == "2026-02-26T12:00:00Z"


@pytest.mark.parametrize("latest", [None, {}, {"newest": {"value": None}}, latest_aggs([])])
def test_no_index_or_no_sample_is_no_health_samples_yet(latest):
    b = body(latest)
    assert b["state"] == "empty" and b["message"].startswith("No health samples yet")
    assert (b["services"], b["consumers"], b["stores"], b["forecasts"]) == ([], [], [], [])


def test_an_unreadable_index_is_unavailable_with_the_reason():
    b = body(None, None, errors={"metrics": "ConnectionError: refused"})
    assert b["state"] == "unavailable" and "ConnectionError: refused" in b["message"]
    assert b["errors"] == {"metrics": "ConnectionError: refused"}


def test_consumers_get_their_latest_lag_and_a_series_with_gaps():
    samples = [
        {"@timestamp": at(3), "kind": "consumer_lag", "subject": "shipper", "lag_records": 120, "lag_seconds": 45.5,
         "partitions": 9},
        {"@timestamp": at(3), "kind": "consumer_lag", "subject": "streaming", "lag_records": 0, "lag_seconds": 0.0,
         "partitions": 3, "consumer_started": False},
    ]
    t0 = NOW - timedelta(seconds=60)
    series = series_aggs({
        "shipper": [(t0, 10.0, 5.0), (t0 + timedelta(seconds=30), None, None), (NOW, 120.0, 45.54)],
        "streaming": [(t0, 0.0, 0.0), (t0 + timedelta(seconds=30), 0.0, 0.0), (NOW, 0.0, 0.0)],
        "old-consumer": [(t0, 7.0, 1.0)],  # in the window but no sample in the lookback: series only
    })
    b = body(latest_aggs(samples), series)
    rows = {c["name"]: c for c in b["consumers"]}
    assert [c["name"] for c in b["consumers"]] == ["old-consumer", "shipper", "streaming"]
    ship = rows["shipper"]
    assert (ship["lag_records"], ship["lag_seconds"], ship["partitions"], ship["stale"]) == (120, 45.5, 9, False)
    assert ship["series"] == [
        {"at": "2026-03-01T11:59:00Z", "lag_records": 10, "lag_seconds": 5.0},
        {"at": "2026-03-01T11:59:30Z", "lag_records": None, "lag_seconds": None},
        {"at": "2026-03-01T12:00:00Z", "lag_records": 120, "lag_seconds": 45.5},
    ]
    assert rows["old-consumer"]["stale"] is True and rows["old-consumer"]["lag_records"] is None
    assert (rows["streaming"]["started"], rows["shipper"]["started"]) == (False, None)


def test_stores_are_measured_against_kafka():
    def store(name, staleness):
        return {"@timestamp": at(2), "kind": "store_staleness", "subject": name, "newest_at": at(20),
                **({"staleness_seconds": staleness} if staleness is not None else {}), "age_seconds": 20.0}

    samples = [store("mongodb", 75.0), store("elasticsearch", 0.0), store("kafka", 0.0)]
    rows = body(latest_aggs(samples))["stores"]
    assert [(s["name"], s["status"]) for s in rows] == [
        ("kafka", "reference"), ("elasticsearch", "in_step"), ("mongodb", "far_behind")]
    assert rows[2]["staleness_seconds"] == 75.0 and rows[2]["newest_at"] == "2026-03-01T11:59:40Z"
    assert views.store_row("mongodb", store("mongodb", 30.0), NOW, 45, 60)["status"] == "behind"
    assert views.store_row("mongodb", store("mongodb", None), NOW, 45, 60)["status"] == "unknown"


def test_forecast_age_per_region():
    samples = [{"@timestamp": at(1), "kind": "forecast_age", "subject": "dakar", "model_run_at": at(600),
                "age_seconds": 600.0, "forecast_status": "ok"},
               {"@timestamp": at(1), "kind": "forecast_age", "subject": "thies", "forecast_status": "failed"}]
    rows = body(latest_aggs(samples))["forecasts"]
    assert [(f["region_id"], f["age_seconds"], f["forecast_status"]) for f in rows] == [
        ("dakar", 600.0, "ok"), ("thies", None, "failed")]


def test_malformed_values_are_left_out_not_raised():
    samples = [service("kafka", state="up", up="yes", uptime_seconds="long", restarts=True)]
    latest = latest_aggs(samples)
    latest["recent"]["kinds"]["buckets"].append({"key": "service", "subjects": {"buckets": [
        {"key": "ghost", "latest": {"hits": {"hits": []}}}, {"key": "odd", "latest": {}}]}})
    row = body(latest)["services"][0]
    assert (row["up"], row["uptime_seconds"], row["restarts"]) == (None, None, None)
    no_time = views.service_row("x", {"state": "up"}, NOW, 45)
    assert no_time["stale"] is True and no_time["sampled_at"] is None


@pytest.mark.parametrize("window_minutes, bucket", [(30, 30), (5, 15), (360, 360), (60, 60)])
def test_lag_chart_has_at_most_60_points_and_never_finer_than_the_sampling(window_minutes, bucket):
    assert views.lag_bucket_seconds(window_minutes * 60, INTERVAL) == bucket


# --- the route, over a stand-in store --------------------------------------------------------
class FakeStore:
    def __init__(self, latest=None, series=None, fail: Exception | None = None):
        self.latest, self.series, self.fail = latest, series, fail
        self.calls: list[tuple] = []

    def health_latest(self, since):
        self.calls.append(("latest", since))
        if self.fail:
            raise self.fail
        return self.latest

    def lag_series(self, start, end, bucket_seconds):
        self.calls.append(("series", start, end, bucket_seconds))
        return self.series


def api(store) -> TestClient:
    return TestClient(create_app(load_settings(metrics_interval_seconds=INTERVAL), store=store, clock=lambda: NOW))


def test_the_route_reads_the_window_and_bucket_it_reports():
    store = FakeStore(latest_aggs([service("kafka", state="up", up=1)]), series_aggs({}))
    b = api(store).get("/api/health", params={"minutes": 60}).json()
    assert b["state"] == "ok" and b["window"] == {"start": "2026-03-01T11:00:00Z", "end": "2026-03-01T12:00:00Z",
                                                  "bucket_seconds": 60}
    assert store.calls == [("latest", NOW - views.HEALTH_LOOKBACK), ("series", NOW - timedelta(hours=1), NOW, 60)]
    assert (b["interval_seconds"], b["stale_after_seconds"]) == (15.0, 45.0)


def test_the_route_reports_elasticsearch_failing_once_and_does_not_ask_twice():
    store = FakeStore(fail=ConnectionError("refused"))
    r = api(store).get("/api/health")
    assert r.status_code == 200
    assert r.json()["state"] == "unavailable" and r.json()["errors"] == {"metrics": "Elasticsearch is unavailable (ConnectionError)"}
    assert [c[0] for c in store.calls] == ["latest"]


@pytest.mark.parametrize("minutes", ["4", "361", "x"])
def test_a_bad_window_is_a_422_naming_minutes(minutes):
    r = api(FakeStore()).get("/api/health", params={"minutes": minutes})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "minutes"
