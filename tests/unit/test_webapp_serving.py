"""The serving API's non-data routes: SPA serving, caching headers, parameter validation."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from meteoflow.settings import load_settings
from webapp.app import create_app


class NoStore:
    """Stands for the data adapter where a test must not reach any data."""

    def __getattr__(self, name):
        raise AssertionError(f"the store must not be called ({name})")


@pytest.fixture
def dist(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    return tmp_path


def client(dist_dir):
    settings = load_settings(webapp_dist_dir=dist_dir)
    return TestClient(create_app(settings, store=NoStore()))


def test_hashed_assets_are_cached_for_a_year_and_index_is_revalidated(dist):
    c = client(dist)
    asset = c.get("/assets/index-abc123.js")
    assert asset.status_code == 200 and asset.text == "console.log(1)"
    assert "immutable" in asset.headers["cache-control"] and "max-age=31536000" in asset.headers["cache-control"]
    index = c.get("/")
    assert index.status_code == 200 and "id=root" in index.text
    assert index.headers["cache-control"] == "no-cache"
    assert c.get("/favicon.svg").headers["cache-control"] == "no-cache"


def test_client_side_routes_fall_back_to_the_app(dist):
    c = client(dist)
    for path in ("/status", "/region/dakar", "/some/deep/link"):
        r = c.get(path)
        assert r.status_code == 200 and "id=root" in r.text, path


def test_paths_outside_dist_are_never_served(dist):
    secret = dist.parent / "secret.txt"
    secret.write_text("do not serve")
    for path in ("/..%2Fsecret.txt", "/assets/..%2F..%2Fsecret.txt"):
        r = client(dist).get(path)
        assert "do not serve" not in r.text
        assert r.status_code in (200, 404) and ("id=root" in r.text or r.status_code == 404)


def test_unknown_api_route_is_a_json_404_not_the_app(dist):
    r = client(dist).get("/api/nope")
    assert r.status_code == 404 and r.json()["detail"] == "no API route /api/nope"


def test_missing_build_says_how_to_build(tmp_path):
    r = client(tmp_path / "nothing").get("/")
    assert r.status_code == 503
    assert "python -m webapp.build" in r.text and "./run.sh" in r.text


def test_health_and_config(dist):
    c = client(dist)
    assert c.get("/health").json() == {"status": "ok", "service": "webapp", "frontend_built": True}
    config = c.get("/api/config").json()
    assert config["refresh_seconds"] > 0
    assert config["thresholds"]["late_after_seconds"] < config["thresholds"]["silent_after_seconds"]
    assert c.get("/api/config").headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "url, field, where",
    [
        ("/api/regions/dakar?hours=0", "hours", "query"),
        ("/api/regions/dakar?hours=721", "hours", "query"),
        ("/api/regions/dakar?hours=two", "hours", "query"),
        ("/api/regions/bad%20region?hours=5", "region_id", "path"),
        ("/api/regions/" + "x" * 65, "region_id", "path"),
    ],
)
def test_bad_parameters_get_a_422_naming_the_field(dist, url, field, where):
    r = client(dist).get(url)
    assert r.status_code == 422
    body = r.json()
    assert body["errors"][0]["field"] == field and body["errors"][0]["in"] == where
    assert f"'{field}'" in body["detail"]


class FailingStore:
    """Elasticsearch reads fail (the page degrades); MongoDB fails when `mongo_down`."""

    def __init__(self, mongo_down: bool = False):
        self.mongo_down = mongo_down

    def latest_observations(self):
        if self.mongo_down:
            from pymongo.errors import ServerSelectionTimeoutError

            raise ServerSelectionTimeoutError("no server")
        return {}

    def arrivals_by_region(self):
        raise ConnectionError("elasticsearch down")


def test_metrics_count_requests_per_route_template_and_failed_store_reads(dist):
    from tests.fakes.prometheus import Scrape

    settings = load_settings(webapp_dist_dir=dist)
    app = create_app(settings, store=FailingStore())
    with TestClient(app) as c:
        assert c.get("/api/regions").status_code == 200  # Elasticsearch down: degraded, not an error
        assert c.get("/api/regions/bad id").status_code == 422
        assert c.get("/some/client/route").status_code == 200
        app.state.store = FailingStore(mongo_down=True)
        assert c.get("/api/regions").status_code == 503
        scraped = Scrape(c.get("/metrics").text)
    requests = "meteoflow_webapp_http_requests_total"
    assert scraped.value(requests, method="GET", route="/api/regions", status="200") == 1.0
    assert scraped.value(requests, method="GET", route="/api/regions", status="503") == 1.0
    assert scraped.value(requests, method="GET", route="/api/regions/{region_id}", status="422") == 1.0
    assert scraped.value(requests, method="GET", route="/{path:path}", status="200") == 1.0
    # Both /api/regions requests read Elasticsearch (arrivals) before MongoDB.
    assert scraped.value("meteoflow_webapp_store_errors_total", store="elasticsearch") == 2.0
    assert scraped.value("meteoflow_webapp_store_errors_total", store="mongodb") == 1.0
    assert "bad id" not in scraped.text and "client/route" not in scraped.text
