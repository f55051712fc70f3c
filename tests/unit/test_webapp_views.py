"""Pure parts of the web app's API: freshness, windows, document shaping, the build fingerprint."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from meteoflow.contracts import ForecastDocument, HourlyStats, ObservationDocument, StreamingBatchEvent, dig
from meteoflow.freshness import Thresholds
from webapp import build, views

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
LIMITS = Thresholds(late_after_seconds=60, silent_after_seconds=120)


def obs_doc(**extra) -> ObservationDocument:
    doc = {"_id": "dakar|x", "region_id": "dakar", "region_name": "Dakar", "lat": 14.7, "lon": -17.4, "temp": 25.5,
           "humidity": 60, "pressure": 1012, "wind_speed": 3, "source": "simulator", "batch_id": "b-1",
           "observed_at": NOW - timedelta(minutes=10), "produced_at": NOW - timedelta(minutes=10),
           "stored_at": NOW - timedelta(seconds=5)}
    doc.update(extra)
    return ObservationDocument.from_document(doc)


@pytest.mark.parametrize(
    "doc, path, expected",
    [
        ({"meteoflow.streaming": {"input_rows": 3}}, "meteoflow.streaming.input_rows", 3),
        ({"meteoflow": {"streaming": {"input_rows": 4}}}, "meteoflow.streaming.input_rows", 4),
        ({"meteoflow": {"streaming.durations_ms": {"total": 5}}}, "meteoflow.streaming.durations_ms.total", 5),
        ({"event.action": "x"}, "event.missing", None),
        (None, "a", None),
    ],
)
def test_dig_reads_nested_and_dotted_keys(doc, path, expected):
    assert dig(doc, path) == expected


def test_last_seen_prefers_elasticsearch_arrival_then_stored_at_then_observed_at():
    es = {"ingested_at": "2026-03-01T11:59:30Z", "lag_seconds": 12.5}
    assert views.last_seen_of(es, obs_doc()) == (NOW - timedelta(seconds=30), "ingested_at")
    assert views.last_seen_of(None, obs_doc()) == (NOW - timedelta(seconds=5), "stored_at")
    assert views.last_seen_of({}, obs_doc(stored_at=None)) == (NOW - timedelta(minutes=10), "observed_at")
    assert views.last_seen_of(None, None) == (None, "none")


@pytest.mark.parametrize("age, expected", [(10, "fresh"), (61, "late"), (121, "silent")])
def test_region_summary_uses_the_shared_thresholds(age, expected):
    es = {"ingested_at": (NOW - timedelta(seconds=age)).isoformat(), "lag_seconds": 3.0}
    row = views.region_summary("dakar", obs_doc(), es, LIMITS, NOW)
    assert row["freshness"] == expected
    assert row["age_seconds"] == age
    assert row["lag_seconds"] == 3.0
    assert row["latest"]["temp"] == 25.5 and "_id" not in row["latest"] and "stored_at" not in row["latest"]
    assert row["latest"]["observed_at"] == "2026-03-01T11:50:00Z"
    assert set(row["latest"]) == set(views.OBSERVATION_KEYS) and "produced_at" not in row["latest"]


def test_region_without_any_data_is_silent():
    row = views.region_summary("ghost", None, None, LIMITS, NOW)
    assert row["freshness"] == "silent" and row["last_seen"] is None and row["region_name"] == "ghost"


def test_lag_falls_back_to_stored_minus_observed():
    row = views.region_summary("dakar", obs_doc(), None, LIMITS, NOW)
    assert row["lag_seconds"] == pytest.approx(595.0)


def test_history_window_is_anchored_on_the_latest_observation():
    latest = NOW - timedelta(days=3)
    assert views.history_window(latest, NOW, 48) == (latest - timedelta(hours=48), latest)
    assert views.history_window(None, NOW, 6) == (NOW - timedelta(hours=6), NOW)


def forecast(hours: int, yhat: float) -> ForecastDocument:
    return ForecastDocument(_id=f"dakar|{hours}", region_id="dakar", target_time=NOW + timedelta(hours=hours),
                            yhat=yhat, yhat_lower=yhat - 1, yhat_upper=yhat + 1, model_run_at=NOW, horizon_hours=24)


def test_forecast_body_sorts_points_and_reports_the_run():
    body = views.forecast_body([forecast(2, 20.0), forecast(1, 21.0)])
    assert body["model_run_at"] == "2026-03-01T12:00:00Z"
    assert body["points"] == [
        {"target_time": "2026-03-01T13:00:00Z", "yhat": 21.0, "yhat_lower": 20.0, "yhat_upper": 22.0},
        {"target_time": "2026-03-01T14:00:00Z", "yhat": 20.0, "yhat_lower": 19.0, "yhat_upper": 21.0}]
    assert views.forecast_body([]) is None


def test_hourly_body_shows_the_stored_statistics():
    stats = HourlyStats.build("dakar", NOW, [20.0, 22.0, 24.0], computed_at=NOW)
    assert views.hourly_body(stats) == {"hour": "2026-03-01T12:00:00Z", "temp_min": 20.0, "temp_max": 24.0,
                                        "temp_mean": 22.0, "count": 3}


def test_streaming_batch_shows_the_fields_the_streaming_job_logs():
    line = {"@timestamp": "2026-03-01T12:00:00.123Z", "event.action": "streaming-batch",
            "meteoflow.streaming": {"batch_id": 7, "input_rows": 40, "rows_per_second": 12.5,
                                    "durations_ms": {"total": 3200.0, "observations": 800.0}, "dead_letters": 1,
                                    "stored": 39, "stats_upserted": 3, "kafka_end_offsets": {"t": {"0": 40}},
                                    "forecast": {"ok": 1, "failed": 0, "skipped": 0, "errors": 0, "deferred": 0,
                                                 "forecasts_written": 24}}}
    batch = views.streaming_batch(StreamingBatchEvent.from_log_line(line))
    assert batch == {"at": "2026-03-01T12:00:00Z", "batch_id": 7, "input_rows": 40, "rows_per_second": 12.5,
                     "input_rows_per_second": None, "duration_ms": 3200.0,
                     "durations_ms": {"total": 3200.0, "observations": 800.0}, "stored": 39, "invalid": 1}


def test_alert_body_shows_firing_as_active():
    src = {"incident_id": "i1", "rule": "region_silence", "region_id": "kaolack", "status": "firing",
           "summary": "silent", "opened_at": "2026-03-01T11:00:00Z"}
    body = views.alert_body(src, "es-id")
    assert body["state"] == "active" and body["id"] == "i1" and body["message"] == "silent"
    assert body["started_at"] == "2026-03-01T11:00:00Z"
    assert views.alert_body({"status": "resolved"}, "x")["state"] == "resolved"


def test_as_utc_accepts_naive_bson_dates_iso_text_and_millis():
    assert views.as_utc(datetime(2026, 3, 1, 12)) == NOW
    assert views.as_utc("2026-03-01T12:00:00Z") == NOW
    assert views.as_utc(NOW.timestamp() * 1000) == NOW
    assert views.as_utc("not a date") is None


def test_build_fingerprint_changes_with_sources_and_ignores_outputs(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "package.json").write_text("{}")
    (tmp_path / "src" / "main.tsx").write_text("a")
    first = build.fingerprint(tmp_path)
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "index.html").write_text("built")
    assert build.fingerprint(tmp_path) == first  # outputs are not sources
    assert build.needs_build(tmp_path)  # no stamp yet
    (tmp_path / "dist" / build.STAMP).write_text(first)
    assert not build.needs_build(tmp_path)
    (tmp_path / "src" / "main.tsx").write_text("b")
    assert build.fingerprint(tmp_path) != first
    assert build.needs_build(tmp_path)


# --- incidents history and silences -----------------------------------------------------------
def test_incident_query_filters_and_never_lists_pending_incidents():
    assert views.incident_query() == {"bool": {"filter": [], "must_not": [{"term": {"status": "pending"}}]}}
    since, until = NOW - timedelta(hours=1), NOW
    q = views.incident_query("firing", "region_silence", "dakar", "critical", since, until)["bool"]["filter"]
    assert {"term": {"status": "firing"}} in q and {"term": {"rule": "region_silence"}} in q
    assert {"term": {"severity": "critical"}} in q
    assert {"bool": {"minimum_should_match": 1, "should": [
        {"term": {"subject": "dakar"}}, {"term": {"region_id": "dakar"}}]}} in q
    # Open at some time in [since, until]: opened before until, and not resolved before since.
    assert {"range": {"opened_at": {"lte": until.isoformat()}}} in q
    assert {"bool": {"minimum_should_match": 1, "should": [
        {"range": {"resolved_at": {"gte": since.isoformat()}}},
        {"bool": {"must_not": {"exists": {"field": "resolved_at"}}}}]}} in q


def test_incident_body_carries_notifications_with_their_delivery_and_the_acknowledgement():
    from meteoflow.contracts import Acknowledgement

    src = {"incident_id": "region_silence|dakar|x", "rule": "region_silence", "subject": "dakar", "status": "firing",
           "opened_at": "2026-03-01T11:00:00.123456Z", "notifications": [
               {"delivery_id": "region_silence|dakar|x|alert", "kind": "alert", "status": "silenced",
                "created_at": "2026-03-01T11:00:00Z", "attempts": 0, "silenced_by": "s1"}, "not a notification"]}
    body = views.incident_body({**src, "inhibited_by": "service_down|producer"})
    assert body["id"] == "region_silence|dakar|x" and body["opened_at"] == "2026-03-01T11:00:00Z"
    assert body["inhibited_by"] == "service_down|producer" and body["title"] is None
    assert body["acknowledgement"] is None
    assert body["notifications"] == [{"delivery_id": "region_silence|dakar|x|alert", "kind": "alert",
                                      "status": "silenced", "attempts": 0, "last_error": None, "silenced_by": "s1",
                                      "created_at": "2026-03-01T11:00:00Z", "sent_at": None}]
    ack = Acknowledgement(incident_id="region_silence|dakar|x", author="awa", comment="on it", at=NOW)
    assert views.incident_body(src, ack)["acknowledgement"] == {"author": "awa", "comment": "on it",
                                                               "at": "2026-03-01T12:00:00Z"}


def test_silences_list_active_first_then_scheduled_then_the_latest_ended():
    from meteoflow.contracts import Silence

    def silence(sid, start_h, end_h, expired_h=None):
        return Silence(silence_id=sid, subject="dakar", starts_at=NOW + timedelta(hours=start_h),
                       ends_at=NOW + timedelta(hours=end_h), comment="c", author="a", created_at=NOW - timedelta(days=1),
                       expired_at=None if expired_h is None else NOW + timedelta(hours=expired_h))

    found = [silence("old", -5, -4), silence("later", 2, 3), silence("long", -1, 5), silence("soon", 1, 2),
             silence("short", -1, 1), silence("expired", -3, 5, expired_h=-2)]
    bodies = views.sort_silences(views.silence_body(s, NOW) for s in found)
    assert [(b["id"], b["state"]) for b in bodies] == [
        ("short", "active"), ("long", "active"), ("soon", "scheduled"), ("later", "scheduled"),
        ("expired", "expired"), ("old", "expired")]
    assert bodies[4]["expired_at"] == "2026-03-01T10:00:00Z"
