"""The web app's API against the real FerretDB and Elasticsearch, over data seeded in the
shapes the streaming job and the shipper write (tests/browser/seeding.py)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from meteoflow import contracts
from meteoflow.freshness import thresholds
from meteoflow.mongo import database, make_mongo_client
from streaming.records import observation_documents
from streaming.sinks import ObservationSink, RegionLatestSink
from tests.browser.seeding import REGIONS, Seeder, utcnow
from webapp.app import create_app

pytestmark = pytest.mark.integration

HOURS = 12


def iso(when) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def seeded(isolated):
    seeder = Seeder(isolated, regions=REGIONS[:3])
    history = seeder.history(hours=HOURS, step_minutes=60)
    seeder.store(history)
    latest = max(o.observed_at for o in history)
    seeder.forecast("dakar", latest, hours=24)
    seeder.streaming_batches(6)
    now = utcnow()
    seeder.alert("region_silence", "thies", "firing", now - timedelta(minutes=5), "Thiès sent nothing for 5 min")
    seeder.alert("arrival_lag", "dakar", "resolved", now - timedelta(hours=2), "Dakar lagged",
                 resolved_at=now - timedelta(hours=1))
    seeder.deadletters(3)
    yield seeder, history
    seeder.close()


@pytest.fixture
def api(isolated):
    with TestClient(create_app(isolated)) as client:
        yield client


def test_regions_lists_each_region_with_its_latest_observation_and_freshness(seeded, api):
    _, history = seeded
    body = api.get("/api/regions").json()
    rows = {r["region_id"]: r for r in body["regions"]}
    assert set(rows) == {"dakar", "thies", "saint-louis"}
    for region_id, row in rows.items():
        latest = max((o for o in history if o.region_id == region_id), key=lambda o: o.observed_at)
        assert row["latest"]["temp"] == latest.temp
        assert row["latest"]["observed_at"] == latest.observed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert row["freshness"] == "fresh"
        assert row["last_seen_basis"] == "ingested_at"
        # lag of the newest observation (the shipper's ingested_at - observed_at), not of the backfill's oldest
        assert 0 <= row["lag_seconds"] < 600
    assert body["errors"] == {}


def test_a_region_whose_data_stopped_turns_late_then_silent(isolated, api):
    seeder = Seeder(isolated, regions=REGIONS[:3])
    limits = thresholds(isolated)
    now = utcnow()
    arrivals = {"dakar": now, "thies": now - timedelta(seconds=limits.late_after_seconds + 5),
                "saint-louis": now - timedelta(seconds=limits.silent_after_seconds + 5)}
    for region in REGIONS[:3]:
        seeder.store(seeder.history(hours=2, step_minutes=60, regions=[region]), ingested_at=arrivals[region[0]])
    rows = {r["region_id"]: r["freshness"] for r in api.get("/api/regions").json()["regions"]}
    assert rows == {"dakar": "fresh", "thies": "late", "saint-louis": "silent"}
    seeder.close()


def test_region_history_returns_the_window_hourly_stats_and_latest_forecast(seeded, api):
    _, history = seeded
    body = api.get("/api/regions/dakar", params={"hours": 6}).json()
    assert body["hours"] == 6
    times = [o["observed_at"] for o in body["observations"]]
    assert times == sorted(times) and len(times) == 7  # hourly points, both ends included
    assert all(body["window"]["start"] <= t <= body["window"]["end"] for t in times)
    assert {o["region_id"] for o in body["observations"]} == {"dakar"}
    assert body["hourly"], "hourly stats for the window"
    for h in body["hourly"]:
        assert h["temp_min"] <= h["temp_mean"] <= h["temp_max"] and h["count"] >= 1
    points = body["forecast"]["points"]
    assert len(points) == 24 and body["forecast"]["model_run_at"]
    assert all(p["yhat_lower"] <= p["yhat"] <= p["yhat_upper"] for p in points)
    assert points[0]["target_time"] > body["window"]["end"]
    full = api.get("/api/regions/dakar", params={"hours": 720}).json()
    assert len(full["observations"]) == HOURS + 1
    assert api.get("/api/regions/thies").json()["forecast"] is None


@pytest.mark.parametrize("hours", ["0", "721", "-3", "1.5", "abc"])
def test_bad_window_is_a_422_that_names_hours(seeded, api, hours):
    r = api.get("/api/regions/dakar", params={"hours": hours})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "hours"
    assert "'hours'" in r.json()["detail"]


def test_unknown_region_is_a_404_and_a_malformed_id_a_422(seeded, api):
    r = api.get("/api/regions/atlantis")
    assert r.status_code == 404 and "atlantis" in r.json()["detail"]
    r = api.get("/api/regions/dak$ar")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "region_id"


def test_status_reports_arrivals_streaming_alerts_and_dead_letters(seeded, api):
    body = api.get("/api/status").json()
    assert body["errors"] == {}
    rows = {r["region_id"]: r for r in body["regions"]}
    assert {rid: r["arrivals_last_hour"] for rid, r in rows.items()} == {rid: HOURS + 1 for rid in rows}
    assert all(sum(r["arrivals_per_bucket"]) == HOURS + 1 for r in rows.values())
    assert all(r["last_seen"] for r in rows.values())
    summary = body["summary"]
    assert summary == {"regions": 3, "fresh": 3, "late": 0, "silent": 0, "arrivals_last_hour": 3 * (HOURS + 1),
                       "active_alerts": 1, "deadletters_total": 3}
    batches = body["streaming"]["batches"]
    assert len(batches) == 6 and [b["batch_id"] for b in batches] == [5, 4, 3, 2, 1, 0]
    assert all(b["input_rows"] > 0 and b["rows_per_second"] > 0 and b["duration_ms"] > 0 for b in batches)
    active = body["alerts"]["active"]
    assert [(a["rule"], a["region_id"], a["state"]) for a in active] == [("region_silence", "thies", "active")]
    assert {a["state"] for a in body["alerts"]["recent"]} == {"active", "resolved"}
    dead = body["deadletters"]
    assert dead["total"] == 3 and dead["last_hour"] == 3 and dead["by_service"] == {"streaming": 3}
    assert all("temp" in d["reason"] for d in dead["latest"])


def test_a_record_rejected_by_the_streaming_job_and_the_shipper_counts_once(isolated, api):
    seeder = Seeder(isolated, regions=REGIONS[:1])
    try:
        seeder.deadletters(4, shipper_too=True)  # 8 documents in the dead-letter index
    finally:
        seeder.close()
    body = api.get("/api/status").json()
    dead = body["deadletters"]
    assert (dead["total"], dead["last_hour"], dead["by_service"]) == (4, 4, {"streaming": 4})
    assert body["summary"]["deadletters_total"] == 4


def test_missing_indices_are_an_empty_state_not_an_error(isolated, api):
    body = api.get("/api/status").json()
    assert body["regions"] == [] and body["streaming"]["batches"] == [] and body["errors"] == {}
    assert body["deadletters"]["total"] == 0 and body["alerts"] == {"active": [], "recent": []}
    assert api.get("/api/regions").json()["regions"] == []
    # MongoDB has data but nothing was shipped to Elasticsearch: the stored_at time stands in.
    seeder = Seeder(isolated, regions=REGIONS[:1])
    client = make_mongo_client(isolated)
    history = seeder.history(hours=1)
    documents = [d.to_document() for d in observation_documents(history, utcnow())]
    db = database(isolated, client)
    ObservationSink(db).write(history, utcnow(), documents)  # what the streaming job writes
    RegionLatestSink(db).write(documents)
    row = api.get("/api/regions").json()["regions"][0]
    assert row["region_id"] == "dakar" and row["last_seen_basis"] == "stored_at" and row["freshness"] == "fresh"
    client.close()
    seeder.close()


def test_unreachable_elasticsearch_degrades_and_unreachable_mongodb_is_a_503(seeded, isolated):
    no_es = isolated.model_copy(update={"es_port": 1})
    with TestClient(create_app(no_es)) as c:
        body = c.get("/api/regions").json()
        assert {r["region_id"] for r in body["regions"]} == {"dakar", "thies", "saint-louis"}
        assert body["errors"]["elasticsearch"]
        assert all(r["last_seen_basis"] == "stored_at" for r in body["regions"])
        status = c.get("/api/status")
        assert status.status_code == 200 and {"arrivals", "streaming", "alerts", "deadletters"} <= set(status.json()["errors"])
    no_mongo = isolated.model_copy(update={"mongo_port": 1})
    with TestClient(create_app(no_mongo)) as c:
        r = c.get("/api/regions")
        assert r.status_code == 503 and "MongoDB is unavailable" in r.json()["detail"]


def test_a_malformed_stored_document_costs_only_itself(seeded, isolated, api, caplog):
    """Documents written by hand or by an older version are skipped (and logged), never a 500."""
    seeder, history = seeded
    latest = max((o for o in history if o.region_id == "dakar"), key=lambda o: o.observed_at)
    hour = latest.observed_at.replace(minute=0, second=0, microsecond=0)
    db = seeder.db
    # a hand-written "observation" newer than dakar's latest and one stored in its history have a text
    # temperature; an hourly document lost its mean; a forecast point has no yhat; a streaming-batch line
    # carries the keys readers used to guess at
    valid = db[contracts.OBSERVATIONS].find_one({"_id": contracts.doc_id("dakar", latest.observed_at)})
    db[contracts.OBSERVATIONS].insert_one(
        {**valid, "_id": "dakar|broken0", "temp": "hot", "observed_at": latest.observed_at + timedelta(minutes=1)})
    damaged = contracts.doc_id("dakar", latest.observed_at - timedelta(hours=2))
    db[contracts.OBSERVATIONS].update_one({"_id": damaged}, {"$set": {"temp": "hot"}})
    # read by windows longer than RECENT_HOURS (range queries over the history)
    db[contracts.HOURLY_STATS].update_one({"_id": contracts.doc_id("dakar", hour)}, {"$unset": {"temp_mean": ""}})
    broken_point = db[contracts.FORECASTS].find_one({"region_id": "dakar"}, sort=[("target_time", 1)])
    db[contracts.FORECASTS].update_one({"_id": broken_point["_id"]}, {"$unset": {"yhat": ""}})
    seeder.es.index(index=isolated.index("logs"), refresh=True, document={
        "@timestamp": utcnow().isoformat(), "event.action": contracts.STREAMING_BATCH_ACTION,
        "meteoflow.streaming": {"batchId": 99, "numInputRows": 3, "observations_written": 3}})

    with caplog.at_level(logging.WARNING):
        regions = api.get("/api/regions")
        region = api.get("/api/regions/dakar", params={"hours": HOURS})
        longer = api.get("/api/regions/dakar", params={"hours": contracts.RECENT_HOURS + 1})
        status = api.get("/api/status")
    assert regions.status_code == region.status_code == longer.status_code == status.status_code == 200
    row = {r["region_id"]: r for r in regions.json()["regions"]}["dakar"]
    assert row["latest"]["observed_at"] == latest.observed_at.strftime("%Y-%m-%dT%H:%M:%SZ")  # the valid newest
    body = region.json()
    # the damaged one is skipped; the hand-written one is in no document the job maintains, so never read
    assert len(body["observations"]) == HOURS and body["observations"][-1]["temp"] == latest.temp
    damaged_hour = (latest.observed_at - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    # the window's hours are computed from its observations: the damaged one's hour has none left
    assert iso(damaged_hour) not in {h["hour"] for h in body["hourly"]} and iso(hour) in {h["hour"] for h in body["hourly"]}
    assert len(longer.json()["observations"]) == HOURS and iso(hour) not in {h["hour"] for h in longer.json()["hourly"]}
    assert len(body["forecast"]["points"]) == 23
    assert [b["batch_id"] for b in status.json()["streaming"]["batches"]] == [5, 4, 3, 2, 1, 0]
    warnings = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    # the damaged one is reported by the window's read (by day) and by the longer window's (a range)
    assert sum(f"document: observations document _id={damaged!r}: temp:" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING) == 2
    assert f"hourly_stats document _id={contracts.doc_id('dakar', hour)!r}: temp_mean: missing" in warnings
    assert f"forecasts document _id={broken_point['_id']!r}: yhat: missing" in warnings
    assert "streaming-batch log line, meteoflow.streaming: batch_id: missing; input_rows: missing" in warnings
