"""One producer run, the Kafka publisher, and the schedule that repeats runs.

A run: fetch from the source -> stamp batch_id/produced_at -> validate every record with
the shared schema (invalid ones and unusable responses go to the dead-letter topic) ->
publish one message per observation (key = region id) -> flush -> log one summary line.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import schedule

from meteoflow.clock import utc_now
from meteoflow.contracts import BACKFILL_BATCH_PREFIX, DeadLetter, FailedRegion, ProducerRunEvent
from meteoflow.metrics import ProducerMetrics
from meteoflow.contracts import Observation, RecordLimits, rejection_reason, validate_observation
from meteoflow.settings import Settings
from producer.regions import Region
from producer.sources.base import FatalSourceError, RegionFailure, Source, SourceResult

SERVICE = "producer"



def new_batch_id(source: str, now: datetime, backfill: bool = False) -> str:
    """Unique per run and readable: `20260101T120000Z-simulator-1a2b3c4d5e6f`
    (`backfill-...` for back-filled history, see contracts.BACKFILL_BATCH_PREFIX)."""
    batch_id = f"{now.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{source}-{uuid.uuid4().hex[:12]}"
    return BACKFILL_BATCH_PREFIX + batch_id if backfill else batch_id


# --- pure: from what a source returned to what gets published ------------------------------
@dataclass
class Batch:
    batch_id: str
    source: str
    observations: list[Observation] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    failures: list[RegionFailure] = field(default_factory=list)


def prepare_batch(result: SourceResult, source: str, batch_id: str, produced_at: datetime,
                  limits: RecordLimits = RecordLimits()) -> Batch:
    """Validate each candidate; invalid ones become dead letters and failed regions."""
    batch = Batch(batch_id=batch_id, source=source, failures=list(result.failures))
    for record in result.records:
        candidate = {**record, "source": source, "batch_id": batch_id, "produced_at": produced_at}
        try:
            batch.observations.append(validate_observation(candidate, now=produced_at, max_ahead=limits.max_ahead))
        except Exception as exc:  # noqa: BLE001 - one record can cost only itself
            region_id = str(record.get("region_id") or "(unknown)")[:64]
            reason = f"invalid record: {rejection_reason(exc)}"
            batch.failures.append(RegionFailure(region_id, reason))
            batch.dead_letters.append(DeadLetter.build(candidate, reason, SERVICE, limits.max_payload_bytes,
                                                       key=region_id))
    for failure in result.failures:
        if failure.payload is not None:  # something was received but could not be used
            batch.dead_letters.append(DeadLetter.build(failure.payload, failure.reason, SERVICE,
                                                       limits.max_payload_bytes, key=failure.region_id))
    return batch


@dataclass
class RunSummary:
    batch_id: str
    source: str
    records: int
    regions_ok: list[str]
    regions_failed: list[dict[str, str]]  # [{"region_id": ..., "reason": ...}]
    dead_letters: int
    duration_s: float

    @property
    def regions_failed_count(self) -> int:
        return len({f["region_id"] for f in self.regions_failed})

    def event(self) -> ProducerRunEvent:
        """The body of the run's log line."""
        return ProducerRunEvent(
            batch_id=self.batch_id, source=self.source, records=self.records, regions_ok=len(self.regions_ok),
            regions_failed=[FailedRegion(**f) for f in self.regions_failed],
            regions_failed_count=self.regions_failed_count, dead_letters=self.dead_letters,
            duration_s=round(max(self.duration_s, 0.0), 3))


def summarize(batch: Batch, send_errors: dict[int, str], duration_s: float) -> RunSummary:
    """send_errors: index in batch.observations -> why Kafka did not take it."""
    failed = [{"region_id": f.region_id, "reason": f.reason} for f in batch.failures]
    failed += [{"region_id": batch.observations[i].region_id, "reason": reason} for i, reason in send_errors.items()]
    failed_ids = {f["region_id"] for f in failed}
    published = [o for i, o in enumerate(batch.observations) if i not in send_errors]
    ok = sorted({o.region_id for o in published} - failed_ids)
    return RunSummary(batch.batch_id, batch.source, len(published), ok, failed, len(batch.dead_letters), duration_s)


