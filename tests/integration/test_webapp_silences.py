"""The web app's incidents, acknowledgements and silences API against the real Elasticsearch.
Incidents are written by the alerting service's own store (elk/alerting/store.py), in its shapes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from elk.alerting.engine import Incident
from elk.alerting.store import IncidentStore
from meteoflow.es import make_es_client
from webapp.app import create_app

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(isolated, clock):
    with TestClient(create_app(isolated, clock=clock)) as client:
        yield client


def path(incident_id: str) -> str:
    return f"/api/incidents/{quote(incident_id, safe='')}"


def save_incident(settings, rule: str, subject: str, status: str, opened_minutes_ago: float,
                  resolved_minutes_ago: float | None = None, severity: str = "critical",
                  notes: tuple[tuple[str, str], ...] = (("alert", "sent"),)) -> str:
    opened = NOW - timedelta(minutes=opened_minutes_ago)
    inc = Incident(incident_id=f"{rule}|{subject}|{opened:%Y%m%dT%H%M%S.%fZ}", rule=rule, subject=subject,
                   region_id=subject if rule != "crash_loop" else None, region_name=subject.title(), status=status,
                   severity=severity, summary=f"{rule} on {subject}", hint="look", opened_at=opened, updated_at=opened,
                   resolved_at=None if resolved_minutes_ago is None else NOW - timedelta(minutes=resolved_minutes_ago))
    for kind, state in notes:
        inc.add_notification(kind, opened)
        inc.notifications[-1].status = state
        if state == "silenced":
            inc.notifications[-1].silenced_by = "s1"
    es = make_es_client(settings)
    IncidentStore(settings, es).save(inc)
    es.close()
    return inc.incident_id


# --- silences -----------------------------------------------------------------------------------
def test_create_list_and_expire_a_silence(api, clock):
    r = api.post("/api/silences", json={"rule": "region_silence", "subject": "dakar", "duration_seconds": 3600,
                                        "comment": "  Station moved  ", "author": "awa"})
    assert r.status_code == 201, r.text
    made = r.json()["silence"]
    assert (made["rule"], made["subject"], made["state"], made["comment"]) == ("region_silence", "dakar", "active",
                                                                                "Station moved")
    assert made["starts_at"] == NOW.isoformat().replace("+00:00", "Z")
    assert made["ends_at"] == (NOW + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    later = api.post("/api/silences", json={"subject": "thies", "starts_at": (NOW + timedelta(hours=2)).isoformat(),
                                            "ends_at": (NOW + timedelta(hours=3)).isoformat(),
                                            "comment": "planned", "author": "ops"}).json()["silence"]
    assert later["state"] == "scheduled" and later["rule"] is None

    listed = api.get("/api/silences").json()
    assert [(s["id"], s["state"]) for s in listed["silences"]] == [(made["id"], "active"), (later["id"], "scheduled")]
    assert "region_silence" in listed["rules"] and listed["max_seconds"] == 30 * 86400

    clock.now = NOW + timedelta(minutes=5)
    gone = api.delete(f"/api/silences/{made['id']}")
    assert gone.status_code == 200 and gone.json()["silence"]["state"] == "expired"
    assert gone.json()["silence"]["expired_at"] == clock.now.isoformat().replace("+00:00", "Z")
    clock.now = NOW + timedelta(minutes=6)
    again = api.delete(f"/api/silences/{made['id']}").json()["silence"]  # expiring twice changes nothing
    assert again["expired_at"] == gone.json()["silence"]["expired_at"]
    states = {s["id"]: s["state"] for s in api.get("/api/silences").json()["silences"]}
    assert states == {made["id"]: "expired", later["id"]: "scheduled"}

    # A week after it ended, an expired silence leaves the list (it is still stored until retention).
    clock.now = NOW + timedelta(days=8)
    assert [s["id"] for s in api.get("/api/silences").json()["silences"]] == []


@pytest.mark.parametrize("body, field, words", [
    ({"duration_seconds": 60, "comment": "c", "author": "a"}, "subject", "at least one matcher"),
    ({"rule": "region_silense", "duration_seconds": 60, "comment": "c", "author": "a"}, "rule", "unknown rule"),
    ({"subject": "dakar", "comment": "c", "author": "a"}, "duration_seconds", "ends_at or duration_seconds"),
    ({"subject": "dakar", "duration_seconds": 31 * 86400, "comment": "c", "author": "a"}, "duration_seconds", "less than"),
    ({"subject": "dakar", "ends_at": "2020-01-01T00:00:00Z", "comment": "c", "author": "a"}, "ends_at", "in the past"),
    ({"subject": "dakar", "starts_at": "2099-01-01T00:00:00Z", "duration_seconds": 60, "comment": "c", "author": "a"},
     "starts_at", "30 days from now"),
    ({"subject": "dakar", "starts_at": (NOW + timedelta(hours=2)).isoformat(), "ends_at": (NOW + timedelta(hours=1)).isoformat(),
      "comment": "c", "author": "a"}, "ends_at", "after starts_at"),
    ({"subject": "dakar", "duration_seconds": 60, "author": "a"}, "comment", "missing"),
    ({"subject": "dakar", "duration_seconds": 60, "comment": "c", "author": "  "}, "author", "at least 1"),
    ({"subject": "dak ar", "duration_seconds": 60, "comment": "c", "author": "a"}, "subject", "region id"),
    ({"subject": "dakar", "duration_seconds": 60, "comment": "c", "author": "a", "matchers": []}, "matchers", "unknown field"),
])
def test_a_bad_silence_is_a_422_naming_the_field(api, body, field, words):
    r = api.post("/api/silences", json=body)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == [field] and errors[0]["in"] == "body"
    assert words in errors[0]["message"] and f"'{field}'" in r.json()["detail"]
    assert api.get("/api/silences").json()["silences"] == []


def test_a_body_that_is_not_json_is_a_422_not_a_crash(api):
    body = '{"subject": "dakar", "duration_seconds": 60, "comment": "c", "author": "a"}'
    r = api.post("/api/silences", content=body, headers={"content-type": "text/plain"})  # what a cross-site form sends
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"
    assert "Content-Type: application/json" in r.json()["errors"][0]["message"]
    r = api.post("/api/silences", content=b'{"subject": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"][0]["in"] == "body"
    assert api.get("/api/silences").json()["silences"] == []


def test_expiring_an_unknown_silence_is_a_404_and_a_malformed_id_a_422(api):
    r = api.delete("/api/silences/nope")
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    assert api.delete("/api/silences/no%20pe").status_code == 422


# --- incidents ----------------------------------------------------------------------------------
@pytest.fixture
def history(isolated):
    return {
        "dakar": save_incident(isolated, "region_silence", "dakar", "firing", 10,
                               notes=(("alert", "silenced"),)),
        "thies": save_incident(isolated, "region_silence", "thies", "resolved", 120, resolved_minutes_ago=90,
                               notes=(("alert", "sent"), ("recovery", "sent"))),
        "lag": save_incident(isolated, "arrival_lag", "dakar", "firing", 30, severity="warning"),
        "shipper": save_incident(isolated, "crash_loop", "shipper", "firing", 5, notes=(("alert", "failed"),)),
        "pending": save_incident(isolated, "region_silence", "kolda", "pending", 1, notes=()),
    }


def ids(resp) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [i["id"] for i in resp.json()["incidents"]]


def test_incidents_history_filters_newest_first(api, history):
    h = history
    assert ids(api.get("/api/incidents")) == [h["shipper"], h["dakar"], h["lag"], h["thies"]]  # never the pending one
    assert ids(api.get("/api/incidents", params={"status": "resolved"})) == [h["thies"]]
    assert ids(api.get("/api/incidents", params={"rule": "region_silence"})) == [h["dakar"], h["thies"]]
    assert ids(api.get("/api/incidents", params={"subject": "dakar"})) == [h["dakar"], h["lag"]]
    assert ids(api.get("/api/incidents", params={"subject": "shipper"})) == [h["shipper"]]
    assert ids(api.get("/api/incidents", params={"severity": "warning"})) == [h["lag"]]
    # Open at some time in the window: thies was resolved 90 min ago, the others opened within 30 min.
    since = (NOW - timedelta(minutes=60)).isoformat()
    assert ids(api.get("/api/incidents", params={"since": since})) == [h["shipper"], h["dakar"], h["lag"]]
    until = (NOW - timedelta(minutes=20)).isoformat()
    assert ids(api.get("/api/incidents", params={"until": until})) == [h["lag"], h["thies"]]
    page = api.get("/api/incidents", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 4 and [i["id"] for i in page["incidents"]] == [h["dakar"], h["lag"]]


def test_one_incident_shows_its_notifications_and_unknown_ones_are_404(api, history):
    body = api.get(path(history["dakar"])).json()["incident"]
    assert (body["id"], body["status"], body["rule"], body["region_id"]) == (history["dakar"], "firing",
                                                                             "region_silence", "dakar")
    assert [(n["kind"], n["status"], n["silenced_by"]) for n in body["notifications"]] == [("alert", "silenced", "s1")]
    assert body["acknowledgement"] is None
    assert api.get(path("region_silence|atlantis|x")).status_code == 404
    assert api.get(path(history["pending"])).status_code == 404  # not an incident until it fires


@pytest.mark.parametrize("params, field", [
    ({"status": "open"}, "status"), ({"severity": "loud"}, "severity"), ({"limit": 0}, "limit"),
    ({"limit": 201}, "limit"), ({"offset": -1}, "offset"), ({"since": "yesterday"}, "since"),
    ({"rule": "Region Silence"}, "rule"), ({"subject": "dak ar"}, "subject"),
    ({"since": NOW.isoformat(), "until": (NOW - timedelta(hours=1)).isoformat()}, "until"),
])
def test_bad_incident_filters_are_a_422_naming_the_parameter(api, params, field):
    r = api.get("/api/incidents", params=params)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text


def test_acknowledge_a_firing_incident_once(api, history, clock):
    clock.now = NOW + timedelta(minutes=1)
    r = api.post(f"{path(history['dakar'])}/ack", json={"author": "awa", "comment": "Moving the station back"})
    assert r.status_code == 201, r.text
    assert r.json()["acknowledgement"] == {"incident_id": history["dakar"], "author": "awa",
                                           "comment": "Moving the station back",
                                           "at": clock.now.isoformat().replace("+00:00", "Z")}
    shown = api.get(path(history["dakar"])).json()["incident"]["acknowledgement"]
    assert shown["author"] == "awa"
    listed = {i["id"]: i["acknowledgement"] for i in api.get("/api/incidents").json()["incidents"]}
    assert listed[history["dakar"]]["comment"] == "Moving the station back" and listed[history["lag"]] is None

    again = api.post(f"{path(history['dakar'])}/ack", json={"author": "bob", "comment": "me too"})
    assert again.status_code == 409 and "acknowledged already by awa" in again.json()["detail"]
    resolved = api.post(f"{path(history['thies'])}/ack", json={"author": "bob", "comment": "late"})
    assert resolved.status_code == 409 and "resolved" in resolved.json()["detail"]
    assert api.post(f"{path('nope|x|y')}/ack", json={"author": "a", "comment": "c"}).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"comment": "c"}, "author"), ({"author": "a"}, "comment"), ({"author": "a", "comment": ""}, "comment"),
    ({"author": "a\nb", "comment": "c"}, "author"), ({"author": "a", "comment": "x" * 1001}, "comment"),
])
def test_a_bad_acknowledgement_is_a_422_naming_the_field(api, history, body, field):
    r = api.post(f"{path(history['dakar'])}/ack", json=body)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [field], r.text


def test_no_index_yet_is_an_empty_history_and_no_elasticsearch_a_503(api, isolated):
    assert api.get("/api/incidents").json()["incidents"] == []
    assert api.get("/api/silences").json()["silences"] == []
    with TestClient(create_app(isolated.model_copy(update={"es_port": 1}))) as down:
        r = down.get("/api/incidents")
        assert r.status_code == 503 and "Elasticsearch is unavailable" in r.json()["detail"]
        assert down.post("/api/silences", json={"subject": "dakar", "duration_seconds": 60, "comment": "c",
                                                "author": "a"}).status_code == 503
