"""forecast_degraded on the real store: forecast_skill documents in FerretDB, one round of the real
health sampler (into the real Elasticsearch), one evaluation of the alerting service: the degraded
region gets one Slack message naming it and both figures, the good one none."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import SecretStr

from elk.alerting.rules import load_rules, parse_rules
from elk.alerting.service import AlertingService
from elk.health.sampler import HealthSampler
from meteoflow.contracts import FORECAST_SKILL, ForecastSkill
from meteoflow.es import make_es_client
from meteoflow.mongo import database, make_mongo_client
from tests.fakes.slack_server import SlackServer
from tests.integration.test_elk_alert_delivery import incident_docs

pytestmark = pytest.mark.integration


def skill_rows(region: str, model: float, persistence: float, coverage: float, at: datetime) -> list[dict]:
    return [ForecastSkill(
        _id=ForecastSkill.make_id(region, window, lead), region_id=region, window=window, lead_hours=lead, count=13,
        model_mae=model, model_bias=model / 2, persistence_mae=persistence, persistence_bias=0.1,
        climatology_mae=None, climatology_bias=None, coverage=coverage, band_level=0.95, updated_at=at).to_document()
        for window in ("24h", "7d") for lead in range(1, 25)]


def test_a_region_whose_forecast_does_worse_than_persistence_is_alerted_once_by_name(isolated, tmp_path):
    shipped = load_rules(isolated.alert_rules_file).model_dump()
    shipped["defaults"].update(for_seconds=0, group_wait_seconds=0, group_interval_seconds=0)
    shipped["forecast_degraded"]["for_seconds"] = 0  # shipped 30 min: this test judges the rule, not its patience
    rules = parse_rules(shipped)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    mongo = make_mongo_client(isolated)
    db = database(isolated, mongo)
    db[FORECAST_SKILL].insert_many(skill_rows("dakar", 2.5, 1.5, 0.9, now) + skill_rows("thies", 1.0, 1.5, 0.95, now))
    es = make_es_client(isolated)
    for region, name in (("dakar", "Dakar"), ("thies", "Thiès")):  # both report: no region_silence
        es.index(index=isolated.index("observations"), document={
            "region_id": region, "region_name": name, "observed_at": now.isoformat(),
            "ingested_at": now.isoformat(), "lag_seconds": 0.0}, refresh=True)
    try:
        with SlackServer() as slack:
            s = isolated.model_copy(update=dict(run_dir=tmp_path, alert_eval_interval_seconds=1.0,
                                                slack_webhook_url=SecretStr(slack.url)))
            sampler = HealthSampler(s, es, clock=lambda: now)
            try:
                samples = sampler.run_once()
            finally:
                sampler.close()
            skill = {x.subject: x for x in samples if x.kind == "forecast_skill"}
            assert (skill["dakar"].skill_pairs, skill["dakar"].model_mae, skill["dakar"].persistence_mae) == (312, 2.5, 1.5)
            es.indices.refresh(index=s.index("metrics"))

            clock = [now + timedelta(seconds=1)]
            svc = AlertingService(s, rules=rules, es=es, clock=lambda: clock[0])
            for _ in range(2):
                svc.evaluation_round()
                clock[0] += timedelta(seconds=1)
            texts = [m["text"] for m in slack.messages]
            assert len(texts) == 1, texts
            assert texts[0].startswith(":rotating_light: [WARNING] Forecast of Dakar degraded: Dakar: Its forecasts")
            assert "MAE 2.50 °C is above persistence's 1.50 °C" in texts[0]
            docs = [d for d in incident_docs(es, s) if d["rule"] == "forecast_degraded"]
            assert [(d["subject"], d["status"]) for d in docs] == [("dakar", "firing")]
    finally:
        mongo.drop_database(isolated.mongo_db)
        mongo.close()
