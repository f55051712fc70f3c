"""Seed the web app's stores with simulator-like data, in exactly the shapes the pipeline writes.

MongoDB documents come from the streaming job's own document builders
(streaming.records), Elasticsearch documents from the shipper's (elk.shipper.documents)
applied to Kafka records carrying `Observation.to_message()` / ECS log lines / dead
letters, health samples are MetricSample documents written as the sampler writes them, and
alert incidents follow elk/templates/alerts.json. So a change of shape on
either side breaks these tests instead of passing silently.
"""

from __future__ import annotations

import logging
import math
import random
from datetime import datetime, timedelta, timezone
from itertools import count

from elasticsearch import helpers

from elk.health.sampler import bulk_index_operations
from elk.shipper.documents import to_action
from meteoflow.kafka import KafkaRecord
from meteoflow import contracts
from meteoflow.contracts import DeadLetter, MetricSample
from meteoflow.es import make_es_client
from meteoflow.logs import EcsJsonFormatter
from meteoflow.mongo import database, make_mongo_client
from meteoflow.contracts import Observation
from meteoflow.settings import Settings
from meteoflow.contracts import hour_floor
from streaming.records import observation_documents
from streaming.sinks import HourlyStatsSink, ObservationSink, RegionLatestSink, upsert_all

REGIONS = [
    ("dakar", "Dakar", 14.69, -17.44),
    ("thies", "Thiès", 14.79, -16.93),
    ("saint-louis", "Saint-Louis", 16.02, -16.49),
    ("ziguinchor", "Ziguinchor", 12.58, -16.27),
    ("kaolack", "Kaolack", 14.15, -16.07),
]

