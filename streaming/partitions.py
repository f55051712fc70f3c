"""Executor writes: on a Spark cluster each micro-batch is validated and written where it is read.

The driver path (streaming.job.BatchProcessor.process) collects a whole micro-batch into the
driver. On a cluster that makes the driver the bottleneck and its memory the limit, so here each
partition runs the SAME steps (streaming.records.split_batch, the sinks of streaming.sinks,
latest_per_region) inside its executor, with a MongoDB client and a dead-letter producer built once
per executor Python process, and sends back one small `PartitionSummary` (counts, timings, the
latest observed_at of each region it wrote). The driver collects only those rows, marks the
regions for forecasting and reports the batch as the driver path does.

Why partitions by Kafka key: the producer keys every record by its region, so Kafka keeps one
region in one Kafka partition, and Spark's Kafka source reads one Kafka partition into one Spark
partition. One region's records of a batch are thus written, and its hourly statistics recomputed
from what is stored, by one task: two tasks never race on the same (region, hour). With
METEOFLOW_STREAMING_EXECUTOR_PARTITIONS=n the batch is repartitioned by the same key (hash of the
key, so the property holds) into n partitions, for more parallelism than the topic has partitions.

Exactly-once effect is unchanged: every write is an idempotent upsert keyed by _id, a failing
partition raises, Spark retries its task (a retried task rewrites the same documents) and, if it
keeps failing, fails the batch, which is then not committed and is replayed on restart.

What executors need: the same Python with Meteoflow's dependencies installed (PYSPARK_PYTHON is the
driver's interpreter, streaming/spark.py), and Meteoflow's code, which `ExecutorWrites` ships as a
zip of the `meteoflow` and `streaming` packages (SparkContext.addPyFile, like spark-submit
--py-files), so workers need no checkout. The Kafka connector jars reach them through spark.jars.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import socket
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

from meteoflow.clock import utc_now
from meteoflow.contracts import RecordLimits
from meteoflow.kafka import KafkaRecord
from meteoflow.settings import Settings
from streaming.job import BatchProcessor, BatchReport
from streaming.records import latest_per_region, split_batch
from streaming.daily import DailyStatsSink
from streaming.sinks import (
    DEADLETTER_SEND_TIMEOUT_SECONDS, BatchSinks, DeadLetterSink, HourlyStatsSink, ObservationSink, RegionLatestSink,
    RegionSeriesSink, Stopwatch,
)

SERVICE = "streaming"
EXECUTOR_STEPS = ("validate", "deadletters", "writes", "observations", "stats", "series", "daily", "latest")
log = logging.getLogger("streaming.partitions")


@dataclass
class PartitionSummary:
    """What one partition sends back to the driver: a few numbers, never its records."""

    rows: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    stored: int = 0
    dead_letters: int = 0
    stats_upserted: int = 0
    latest: dict[str, datetime] = field(default_factory=dict)  # region -> latest observed_at written
    durations_ms: dict[str, float] = field(default_factory=dict)
    executor: str = ""  # host:pid of the Python worker that wrote it

    @classmethod
    def merge(cls, parts: Iterable["PartitionSummary"]) -> "PartitionSummary":
        """The batch's totals; each step's duration is the slowest partition's (they run in parallel)."""
        total = cls()
        topics: Counter[str] = Counter()
        executors = set()
        for part in parts:
            total.rows += part.rows
            topics.update(part.by_topic)
            total.stored += part.stored
            total.dead_letters += part.dead_letters
            total.stats_upserted += part.stats_upserted
            for region, when in part.latest.items():
                if region not in total.latest or when > total.latest[region]:
                    total.latest[region] = when
            for step, ms in part.durations_ms.items():
                total.durations_ms[step] = max(ms, total.durations_ms.get(step, 0.0))
            if part.executor:
                executors.add(part.executor)
        total.by_topic = dict(topics)
        total.executor = ",".join(sorted(executors))
        return total


# One MongoDB client per server and one set of sinks per destination in each executor Python process
# (Spark reuses its Python workers across tasks and batches).
_CLIENTS: dict[str, Any] = {}
_SINKS: dict[tuple, BatchSinks] = {}
_LOGGING_TO: tuple | None = None


def _sinks(settings: Settings, producer_options: dict[str, Any]) -> BatchSinks:
    key = (settings.mongo_uri, settings.mongo_db, settings.kafka_bootstrap, settings.topic_deadletter,
           tuple(sorted(producer_options.items())))
    if key not in _SINKS:
        from meteoflow.kafka import make_producer
        from meteoflow.mongo import database, make_mongo_client

        if settings.mongo_uri not in _CLIENTS:
            _CLIENTS[settings.mongo_uri] = make_mongo_client(settings)
        db = database(settings, _CLIENTS[settings.mongo_uri])
        # Built here only when a caller asks for other producer options (tests make it refuse records).
        producer = make_producer(settings, client_id="streaming-deadletter",
                                 max_block_ms=DEADLETTER_SEND_TIMEOUT_SECONDS * 1000,
                                 **producer_options) if producer_options else None
        _SINKS[key] = BatchSinks(ObservationSink(db), HourlyStatsSink(db),
                                 DeadLetterSink(settings, logging.getLogger(SERVICE), producer),
                                 DailyStatsSink(db), RegionLatestSink(db), RegionSeriesSink(db))
    return _SINKS[key]


