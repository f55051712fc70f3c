"""The web app's hardening: no path gives a 5xx, failures reach clients without their internals,
security headers on every response, and the optional write token."""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, urlsplit

import pytest
from elastic_transport import TransportError
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from pymongo.errors import ServerSelectionTimeoutError

import meteoflow.auth
from meteoflow.settings import REPO_ROOT, load_settings
from tests.unit.test_webapp_openapi import INCIDENT, NOW, SILENCE, FakeSilences, FakeStore
from webapp.app import APP_CSP, DOCS_CSP, create_app

SECRET = "s3cr3t-Pa55"  # a made-up password, to see where it goes


def url_with_password(scheme: str, user: str, host: str) -> str:
    return f"{scheme}://{user}:{SECRET}@{host}"


LEAKY_URL = url_with_password("https", "elastic", "es.internal.example:9200/meteoflow-logs")
TOKEN = "write-token-0123456789"


@pytest.fixture
def dist(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    return tmp_path


_CLIENTS: dict = {}  # one app per test's dist directory: building it per example would dominate the run


def shared_client(dist_dir) -> TestClient:
    if dist_dir not in _CLIENTS:
        _CLIENTS[dist_dir] = client(dist_dir)
    return _CLIENTS[dist_dir]


def client(dist_dir, store=None, **overrides) -> TestClient:
    settings = load_settings(webapp_dist_dir=dist_dir, **overrides)
    return TestClient(create_app(settings, store=store or FakeStore(), clock=lambda: NOW),
                      raise_server_exceptions=False)


# --- 1. no path is a server error ----------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/%00", "/a%00b", "/assets/%00", "/index.html%00.js", "/%2e%2e/%2e%2e/etc/passwd", "/assets/%2e%2e/%2e%2e/x",
    "/" + "a" * 5000, "/" + "a" * 256, "/" + "a/" * 3000, "/%01%7f",
])
def test_odd_static_paths_are_a_404_not_a_500(dist, path):
    r = client(dist).get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert r.json() == {"detail": "no such file"}


def test_ordinary_paths_still_serve_files_and_the_app(dist):
    c = client(dist)
    assert c.get("/assets/index-abc123.js").text == "console.log(1)"
    assert "id=root" in c.get("/region/dakar").text and "id=root" in c.get("/%ff").text


SEGMENT = st.one_of(
    st.text(max_size=40).map(lambda t: quote(t, safe="")),  # any text, control characters included, %-encoded
    st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=20)
    .map(lambda t: quote(t, safe="%:@!$&'()*+,;=~")),  # printable ASCII, a bare % or a stray %-escape kept
    st.binary(max_size=8).map(lambda b: "".join(f"%{x:02x}" for x in b)),  # bytes that are no valid UTF-8
    st.sampled_from(["..", ".", "", "%2e%2e", "%2E.", "%2f", "%5c", "%00", "%", "%zz", "assets", "api", "regions",
                     "incidents", "silences", "health", "docs", "openapi.json", "index.html", "a" * 300]),
)


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segments=st.lists(SEGMENT, max_size=8))
def test_no_path_is_a_server_error(dist, segments):
    path = "/" + "/".join(segments)
    r = shared_client(dist).get("http://testserver" + path)  # absolute: a path may start with //
    assert r.status_code < 500, (path, r.status_code, r.text[:200])


# --- 2. failures reach clients without their internals -------------------------------------------
class LeakyStore(FakeStore):
    """Every Elasticsearch read fails with a message that carries a credential, as a real one can."""

    def _fail(self, *args, **kwargs):
        raise ConnectionError(f"Connection refused: {LEAKY_URL}")

    arrivals_by_region = streaming_batches = alerts = deadletters = heartbeat = _fail
    health_latest = lag_series = incidents = incident = _fail


class EsDown(FakeStore):
    def incidents(self, query, limit, offset):
        raise TransportError(f"N/A, {LEAKY_URL}: cluster_block_exception")


class MongoDown(FakeStore):
    def latest_observations(self):
        raise ServerSelectionTimeoutError(f"{url_with_password('mongodb', 'meteoflow', 'db.internal:27017')}: timed out")


