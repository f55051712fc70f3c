"""One sampling round of the health signals, and the thread that runs it every
METEOFLOW_METRICS_INTERVAL_SECONDS beside alert evaluation.

A source that fails (Kafka down, MongoDB unreachable, a malformed state file) only leaves its
samples out and logs a warning; nothing is raised out of a round, so sampling can never stop or
delay alerting. Samples go straight to Elasticsearch, not through Kafka and the shipper."""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import datetime
from typing import Any, Callable

from elk.alerting.engine import HealthFacts, health_facts
from elk.health.signals import (
    consumer_lag_sample, forecast_age_samples, forecast_skill_samples, service_samples, store_staleness_samples,
)
from elk.health.sources import (
    ElasticsearchHealthSource, KafkaHealthSource, MongoHealthSource, read_supervisor_state, supervisor_state_file,
)
from meteoflow.clock import utc_now
from meteoflow.contracts import MetricSample
from meteoflow.kafka import all_topics
from meteoflow.metrics import HealthMetrics
from meteoflow.processes import pid_alive
from meteoflow.settings import Settings

log = logging.getLogger("health")
KEPT_ROUNDS = 20  # rounds of samples kept in memory for alerting while Elasticsearch is unavailable



def shipper_group(settings: Settings) -> str:
    """The shipper's consumer group (elk/shipper/service.py)."""
    return f"{settings.es_index_prefix}-shipper"


def bulk_index_operations(index: str, samples: list[MetricSample]) -> list[dict]:
    ops: list[dict] = []
    for sample in samples:
        ops.append({"index": {"_index": index}})
        ops.append(sample.to_document())
    return ops


