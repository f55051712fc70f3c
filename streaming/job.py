"""The Spark side: Kafka source, foreachBatch, progress listener.

`foreachBatch` makes ONE pass over a micro-batch: select the Kafka columns, collect once
(batches are thousands of rows), then plain Python runs the sinks (streaming.sinks.BatchSinks):
dead letters, then three chains side by side (observations; hourly stats -> region series ->
region_latest; daily stats), then mark the regions for forecasts.
Exactly-once effect comes from Spark's checkpoint (a batch is committed only after foreachBatch
returns) plus idempotent writes (a retried batch rewrites the same documents).

Forecasts are not on this path: a batch only marks its regions (forecast_state), and the forecast
step (ForecastRefresher.refresh) runs in its own thread every forecast_refresh_seconds, so a slow
or stopped forecasting API never holds a batch back. A marked region stays marked until a refresh
has dealt with it, so none is lost across crashes or outages.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery, StreamingQueryListener

from meteoflow.clock import utc_now
from meteoflow.kafka import KafkaRecord
from meteoflow.contracts import ForecastRunSummary, RecordLimits, StreamingBatchEvent
from meteoflow.metrics import StreamingMetrics
from meteoflow.mongo import database, make_mongo_client
from meteoflow.settings import Settings
from streaming.archive import ArchiveQuery, caught_up
from streaming.daily import DailyStatsSink, seed_daily_stats
from streaming.forecasts import ForecastClient, ForecastOutcome, ForecastRefresher, RetryTimer
from streaming.records import latest_per_region, split_batch
from streaming.sinks import (
    BatchSinks, DeadLetterSink, HourlyStatsSink, ObservationSink, RegionLatestSink, RegionSeriesSink, Stopwatch,
    backfill_region_latest, ensure_indexes,
)

# The columns of KafkaRecord; Kafka's timestamp as epoch milliseconds, as kafka-python gives it
# to the shipper (a collected TimestampType would be a naive datetime in the driver's time zone).
KAFKA_COLUMNS = ("topic", "partition", "offset", "key", "value", "unix_millis(timestamp) AS timestamp")
# Spark 4.1.1's V2 Kafka stream NPEs in its source metrics when a restart re-runs the batch that
# was in flight (KafkaMicroBatchStream.metrics wraps a null latestPartitionOffsets in Some), so the
# job could never get past a crash. The V1 Kafka source reads the same offsets and options and
# reports no such metrics.
KAFKA_V1_SOURCE = {"spark.sql.streaming.disabledV2MicroBatchReaders":
                   "org.apache.spark.sql.kafka010.KafkaSourceProvider"}
# A Kafka consumer keeps one fetch in flight after each poll; Spark's cached consumer seeks to the next
# batch's offsets and waits out that fetch, which the broker holds for fetch.max.wait.ms (500 ms by
# default) when no new record arrives: every task of a small batch then took ~500 ms (~1.1 s per
# batch, 3 partitions on 2 cores). The records are already there when a batch is planned, so the
# consumers need not wait for more.
KAFKA_FETCH_MAX_WAIT_MS = 10
QUERY_NAME = "meteoflow-observations"
RECENT_PROGRESS_LINES = 100


@dataclass
class BatchReport:
    batch_id: int
    input_rows: int = 0
    input_by_topic: dict[str, int] = field(default_factory=dict)
    stored: int = 0
    dead_letters: int = 0
    stats_upserted: int = 0
    forecast: ForecastRunSummary = field(default_factory=lambda: ForecastOutcome().summary())
    durations_ms: dict[str, float] = field(default_factory=dict)


class BatchProcessor:
    """The foreachBatch function, plus `process` which does the work on plain records."""

    # On a cluster: streaming.partitions.ExecutorWrites, which validates and writes on the executors.
    executor_writes = None

    def __init__(self, observations: ObservationSink, stats: HourlyStatsSink, refresher: ForecastRefresher,
                 deadletters: DeadLetterSink, reporter: "ProgressReporter", limits: RecordLimits = RecordLimits(),
                 metrics: StreamingMetrics | None = None, daily: DailyStatsSink | None = None,
                 latest: RegionLatestSink | None = None, series: RegionSeriesSink | None = None):
        self.limits = limits
        self.sinks = BatchSinks(observations, stats, deadletters, daily, latest, series)
        self.metrics = metrics or StreamingMetrics()
        self.refresher = refresher
        self.deadletters = deadletters
        self.reporter = reporter

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        durations: dict[str, float] = {}
        watch = Stopwatch(durations)
        # --- executor writes (streaming/partitions.py): nothing collected whole to the driver -------
        if self.executor_writes is not None:
            report = self.executor_writes.process(batch, batch_id, self, durations)
        # --- otherwise the batch is collected and processed here ------------------------------------
        else:
            # kafka_stream selected KAFKA_COLUMNS, KafkaRecord's fields in its order: a Row is a tuple of
            # them (by position: a Row's lookup by name cost ~0.2 s per 33,600 rows while the store idled)
            records = [KafkaRecord(*row) for row in batch.collect()]
            watch.lap("collect")
            report = self.process(records, batch_id, durations)
        watch.total()
        self.metrics.batch_done(report, utc_now())
        self.reporter.batch_done(report)

    def process(self, records: list[KafkaRecord], batch_id: int,
                durations: dict[str, float] | None = None) -> BatchReport:
        report = BatchReport(batch_id=batch_id, input_rows=len(records),
                             input_by_topic=dict(Counter(r.topic for r in records)))
        if durations is not None:
            report.durations_ms = durations
        watch = Stopwatch(report.durations_ms)
        now = utc_now()
        split = split_batch(records, now, self.limits)
        watch.lap("validate")
        counts = self.sinks.write(split, now, watch)
        report.dead_letters, report.stored, report.stats_upserted = counts.dead_letters, counts.stored, counts.stats_upserted
        # Forecasts happen off this path (StreamingJob's forecast thread); the mark is what makes
        # sure they happen, so it is written before the batch is committed.
        self.refresher.mark(latest_per_region(split.observations))
        watch.lap("mark")
        if durations is None:  # called on its own (not from foreachBatch): this is the whole batch
            watch.total()
            self.metrics.batch_done(report, utc_now())
        return report


class ProgressReporter:
    """Joins what foreachBatch measured with Spark's progress event: one JSON line per batch."""

    def __init__(self, log: logging.Logger, keep_lines: int | None = RECENT_PROGRESS_LINES):
        self.log = log
        self._pending: dict[int, BatchReport] = {}
        self._lock = threading.Lock()
        # The latest progress lines (all of them only for a bounded run: a job left running for
        # months must not grow a list per batch).
        self.logged: deque[StreamingBatchEvent] = deque(maxlen=keep_lines)

    def batch_done(self, report: BatchReport) -> None:
        with self._lock:
            self._pending[report.batch_id] = report
            # A progress event that never comes must not keep its report forever.
            stale = [self._pending.pop(b) for b in sorted(self._pending)[:-RECENT_PROGRESS_LINES]]
        for old in stale:
            self._log_without_progress(old)

    def on_progress(self, progress) -> None:
        with self._lock:
            report = self._pending.pop(progress.batchId, None)
        if report is None:
            return  # an idle trigger: no batch ran
        end_offsets = {}
        for source in progress.sources:
            try:
                end_offsets.update(json.loads(source.endOffset or "{}"))
            except ValueError:
                pass
        spark_ms = dict(progress.durationMs or {})
        self._log(report, rows_per_second=progress.processedRowsPerSecond, input_rows=progress.numInputRows,
                  end_offsets=end_offsets, trigger_ms=spark_ms.get("triggerExecution"))

    def flush(self) -> None:
        """Log batches whose progress event never came (query stopped right after them)."""
        with self._lock:
            reports, self._pending = list(self._pending.values()), {}
        for report in reports:
            self._log_without_progress(report)

    def _log_without_progress(self, report: BatchReport) -> None:
        total_s = report.durations_ms.get("total", 0) / 1000
        self._log(report, rows_per_second=report.input_rows / total_s if total_s else None,
                  input_rows=report.input_rows, end_offsets=None, trigger_ms=None)

    def wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return
            time.sleep(0.1)

    def _log(self, report: BatchReport, rows_per_second, input_rows, end_offsets, trigger_ms) -> None:
        durations = dict(report.durations_ms)
        if trigger_ms is not None:
            durations["spark_trigger"] = trigger_ms
        if rows_per_second is not None:
            rows_per_second = round(rows_per_second, 1) if math.isfinite(rows_per_second) else None
        event = StreamingBatchEvent(
            batch_id=report.batch_id, input_rows=input_rows, rows_per_second=rows_per_second,
            durations_ms=durations, kafka_end_offsets=end_offsets, dead_letters=report.dead_letters,
            stored=report.stored, stats_upserted=report.stats_upserted, forecast=report.forecast)
        self.logged.append(event)
        self.log.info(
            "batch %d: %d rows, %d stored, %d dead letters, forecasts ok=%s failed=%s skipped=%s in %.0f ms",
            report.batch_id, input_rows, report.stored, report.dead_letters, report.forecast.ok,
            report.forecast.failed, report.forecast.skipped, durations.get("total", 0), extra=event.log_extra(),
        )


