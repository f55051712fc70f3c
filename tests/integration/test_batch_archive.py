"""The raw archive end to end: real Kafka, Spark (local mode) and FerretDB. Each valid Kafka record
lands in the Parquet archive exactly once, across restarts and a replayed batch."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlparse

import pytest
from pyspark.sql import functions as F

from streaming.archive import ArchiveQuery, read_archive
from streaming.job import kafka_stream, run_until_idle
from tests.fakes.observations import simulated_observations
from tests.integration.test_streaming_job import as_messages, fake_api, produce, settings  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration
log = logging.getLogger("test-batch-archive")


def micros(when) -> int:
    return int(when.timestamp()) * 1_000_000 + when.microsecond


def archived(spark, settings) -> list[tuple]:
    rows = read_archive(spark, settings.archive_location).select(  # epoch micros: collect() gives local times
        "kafka_partition", "kafka_offset", "region_id", "date", F.unix_micros("observed_at"), "temp").collect()
    return [tuple(r) for r in rows]


def run_archive(spark, settings) -> None:
    query = ArchiveQuery(settings)
    query.start(kafka_stream(spark, settings), available_now=True)
    query.stop()
    assert query.query.exception() is None


def test_archive_holds_each_valid_record_once_across_restarts(settings, spark):
    first = simulated_observations(regions=2, hours=5, per_hour=2)
    produce(settings, as_messages(first) + [(b"dakar", b"{not json"), (b"thies", b'{"region_id": "thies"}')])

    # The streaming job runs the archive beside its main query (which dead-letters the two bad ones).
    run_until_idle(settings, spark, log)
    rows = archived(spark, settings)
    assert len(rows) == len(first)
    assert len({(r[0], r[1]) for r in rows}) == len(rows)  # no Kafka record twice
    assert {(r[2], r[4]) for r in rows} == {(o.region_id, micros(o.observed_at)) for o in first}
    assert {(r[2], r[3]) for r in rows} == {(o.region_id, o.observed_at.strftime("%Y-%m-%d")) for o in first}
    root = Path(urlparse(settings.archive_location).path)
    assert {p.name for p in root.glob("date=*/region_id=*")} == {f"region_id={o.region_id}" for o in first}

    # New records after a restart: only they are added.
    second = simulated_observations(regions=2, hours=2, per_hour=1, seed=11)
    produce(settings, as_messages(second))
    run_archive(spark, settings)
    assert len(archived(spark, settings)) == len(first) + len(second)

    # A crash after the sink wrote a batch but before the checkpoint committed it: the batch is
    # replayed, and the sink's log (already holding it) keeps its records from being added again.
    commits = Path(urlparse(settings.archive_checkpoint).path) / "commits"
    last = max(commits.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1)
    for stale in (last, commits / f".{last.name}.crc"):
        stale.unlink(missing_ok=True)
    run_archive(spark, settings)
    rows = archived(spark, settings)
    assert len(rows) == len(first) + len(second)
    assert len({(r[0], r[1]) for r in rows}) == len(rows)
