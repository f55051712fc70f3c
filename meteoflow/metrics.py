"""Prometheus metrics of every Meteoflow service, declared in one place.

Each service records into one metric set built on a registry, and exposes that registry:
- the loop services (producer, streaming, shipper, alerting) with `serve_metrics`, which starts
  prometheus_client's HTTP exporter on METEOFLOW_<SERVICE>_METRICS_PORT (0: off);
- the FastAPI services (forecasting API, web app) with `instrument_app`: `GET /metrics` on their
  own port, and request counts and latency per route template (an ASGI middleware: no FastAPI
  import here, the worker images do not install it).

A metric set built without a registry records into a private one that nothing serves, so the
code always updates its metrics and "disabled" is never a branch in a service.

Label values are bounded by configuration, never by data: topics and indices come from the
settings, sinks and stages are fixed names, rules come from the rules file, regions from the
regions file, routes are templates (`/api/regions/{region_id}`, not the raw path). Record
content and error messages never become labels: they belong in the logs.

Every name is documented in README.md ("Prometheus"); tests/unit/test_metrics.py checks it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable

from prometheus_client import (
    CollectorRegistry, Counter, Gauge, GCCollector, Histogram, Info, PlatformCollector, ProcessCollector,
    start_http_server,
)
from prometheus_client.asgi import make_asgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from meteoflow import __version__

if TYPE_CHECKING:
    from meteoflow.contracts import MetricSample
    from meteoflow.settings import Settings

log = logging.getLogger("metrics")

PREFIX = "meteoflow"

# The exporter port setting of each loop service (the FastAPI services serve /metrics on their own port).
METRICS_PORT_SETTINGS: dict[str, str] = {
    "producer": "producer_metrics_port",
    "streaming": "streaming_metrics_port",
    "shipper": "shipper_metrics_port",
    "alerting": "alerting_metrics_port",
}

# Shared label names, so the same thing is called the same everywhere.
TOPIC, SINK, INDEX, STAGE, OUTCOME, RULE, KIND = "topic", "sink", "index", "stage", "outcome", "rule", "kind"

# Seconds. Work here ranges from milliseconds (an empty batch) to a minute (a forecast fit, a
# slow OpenWeatherMap run), beyond prometheus_client's default buckets (<= 10 s).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def env_name(setting: str) -> str:
    return f"METEOFLOW_{setting.upper()}"


def service_registry(service: str) -> CollectorRegistry:
    """The registry a service serves: its own metrics plus the process (CPU, memory, open files),
    Python platform and garbage-collector metrics, and `meteoflow_build_info{service, version}`.

    A new registry per service run (not prometheus_client's global one), so a service started
    twice in one process (tests) never registers a metric twice."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    Info(f"{PREFIX}_build", "Meteoflow version of this service", registry=registry).info(
        {"service": service, "version": __version__})
    return registry