def _executor_logging(settings: Settings) -> None:
    """Executor log lines (a dead letter's reason) go where the driver's go: JSON to stderr (the
    executor's log) and to the pipeline.logs topic. Set up once per executor Python process and
    destination (these processes are Spark's Python workers, never the driver's own process)."""
    global _LOGGING_TO
    destination = (settings.kafka_bootstrap, settings.topic_logs, settings.log_level)
    if _LOGGING_TO != destination:
        from meteoflow.logs import setup_logging

        for handler in logging.getLogger().handlers:
            handler.close()  # the previous destination's Kafka handler: its client and thread
        setup_logging(SERVICE, settings, stream=sys.stderr)
        _LOGGING_TO = destination


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


@dataclass(frozen=True)
class PartitionWriter:
    """The function each partition runs; pickled with its settings to the executors."""

    settings: Settings
    limits: RecordLimits
    now: datetime  # the batch's processing time: stored_at / computed_at, as on the driver path
    producer_options: tuple[tuple[str, Any], ...] = ()

    def __call__(self, rows: Iterable[Any]) -> Iterator[PartitionSummary]:
        _executor_logging(self.settings)
        sinks = _sinks(self.settings, dict(self.producer_options))
        laps = Stopwatch({})
        records = [KafkaRecord.of(row) for row in rows]  # one partition: a share of one batch
        summary = self.write(records, sinks, laps)
        summary.durations_ms = laps.durations
        summary.executor = f"{socket.gethostname()}:{os.getpid()}"
        if records:
            log.info("partition of %d records: %d stored, %d dead letters, %d hourly stats (executor %s)",
                     len(records), summary.stored, summary.dead_letters, summary.stats_upserted, summary.executor)
        _flush_logs()
        yield summary

    def write(self, records: list[KafkaRecord], sinks: BatchSinks, laps: Stopwatch) -> PartitionSummary:
        split = split_batch(records, self.now, self.limits)
        laps.lap("validate")
        # The driver path's steps (BatchSinks), daily statistics and region_latest included: a region's
        # records are in this partition only (see the module's docstring), so its day and latest are decided here.
        counts = sinks.write(split, self.now, laps)
        return PartitionSummary(rows=len(records), by_topic=dict(Counter(r.topic for r in records)),
                                stored=counts.stored, dead_letters=counts.dead_letters,
                                stats_upserted=counts.stats_upserted, latest=latest_per_region(split.observations))


class ExecutorWrites:
    """The driver's side: ships the code once, runs a batch's partitions, collects their summaries."""

    def __init__(self, settings: Settings, limits: RecordLimits):
        self.settings = settings
        self.limits = limits
        self.producer_options: dict[str, Any] = {}  # tests: options of the executors' dead-letter producer
        self._shipped: set[int] = set()  # SparkContexts that have the code

    def process(self, batch, batch_id: int, processor: BatchProcessor, durations: dict[str, float]) -> BatchReport:
        """foreachBatch's work on a cluster: what BatchProcessor.process does, partition by partition."""
        watch = Stopwatch(durations)
        total = self.run(batch)
        watch.lap("collect")  # the executors' Spark job, and collecting one summary per partition
        for step in EXECUTOR_STEPS:  # inside "collect": the slowest partition's
            durations[step] = total.durations_ms.get(step, 0.0)
        report = BatchReport(batch_id=batch_id, input_rows=total.rows, input_by_topic=total.by_topic,
                             stored=total.stored, dead_letters=total.dead_letters,
                             stats_upserted=total.stats_upserted, durations_ms=durations)
        # As on the driver path, forecasts happen off the write path (StreamingJob's forecast thread):
        # the mark, written before the batch is committed, makes sure they happen.
        processor.refresher.mark(total.latest)
        watch.lap("mark")
        log.debug("batch %d written by executors %s", batch_id, total.executor)
        return report

    def run(self, batch, now: datetime | None = None) -> PartitionSummary:
        """Validate and write `batch` (a micro-batch DataFrame of the Kafka columns) on the executors."""
        spark = batch.sparkSession
        self.ship_code(spark)
        if self.settings.streaming_executor_partitions:
            batch = batch.repartition(self.settings.streaming_executor_partitions, "key")
        writer = PartitionWriter(self.settings, self.limits, now or utc_now(),
                                 tuple(sorted(self.producer_options.items())))
        return PartitionSummary.merge(batch.rdd.mapPartitions(writer).collect())

    def ship_code(self, spark) -> None:
        sc = spark.sparkContext
        if id(sc) in self._shipped:
            return
        path = code_zip(self.settings.run_dir / "spark" / "pyfiles")
        if path.name not in {uri.rsplit("/", 1)[-1] for uri in sc.listFiles}:
            before = list(sys.path)
            sc.addPyFile(str(path))
            # addPyFile also puts the zip on this driver's sys.path; the driver keeps importing its own code.
            sys.path[:] = [p for p in sys.path if p in before]
        self._shipped.add(id(sc))


def code_zip(directory: Path) -> Path:
    """A zip of the `meteoflow` and `streaming` packages (what executors import), named by its content
    so that changed code is a new file (Spark refuses a second file of the same name)."""
    import meteoflow
    import streaming

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in (meteoflow, streaming):
            root = Path(package.__file__).resolve().parent
            for path in sorted(root.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    info = zipfile.ZipInfo(str(Path(root.name) / path.relative_to(root)), date_time=(1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, path.read_bytes())
    data = buffer.getvalue()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"meteoflow-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    if not target.exists():
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
    return target