class HealthSampler:
    def __init__(self, settings: Settings, es, kafka: KafkaHealthSource | None = None,
                 mongo: MongoHealthSource | None = None, clock: Callable[[], datetime] = utc_now,
                 metrics: HealthMetrics | None = None):
        self.settings = settings
        self.metrics = metrics or HealthMetrics()
        self.es = es
        self.kafka = kafka or KafkaHealthSource(settings)
        self._own_mongo = None
        if mongo is None:
            from meteoflow.mongo import database, make_mongo_client

            self._own_mongo = make_mongo_client(settings, serverSelectionTimeoutMS=5_000)
            mongo = MongoHealthSource(database(settings, self._own_mongo))
        self.mongo = mongo
        self.elasticsearch = ElasticsearchHealthSource(settings, es)
        self.clock = clock
        self.failed: list[str] = []  # the sources that failed in the last round
        self._recent: deque[list[MetricSample]] = deque(maxlen=KEPT_ROUNDS)
        self._lock = threading.Lock()  # the sampler thread appends, the alerting loop reads

    def _try(self, source: str, read: Callable[[], Any]) -> tuple[bool, Any]:
        """(True, what `read` returned), or (False, None) after logging why the source failed."""
        try:
            return True, read()
        except Exception as exc:  # noqa: BLE001 - one source's failure costs only its own samples
            self.failed.append(source)
            log.warning("health source %s failed (%s: %s); its samples are left out this round", source,
                        type(exc).__name__, str(exc)[:300],
                        extra={"fields": {"event.action": "health-sample", "event.outcome": "failure",
                                          "meteoflow.health": {"source": source}}})
            if source.startswith("kafka"):
                self.kafka.close()  # reconnect next time
            return False, None

    def _samples(self, source: str, read: Callable[[], list[MetricSample]]) -> list[MetricSample]:
        ok, samples = self._try(source, read)
        return samples if ok else []

    def sample(self) -> list[MetricSample]:
        """One round of readings -> samples (never raises)."""
        s = self.settings
        now = self.clock()
        self.failed = []
        samples: list[MetricSample] = []
        # No checkpoint directory at all: the job's progress cannot be seen from here (the Docker
        # alerting container does not mount the streaming volume) or it never ran; no sample rather
        # than a misleading "lags by every record". A directory without a committed batch does lag so.
        if s.checkpoint_dir.is_dir():
            samples += self._samples("kafka:streaming", lambda: [
                consumer_lag_sample(now, self.kafka.streaming_reading(s.checkpoint_dir))])
        samples += self._samples("kafka:shipper", lambda: [
            consumer_lag_sample(now, self.kafka.shipper_reading(shipper_group(s), all_topics(s)))])

        kafka_ok, kafka_newest = self._try("kafka:newest", lambda: self.kafka.newest_record_at(s.topic_observations))
        stores: dict[str, datetime | None] = {}
        for store, read in (("mongodb", self.mongo.newest_observation_at),
                            ("elasticsearch", self.elasticsearch.newest_observation_at)):
            ok, newest = self._try(f"{store}:newest", read)
            if ok:
                stores[store] = newest
        if kafka_ok:  # without Kafka's newest there is nothing to be stale against
            samples += store_staleness_samples(now, kafka_newest, stores)

        def services() -> list[MetricSample]:
            state = read_supervisor_state(supervisor_state_file(s))
            # A state file whose supervisor has ended says how things were, not how they are.
            return [] if state is None or not pid_alive(state.pid) else service_samples(now, state)

        samples += self._samples("supervisor", services)
        samples += self._samples("mongodb:forecasts", lambda: forecast_age_samples(now, self.mongo.forecast_states()))
        samples += self._samples("mongodb:skill", lambda: forecast_skill_samples(now, self.mongo.forecast_skills()))
        return samples

    def write(self, samples: list[MetricSample]) -> int:
        """Bulk-index the samples; returns how many were stored (raises when Elasticsearch is unreachable)."""
        if not samples:
            return 0
        resp = self.es.bulk(operations=bulk_index_operations(self.settings.index("metrics"), samples))
        stored = sum(1 for item in resp["items"] if 200 <= item["index"].get("status", 500) < 300)
        if stored < len(samples):
            first = next(item["index"].get("error") for item in resp["items"] if item["index"].get("error"))
            log.warning("%d of %d health samples refused by elasticsearch: %s", len(samples) - stored, len(samples),
                        str(first)[:300])
        return stored

    def run_once(self) -> list[MetricSample]:
        """Sample and store; a failure is a warning, never an exception."""
        samples = self.sample()
        with self._lock:
            self._recent.append(samples)
        failed = list(self.failed)
        try:
            self.write(samples)
        except Exception as exc:  # noqa: BLE001 - elasticsearch down: this round's samples are lost, the next come
            failed.append("elasticsearch:write")
            log.warning("writing %d health samples failed (%s: %s)", len(samples), type(exc).__name__, str(exc)[:300],
                        extra={"fields": {"event.action": "health-sample", "event.outcome": "failure",
                                          "meteoflow.health": {"source": "elasticsearch:write"}}})
        # Prometheus still gets the round: it does not depend on Elasticsearch.
        self.metrics.update(samples, self.clock(), failed)
        return samples

    def recent(self) -> list[MetricSample]:
        """The samples of the last KEPT_ROUNDS rounds, whether or not Elasticsearch took them."""
        with self._lock:
            return [sample for round_ in self._recent for sample in round_]

    def health(self, now: datetime, max_age_seconds: float) -> HealthFacts:
        return health_facts(self.recent(), now, max_age_seconds)

    def close(self) -> None:
        self.kafka.close()
        if self._own_mongo is not None:
            self._own_mongo.close()


def run_sampler(sampler: HealthSampler, interval: float, stop: threading.Event,
                monotonic: Callable[[], float] | None = None) -> None:
    """Sample every `interval` seconds until `stop` is set (first round at once)."""
    import time

    monotonic = monotonic or time.monotonic
    while not stop.is_set():
        started = monotonic()
        try:
            sampler.run_once()
        except Exception:  # noqa: BLE001 - run_once never raises; this is the last guard of the thread
            log.exception("health sampling round failed")
        stop.wait(max(0.0, interval - (monotonic() - started)))
    sampler.close()


def start_sampler_thread(sampler: HealthSampler, interval: float, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=run_sampler, args=(sampler, interval, stop), name="health-sampler", daemon=True)
    thread.start()
    return thread