class MetricSet:
    """One service's metrics, on `registry` or on a private one nothing serves."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()

    def _counter(self, name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
        return Counter(name, doc, list(labels), registry=self.registry)

    def _gauge(self, name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
        return Gauge(name, doc, list(labels), registry=self.registry)

    def _histogram(self, name: str, doc: str, labels: Iterable[str] = (),
                   buckets: tuple[float, ...] = DURATION_BUCKETS) -> Histogram:
        return Histogram(name, doc, list(labels), registry=self.registry, buckets=buckets)


def _init_labels(metric, *values: Iterable[str]) -> None:
    """Create the series of known label values at 0, so rate() sees their first increase."""
    for combo in _product(values):
        metric.labels(*combo)


def _product(values: tuple[Iterable[str], ...]) -> list[tuple[str, ...]]:
    combos: list[tuple[str, ...]] = [()]
    for options in values:
        combos = [c + (o,) for c in combos for o in options]
    return combos


# --- the exporter of the loop services ---------------------------------------------------------
@dataclass
class Exporter:
    """A running /metrics endpoint, or none (port 0, or the port could not be bound)."""

    service: str
    server: Any = None
    thread: threading.Thread | None = None
    url: str | None = None

    @property
    def running(self) -> bool:
        return self.server is not None

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.thread is not None:
            self.thread.join(5)

    def __enter__(self) -> "Exporter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve_metrics(service: str, settings: "Settings", registry: CollectorRegistry) -> Exporter:
    """Serve `registry` on http://<metrics bind host>:<the service's metrics port>/metrics.

    A port that cannot be bound (taken, or not allowed) is logged as an error naming the setting,
    and the service goes on without /metrics: metrics watch the pipeline, and a data service
    stopped by its exporter (the supervisor would restart it into a crash-loop) is a worse outage
    than a missing scrape, which Prometheus reports anyway (`up == 0`)."""
    setting = METRICS_PORT_SETTINGS[service]
    port = getattr(settings, setting)
    if not port:
        log.info("%s: Prometheus /metrics off (%s=0)", service, env_name(setting))
        return Exporter(service)
    host = settings.metrics_bind_host or settings.bind_host
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.error("%s: cannot serve Prometheus /metrics on %s:%d (%s=%d): %s; the %s goes on without /metrics",
                  service, host, port, env_name(setting), port, exc.strerror or exc, service,
                  extra={"fields": {"event.action": "metrics-exporter", "event.outcome": "failure"}})
        return Exporter(service)
    url = f"http://{host}:{port}/metrics"
    log.info("%s: Prometheus metrics on %s", service, url)
    return Exporter(service, server, thread, url)


# --- FastAPI services ------------------------------------------------------------------------
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "(unmatched)"  # no route took the request (404, or refused before routing: 413)


class HttpMetrics(MetricSet):
    """Requests of a FastAPI service per method, route template and status, and their latency."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None):
        super().__init__(registry)
        self.requests = self._counter(f"{PREFIX}_{service}_http_requests_total",
                                      "HTTP requests answered, per method, route template and status",
                                      ["method", "route", "status"])
        self.latency = self._histogram(f"{PREFIX}_{service}_http_request_duration_seconds",
                                       "Time to answer an HTTP request, per method and route template",
                                       ["method", "route"])

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "other"  # any token is a method to the server
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


METRICS_PATH = "/metrics"


