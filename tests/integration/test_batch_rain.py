"""The rain model end to end: simulated wet-season history in a Parquet archive, Spark MLlib in local
mode, evaluations and predictions in the real FerretDB, served by the web app."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from batch.rain import NotTrainable, predict, train
from meteoflow.contracts import RAIN_MODELS, RAIN_PREDICTIONS, RainModelEvaluation, RainPrediction, RainResponse
from producer.regions import load_regions
from producer.sources.simulator import simulate_history
from tests.fakes.archive import write_archive
from tests.integration.test_streaming_job import db, fake_api, settings  # noqa: F401 - fixtures
from webapp.app import create_app

pytestmark = pytest.mark.integration
NOW = datetime(2026, 8, 20, tzinfo=timezone.utc)


def test_train_evaluate_select_and_predict_rain(settings, spark, db, tmp_path):
    regions = load_regions()[:2]
    # A week of August (the wet season) hourly, two regions: small, Spark's jobs dominate the time.
    write_archive(spark, list(simulate_history(regions, datetime(2026, 8, 5, tzinfo=timezone.utc), 24 * 7)),
                  settings.archive_location)
    lines: list[str] = []
    report = train(spark, db, settings.archive_location, (tmp_path / "models").as_uri(), now=NOW, iterations=3,
                   progress=lines.append)

    stored = [RainModelEvaluation.from_document(d) for d in db[RAIN_MODELS].find()]
    assert sorted(e.model for e in stored) == ["decision_tree", "gbt"]
    assert [e.model for e in stored if e.selected] == [report.selected.model]
    for e in stored:
        assert e.true_negatives + e.false_positives + e.false_negatives + e.true_positives == e.test_rows
        assert e.auc is not None and e.train_rows > e.test_rows
        assert e.train_until > datetime(2026, 8, 5, tzinfo=timezone.utc)
    assert any("confusion" in line for line in lines)

    predictions = predict(spark, db, settings.archive_location, now=NOW, progress=lines.append)
    assert sorted(p.region_id for p in predictions) == ["dakar", "thies"]
    assert {p.id for p in map(RainPrediction.from_document, db[RAIN_PREDICTIONS].find())} == {"dakar", "thies"}
    assert all(p.from_hour == datetime(2026, 8, 11, 23, tzinfo=timezone.utc) for p in predictions)

    with TestClient(create_app(settings, clock=lambda: NOW)) as http:
        body = RainResponse.model_validate(http.get("/api/history/rain").json())
    assert sorted(m.model for m in body.models) == ["decision_tree", "gbt"]
    assert [p.region_id for p in body.predictions] == ["dakar", "thies"]
    assert all(0 <= p.probability <= 1 for p in body.predictions)


def test_an_archive_without_rain_cannot_train(settings, spark, db, tmp_path):
    # January in the Sahel: the dry season, no rainy hour to learn from.
    write_archive(spark, list(simulate_history(load_regions()[:1], datetime(2026, 1, 5, tzinfo=timezone.utc), 24 * 3)),
                  settings.archive_location)
    with pytest.raises(NotTrainable, match="followed by rain"):
        train(spark, db, settings.archive_location, (tmp_path / "models").as_uri(), now=NOW, progress=print)
