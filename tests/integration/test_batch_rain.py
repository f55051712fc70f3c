"""The rain model end to end: simulated wet-season history in a Parquet archive, Spark MLlib in local
mode, evaluations and predictions in the real FerretDB, served by the web app."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from batch.rain import NotTrainable, predict, train
from meteoflow.contracts import BATCH_RUN_ACTION, RAIN_MODELS, RAIN_PREDICTIONS, BatchRunEvent, RainModelEvaluation
from meteoflow.contracts import RainPrediction, RainResponse
from meteoflow.settings import REPO_ROOT
from producer.regions import load_regions
from producer.sources.simulator import simulate_history
from tests.fakes.archive import write_archive
from tests.faults.harness import settings_env, wait_until
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


def test_a_hold_out_without_rain_cannot_judge_a_model_so_none_is_selected(settings, spark, db, tmp_path):
    # A wet August week whose last 60 hours were dry: the training hours hold both kinds, the hold-out
    # (the last quarter, 42 hours) none followed by rain, so no AUC could tell a model from a guess.
    start = datetime(2026, 8, 5, tzinfo=timezone.utc)
    dry_from = start + timedelta(hours=24 * 7 - 60)
    history = [obs if obs.observed_at < dry_from else
               obs.model_copy(update={"rain_1h": None, "snow_1h": None, "weather_main": "Clear",
                                      "weather_description": "clear sky"})
               for obs in simulate_history(load_regions()[:2], start, 24 * 7)]
    assert any(obs.rain_1h for obs in history if obs.observed_at < dry_from)
    write_archive(spark, history, settings.archive_location)
    with pytest.raises(NotTrainable, match="cannot judge a rain model yet: its hold-out .* 0 followed by rain"):
        train(spark, db, settings.archive_location, (tmp_path / "models").as_uri(), now=NOW, progress=print)
    assert db[RAIN_MODELS].count_documents({}) == 0


def test_the_rain_model_service_trains_and_predicts_on_its_own(settings, spark, db, tmp_path):
    """`python -m batch schedule` (the rain_model service of ./run.sh) as a process over the real store:
    with no model yet it trains, then stores the chances, each run logged as a batch-run event."""
    write_archive(spark, list(simulate_history(load_regions()[:2], datetime(2026, 8, 5, tzinfo=timezone.utc),
                                               24 * 7)), settings.archive_location)
    run = settings.model_copy(update=dict(models_uri=(tmp_path / "models").as_uri(), archive_trigger_seconds=0.1))
    out = tmp_path / "rain_model.out"
    with open(out, "wb") as sink:
        service = subprocess.Popen([sys.executable, "-m", "batch", "schedule"], env=settings_env(run), cwd=REPO_ROOT,
                                   stdout=sink, stderr=subprocess.STDOUT)
    def events() -> list[BatchRunEvent]:
        return [BatchRunEvent.from_log_line(doc).event for doc in json_lines(out.read_text())
                if doc.get("event.action") == BATCH_RUN_ACTION]

    try:
        # Waits on the service's own report of the second run: the chances are stored before the
        # child's Spark has stopped, and a stop meanwhile would cut that run short.
        wait_until(lambda: service.poll() is not None or len(events()) >= 2, 600,
                   "the rain_model service to report its training and its rain chances", every=1.0)
        assert service.poll() is None, out.read_text()[-3000:]
    finally:
        service.send_signal(signal.SIGTERM)
        code = service.wait(60)
    assert code == 0  # SIGTERM is a clean stop
    assert [(e.job, e.outcome) for e in events()] == [("train-rain", "ok"), ("predict-rain", "ok")]
    assert db[RAIN_PREDICTIONS].count_documents({}) == 2
    assert "rain chances of 2 regions stored" in events()[-1].message
    selected = RainModelEvaluation.from_document(db[RAIN_MODELS].find_one({"selected": True}))
    assert selected.model_uri.startswith((tmp_path / "models").as_uri())


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