def test_degraded_reads_name_the_store_and_the_failure_never_its_text(dist, caplog):
    caplog.set_level(logging.WARNING, logger="webapp")
    c = client(dist, store=LeakyStore())
    bodies = {url: c.get(url) for url in ("/api/status", "/api/regions", "/api/health", "/api/regions/dakar")}
    for url, r in bodies.items():
        assert r.status_code == 200, url
        assert SECRET not in r.text and "es.internal" not in r.text, url
    assert bodies["/api/regions"].json()["errors"] == {"elasticsearch": "Elasticsearch is unavailable (ConnectionError)"}
    assert set(bodies["/api/status"].json()["errors"].values()) == {"Elasticsearch is unavailable (ConnectionError)"}
    health = bodies["/api/health"].json()
    assert health["errors"] == {"metrics": "Elasticsearch is unavailable (ConnectionError)"}
    assert health["state"] == "unavailable" and SECRET not in health["message"]
    assert LEAKY_URL in caplog.text  # the operator still gets the whole story, in the log


def test_store_down_503s_name_the_store_and_the_failure_never_its_text(dist, caplog):
    caplog.set_level(logging.WARNING, logger="webapp")
    mongo = client(dist, store=MongoDown()).get("/api/regions")
    assert mongo.status_code == 503
    assert mongo.json() == {"detail": "MongoDB is unavailable (ServerSelectionTimeoutError)"}
    es = client(dist, store=EsDown()).get("/api/incidents")
    assert es.status_code == 503 and es.json() == {"detail": "Elasticsearch is unavailable (TransportError)"}
    assert SECRET not in mongo.text + es.text
    assert caplog.text.count(SECRET) == 2


# --- 3. security headers -----------------------------------------------------------------------
HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY",
           "cross-origin-opener-policy": "same-origin"}


def test_every_response_carries_the_security_headers(dist, tmp_path):
    responses = {
        "app": client(dist).get("/"), "asset": client(dist).get("/assets/index-abc123.js"),
        "client route": client(dist).get("/incidents"), "api": client(dist).get("/api/config"),
        "404": client(dist).get("/%00"), "api 404": client(dist).get("/api/nope"),
        "422": client(dist).get("/api/regions/dakar?hours=0"),
        "503": client(dist, store=MongoDown()).get("/api/regions"),
        "401": client(dist, webapp_write_token=TOKEN).delete("/api/silences/s1"),
        "not built": client(tmp_path / "nothing").get("/"), "health": client(dist).get("/health"),
        "schema": client(dist).get("/api/openapi.json"),
    }
    for what, r in responses.items():
        assert {k: r.headers.get(k) for k in HEADERS} == HEADERS, what
        assert r.headers["content-security-policy"] == APP_CSP, what
    for directive in ("default-src 'self'", "img-src 'self' data:", "frame-ancestors 'none'", "object-src 'none'",
                      "base-uri 'self'", "script-src 'self';", "style-src 'self';"):
        assert directive in APP_CSP
    assert "unsafe" not in APP_CSP


def test_the_docs_page_gets_a_policy_that_allows_what_it_loads(dist):
    r = client(dist).get("/api/docs")
    assert r.status_code == 200 and r.headers["content-security-policy"] == DOCS_CSP
    assert {k: r.headers.get(k) for k in HEADERS} == HEADERS
    policy = dict(d.strip().split(" ", 1) for d in DOCS_CSP.split(";"))
    loaded = re.findall(r'<script src="([^"]+)"', r.text), re.findall(r'<link[^>]+href="([^"]+)"', r.text)
    scripts, links = loaded
    assert scripts and links
    for url in scripts:
        assert f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" in policy["script-src"].split(), url
    for url in links:
        origin = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
        assert origin in policy["style-src"].split() or origin in policy["img-src"].split(), url
    assert "frame-ancestors 'none'" in DOCS_CSP and "object-src 'none'" in DOCS_CSP


