"""Thin read adapters over MongoDB (observations, hourly stats, forecasts) and
Elasticsearch (arrivals, pipeline logs, alerts, dead letters, health samples; silences and
acknowledgements, read and written through meteoflow.silences).

Elasticsearch reads tolerate missing indices (`ignore_unavailable`, unmapped sort
fields): a pipeline that has not shipped anything yet is an empty state, not an error.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from meteoflow import contracts
from meteoflow.es import make_es_client
from meteoflow.mongo import database, make_mongo_client
from meteoflow.settings import Settings
from meteoflow.silences import SilenceStore
from webapp.views import bucket_counts

log = logging.getLogger("webapp")

# Keep the UI responsive when a server is down: fail fast, report it, poll again.
MONGO_TIMEOUT_MS = 3000
MONGO_READ_TIMEOUT_MS = 10_000  # a read stuck behind a locked database becomes a 503, not a hung request
ES_TIMEOUT_SECONDS = 5
ARRIVAL_BUCKET = "5m"
MAX_HISTORY_POINTS = 50_000
MAX_DAILY_DOCUMENTS = 366 * 100  # a year of days for up to 100 regions
MAX_FORECAST_POINTS = 24 * 7 * 4
MAX_RUNS = 200  # runs offered by the region page's picker
MAX_SKILL_DOCUMENTS = 1000 * 240  # regions x lead times of one window
LATEST_CANDIDATES = 10  # newest observations tried for a region's latest, past any malformed one


class Store:
    def __init__(self, settings: Settings, db: Database | None = None, es: Elasticsearch | None = None):
        self.settings = settings
        self.db = db if db is not None else database(
            settings,
            make_mongo_client(
                settings,
                serverSelectionTimeoutMS=MONGO_TIMEOUT_MS,
                connectTimeoutMS=MONGO_TIMEOUT_MS,
                socketTimeoutMS=MONGO_READ_TIMEOUT_MS,
            ),
        )
        self.es = es or make_es_client(settings, request_timeout=ES_TIMEOUT_SECONDS, max_retries=1)
        self.silences = SilenceStore(settings, self.es)

    def close(self) -> None:
        self.db.client.close()
        self.es.close()

    # --- MongoDB ---------------------------------------------------------------------
    # Each region's latest comes from region_latest, a document the streaming job maintains at write
    # time (FerretDB's SQLite backend pushes only an _id equality down to its storage and reads the
    # whole collection for any other filter).
    # Each read validates what it gets against its contract; a malformed document is skipped and
    # logged (contracts.iter_valid), so it costs only itself, never the page.
    def latest_observations(self) -> dict[str, contracts.ObservationDocument]:
        """Every region's latest observation (region_latest: one small document per region)."""
        return {d.region_id: d for d in contracts.iter_valid(contracts.RegionLatest,
                                                             self.db[contracts.REGION_LATEST].find({}))}

    def latest_observation(self, region_id: str) -> contracts.ObservationDocument | None:
        doc = self.db[contracts.REGION_LATEST].find_one({"_id": region_id})
        return next(contracts.iter_valid(contracts.RegionLatest, [doc] if doc is not None else []), None)

    def observations(self, region_id: str, start: datetime, end: datetime) -> list[contracts.ObservationDocument]:
        # A range query: FerretDB (SQLite) reads the whole collection for it. Reading the window by
        # _id instead (hourly documents, then one read per observation) measured slower still
        # (read_paths_bench: 7.4 s vs 1.0 s at 90 days), so the window is not yet history-free.
        cursor = (
            self.db[contracts.OBSERVATIONS]
            .find({"region_id": region_id, "observed_at": {"$gte": start, "$lte": end}})
            .sort("observed_at", ASCENDING)
            .limit(MAX_HISTORY_POINTS)
        )
        return contracts.valid_documents(contracts.ObservationDocument, cursor)

    def recent_window(self, region_id: str, start: datetime,
                      end: datetime) -> tuple[list[contracts.ObservationDocument], list[contracts.HourlyStats]]:
        """A window within the region's last RECENT_HOURS (before its newest observation): its
        observations, read day by day (contracts.find_days: only those days' documents, however long
        the history stored), and the hourly statistics of the hours it touches computed from them
        (contracts.hourly_stats, the job's own function: the same figures as hourly_stats holds)."""
        first_hour = contracts.hour_floor(start)
        observations = self.db[contracts.OBSERVATIONS]
        found = contracts.find_days(observations, region_id, contracts.utc_days(first_hour, end))
        if not found:  # a store whose documents have no `day` yet (the job fills it when it starts)
            found = observations.find({"region_id": region_id, "observed_at": {"$gte": first_hour, "$lte": end}})
        in_window = sorted((d for d in found if isinstance(d.get("observed_at"), datetime)
                            and first_hour <= d["observed_at"] <= end), key=lambda d: d["observed_at"])
        docs = contracts.valid_documents(contracts.ObservationDocument, in_window[:MAX_HISTORY_POINTS])
        computed_at = max((d.stored_at or d.observed_at for d in docs), default=end)
        hours = {(region_id, contracts.hour_floor(d.observed_at)) for d in docs}
        return [d for d in docs if d.observed_at >= start], contracts.hourly_stats(hours, docs, computed_at)

    def hourly_stats(self, region_id: str, start: datetime, end: datetime) -> list[contracts.HourlyStats]:
        first_hour = start.replace(minute=0, second=0, microsecond=0)
        cursor = (
            self.db[contracts.HOURLY_STATS]
            .find({"region_id": region_id, "hour": {"$gte": first_hour, "$lte": end}},
                  contracts.HourlyStats.summary_projection())
            .sort("hour", ASCENDING)
            .limit(MAX_HISTORY_POINTS)
        )
        return contracts.valid_documents(contracts.HourlyStats, cursor)

    def latest_forecast(self, region_id: str) -> list[contracts.ForecastDocument]:
        """The points of the region's most recent model run (the streaming job keeps only a region's
        latest run; a run being replaced may briefly sit next to it)."""
        cursor = (self.db[contracts.FORECASTS].find({"region_id": region_id})
                  .sort("target_time", ASCENDING).limit(MAX_FORECAST_POINTS))
        points = contracts.valid_documents(contracts.ForecastDocument, cursor)
        newest = max((p.model_run_at for p in points), default=None)
        return [p for p in points if p.model_run_at == newest]

    # --- Elasticsearch ---------------------------------------------------------------
    def _search(self, kind: str, **body: Any) -> dict[str, Any]:
        return self.es.search(index=self.settings.index(kind), ignore_unavailable=True, **body).body

    def arrivals_by_region(self) -> dict[str, dict[str, Any]]:
        """Per region: the latest shipped record (ingested_at, lag) and arrivals over the last hour."""
        resp = self._search(
            "observations",
            size=0,
            aggs={
                "regions": {
                    "terms": {"field": "region_id", "size": 1000},
                    "aggs": {
                        "latest": {
                            "top_hits": {
                                "size": 1,
                                # A backfill arrives at once: among equal arrival times the newest observation wins.
                                "sort": [
                                    {"ingested_at": {"order": "desc", "unmapped_type": "date"}},
                                    {"observed_at": {"order": "desc", "unmapped_type": "date"}},
                                ],
                                "_source": ["region_id", "region_name", "ingested_at", "observed_at", "lag_seconds"],
                            }
                        },
                        "last_hour": {
                            "filter": {"range": {"ingested_at": {"gte": "now-1h"}}},
                            "aggs": {
                                "per_bucket": {
                                    "date_histogram": {
                                        "field": "ingested_at",
                                        "fixed_interval": ARRIVAL_BUCKET,
                                        "min_doc_count": 0,
                                        "extended_bounds": {"min": "now-1h", "max": "now"},
                                    }
                                }
                            },
                        },
                    },
                }
            },
        )
        out: dict[str, dict[str, Any]] = {}
        for bucket in (resp.get("aggregations") or {}).get("regions", {}).get("buckets", []):
            hits = bucket["latest"]["hits"]["hits"]
            latest = hits[0]["_source"] if hits else {}
            hour = bucket["last_hour"]
            out[str(bucket["key"])] = {
                **latest,
                "total": bucket["doc_count"],
                "last_hour": hour["doc_count"],
                "per_bucket": [b["doc_count"] for b in hour.get("per_bucket", {}).get("buckets", [])],
            }
        return out

    def streaming_batches(self, limit: int = 20) -> list[contracts.Logged[contracts.StreamingBatchEvent]]:
        """The latest streaming-batch events, newest first; a malformed line is skipped and logged."""
        resp = self._search(
            "logs",
            size=limit,
            query={"match_phrase": {"event.action": contracts.STREAMING_BATCH_ACTION}},
            sort=[{"@timestamp": {"order": "desc", "unmapped_type": "date"}}],
        )
        out = []
        for hit in resp["hits"]["hits"]:
            try:
                out.append(contracts.StreamingBatchEvent.from_log_line(hit.get("_source")))
            except contracts.InvalidEvent as exc:
                log.warning("skipped log document %s: %s", hit.get("_id"), exc)
        return out

    def alerts(self, active: bool, limit: int) -> list[tuple[str, dict[str, Any]]]:
        """Incidents of the alerting service (elk/templates/alerts.json): firing ones, or the latest
        that fired (a "pending" one has not held for its rule's for_seconds yet: not an incident)."""
        query = {"term": {"status": "firing"}} if active else {"bool": {"must_not": {"term": {"status": "pending"}}}}
        resp = self._search(
            "alerts",
            size=limit,
            query=query,
            sort=[{"opened_at": {"order": "desc", "unmapped_type": "date"}}],
        )
        return [(h["_id"], h["_source"]) for h in resp["hits"]["hits"]]

    def incidents(self, query: dict[str, Any], limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        """A page of the incidents history (views.incident_query), newest first, and how many match."""
        resp = self._search("alerts", query=query, size=limit, from_=offset, track_total_hits=True,
                            sort=[{"opened_at": {"order": "desc", "unmapped_type": "date"}}])
        return resp["hits"]["total"]["value"], [h["_source"] for h in resp["hits"]["hits"]]

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        resp = self._search("alerts", query={"ids": {"values": [incident_id]}}, size=1)
        hits = resp["hits"]["hits"]
        return hits[0]["_source"] if hits else None

    def heartbeat(self, service: str) -> dict[str, Any] | None:
        """The latest heartbeat document of a service (contracts.Heartbeat), or None."""
        resp = self._search("heartbeats", size=1, query={"ids": {"values": [service]}})
        hits = resp["hits"]["hits"]
        return hits[0]["_source"] if hits else None

    def deadletters(self, since: datetime, latest: int = 5) -> dict[str, Any]:
        """Rejected records, each counted once however many services rejected it
        (contracts.counted_deadletters), and the latest dead-letter documents."""
        counted = contracts.counted_deadletters(self.settings.topic_observations)
        resp = self._search(
            "deadletter",
            size=latest,
            query=counted,
            track_total_hits=True,
            sort=[{"failed_at": {"order": "desc", "unmapped_type": "date"}}],
            _source=["reason", "service", "failed_at", "source_topic", "key"],
            aggs={"recent": {"filter": {"range": {"failed_at": {"gte": since.isoformat()}}}}},
        )
        total = resp["hits"]["total"]["value"]
        recent = ((resp.get("aggregations") or {}).get("recent") or {}).get("doc_count", 0)
        by_service: dict[str, int] = {}
        try:
            agg = self._search("deadletter", size=0, query=counted, aggs={"s": {"terms": {"field": "service", "size": 20}}})
            by_service = bucket_counts((agg.get("aggregations") or {}).get("s", {}).get("buckets", []))
        except Exception:  # noqa: BLE001 - a text-mapped field cannot be aggregated; the counts still stand
            by_service = {}
        return {
            "total": total,
            "last_hour": recent,
            "by_service": by_service,
            "latest": [
                {
                    "failed_at": h["_source"].get("failed_at"),
                    "service": h["_source"].get("service"),
                    "reason": h["_source"].get("reason"),
                    "key": h["_source"].get("key"),
                }
                for h in resp["hits"]["hits"]
            ],
        }


    # --- pipeline health (<prefix>-metrics, written by elk/health/) -----------------------------
    def health_latest(self, since: datetime) -> dict[str, Any]:
        """Aggregations of the metrics index: `newest` (time of the newest sample of all) and, over
        the samples since `since`, the latest per kind and subject (parsed by views.latest_samples)."""
        resp = self._search(
            "metrics",
            size=0,
            aggs={
                "newest": {"max": {"field": "@timestamp"}},
                "recent": {
                    "filter": {"range": {"@timestamp": {"gte": since.isoformat()}}},
                    "aggs": {"kinds": {"terms": {"field": "kind", "size": 10}, "aggs": {
                        "subjects": {"terms": {"field": "subject", "size": 1000}, "aggs": {
                            "latest": {"top_hits": {
                                "size": 1, "sort": [{"@timestamp": {"order": "desc", "unmapped_type": "date"}}]}}}}}}},
                },
            },
        )
        return resp.get("aggregations") or {}

    def lag_series(self, start: datetime, end: datetime, bucket_seconds: int) -> dict[str, Any]:
        """Aggregations of the consumer-lag samples in [start, end]: per consumer, per bucket of
        `bucket_seconds`, the max of lag_records and of lag_seconds (parsed by views.lag_series)."""
        resp = self._search(
            "metrics",
            size=0,
            query={"bool": {"filter": [
                {"term": {"kind": "consumer_lag"}},
                {"range": {"@timestamp": {"gte": start.isoformat(), "lte": end.isoformat()}}},
            ]}},
            aggs={"consumers": {"terms": {"field": "subject", "size": 50}, "aggs": {"over_time": {
                "date_histogram": {
                    "field": "@timestamp", "fixed_interval": f"{bucket_seconds}s", "min_doc_count": 0,
                    # every bucket of the window, so a stopped sampler shows as a gap, not a shorter line
                    "extended_bounds": {"min": int(start.timestamp() * 1000), "max": int(end.timestamp() * 1000)},
                },
                "aggs": {"lag_records": {"max": {"field": "lag_records"}},
                         "lag_seconds": {"max": {"field": "lag_seconds"}}},
            }}}},
        )
        return resp.get("aggregations") or {}

    # --- the weather pages: kept forecast runs and skill (indexed: region_id + run_at, _id, window) ---
    def forecast_runs(self, region_id: str, start: datetime, end: datetime,
                      limit: int = MAX_RUNS) -> list[contracts.ForecastRun]:
        """The region's kept runs made in [start, end], newest first."""
        cursor = (self.db[contracts.FORECAST_RUNS]
                  .find({"region_id": region_id, "run_at": {"$gte": start, "$lte": end}})
                  .sort("run_at", DESCENDING).limit(limit))
        return contracts.valid_documents(contracts.ForecastRun, cursor)

    def forecast_run(self, region_id: str, run_at: datetime) -> contracts.ForecastRun | None:
        doc = self.db[contracts.FORECAST_RUNS].find_one({"_id": contracts.ForecastRun.make_id(region_id, run_at)})
        return next(contracts.iter_valid(contracts.ForecastRun, [doc] if doc else []), None)

    def forecast_skill(self, window: str, region_id: str | None = None) -> list[contracts.ForecastSkill]:
        """The skill documents of a rolling window: one per region and lead time (a bounded set)."""
        query: dict[str, Any] = {"window": window}
        if region_id is not None:
            query["region_id"] = region_id
        cursor = self.db[contracts.FORECAST_SKILL].find(query).limit(MAX_SKILL_DOCUMENTS)
        return contracts.valid_documents(contracts.ForecastSkill, cursor)

    def daily_stats(self, region_id: str | None, first_day: datetime, last_day: datetime) -> list[contracts.DailyStats]:
        """The daily statistics of [first_day, last_day] (UTC day starts), of one region or of all
        (None), oldest first."""
        query: dict[str, Any] = {"day": {"$gte": first_day, "$lte": last_day}}
        if region_id is not None:
            query["region_id"] = region_id
        cursor = (self.db[contracts.DAILY_STATS].find(query, contracts.DailyStats.summary_projection())
                  .sort([("day", ASCENDING), ("region_id", ASCENDING)])
                  .limit(MAX_DAILY_DOCUMENTS))
        return contracts.valid_documents(contracts.DailyStats, cursor)

    def rain_models(self) -> list[contracts.RainModelEvaluation]:
        """The classifiers of the latest training run (batch train-rain)."""
        latest = next(iter(self.db[contracts.RAIN_MODELS].find({}, {"trained_at": 1}).sort("trained_at", DESCENDING)
                           .limit(1)), None)
        if latest is None:
            return []
        cursor = self.db[contracts.RAIN_MODELS].find({"trained_at": latest["trained_at"]}).sort("model", ASCENDING)
        return contracts.valid_documents(contracts.RainModelEvaluation, cursor)

    def rain_predictions(self) -> list[contracts.RainPrediction]:
        cursor = self.db[contracts.RAIN_PREDICTIONS].find().sort("region_id", ASCENDING).limit(MAX_DAILY_DOCUMENTS)
        return contracts.valid_documents(contracts.RainPrediction, cursor)