# (main, description, icon code) cycled through so the overview shows several icons.
CONDITIONS = [
    ("Clear", "clear sky", "01"),
    ("Clouds", "few clouds", "02"),
    ("Clouds", "broken clouds", "04"),
    ("Rain", "light rain", "10"),
    ("Thunderstorm", "thunderstorm", "11"),
    ("Mist", "mist", "50"),
]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def simulated(region: tuple[str, str, float, float], when: datetime, rng: random.Random, index: int) -> Observation:
    region_id, name, lat, lon = region
    base = 27 + (lat - 14) * 0.8
    temp = base + 5 * math.sin((when.hour - 9) / 24 * 2 * math.pi) + rng.uniform(-0.6, 0.6)
    main, desc, code = CONDITIONS[(index + when.hour // 6) % len(CONDITIONS)]
    night = when.hour < 7 or when.hour >= 19
    return Observation(
        region_id=region_id, region_name=name, lat=lat, lon=lon, observed_at=when,
        temp=round(temp, 2), feels_like=round(temp + 1.5, 2), humidity=round(rng.uniform(45, 85), 1),
        pressure=round(rng.uniform(1008, 1014), 1), wind_speed=round(rng.uniform(1, 7), 1),
        wind_deg=round(rng.uniform(0, 359)), clouds=50.0, weather_main=main, weather_description=desc,
        weather_icon=f"{code}{'n' if night else 'd'}", timezone_offset=0, source="simulator",
        batch_id=f"sim-{when:%Y%m%dT%H%M}", produced_at=when + timedelta(seconds=1),
    )


class Seeder:
    """Writes observations (MongoDB + Elasticsearch), forecasts, streaming logs, alerts, dead letters."""

    def __init__(self, settings: Settings, regions=REGIONS, seed: int = 11):
        self.settings = settings
        self.regions = list(regions)
        self.rng = random.Random(seed)
        self.client = make_mongo_client(settings)
        self.db = database(settings, self.client)
        self.es = make_es_client(settings)
        self._offsets = count()

    def close(self) -> None:
        self.client.close()
        self.es.close()

    # --- observations ----------------------------------------------------------------
    def history(self, hours: int = 48, step_minutes: int = 30, end: datetime | None = None, regions=None) -> list[Observation]:
        end = (end or utcnow()).replace(second=0, microsecond=0)
        steps = hours * 60 // step_minutes
        out = []
        for i, region in enumerate(regions or self.regions):
            for s in range(steps, -1, -1):
                out.append(simulated(region, end - timedelta(minutes=s * step_minutes), self.rng, i))
        return out

    def store(self, observations: list[Observation], ingested_at: datetime | None = None) -> None:
        """As the streaming job (MongoDB) and the shipper (Elasticsearch) would, arriving at `ingested_at`."""
        now = ingested_at or utcnow()
        # The streaming job's own sinks, so the documents are exactly the ones it writes.
        documents = [d.to_document() for d in observation_documents(observations, stored_at=now)]
        ObservationSink(self.db).write(observations, now, documents)
        HourlyStatsSink(self.db).write(observations, now)
        RegionLatestSink(self.db).write(documents)
        actions = [
            to_action(self.settings, self._record(self.settings.topic_observations, o.key, o.to_message(), now), now)
            for o in observations
        ]
        self._bulk(actions)

    def tick(self, region_ids: list[str], now: datetime | None = None) -> list[Observation]:
        """One new live observation for each of `region_ids`, arriving now."""
        now = now or utcnow()
        chosen = [r for r in self.regions if r[0] in region_ids]
        obs = [simulated(r, now.replace(microsecond=0), self.rng, i) for i, r in enumerate(chosen)]
        self.store(obs, now)
        return obs

    # --- forecasts -------------------------------------------------------------------
    def forecast(self, region_id: str, after: datetime, hours: int = 24, run_at: datetime | None = None,
                 model: contracts.ForecastModel = "prophet") -> None:
        run_at = run_at or utcnow()
        start = hour_floor(after) + timedelta(hours=1)
        region = next(r for r in self.regions if r[0] == region_id)
        docs = []
        for h in range(hours):
            when = start + timedelta(hours=h)
            yhat = simulated(region, when, random.Random(h), 0).temp
            spread = 0.8 + 0.12 * h
            prediction = contracts.Prediction(timestamp=when, temperature=yhat, lower=round(yhat - spread, 2),
                                              upper=round(yhat + spread, 2))
            docs.append(contracts.ForecastDocument.from_prediction(region_id, prediction, run_at, hours, model))
        upsert_all(self.db[contracts.FORECASTS], docs)

    def forecast_run(self, region_id: str, origin: datetime, hours: int = 24, bias: float = 0.0,
                     model: contracts.ForecastModel = "prophet", band_level: float = 0.9) -> contracts.ForecastRun:
        """A kept run (forecast_runs) made at `origin`: the simulator's weather shifted by `bias`, with a
        band widening with the lead time, as the streaming job keeps every run."""
        region = next(r for r in self.regions if r[0] == region_id)
        start = hour_floor(origin) + timedelta(hours=1)
        points = []
        for h in range(hours):
            when = start + timedelta(hours=h)
            yhat = round(simulated(region, when, random.Random(h), 0).temp + bias, 2)
            spread = 0.8 + 0.12 * h
            points.append(contracts.ForecastRunPoint(target_time=when, yhat=yhat, yhat_lower=round(yhat - spread, 2),
                                                     yhat_upper=round(yhat + spread, 2)))
        run = contracts.ForecastRun(_id=contracts.ForecastRun.make_id(region_id, origin), region_id=region_id,
                                    run_at=origin, origin=origin, model=model, horizon_hours=hours,
                                    band_level=band_level, points=points)
        upsert_all(self.db[contracts.FORECAST_RUNS], [run])
        return run

    def skill(self, region_id: str, window: contracts.SkillWindow = "24h", leads: int = 24, model_mae: float = 1.0,
              persistence_mae: float = 1.4, climatology_mae: float = 1.2, coverage: float = 0.88,
              count: int = 20, band_level: float = 0.9) -> list[contracts.ForecastSkill]:
        """forecast_skill documents of one region and window, the errors growing with the lead time."""
        now = utcnow()
        docs = []
        for lead in range(1, leads + 1):
            grow = 1 + lead / 24
            docs.append(contracts.ForecastSkill(
                _id=contracts.ForecastSkill.make_id(region_id, window, lead), region_id=region_id, window=window,
                lead_hours=lead, count=count, model_mae=round(model_mae * grow, 3), model_bias=0.1,
                persistence_mae=round(persistence_mae * (1 + lead / 8), 3), persistence_bias=0.0,
                climatology_mae=round(climatology_mae * 1.5, 3), climatology_bias=-0.1, coverage=coverage,
                band_level=band_level, updated_at=now, api_count=count, api_mae=round(model_mae * grow * 1.1, 3)))
        upsert_all(self.db[contracts.FORECAST_SKILL], docs)
        return docs

    # --- history (daily statistics, the rain model) -------------------------------------
    def daily(self, region_id: str, days: int, end: datetime | None = None) -> list[contracts.DailyStats]:
        """`days` UTC days of daily_stats up to the day of `end`, built by DailyStats.build from
        hourly observations (rain on every third day), as the streaming job keeps them."""
        region = next(r for r in self.regions if r[0] == region_id)
        last = (end or utcnow()).astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        docs = []
        for d in range(days - 1, -1, -1):
            day = last - timedelta(days=d)
            hours = [simulated(region, day + timedelta(hours=h), self.rng, d).model_copy(
                update={"rain_1h": round(0.5 + h % 3, 1) if d % 3 == 0 and 12 <= h < 16 else None}) for h in range(24)]
            # The day's points read back from the documents the streaming job stores, as streaming/daily.py does.
            points = [contracts.DailyPoint.model_validate(doc.to_document())
                      for doc in observation_documents(hours, stored_at=utcnow())]
            docs.append(contracts.DailyStats.build(region_id, day, points, utcnow()))
        upsert_all(self.db[contracts.DAILY_STATS], docs)
        return docs

    def rain_model(self, trained_at: datetime, selected: str = "gbt", lead_hours: int = 3) -> list[contracts.RainModelEvaluation]:
        """One training run's rain_models documents: a decision tree and gradient-boosted trees compared."""
        docs = []
        for model, auc, (tn, fp, fn, tp) in (("decision_tree", 0.74, (70, 12, 8, 10)), ("gbt", 0.83, (75, 7, 6, 12))):
            docs.append(contracts.RainModelEvaluation(
                _id=contracts.RainModelEvaluation.make_id(model, trained_at), model=model, trained_at=trained_at,
                lead_hours=lead_hours, train_until=trained_at - timedelta(days=7), train_rows=900, test_rows=100,
                rain_share=0.18, auc=auc, accuracy=(tn + tp) / 100, true_negatives=tn, false_positives=fp,
                false_negatives=fn, true_positives=tp, training_seconds=3.2, model_uri=f"file:///tmp/rain/{model}",
                selected=model == selected, label_basis="rain_1h > 0"))
        upsert_all(self.db[contracts.RAIN_MODELS], docs)
        return docs

    def rain_prediction(self, region_id: str, probability: float, trained_at: datetime, model: str = "gbt",
                        lead_hours: int = 3) -> contracts.RainPrediction:
        now = utcnow()
        doc = contracts.RainPrediction(_id=region_id, region_id=region_id, from_hour=hour_floor(now), lead_hours=lead_hours,
                                       probability=probability, model=model, model_trained_at=trained_at, predicted_at=now)
        upsert_all(self.db[contracts.RAIN_PREDICTIONS], [doc])
        return doc

    # --- logs, alerts, dead letters ------------------------------------------------------
    def streaming_batches(self, n: int = 12, now: datetime | None = None) -> None:
        now = now or utcnow()
        formatter = EcsJsonFormatter("streaming")
        actions = []
        for i in range(n):
            rec = logging.LogRecord("streaming", logging.INFO, __file__, 0, "batch %s stored", (i,), None)
            rec.created = (now - timedelta(seconds=5 * (n - i))).timestamp()
            rows = 5 + (i * 7) % 13
            rec.fields = contracts.StreamingBatchEvent(
                batch_id=i, input_rows=rows, rows_per_second=round(rows / 1.3, 2), stored=rows, dead_letters=0,
                stats_upserted=1, durations_ms={"total": 900.0 + 40 * i, "observations": 300.0},
                forecast=contracts.ForecastRunSummary(ok=0, failed=0, skipped=0, errors=0, deferred=0,
                                                      forecasts_written=0),
            ).log_extra()["fields"]
            line = formatter.format(rec).encode()
            actions.append(to_action(self.settings, self._record(self.settings.topic_logs, b"streaming", line, now), now))
        self._bulk(actions)

    def alert(self, rule: str, region_id: str, status: str, opened_at: datetime, summary: str,
              resolved_at: datetime | None = None) -> None:
        incident = f"{rule}:{region_id}:{opened_at:%Y%m%dT%H%M%S}"
        doc = {"incident_id": incident, "rule": rule, "subject": region_id, "region_id": region_id,
               "status": status, "severity": "critical", "summary": summary,
               "opened_at": opened_at.isoformat(), "updated_at": utcnow().isoformat()}
        if resolved_at:
            doc["resolved_at"] = resolved_at.isoformat()
        self.es.index(index=self.settings.index("alerts"), id=incident, document=doc, refresh=True)

    def deadletters(self, n: int, service: str = "streaming", now: datetime | None = None,
                    shipper_too: bool = False) -> None:
        """`n` rejected observations-topic records, each dead-lettered by `service`; with
        `shipper_too` also refused by the shipper, as a real invalid observation is."""
        now = now or utcnow()
        actions = []
        for i in range(n):
            bad = self._record(self.settings.topic_observations, b"dakar", b'{"temp": 900}', now)
            letter = DeadLetter.build(bad.value, reason="temp: Input should be less than or equal to 60",
                                      service=service, source_topic=bad.topic, source_partition=bad.partition,
                                      source_offset=bad.offset)
            actions.append(to_action(self.settings, self._record(self.settings.topic_deadletter, None,
                                                                 letter.to_message(), now), now))
            if shipper_too:
                actions.append(to_action(self.settings, bad, now))  # the shipper's own rejection
        self._bulk(actions)

    def metrics(self, samples: list[MetricSample]) -> None:
        """Health samples, as the alerting service's sampler writes them (elk/health/sampler.py)."""
        resp = self.es.bulk(operations=bulk_index_operations(self.settings.index("metrics"), samples), refresh="wait_for")
        assert not resp["errors"], resp["items"][:3]

    # --- plumbing --------------------------------------------------------------------
    def _record(self, topic: str, key: bytes | None, value: bytes, now: datetime) -> KafkaRecord:
        return KafkaRecord(topic, 0, next(self._offsets), key, value, int(now.timestamp() * 1000))

    def _bulk(self, actions: list[dict]) -> None:
        if not actions:
            return
        helpers.bulk(self.es, actions, refresh="wait_for")