def test_the_app_page_has_no_inline_script_or_style_the_policy_would_block():
    # Vite builds index.html from this page: its scripts stay external, and it adds no inline code.
    page = (REPO_ROOT / "webapp" / "frontend" / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in page and " style=" not in page and not re.search(r"\son[a-z]+=", page)


# --- 4. the optional write token -----------------------------------------------------------------
class WritableSilences(FakeSilences):
    def acks(self, ids):
        return {}

    def save_ack(self, ack):
        return True


class WritableStore(FakeStore):
    silences = WritableSilences()


SILENCE_BODY = {"rule": "arrival_lag", "duration_seconds": 3600, "comment": "maintenance", "author": "ops"}
WRITES = [("post", "/api/silences", SILENCE_BODY), ("delete", f"/api/silences/{SILENCE.silence_id}", None),
          ("post", f"/api/incidents/{INCIDENT['incident_id']}/ack", {"author": "ops", "comment": "on it"})]


def write(c: TestClient, method: str, url: str, body, headers=None):
    return c.request(method.upper(), url, json=body, headers=headers or {})


@pytest.mark.parametrize("method, url, body", WRITES)
def test_with_a_token_writes_need_it_and_reads_stay_open(dist, method, url, body, caplog):
    caplog.set_level(logging.DEBUG)
    c = client(dist, store=WritableStore(), webapp_write_token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}, {"X-API-Key": TOKEN}):
        r = write(c, method, url, body, headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer" and "token" in r.json()["detail"]
        assert TOKEN not in r.text
    assert write(c, method, url, body, {"Authorization": f"Bearer {TOKEN}"}).status_code in (200, 201)
    assert write(c, method, url, body, {"Authorization": f"bearer  {TOKEN} "}).status_code in (200, 201)
    for read in ("/api/silences", "/api/incidents", f"/api/incidents/{INCIDENT['incident_id']}", "/api/regions"):
        assert c.get(read).status_code == 200, read
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("method, url, body", WRITES)
def test_without_a_token_writes_are_open(dist, method, url, body):
    assert write(client(dist, store=WritableStore()), method, url, body).status_code in (200, 201)


def test_the_token_is_compared_in_constant_time(dist, monkeypatch):
    compared = []

    def spy(a, b):
        compared.append((a, b))
        return a == b

    monkeypatch.setattr(meteoflow.auth.hmac, "compare_digest", spy)
    c = client(dist, store=WritableStore(), webapp_write_token=TOKEN)
    assert write(c, *WRITES[1], {"Authorization": "Bearer guess"}).status_code == 401
    assert write(c, *WRITES[1], {"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert len(compared) == 2 and all(len(a) == len(b) == 32 for a, b in compared)


def test_the_schema_documents_the_token_and_the_401_of_each_write(dist):
    spec = client(dist).get("/api/openapi.json").json()
    assert spec["components"]["securitySchemes"]["WriteToken"]["scheme"] == "bearer"
    for method, url, _ in WRITES:
        template = re.sub(r"/(s1|region_silence\|thies\|1)(?=/|$)", lambda m: "/{silence_id}" if m[1] == "s1"
                          else "/{incident_id}", url)
        op = spec["paths"][template][method]
        assert op["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
        assert op["security"] == [{"WriteToken": []}]
    assert "security" not in spec["paths"]["/api/silences"]["get"]


# --- 4. no query string is a server error ---------------------------------------------------------
# Every GET route that takes query parameters, with the parameters it knows (and one it does not).
QUERY_ROUTES = {
    "/api/regions/dakar": ["hours"],
    "/api/regions/dakar/history": ["window"],
    "/api/regions/dakar/forecast-runs": ["hours"],
    "/api/forecast-quality": ["window", "region"],
    "/api/incidents": ["status", "rule", "subject", "severity", "since", "until", "limit", "offset"],
    "/api/health": ["minutes"],
}
QUERY_VALUE = st.one_of(
    st.text(max_size=30), st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "7d", "30d", "1y", "24h", "dakar", "firing", "critical", "2026-03-01T12:00:00Z",
                     "0001-01-01T00:00:00", "9999-12-31T23:59:59+14:00", "1e309", "-0", "%00", "\x00", "a" * 300]),
)


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(sorted(QUERY_ROUTES)), data=st.data())
def test_no_query_string_is_a_server_error(dist, route, data):
    names = QUERY_ROUTES[route] + ["unknown"]
    params = data.draw(st.lists(st.tuples(st.sampled_from(names), QUERY_VALUE), max_size=4))
    r = shared_client(dist).get(route, params=params)
    assert r.status_code < 500, (route, params, r.status_code, r.text[:200])
    if r.status_code == 422:  # the refusal names the parameter it refused, and where
        errors = r.json()["errors"]
        assert errors and all(e["in"] == "query" and e["field"] in names for e in errors), r.text[:300]
