"""The web app's typed API: the checked-in OpenAPI schema is the app's, every response shape is in
it, and the response models change nothing in the JSON the views build (the React app reads it)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from meteoflow.contracts import (
    Acknowledgement, ForecastDocument, HourlyStats, Observation, ObservationDocument, RainPrediction, Silence,
    StreamingBatchEvent,
)
from meteoflow.freshness import thresholds
from meteoflow.settings import load_settings
from tests.unit import test_contracts_documents as examples
from webapp import openapi, views
from webapp.app import create_app

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def test_the_checked_in_schema_is_the_apps():
    # Fails after an endpoint or a body changed without `python -m webapp.openapi` (it regenerates both files).
    checked_in = json.loads((openapi.FRONTEND / openapi.SCHEMA).read_text())
    assert checked_in == openapi.schema(), "schema.json is stale: run `.venv/bin/python -m webapp.openapi`"
    assert openapi.is_current()


@pytest.fixture(scope="module")
def spec():
    return TestClient(create_app(load_settings())).get("/api/openapi.json").json()


def resolve(spec, schema):
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def untyped(spec, schema, where, seen=frozenset()):
    """Places in `schema` that say nothing of their shape: {} or an object without properties."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return [] if name in seen else untyped(spec, resolve(spec, schema), name, seen | {name})
    found = []
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            found += untyped(spec, sub, f"{where}|{i}", seen)
    if not any(k in schema for k in ("type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const")):
        found.append(where)
    if schema.get("type") == "object":
        extra = schema.get("additionalProperties")
        if "properties" not in schema and not isinstance(extra, dict):
            found.append(where)
        for name, sub in schema.get("properties", {}).items():
            found += untyped(spec, sub, f"{where}.{name}", seen)
        if isinstance(extra, dict):
            found += untyped(spec, extra, f"{where}[*]", seen)
    if schema.get("type") == "array":
        found += untyped(spec, schema.get("items", {}), f"{where}[]", seen)
    return found


def test_every_api_route_documents_a_typed_success_body(spec):
    routes = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    assert {p for p, _, _ in routes} >= {"/api/config", "/api/regions", "/api/regions/{region_id}", "/api/status",
                                         "/api/health", "/api/incidents", "/api/incidents/{incident_id}",
                                         "/api/incidents/{incident_id}/ack", "/api/silences",
                                         "/api/silences/{silence_id}", "/health"}
    for path, method, op in routes:
        ok = next(code for code in op["responses"] if code.startswith("2"))
        body = op["responses"][ok]["content"]["application/json"]["schema"]
        assert "$ref" in body, (method, path)
        component = resolve(spec, body)
        assert component["type"] == "object" and component["properties"], (method, path)
        # Every key is always in the answer: the generated types have no optional fields to guess about.
        assert set(component["required"]) == set(component["properties"]), (method, path)
        # The one free-form value of the API is a refused input echoed in a 422.
        assert untyped(spec, body, f"{method} {path}") == [], (method, path)