class ProgressListener(StreamingQueryListener):
    def __init__(self, reporter: ProgressReporter):
        self.reporter = reporter

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        if event.progress.name != QUERY_NAME:  # the archive query's batch ids are its own
            return
        try:
            self.reporter.on_progress(event.progress)
        except Exception:  # noqa: BLE001 - a logging problem must never fail the query
            self.reporter.log.exception("could not log streaming progress")

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass


def kafka_stream(spark: SparkSession, settings: Settings) -> DataFrame:
    for key, value in KAFKA_V1_SOURCE.items():
        spark.conf.set(key, value)
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", settings.topic_observations)
        .option("startingOffsets", settings.streaming_starting_offsets)
        .option("maxOffsetsPerTrigger", str(settings.streaming_max_offsets_per_trigger))
        .option("failOnDataLoss", "false")
        .option("kafka.fetch.max.wait.ms", str(KAFKA_FETCH_MAX_WAIT_MS))
        .load()
        .selectExpr(*KAFKA_COLUMNS)
    )


class StreamingJob:
    """Everything one run of the job owns: MongoDB client, sinks, listener, retry timer."""

    def __init__(self, settings: Settings, spark: SparkSession, log: logging.Logger | None = None,
                 forecast_client: ForecastClient | None = None, keep_progress_lines: int | None = RECENT_PROGRESS_LINES,
                 metrics: StreamingMetrics | None = None):
        self.settings = settings
        self.metrics = metrics or StreamingMetrics()
        self.spark = spark
        self.log = log or logging.getLogger("streaming")
        self.mongo = make_mongo_client(settings)
        self.db = database(settings, self.mongo)
        backfill_region_latest(self.db)  # first: ensure_indexes gives its documents their day if they lack one
        ensure_indexes(self.db)
        seed_daily_stats(self.db)
        self.refresher = ForecastRefresher(self.db, settings, forecast_client, metrics=self.metrics)
        self.deadletters = DeadLetterSink(settings, self.log)
        self.reporter = ProgressReporter(self.log, keep_progress_lines)
        self.processor = BatchProcessor(ObservationSink(self.db), HourlyStatsSink(self.db), self.refresher,
                                        self.deadletters, self.reporter, settings.record_limits, self.metrics,
                                        daily=DailyStatsSink(self.db), latest=RegionLatestSink(self.db),
                                        series=RegionSeriesSink(self.db))
        # --- executor writes: on a cluster (or METEOFLOW_STREAMING_EXECUTOR_WRITES=on) -------------
        if settings.executor_writes:
            from streaming.partitions import ExecutorWrites  # it imports this module: loaded on demand

            self.processor.executor_writes = ExecutorWrites(settings, settings.record_limits)
        self.listener = ProgressListener(self.reporter)
        self.timer: RetryTimer | None = None
        self.query: StreamingQuery | None = None
        self.archive = ArchiveQuery(settings) if settings.archive_enabled else None

    def start(self, available_now: bool = False, forecasts: bool = True) -> StreamingQuery:
        """Start the query, and (`forecasts`) the forecast thread that refreshes marked regions."""
        self.spark.streams.addListener(self.listener)
        writer = (
            kafka_stream(self.spark, self.settings).writeStream.foreachBatch(self.processor)
            .queryName(QUERY_NAME)
            .option("checkpointLocation", str(self.settings.checkpoint_dir))
        )
        if available_now:
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=f"{self.settings.streaming_trigger_seconds} seconds")
        self.query = writer.start()
        if forecasts:
            self.timer = RetryTimer(self.refresher, self.settings.forecast_refresh_seconds, self.log,
                                    behind=lambda: not caught_up(self.query),
                                    backlog_wait=self.settings.forecast_backlog_wait_seconds).start()
        if self.archive is not None and available_now:  # the raw archive: its own source, sink and checkpoint
            self.archive.start(kafka_stream(self.spark, self.settings), available_now)
        elif self.archive is not None:
            # Running: once the main query has caught up and the forecasts have followed (the archive's
            # first trigger writes the whole backlog, on the cores those fits need), archive_trigger_seconds
            # after the start at the latest (ArchiveQuery).
            self.archive.start_when(
                lambda: kafka_stream(self.spark, self.settings),
                lambda: caught_up(self.query) and (self.timer is None or self.timer.settled.is_set()))
        return self.query

    def run_until_idle(self) -> list[StreamingBatchEvent]:
        """Process what the topic holds now (Trigger.AvailableNow), then refresh the forecasts of
        the regions it marked once, stop, return the progress lines.

        Raises the batch's error if one failed; its offsets are then not committed."""
        try:
            self.start(available_now=True, forecasts=False).awaitTermination()
            self.refresher.refresh(force=True)
        finally:
            self.stop()  # waits for the last progress events
        return list(self.reporter.logged)

    def stop(self) -> None:
        """Stop the query (the batch in flight finishes, or is replayed on restart), then the rest.

        Every step is attempted even if Spark is already gone (its JVM killed): nothing is lost
        then either, the uncommitted batch is replayed."""
        steps = [
            ("retry timer", lambda: self.timer and self.timer.stop()),
            ("query", lambda: self.query is not None and self.query.isActive and self.query.stop()),
            ("archive query", lambda: self.archive and self.archive.stop()),
            ("progress", lambda: (self.reporter.wait_idle(timeout=3), self.reporter.flush())),
            ("listener", lambda: self.spark.streams.removeListener(self.listener)),
            ("dead-letter producer", self.deadletters.close),
            ("MongoDB client", self.mongo.close),
        ]
        for name, step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - keep stopping the other parts
                self.log.warning("stopping the %s failed: %s", name, str(exc)[:300])


def run_until_idle(settings: Settings, spark: SparkSession, log: logging.Logger | None = None,
                   forecast_client: ForecastClient | None = None,
                   metrics: StreamingMetrics | None = None) -> list[StreamingBatchEvent]:
    """Process everything in the topic now (Trigger.AvailableNow) and return the progress lines."""
    return StreamingJob(settings, spark, log, forecast_client, keep_progress_lines=None,
                        metrics=metrics).run_until_idle()
