"""The raw archive: every valid observation also written by Spark to Parquet, exactly once.

A second streaming query on the observations topic, beside the foreachBatch one: each value is
judged by the same code as the main query (`split_batch`: the one schema, plus "storable"), the
invalid ones are dropped here (the main query dead-letters them), and the rest go to Spark's file
sink partitioned by `date` (UTC day of observed_at) and `region_id`. The file sink commits each
batch's files in `<archive>/_spark_metadata` together with the query's own checkpoint, so a
restart (or a crash mid-batch) never leaves a record twice for readers that go through Spark
(`read_archive`). Reset the checkpoint only together with the archive: a new checkpoint over an
old archive would see its batch ids as already written and skip them.

The location is any Hadoop-compatible URI (settings.archive_location). The columns are the
observation's fields, plus rain_1h/snow_1h (mm, null when absent) whether or not the schema
has them yet, and where the record came from (kafka_partition, kafka_offset).
"""

from __future__ import annotations

import ast
import json
import threading
import time
import types
import typing
from datetime import datetime
from typing import Any, Callable, Literal

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming import StreamingQuery

from meteoflow.contracts import OBSERVATION_FIELDS, Observation, RecordLimits
from meteoflow.kafka import KafkaRecord
from meteoflow.settings import Settings
from streaming.records import split_batch

QUERY_NAME = "meteoflow-archive"
PRECIPITATION_FIELDS = ("rain_1h", "snow_1h")  # mm in the last hour, OpenWeatherMap's rain.1h / snow.1h
PARTITION_COLUMNS = ("date", "region_id")
STOP_TIMEOUT_SECONDS = 120  # an AvailableNow run is let finish this long before it is stopped
READY_POLL_SECONDS = 0.5  # how often a deferred start looks whether the main query has caught up


def _spark_type(annotation: Any) -> T.DataType:
    """The Spark type of an Observation field (its optional/annotated wrappers removed)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _spark_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _spark_type(inner)
    if origin is Literal or annotation is str:
        return T.StringType()
    if annotation is float:
        return T.DoubleType()
    if annotation is int:
        return T.LongType()
    if annotation is bool:
        return T.BooleanType()
    if annotation is datetime:
        return T.TimestampType()
    raise TypeError(f"no Spark type for Observation field type {annotation!r}")


def archive_schema() -> T.StructType:
    """The archive's columns, partition columns last (as Spark reads them back)."""
    fields = [T.StructField(name, _spark_type(Observation.model_fields[name].annotation), True)
              for name in OBSERVATION_FIELDS if name != "region_id"]
    fields += [T.StructField(name, T.DoubleType(), True) for name in PRECIPITATION_FIELDS
               if name not in OBSERVATION_FIELDS]
    fields += [T.StructField("kafka_partition", T.IntegerType(), True),
               T.StructField("kafka_offset", T.LongType(), True),
               T.StructField("date", T.StringType(), True), T.StructField("region_id", T.StringType(), True)]
    return T.StructType(fields)


ARCHIVE_COLUMNS = tuple(f.name for f in archive_schema().fields)


def archive_row(obs: Observation, partition: int, offset: int) -> tuple:
    """One archive row of a valid observation, in archive_schema() order."""
    values = obs.model_dump()
    for name in PRECIPITATION_FIELDS:  # the schema may not have them yet (getattr: before and after it does)
        values[name] = getattr(obs, name, None)
    values.update(kafka_partition=partition, kafka_offset=offset, date=obs.observed_at.strftime("%Y-%m-%d"))
    return tuple(values[name] for name in ARCHIVE_COLUMNS)


def valid_row(limits: RecordLimits):
    """The UDF body: a Kafka value to its archive row, or None when the main query dead-letters it."""

    def judge(value, partition, offset):  # no type hints: Spark would read them as a pandas UDF's
        record = KafkaRecord("archive", partition, offset, None, bytes(value) if value is not None else None)
        split = split_batch([record], limits=limits)  # the main query's judgement, one record at a time
        return archive_row(split.observations[0], partition, offset) if split.observations else None

    return judge


def archive_rows(stream: DataFrame, limits: RecordLimits) -> DataFrame:
    """The valid observations of a Kafka stream (KAFKA_COLUMNS) as archive rows."""
    schema = archive_schema()
    judge = F.udf(valid_row(limits), schema)
    return (stream.select(judge("value", "partition", "offset").alias("row"))
            .where(F.col("row").isNotNull()).select("row.*"))


