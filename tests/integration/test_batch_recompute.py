"""Daily statistics kept by the streaming job, and `batch recompute` rebuilding hourly and daily
statistics from the archive: real Kafka, Spark (local mode) and FerretDB."""

from __future__ import annotations

import logging
import statistics
from datetime import date, datetime, timezone

import pytest

from batch.recompute import recompute
from meteoflow.contracts import DAILY_STATS, HOURLY_STATS, DailyStats
from streaming.job import run_until_idle
from tests.fakes.observations import simulated_observations
from tests.integration.test_streaming_job import as_messages, db, fake_api, produce, settings  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration
log = logging.getLogger("test-batch-recompute")
END = datetime(2026, 3, 4, 6, tzinfo=timezone.utc)  # 54 hours back: 2 March 00:00 .. 4 March 06:00
DAYS = (date(2026, 3, 2), date(2026, 3, 4))


def stats(db, collection) -> dict[str, dict]:
    """Every stored document of a statistics collection, without when it was computed."""
    return {d["_id"]: {k: v for k, v in d.items() if k != "computed_at"} for d in db[collection].find()}


def test_streaming_daily_stats_and_recompute_rebuild_identical_statistics(settings, spark, db):
    settings = settings.model_copy(update=dict(streaming_max_offsets_per_trigger=1000))  # one batch
    observations = simulated_observations(regions=2, hours=54, per_hour=2, end=END)
    # A replayed run: every record of the first day sent twice (the archive holds both, stats count one).
    produce(settings, as_messages(observations) + as_messages(observations[:48 * 2]))
    run_until_idle(settings, spark, log)

    # The streaming job's daily statistics, against an independent computation from the raw records.
    daily = {s.id: s for s in map(DailyStats.from_document, db[DAILY_STATS].find())}
    assert len(daily) == 2 * 3
    day = [o.temp for o in observations if o.region_id == "thies" and o.observed_at.date() == date(2026, 3, 3)]
    stat = daily["thies|2026-03-03T00:00:00Z"]
    assert (stat.temp_min, stat.temp_max, stat.count) == (min(day), max(day), len(day))
    assert stat.temp_mean == pytest.approx(statistics.fmean(day))
    streamed_hourly, streamed_daily = stats(db, HOURLY_STATS), stats(db, DAILY_STATS)

    # Recompute from the archive agrees with the streaming job to the last bit: nothing to write.
    lines: list[str] = []
    report = recompute(spark, db, settings.archive_location, *DAYS, progress=lines.append)
    assert (report.region_days, report.observations, report.hourly, report.daily) == (6, len(observations), 108, 6)
    assert (report.hourly_written, report.daily_written) == (0, 0)
    assert "6 region-days" in lines[0] and "6/6 region-days (100%)" in lines[-1]

    # After the statistics are lost (or wrong), it rebuilds them identically; a second run writes nothing.
    db[HOURLY_STATS].delete_many({})
    db[DAILY_STATS].update_one({"_id": "dakar|2026-03-02T00:00:00Z"}, {"$set": {"temp_max": 99.0}})
    report = recompute(spark, db, settings.archive_location, *DAYS, progress=lines.append)
    assert (report.hourly_written, report.daily_written) == (108, 1)
    assert (stats(db, HOURLY_STATS), stats(db, DAILY_STATS)) == (streamed_hourly, streamed_daily)
    again = recompute(spark, db, settings.archive_location, *DAYS, progress=lines.append)
    assert (again.hourly_written, again.daily_written) == (0, 0)
    assert (stats(db, HOURLY_STATS), stats(db, DAILY_STATS)) == (streamed_hourly, streamed_daily)

    # A range and a region select exactly their keys.
    db[DAILY_STATS].delete_many({})
    db[HOURLY_STATS].delete_many({})
    report = recompute(spark, db, settings.archive_location, date(2026, 3, 3), date(2026, 3, 3), region="dakar",
                       progress=lines.append)
    assert (report.region_days, report.hourly, report.daily) == (1, 24, 1)
    assert set(stats(db, DAILY_STATS)) == {"dakar|2026-03-03T00:00:00Z"}
    assert stats(db, HOURLY_STATS) == {k: v for k, v in streamed_hourly.items()
                                       if k.startswith("dakar|2026-03-03T")}


def test_recompute_without_an_archive_says_where_it_looked(settings, spark, db):
    with pytest.raises(FileNotFoundError, match="no archive at file://"):
        recompute(spark, db, settings.archive_location, *DAYS, progress=log.info)
