"""Seed a Parquet archive directly (one Spark batch write in the file sink's layout), for tests and
benchmarks that need history in the archive without streaming it through Kafka first."""

from __future__ import annotations

from meteoflow.contracts import Observation
from streaming.archive import PARTITION_COLUMNS, archive_row, archive_schema


def write_archive(spark, observations: list[Observation], location: str) -> None:
    rows = [archive_row(obs, 0, offset) for offset, obs in enumerate(observations)]
    (spark.createDataFrame(rows, archive_schema()).write.mode("append")
     .partitionBy(*PARTITION_COLUMNS).parquet(location))
