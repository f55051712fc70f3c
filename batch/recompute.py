"""Recompute: rebuild hourly and daily statistics of a date range from the raw archive.

Spark reads the archive (only the committed files, only the partitions of the range), keeps one
row per (region, observed_at) (the latest Kafka record, as the streaming job's upserts do) and
groups the rows by region and day; the driver then builds each day's documents with the same
functions the streaming job uses (`hourly_stats`, `daily_stats`: exact sums, so the numbers do not
depend on the order Spark hands the rows over) and upserts them by deterministic _id. A second
run over the same archive writes nothing. Keys of the range that the archive no longer holds are
left as they are (MongoDB may hold statistics of days from before the archive existed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable

from pymongo.database import Database
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from meteoflow.contracts import DAILY_STATS, HOURLY_STATS, DailyPoint, DailyStats, HourlyStats, doc_id
from streaming.archive import read_archive
from streaming.daily import daily_stats
from meteoflow.contracts import hour_floor, hourly_stats
from streaming.sinks import ensure_indexes, upsert_all

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FLUSH_EVERY = 200  # region-days per MongoDB write (and per progress line)
POINT_COLUMNS = ("temp", "lat", "lon", "humidity", "wind_speed", "rain_1h", "snow_1h")


@dataclass
class RecomputeReport:
    region_days: int = 0
    observations: int = 0
    hourly: int = 0
    daily: int = 0
    hourly_written: int = 0  # new or changed documents (0 when the statistics were already right)
    daily_written: int = 0
    skipped_rows: int = 0  # archive rows no contract accepts (logged)


def day_groups(spark: SparkSession, location: str, start: date, end: date, region: str | None):
    """One row per (region, day) of the range: region_id, date, points (deduplicated observations)."""
    rows = read_archive(spark, location).where(F.col("date").between(start.isoformat(), end.isoformat()))
    if region is not None:
        rows = rows.where(F.col("region_id") == region)
    latest = Window.partitionBy("region_id", "observed_at").orderBy(F.desc("kafka_offset"), F.desc("kafka_partition"))
    rows = rows.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1")
    # Epoch microseconds, not TimestampType: collect() would turn those into naive local times.
    point = F.struct(F.unix_micros("observed_at").alias("observed_us"), *POINT_COLUMNS)
    return rows.groupBy("region_id", "date").agg(F.collect_list(point).alias("points"))


def to_points(region_id: str, rows, report: RecomputeReport, log) -> list[DailyPoint]:
    points = []
    for row in rows:
        when = EPOCH + timedelta(microseconds=row.observed_us)
        try:
            points.append(DailyPoint(_id=doc_id(region_id, when), region_id=region_id, observed_at=when,
                                     **{c: getattr(row, c) for c in POINT_COLUMNS}))
        except ValueError as exc:  # pydantic's ValidationError: one bad row costs only itself
            report.skipped_rows += 1
            log(f"skipped archive row {region_id}@{when:%Y-%m-%dT%H:%M:%SZ}: {str(exc)[:300]}")
    return points


def recompute(spark: SparkSession, db: Database, location: str, start: date, end: date,
              region: str | None = None, now: datetime | None = None,
              progress: Callable[[str], None] = print) -> RecomputeReport:
    """Rebuild the hourly and daily statistics of [start, end] (UTC days, inclusive) from the archive."""
    now = now or datetime.now(timezone.utc)
    ensure_indexes(db)  # the daily statistics' too
    report = RecomputeReport()
    groups = day_groups(spark, location, start, end, region).cache()
    try:
        total = groups.count()
        progress(f"recompute {start}..{end}{f' region {region}' if region else ''}: "
                 f"{total} region-days in the archive at {location}")
        hourly: list[HourlyStats] = []
        daily: list[DailyStats] = []
        for row in groups.toLocalIterator():
            points = to_points(row.region_id, row.points, report, progress)
            report.region_days += 1
            report.observations += len(points)
            hourly += hourly_stats({(p.region_id, hour_floor(p.observed_at)) for p in points}, points, now)
            day = datetime.fromisoformat(row.date).replace(tzinfo=timezone.utc)
            daily += daily_stats([(row.region_id, day)], points, now)
            if report.region_days % FLUSH_EVERY == 0 or report.region_days == total:
                flush(db, hourly, daily, report)
                hourly, daily = [], []
                progress(f"  {report.region_days}/{total} region-days ({100 * report.region_days // total}%): "
                         f"{report.observations} observations, {report.hourly} hours, "
                         f"written {report.hourly_written} hourly + {report.daily_written} daily")
        flush(db, hourly, daily, report)  # whatever a count that moved meanwhile left behind
    finally:
        groups.unpersist()
    return report


def flush(db: Database, hourly: list[HourlyStats], daily: list[DailyStats], report: RecomputeReport) -> None:
    report.hourly += len(hourly)
    report.daily += len(daily)
    report.hourly_written += upsert_all(db[HOURLY_STATS], hourly, ignore=frozenset({"computed_at"}))
    report.daily_written += upsert_all(db[DAILY_STATS], daily, ignore=frozenset({"computed_at"}))