class HttpMetricsMiddleware:
    """ASGI middleware of a FastAPI service: answers `GET /metrics` with prometheus_client's ASGI
    app, and times every request, labelled with the template of the route that answered it (the
    router records the route in the shared scope), so cardinality stays bounded."""

    def __init__(self, app, metrics: HttpMetrics):
        self.app = app
        self.metrics = metrics
        self.exposition = make_asgi_app(metrics.registry)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding

        async def send_and_see(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        route = None
        try:
            # Before routing, so a catch-all route (the web app's SPA fallback) cannot take it.
            if scope.get("path") == METRICS_PATH and scope.get("method") in ("GET", "HEAD"):
                route = METRICS_PATH
                await self.exposition(scope, receive, send_and_see)
            else:
                await self.app(scope, receive, send_and_see)
        finally:
            route = route or getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            self.metrics.observe(scope.get("method", "GET"), route, status, time.perf_counter() - started)


def instrument_app(app, http: HttpMetrics) -> None:
    """`GET /metrics` serving http's registry, and every request of `app` (a FastAPI or Starlette
    app) counted and timed. Added as the outermost middleware so far: add it after the others
    whose refusals (e.g. a 413) should be counted too."""
    app.add_middleware(HttpMetricsMiddleware, metrics=http)


# --- producer ------------------------------------------------------------------------------------
class ProducerMetrics(MetricSet):
    def __init__(self, registry: CollectorRegistry | None = None):
        super().__init__(registry)
        p = f"{PREFIX}_producer"
        self.runs = self._counter(f"{p}_runs_total", "Scheduled runs, by outcome: ok (every region published), "
                                  "partial (some regions failed), failed (the run raised)", [OUTCOME])
        _init_labels(self.runs, ("ok", "partial", "failed"))
        self.run_duration = self._histogram(f"{p}_run_duration_seconds", "Duration of a run, fetch to flush")
        self.published = self._counter(f"{p}_records_published_total",
                                       "Records Kafka acknowledged, per topic (observations, dead letters)", [TOPIC])
        self.kafka_errors = self._counter(f"{p}_kafka_errors_total",
                                          "Records Kafka did not take or acknowledge, per topic", [TOPIC])
        self.dead_letters = self._counter(f"{p}_dead_letters_total",
                                          "Records the producer rejected (invalid, or an unusable response)")
        self.region_failures = self._counter(f"{p}_region_failures_total",
                                             "Regions left out of a batch (source error, invalid record, Kafka)")
        self.last_success = self._gauge(f"{p}_last_success_timestamp_seconds",
                                        "Unix time of the last batch that published at least one observation")


# --- streaming job ------------------------------------------------------------------------------
STREAMING_STAGES = ("collect", "validate", "deadletters", "writes", "observations", "stats", "series", "daily", "latest",
                    "mark")
FORECAST_OUTCOMES = ("ok", "failed", "skipped", "error")


class StreamingMetrics(MetricSet):
    def __init__(self, registry: CollectorRegistry | None = None):
        super().__init__(registry)
        p = f"{PREFIX}_streaming"
        self.batches = self._counter(f"{p}_batches_total", "Micro-batches processed (foreachBatch returned)")
        self.consumed = self._counter(f"{p}_records_consumed_total", "Kafka records read by the job, per topic", [TOPIC])
        self.written = self._counter(f"{p}_records_written_total",
                                     "Documents written per MongoDB collection (observations, hourly_stats, forecasts)",
                                     [SINK])
        self.dead_letters = self._counter(f"{p}_dead_letters_total", "Records the job rejected to the dead-letter topic")
        self.batch_duration = self._histogram(f"{p}_batch_duration_seconds", "Duration of a micro-batch in foreachBatch")
        self.stage_duration = self._histogram(f"{p}_batch_stage_duration_seconds",
                                              "Duration of each stage of a micro-batch", [STAGE])
        _init_labels(self.stage_duration, STREAMING_STAGES)
        self.last_batch = self._gauge(f"{p}_last_batch_timestamp_seconds", "Unix time the last micro-batch completed")
        self.forecasts = self._counter(
            f"{p}_forecast_regions_total", "Regions per forecast outcome: ok, failed (API unavailable, retried), "
            "skipped (too little history), error (the API refused the series)", [OUTCOME])
        _init_labels(self.forecasts, FORECAST_OUTCOMES)

    def batch_done(self, report, completed_at: datetime) -> None:
        """`report`: a streaming.job.BatchReport whose durations include the total."""
        from meteoflow.contracts import HOURLY_STATS, OBSERVATIONS

        self.batches.inc()
        for topic, count in report.input_by_topic.items():
            self.consumed.labels(topic).inc(count)
        self.written.labels(OBSERVATIONS).inc(report.stored)
        self.written.labels(HOURLY_STATS).inc(report.stats_upserted)
        self.dead_letters.inc(report.dead_letters)
        for stage in STREAMING_STAGES:
            if stage in report.durations_ms:
                self.stage_duration.labels(stage).observe(report.durations_ms[stage] / 1000)
        if "total" in report.durations_ms:
            self.batch_duration.observe(report.durations_ms["total"] / 1000)
        self.last_batch.set(completed_at.timestamp())

    def forecast_outcome(self, outcome) -> None:
        """`outcome`: a streaming.forecasts.ForecastOutcome."""
        from meteoflow.contracts import FORECASTS

        for name, regions in (("ok", outcome.ok), ("failed", outcome.failed), ("skipped", outcome.skipped),
                              ("error", outcome.errors)):
            if regions:
                self.forecasts.labels(name).inc(len(regions))
        if outcome.forecasts_written:
            self.written.labels(FORECASTS).inc(outcome.forecasts_written)


# --- shipper ------------------------------------------------------------------------------------
class ShipperMetrics(MetricSet):
    def __init__(self, registry: CollectorRegistry | None = None):
        super().__init__(registry)
        p = f"{PREFIX}_shipper"
        self.consumed = self._counter(f"{p}_records_consumed_total", "Kafka records polled, per topic", [TOPIC])
        self.indexed = self._counter(f"{p}_documents_indexed_total",
                                     "Documents Elasticsearch acknowledged, per index", [INDEX])
        self.dead_letters = self._counter(
            f"{p}_dead_letters_total", "Records the shipper indexed as dead letters (invalid, or refused by Elasticsearch)")
        self.lost = self._counter(f"{p}_documents_lost_total",
                                  "Records Elasticsearch refused even as a dead letter (logged as errors)")
        self.es_errors = self._counter(
            f"{p}_elasticsearch_errors_total", "Elasticsearch failures, retried: unavailable (a whole bulk request) "
            "or not_acknowledged (documents of a bulk answer)", ["error"])
        _init_labels(self.es_errors, ("unavailable", "not_acknowledged"))
        self.kafka_errors = self._counter(f"{p}_kafka_errors_total", "Kafka failures per operation (poll, commit)",
                                          ["operation"])
        _init_labels(self.kafka_errors, ("poll", "commit"))
        self.batch_duration = self._histogram(f"{p}_batch_duration_seconds",
                                              "Time to ship a polled batch until Elasticsearch acknowledged all")
        self.last_commit = self._gauge(f"{p}_last_commit_timestamp_seconds",
                                       "Unix time of the last Kafka offset commit (after Elasticsearch acknowledged)")


# --- alerting -------------------------------------------------------------------------------------
class AlertingMetrics(MetricSet):
    def __init__(self, rules: Iterable[str] = (), registry: CollectorRegistry | None = None):
        super().__init__(registry)
        p = f"{PREFIX}_alerting"
        self.rules = tuple(rules)
        self.evaluations = self._counter(
            f"{p}_evaluations_total", "Evaluation rounds: ok, without_elasticsearch (Elasticsearch unavailable: "
            "what the health samples show was evaluated and delivered), failed", [OUTCOME])
        _init_labels(self.evaluations, ("ok", "without_elasticsearch", "failed"))
        self.evaluation_duration = self._histogram(f"{p}_evaluation_duration_seconds",
                                                   "Duration of a completed evaluation round (facts, incidents, delivery)")
        self.last_evaluation = self._gauge(f"{p}_last_evaluation_timestamp_seconds",
                                           "Unix time of the last completed evaluation round (with or without "
                                           "Elasticsearch)")
        self.firing = self._gauge(f"{p}_incidents_firing", "Open incidents that fired, per rule", [RULE])
        self.pending = self._gauge(f"{p}_incidents_pending",
                                   "Conditions waiting out their rule's for: period, per rule", [RULE])
        self.notifications = self._counter(f"{p}_notifications_total",
                                           "Notifications created, per rule and kind (alert, reminder, recovery)",
                                           [RULE, KIND])
        self.slack = self._counter(f"{p}_slack_deliveries_total",
                                   "Slack messages by outcome: sent, retry (429/5xx/time-out), failed (refused)",
                                   [OUTCOME])
        _init_labels(self.slack, ("sent", "retry", "failed"))
        self.pings = self._counter(f"{p}_heartbeat_pings_total",
                                   "Dead-man's switch pings (METEOFLOW_ALERT_HEARTBEAT_URL) by outcome", [OUTCOME])
        _init_labels(self.pings, ("ok", "failed"))
        for rule in self.rules:
            self.firing.labels(rule).set(0)
            self.pending.labels(rule).set(0)

    def evaluated(self, outcome: str, started: datetime, done: datetime) -> None:
        """One round ended with `outcome` (ok, without_elasticsearch, failed), by the service's clock."""
        self.evaluations.labels(outcome).inc()
        if outcome != "failed":
            self.evaluation_duration.observe(max(0.0, (done - started).total_seconds()))
            self.last_evaluation.set(done.timestamp())

    def incidents(self, incidents: Iterable[Any], rules: Iterable[str] | None = None) -> None:
        """Set the per-rule gauges from the open incidents (elk.alerting.engine.Incident) of `rules`
        (default: every rule); the other rules' gauges keep their values."""
        scope = tuple(self.rules if rules is None else rules)
        firing = dict.fromkeys(scope, 0)
        pending = dict.fromkeys(scope, 0)
        for inc in incidents:
            if inc.status == "firing":
                firing[inc.rule] = firing.get(inc.rule, 0) + 1
            elif inc.status == "pending":
                pending[inc.rule] = pending.get(inc.rule, 0) + 1
        for rule, count in firing.items():
            self.firing.labels(rule).set(count)
        for rule, count in pending.items():
            self.pending.labels(rule).set(count)


# --- health samples (the alerting service's sampler) ---------------------------------------------
def _timestamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


# (sample kind, label, sample field, metric name, help). These describe other components; the
# alerting service exposes them because it takes the samples.
HEALTH_GAUGES: tuple[tuple[str, str, str, str, str], ...] = (
    ("consumer_lag", "consumer", "lag_records", "consumer_lag_records",
     "Records on a consumer's topics it has not processed yet (streaming, shipper)"),
    ("consumer_lag", "consumer", "lag_seconds", "consumer_lag_seconds",
     "Age of a consumer's oldest unprocessed record (0 when caught up)"),
    ("consumer_lag", "consumer", "consumer_started", "consumer_started",
     "1 once a consumer has processed something (a committed batch, group offsets), 0 while starting"),
    ("store_staleness", "store", "staleness_seconds", "store_staleness_seconds",
     "How far a store's newest observation lies behind Kafka's newest (kafka, mongodb, elasticsearch)"),
    ("store_staleness", "store", "newest_at", "store_newest_record_timestamp_seconds",
     "Unix time of a store's newest observation"),
    ("service", "service", "up", "service_up", "1 when the supervisor of ./run.sh reports the process up, else 0"),
    ("service", "service", "uptime_seconds", "service_uptime_seconds", "Time in the current up state"),
    ("service", "service", "restarts", "service_restarts", "Restarts by the supervisor of ./run.sh since it started"),
    ("forecast_age", "region", "age_seconds", "forecast_age_seconds", "Age of a region's last successful forecast run"),
    ("forecast_skill", "region", "model_mae", "forecast_mae_celsius",
     "MAE of a region's served forecast over the last 24 h, lead times 1-24 h together"),
    ("forecast_skill", "region", "persistence_mae", "forecast_persistence_mae_celsius",
     "MAE of the persistence baseline over the same forecast/observation pairs"),
    ("forecast_skill", "region", "coverage", "forecast_band_coverage_ratio",
     "Share of the last 24 h's observations inside the served band"),
)
HEALTH_SOURCES = ("kafka:streaming", "kafka:shipper", "kafka:newest", "mongodb:newest", "elasticsearch:newest",
                  "supervisor", "mongodb:forecasts", "mongodb:skill", "elasticsearch:write")


class HealthMetrics(MetricSet):
    """The latest round of health samples as gauges. A subject without a value this round (its
    source failed, or the value is unknown) has no series, rather than a stale one."""

    def __init__(self, registry: CollectorRegistry | None = None):
        super().__init__(registry)
        self._latest: tuple[tuple["MetricSample", ...], datetime | None] = ((), None)
        self.source_failures = self._counter(f"{PREFIX}_health_source_failures_total",
                                             "Sampling rounds in which a health source failed, per source", ["source"])
        _init_labels(self.source_failures, HEALTH_SOURCES)
        self.registry.register(self)

    def update(self, samples: Iterable["MetricSample"], at: datetime, failed: Iterable[str] = ()) -> None:
        self._latest = (tuple(samples), at)  # one assignment: a scrape sees one whole round
        for source in failed:
            self.source_failures.labels(source).inc()

    def collect(self):
        samples, at = self._latest
        for kind, label, field, name, doc in HEALTH_GAUGES:
            family = GaugeMetricFamily(f"{PREFIX}_health_{name}", doc, labels=[label])
            for sample in samples:
                if sample.kind != kind:
                    continue
                value = getattr(sample, field)
                value = _timestamp(value) if isinstance(value, datetime) else value
                if value is not None:
                    family.add_metric([sample.subject], float(value))
            yield family
        last = GaugeMetricFamily(f"{PREFIX}_health_last_sample_timestamp_seconds",
                                 "Unix time of the latest sampling round")
        if at is not None:
            last.add_metric([], at.timestamp())
        yield last


# --- forecasting API --------------------------------------------------------------------------------
class ForecastingApiMetrics(MetricSet):
    """Request metrics, forecasts answered, and the forecaster's own counts read at scrape time."""

    def __init__(self, stats: Callable[[], dict[str, Any]] | None = None, registry: CollectorRegistry | None = None):
        super().__init__(registry)
        self.http = HttpMetrics("forecasting_api", self.registry)
        self.forecasts = self._counter(f"{PREFIX}_forecasting_api_forecasts_total",
                                       "Series answered (one per /predict, one per /predict/batch item), "
                                       "by outcome: ok or error", [OUTCOME])
        _init_labels(self.forecasts, ("ok", "error"))
        self._stats = stats
        if stats is not None:
            self.registry.register(_ForecasterCollector(stats))


class _ForecasterCollector:
    """forecasting_api.engine.Forecaster.stats() as metrics: the forecaster counts, this reads."""

    def __init__(self, stats: Callable[[], dict[str, Any]]):
        self.stats = stats

    def collect(self):
        s = self.stats()
        cache, answers = s.get("cache", {}), s.get("response_cache", {})
        p = f"{PREFIX}_forecasting_api"
        for name, doc, value in (
            ("fits", "Prophet fits started", s["fits"]),
            ("fits_coalesced", "Requests that joined a fit already running for the same input", s["coalesced"]),
            ("fit_failures", "Fits that failed or timed out", s["failures"]),
            ("fit_timeouts", "Fits cancelled at forecast_timeout_seconds (their worker killed and replaced)",
             s.get("timeouts", 0)),
            ("worker_restarts", "Worker processes replaced (after a timeout, or found dead)", s.get("worker_restarts", 0)),
            ("rejected", "Requests answered 429: they needed more fits than forecast_max_pending_fits left",
             s.get("rejected", 0)),
            ("cache_hits", "Forecasts answered from the cache", cache.get("hits", 0)),
            ("cache_misses", "Cache look-ups that found nothing", cache.get("misses", 0)),
            ("cache_evictions", "Cached forecasts evicted (least recently used)", cache.get("evictions", 0)),
            ("response_cache_hits", "Requests answered whole from the response cache (the same body again)",
             answers.get("hits", 0)),
        ):
            family = CounterMetricFamily(f"{p}_{name}", doc)
            family.add_metric([], value)
            yield family
        for name, doc, value in (
            ("fits_in_flight", "Fits queued or running now", s["in_flight"]),
            ("fits_max_in_flight", "forecast_max_pending_fits: more fits in flight are refused with 429",
             s.get("max_pending", 0)),
            ("cache_entries", "Forecasts in the cache", cache.get("size", 0)),
            ("response_cache_entries", "Answers kept in the response cache", answers.get("size", 0)),
            ("workers", "Fit worker processes", s["workers"]),
        ):
            family = GaugeMetricFamily(f"{p}_{name}", doc)
            family.add_metric([], value)
            yield family


# --- web app --------------------------------------------------------------------------------------
class WebappMetrics(MetricSet):
    def __init__(self, registry: CollectorRegistry | None = None):
        super().__init__(registry)
        self.http = HttpMetrics("webapp", self.registry)
        self.store_errors = self._counter(f"{PREFIX}_webapp_store_errors_total",
                                          "Reads that failed, per store (a page then shows what it could read)",
                                          ["store"])
        _init_labels(self.store_errors, ("elasticsearch", "mongodb"))


__all__ = [
    "AlertingMetrics", "Exporter", "ForecastingApiMetrics", "HealthMetrics", "HttpMetrics", "MetricSet",
    "METRICS_PORT_SETTINGS", "ProducerMetrics", "ShipperMetrics", "StreamingMetrics", "WebappMetrics",
    "instrument_app", "serve_metrics", "service_registry",
]