def test_errors_are_documented_with_their_bodies(spec):
    ref = lambda op, code: op["responses"][code]["content"]["application/json"]["schema"]["$ref"].rsplit("/")[-1]  # noqa: E731
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if op.get("parameters") or op.get("requestBody"):
                assert ref(op, "422") == "ValidationErrorBody", (method, path)
            if "{" in path:
                assert ref(op, "404") == "ErrorBody", (method, path)
            if path.startswith("/api/") and path not in ("/api/config", "/api/health"):
                assert ref(op, "503") == "ErrorBody", (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's default 422, which we do not send
    assert ref(spec["paths"]["/api/incidents/{incident_id}/ack"]["post"], "409") == "ErrorBody"


# --- the models change nothing in the JSON --------------------------------------------------------
def observation_doc(region_id: str, name: str, minutes_ago: int, **extra) -> dict:
    obs = Observation(region_id=region_id, region_name=name, lat=14.69, lon=-17.44,
                      observed_at=NOW - timedelta(minutes=minutes_ago), temp=25.5, humidity=60, pressure=1012,
                      wind_speed=3.5, clouds=40, weather_main="Clouds", timezone_offset=0, source="simulator",
                      batch_id="run-1", produced_at=NOW - timedelta(minutes=minutes_ago))
    # As MongoDB gives it back: naive UTC dates, ints kept as written, the store's own keys besides.
    doc = {k: v.replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in obs.model_dump().items()}
    return {"_id": f"{region_id}|x", **doc, "humidity": 60, "stored_at": (NOW - timedelta(minutes=minutes_ago - 1)),
            **extra}


INCIDENT = {
    "incident_id": "region_silence|thies|1", "rule": "region_silence", "subject": "thies", "status": "firing",
    "severity": "critical", "summary": "Thies: no data for 10 min", "region_id": "thies", "region_name": "Thies",
    "opened_at": "2026-03-01T11:50:00+00:00", "updated_at": "2026-03-01T11:59:00+00:00", "value": 600,
    "threshold": 240.0, "notifications": [{"delivery_id": "region_silence|thies|1|alert", "kind": "alert",
                                           "status": "sent", "attempts": 1, "created_at": "2026-03-01T11:50:00Z",
                                           "sent_at": "2026-03-01T11:50:01Z"}],
}
SILENCE = Silence(silence_id="s1", rule="arrival_lag", subject=None, starts_at=NOW - timedelta(hours=1),
                  ends_at=NOW + timedelta(hours=1), comment="maintenance", author="ops", created_at=NOW - timedelta(hours=1))
ACK = Acknowledgement(incident_id=INCIDENT["incident_id"], author="ops", comment="on it", at=NOW)


class FakeSilences:
    def acks(self, ids):
        return {i: ACK for i in ids if i == ACK.incident_id}

    def silences(self, ended_since):
        return [SILENCE]

    def silence(self, silence_id):
        return SILENCE if silence_id == SILENCE.silence_id else None

    def save_silence(self, silence):
        pass


class FakeStore:
    """The store's reads, with documents in the shapes the pipeline writes (ints where it writes ints)."""

    silences = FakeSilences()
    docs = {"dakar": observation_doc("dakar", "Dakar", 3), "thies": observation_doc("thies", "Thies", 30)}
    arrivals = {"dakar": {"region_id": "dakar", "region_name": "Dakar", "ingested_at": "2026-03-01T11:58:00Z",
                          "lag_seconds": 2, "total": 10, "last_hour": 4, "per_bucket": [0, 1, 3]}}

    def latest_observations(self):
        return {rid: self.latest_observation(rid) for rid in self.docs}

    def latest_observation(self, region_id):
        doc = self.docs.get(region_id)
        return ObservationDocument.from_document(doc) if doc else None

    def arrivals_by_region(self):
        return self.arrivals

    def observations(self, region_id, start, end):
        return [ObservationDocument.from_document(self.docs[region_id])]

    def hourly_stats(self, region_id, start, end):
        return [HourlyStats.from_document({"_id": f"{region_id}|h", "region_id": region_id, "hour": datetime(2026, 3, 1, 11),
                                           "temp_min": 24, "temp_max": 26.5, "temp_mean": 25.1, "count": 2,
                                           "computed_at": datetime(2026, 3, 1, 11, 59)})]

    def recent_window(self, region_id, start, end):
        return self.observations(region_id, start, end), self.hourly_stats(region_id, start, end)

    def latest_forecast(self, region_id):
        return [ForecastDocument.from_document({
            "_id": f"{region_id}|f", "region_id": region_id, "model_run_at": datetime(2026, 3, 1, 11),
            "target_time": datetime(2026, 3, 1, 13), "yhat": 27, "yhat_lower": 25.5, "yhat_upper": 28.5})]

    def streaming_batches(self):
        return [StreamingBatchEvent.from_log_line({"@timestamp": "2026-03-01T11:59:00Z", "meteoflow": {"streaming": {
            "batch_id": 7, "input_rows": 3, "rows_per_second": 1.5, "durations_ms": {"total": 120},
            "dead_letters": 0, "stored": 3, "stats_upserted": 1,
            "forecast": {"ok": 1, "failed": 0, "skipped": 0, "errors": 0, "deferred": 0, "forecasts_written": 24}}}})]

    def alerts(self, active, limit):
        return [(INCIDENT["incident_id"], INCIDENT)]

    def deadletters(self, since):
        return {"total": 2, "last_hour": 1, "by_service": {"streaming": 2},
                "latest": [{"failed_at": "2026-03-01T11:30:00Z", "service": "streaming", "reason": "bad", "key": None}]}

    def heartbeat(self, service):
        return {"at": "2026-03-01T11:59:30Z", "interval_seconds": 30}

    def incidents(self, query, limit, offset):
        return 1, [INCIDENT]

    def incident(self, incident_id):
        return INCIDENT if incident_id == INCIDENT["incident_id"] else None

    # The weather and history pages' reads: one document of each, as the pipeline and batch jobs build them.
    def forecast_runs(self, region_id, start, end, limit=None):
        return [examples.forecast_run()] if region_id == "dakar" else []

    def forecast_run(self, region_id, run_at):
        run = examples.forecast_run()
        return run if (region_id, run_at) == (run.region_id, run.run_at) else None

    def forecast_skill(self, window, region_id=None):
        skill = examples.forecast_skill()
        return [skill] if skill.window == window and region_id in (None, skill.region_id) else []

    def daily_stats(self, region_id, first_day, last_day):
        day = examples.daily_stats()
        return [day] if region_id in (None, day.region_id) and first_day <= day.day <= last_day else []

    def rain_models(self):
        return [examples.rain_model()]

    def rain_predictions(self):
        return [examples.EXAMPLES[RainPrediction]()]


def exact(body) -> str:
    """JSON text with sorted keys: 60 and 60.0 differ, as they do on the wire."""
    return json.dumps(body, sort_keys=True)


def test_the_models_keep_every_key_and_number_the_views_build():
    settings = load_settings()
    store = FakeStore()
    c = TestClient(create_app(settings, store=store, clock=lambda: NOW))
    limits = thresholds(settings)
    summaries = {rid: views.region_summary(rid, store.latest_observation(rid), store.arrivals.get(rid), limits, NOW)
                 for rid in store.docs}

    regions = c.get("/api/regions")
    assert regions.status_code == 200
    assert exact(regions.json()) == exact({"generated_at": "2026-03-01T12:00:00Z", "thresholds": limits.model_dump(),
                                           "regions": views.sort_regions(summaries.values()), "errors": {}})
    # The store reads documents through their contract (ObservationDocument: humidity is a float).
    assert regions.json()["regions"][0]["latest"]["humidity"] == 60

    region = c.get("/api/regions/dakar", params={"hours": 2}).json()
    assert exact(region["region"]) == exact(summaries["dakar"])
    assert exact(region["observations"]) == exact([views.observation_body(d) for d in store.observations("dakar", NOW, NOW)])
    assert exact(region["hourly"]) == exact([views.hourly_body(d) for d in store.hourly_stats("dakar", NOW, NOW)])
    assert exact(region["forecast"]) == exact(views.forecast_body(store.latest_forecast("dakar")))

    status = c.get("/api/status").json()
    assert status["errors"] == {} and status["summary"]["regions"] == 2
    assert exact(status["streaming"]["batches"]) == exact([views.streaming_batch(s) for s in store.streaming_batches()])
    assert exact(status["alerts"]["active"]) == exact([views.alert_body(INCIDENT, INCIDENT["incident_id"])])
    assert exact(status["deadletters"]) == exact(store.deadletters(NOW))
    assert exact(status["alerting"]) == exact(views.alerting_status(store.heartbeat("alerting"), NOW))
    assert {r["region_id"]: r["arrivals_per_bucket"] for r in status["regions"]} == {"dakar": [0, 1, 3], "thies": []}

    incidents = c.get("/api/incidents").json()
    assert exact(incidents["incidents"]) == exact([views.incident_body(INCIDENT, ACK)])
    assert exact(c.get(f"/api/incidents/{INCIDENT['incident_id']}").json()["incident"]) == exact(
        views.incident_body(INCIDENT, ACK))

    silences = c.get("/api/silences").json()
    assert exact(silences["silences"]) == exact([views.silence_body(SILENCE, NOW)])
    assert c.delete("/api/silences/s1").json()["silence"]["state"] == "expired"


def test_errors_answer_in_their_documented_shape():
    c = TestClient(create_app(load_settings(), store=FakeStore(), clock=lambda: NOW))
    missing = c.get("/api/regions/nowhere")
    assert missing.status_code == 404 and set(missing.json()) == {"detail"}
    bad = c.get("/api/regions/dakar", params={"hours": 0})
    assert bad.status_code == 422
    assert bad.json()["errors"] == [{"field": "hours", "in": "query", "message": bad.json()["errors"][0]["message"],
                                     "input": "0"}]
    assert bad.json()["detail"].startswith("invalid request: query parameter 'hours'")
