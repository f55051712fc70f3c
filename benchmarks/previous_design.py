"""The design before issue 15, kept runnable so the benchmarks measure it in the same run, on the
same data and servers, as the current one. Bench-only: nothing in the product imports this.

What differed:
- the batch: observations written by `upsert_all` (a `find $in` existence check first), hourly
  statistics recomputed from the observations read back, and the forecast refresh run inline in
  every batch (`BatchProcessor.process` waited for the forecasting API); no region_latest;
- the web app: every region's latest by sorting that region's observations, the region list by
  `distinct` over all observations, a region's window by range queries over observations and
  hourly statistics (FerretDB filters those by reading the whole collection).

    python benchmarks/previous_design.py streaming   # `python -m streaming` with the previous batch
    python benchmarks/previous_design.py webapp      # `python -m webapp` with the previous reads
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pymongo import ASCENDING, DESCENDING  # noqa: E402

from meteoflow import contracts  # noqa: E402
from meteoflow.clock import utc_now  # noqa: E402
from meteoflow.kafka import KafkaRecord  # noqa: E402
from streaming.job import BatchProcessor, BatchReport  # noqa: E402
from streaming.records import latest_per_region, observation_documents, split_batch, touched_hours  # noqa: E402
from streaming.sinks import Stopwatch, upsert_all  # noqa: E402

LATEST_CANDIDATES = 10
MAX_HISTORY_POINTS = 50_000


class PreviousProcessor(BatchProcessor):
    """foreachBatch as it was: upsert with existence check, stats read back, forecasts inline."""

    def process(self, records: list[KafkaRecord], batch_id: int,
                durations: dict[str, float] | None = None) -> BatchReport:
        report = BatchReport(batch_id=batch_id, input_rows=len(records))
        if durations is not None:
            report.durations_ms = durations
        watch = Stopwatch(report.durations_ms)
        now = utc_now()
        split = split_batch(records, now, self.limits)
        watch.lap("validate")
        report.dead_letters = self.deadletters.write(split.dead_letters)
        watch.lap("deadletters")
        docs = observation_documents(split.observations, stored_at=now)
        upsert_all(self.sinks.observations.collection, docs, ignore=frozenset({"stored_at"}))
        report.stored = len(docs)
        watch.lap("observations")
        keys = touched_hours(split.observations)
        if keys:  # recomputed from the stored observations (the read-back this design did)
            report.stats_upserted = upsert_all(self.sinks.stats.collection, self.sinks.stats.recompute(keys, now),
                                               ignore=frozenset({"computed_at"}))
        watch.lap("stats")
        self.refresher.mark(latest_per_region(split.observations))
        report.forecast = self.refresher.refresh().summary()
        watch.lap("forecasts")
        if durations is None:
            watch.total()
            self.metrics.batch_done(report, utc_now())
        return report


def use_previous_batch(job) -> None:
    """Make a StreamingJob run the previous batch (no region_latest, forecasts inline)."""
    sinks = job.processor.sinks
    job.processor = PreviousProcessor(sinks.observations, sinks.stats, job.refresher, sinks.deadletters,
                                      job.reporter, job.settings.record_limits, job.metrics)


# --- the web app's reads as they were ----------------------------------------------------------
def _latest_observation(self, region_id: str):
    cursor = (self.db[contracts.OBSERVATIONS].find({"region_id": region_id})
              .sort("observed_at", DESCENDING).limit(LATEST_CANDIDATES))
    return next(contracts.iter_valid(contracts.ObservationDocument, cursor), None)


def _latest_observations(self):
    ids = [r for r in self.db[contracts.OBSERVATIONS].distinct("region_id") if isinstance(r, str)]
    return {rid: doc for rid in ids if (doc := _latest_observation(self, rid)) is not None}


def _observations(self, region_id: str, start: datetime, end: datetime):
    cursor = (self.db[contracts.OBSERVATIONS]
              .find({"region_id": region_id, "observed_at": {"$gte": start, "$lte": end}})
              .sort("observed_at", ASCENDING).limit(MAX_HISTORY_POINTS))
    return contracts.valid_documents(contracts.ObservationDocument, cursor)


def _hourly_stats(self, region_id: str, start: datetime, end: datetime):
    first_hour = start.replace(minute=0, second=0, microsecond=0)
    cursor = (self.db[contracts.HOURLY_STATS]
              .find({"region_id": region_id, "hour": {"$gte": first_hour, "$lte": end}})
              .sort("hour", ASCENDING).limit(MAX_HISTORY_POINTS))
    return contracts.valid_documents(contracts.HourlyStats, cursor)


def _recent_window(self, region_id: str, start: datetime, end: datetime):
    """There were no reads by day: the window came from range queries over the whole history."""
    return _observations(self, region_id, start, end), _hourly_stats(self, region_id, start, end)


def previous_store_class():
    """webapp.store.Store with the previous design's MongoDB reads."""
    from webapp.store import Store

    return type("PreviousStore", (Store,), {
        "latest_observation": _latest_observation, "latest_observations": _latest_observations,
        "observations": _observations, "hourly_stats": _hourly_stats, "recent_window": _recent_window})


def use_previous_store() -> None:
    """Make the web app create the previous design's Store (at its first request, webapp.routes.common)."""
    import webapp.routes.common as common

    common.Store = previous_store_class()


def main(argv: list[str]) -> int:
    if argv == ["streaming"]:
        import streaming.__main__ as service
        import streaming.job as job_module

        base = job_module.StreamingJob

        class PreviousJob(base):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                use_previous_batch(self)

        job_module.StreamingJob = PreviousJob
        return service.main()
    if argv == ["webapp"]:
        import webapp.__main__ as service

        use_previous_store()
        return service.main()
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