class ArchiveQuery:
    """The archive's streaming query: started and stopped by StreamingJob.

    A running job starts it with `start_when`: once the main query has caught up, so that a backlog
    is stored (and visible) before the archive writes its share of it, one file per date and region
    (a 7-day backlog of 200 regions is 1,400 files: on 2 cores it took 40% of the catch-up rate).
    The archive writes every archive_trigger_seconds anyway, so it waits at most that long."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.query: StreamingQuery | None = None
        self.available_now = False
        self.start_error: BaseException | None = None  # a deferred start that failed
        self._starter: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self, stream: DataFrame, available_now: bool = False) -> StreamingQuery:
        rows = archive_rows(stream, self.settings.record_limits)
        # One file per (date, region) and trigger, not one per shuffle partition as well.
        writer = (rows.repartition(*PARTITION_COLUMNS).writeStream.format("parquet")
                  .partitionBy(*PARTITION_COLUMNS).queryName(QUERY_NAME)
                  .option("path", self.settings.archive_location)
                  .option("checkpointLocation", self.settings.archive_checkpoint))
        if available_now:
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=f"{self.settings.archive_trigger_seconds} seconds")
        self.available_now = available_now
        self.query = writer.start()
        return self.query

    def start_when(self, stream: Callable[[], DataFrame], ready: Callable[[], bool],
                   clock: Callable[[], float] = time.monotonic, poll_seconds: float = READY_POLL_SECONDS) -> None:
        """Start the query (on `stream()`) from a thread once `ready()`, or archive_trigger_seconds after
        this call at the latest. A failure to start is kept for `failure()`."""
        deadline = clock() + self.settings.archive_trigger_seconds

        def wait_then_start() -> None:
            while not self._stopping.is_set():
                try:
                    due = clock() >= deadline or ready()
                    if due:
                        self.start(stream())
                        return
                except Exception as exc:  # noqa: BLE001 - reported by failure(): the job exits and restarts
                    self.start_error = exc
                    return
                self._stopping.wait(poll_seconds)

        self._starter = threading.Thread(target=wait_then_start, name="archive-start", daemon=True)
        self._starter.start()

    def failure(self) -> BaseException | None:
        """Why the query ended by itself (a failed batch, a failed start), or None while it runs
        (or waits to start, or was never started)."""
        if self.start_error is not None:
            return self.start_error
        if self.query is None or self.query.isActive:
            return None
        return self.query.exception() or RuntimeError(f"the {QUERY_NAME} query stopped")

    def stop(self) -> None:
        """Stop the query (a deferred start that has not happened will not); an AvailableNow run first
        writes what it was started for."""
        self._stopping.set()
        if self._starter is not None:
            self._starter.join()  # a start under way finishes: its query is stopped below
        if self.query is None or not self.query.isActive:
            return
        if self.available_now:
            self.query.awaitTermination(STOP_TIMEOUT_SECONDS)
        self.query.stop()


def caught_up(query: StreamingQuery | None) -> bool:
    """Whether the main query's last trigger read up to the newest offsets there were when it was
    planned (each source's endOffset is its latestOffset): no backlog is left. Spark reports idle
    triggers too, so an empty topic counts as caught up. (Not "read less than maxOffsetsPerTrigger":
    Spark rounds each partition's share down, so a capped trigger often reads a few records less.)"""
    progress = query.lastProgress if query is not None else None
    sources = (progress or {}).get("sources") or []
    return bool(sources) and all(
        source.get("latestOffset") is not None and _offsets(source.get("endOffset")) == _offsets(source["latestOffset"])
        for source in sources)


def _offsets(value: Any) -> Any:
    # pyspark's lastProgress gives a source's offsets as the text of a Python dict; Spark's JSON as JSON.
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return ast.literal_eval(value)


def read_archive(spark: SparkSession, location: str) -> DataFrame:
    """The archive as committed by the file sink (its _spark_metadata log: no partial batch).
    FileNotFoundError, saying where it looked, when there is none yet."""
    try:
        return spark.read.schema(archive_schema()).parquet(location)
    except AnalysisException as exc:
        if "PATH_NOT_FOUND" in str(exc) or "Path does not exist" in str(exc):
            raise FileNotFoundError(f"no archive at {location} (the streaming job writes it: "
                                    "METEOFLOW_ARCHIVE_ENABLED, METEOFLOW_ARCHIVE_URI)") from None
        raise