# --- Kafka -----------------------------------------------------------------------------
class KafkaPublisher:
    """Observations to the observations topic, dead letters to the dead-letter topic."""

    def __init__(self, settings: Settings, producer=None, flush_timeout_s: float = 60.0,
                 metrics: ProducerMetrics | None = None):
        from meteoflow.kafka import make_producer

        self.settings = settings
        self.producer = producer or make_producer(settings, client_id=SERVICE)
        self.flush_timeout_s = flush_timeout_s
        self.metrics = metrics or ProducerMetrics()

    def _send_all(self, topic: str, messages: list[tuple[bytes | None, bytes]]) -> tuple[list, dict[int, str]]:
        futures, errors = [], {}
        for i, (key, value) in enumerate(messages):
            try:
                futures.append((i, self.producer.send(topic, key=key, value=value)))
            except Exception as exc:  # noqa: BLE001 - e.g. no metadata: the rest would fail the same way
                reason = f"Kafka send failed: {type(exc).__name__}: {exc}"
                errors.update({j: reason for j in range(i, len(messages))})
                break
        return futures, errors

    def publish(self, batch: Batch) -> dict[int, str]:
        """Send and flush; return index -> reason for observations Kafka did not acknowledge."""
        obs_futures, errors = self._send_all(
            self.settings.topic_observations, [(o.key, o.to_message()) for o in batch.observations])
        dl_futures, dl_errors = self._send_all(
            self.settings.topic_deadletter, [(d.key.encode() if d.key else None, d.to_message())
                                             for d in batch.dead_letters])
        try:
            self.producer.flush(timeout=self.flush_timeout_s)
        except Exception:  # noqa: BLE001 - the futures below say which messages are missing
            pass
        for futures, errs in ((obs_futures, errors), (dl_futures, dl_errors)):
            for i, future in futures:
                try:
                    future.get(timeout=0)
                except Exception as exc:  # noqa: BLE001
                    errs[i] = f"Kafka did not acknowledge: {type(exc).__name__}: {exc}"
        for topic, sent, errs in ((self.settings.topic_observations, len(batch.observations), errors),
                                  (self.settings.topic_deadletter, len(batch.dead_letters), dl_errors)):
            self.metrics.published.labels(topic).inc(sent - len(errs))
            if errs:
                self.metrics.kafka_errors.labels(topic).inc(len(errs))
        if dl_errors:
            logging.getLogger(SERVICE).error("%d dead letter(s) could not be written to %s: %s", len(dl_errors),
                                             self.settings.topic_deadletter, next(iter(dl_errors.values())))
        return errors

    def close(self) -> None:
        try:
            self.producer.flush(timeout=self.flush_timeout_s)
        finally:
            self.producer.close(timeout=10)


# --- runs and schedule ---------------------------------------------------------------------
class Producer:
    def __init__(self, settings: Settings, regions: list[Region], source: Source, publisher: KafkaPublisher,
                 log: logging.Logger | None = None, clock: Callable[[], datetime] = utc_now,
                 metrics: ProducerMetrics | None = None):
        self.settings = settings
        self.regions = regions
        self.source = source
        self.publisher = publisher
        self.log = log or logging.getLogger(SERVICE)
        self.clock = clock
        self.metrics = metrics or ProducerMetrics()

    def run_once(self) -> RunSummary:
        """One batch. FatalSourceError propagates (the caller stops); the rest is in the summary."""
        began = time.monotonic()
        now = self.clock()
        result = self.source.fetch(self.regions, now)
        summary = None
        if result.backfill:
            # History goes first, in its own batch, so a region's records stay in time order.
            history = SourceResult(records=result.backfill, failures=[] if result.records else result.failures)
            summary = self._publish(history, new_batch_id(self.source.name, now, backfill=True), began)
        if result.records or not result.backfill:
            live = SourceResult(records=result.records, failures=result.failures)
            summary = self._publish(live, new_batch_id(self.source.name, now), began)
        return summary

    def _publish(self, result: SourceResult, batch_id: str, began: float) -> RunSummary:
        produced_at = self.clock()
        batch = prepare_batch(result, self.source.name, batch_id, produced_at=produced_at,
                              limits=self.settings.record_limits)
        send_errors = self.publisher.publish(batch)
        summary = summarize(batch, send_errors, time.monotonic() - began)
        self._log_summary(summary)
        self.metrics.dead_letters.inc(summary.dead_letters)
        self.metrics.region_failures.inc(summary.regions_failed_count)
        if summary.records:
            self.metrics.last_success.set(produced_at.timestamp())
        return summary

    def run_measured(self) -> RunSummary:
        """run_once, counted in the run metrics (outcome and duration)."""
        began = time.monotonic()
        try:
            summary = self.run_once()
        except Exception:
            self.metrics.runs.labels("failed").inc()
            raise
        finally:
            self.metrics.run_duration.observe(time.monotonic() - began)
        self.metrics.runs.labels("partial" if summary.regions_failed else "ok").inc()
        return summary

    def _log_summary(self, summary: RunSummary) -> None:
        level = logging.WARNING if summary.regions_failed else logging.INFO
        failed = ", ".join(sorted({f["region_id"] for f in summary.regions_failed})) or "none"
        self.log.log(level, "run %s (%s): %d record(s), %d region(s) ok, failed: %s, %.2fs",
                     summary.batch_id, summary.source, summary.records, len(summary.regions_ok), failed,
                     summary.duration_s,
                     extra=summary.event().log_extra())

    def run_forever(self, stop: threading.Event, max_runs: int | None = None) -> int:
        """Run now, then on the source's interval until `stop` is set (checked between runs),
        the source is exhausted or `max_runs` is reached. A run that overruns its interval
        delays the next one (runs are sequential, the next is scheduled when one ends).
        Returns the number of runs."""
        scheduler = schedule.Scheduler()
        runs = 0

        def job():
            nonlocal runs
            runs += 1
            try:
                self.run_measured()
            except FatalSourceError:
                raise
            except Exception:  # noqa: BLE001 - one broken run must not end the service
                self.log.exception("run failed; the next run is on schedule")
            if self.source.exhausted or (max_runs is not None and runs >= max_runs):
                stop.set()
                return schedule.CancelJob
            job_ref.interval = self.source.interval_seconds()  # the simulator's clock changes pace
            return None

        job_ref = scheduler.every(self.source.interval_seconds()).seconds.do(job)
        scheduler.run_all()
        while not stop.is_set():
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            if idle is None:
                break
            stop.wait(min(max(idle, 0.0), 1.0))
        return runs
