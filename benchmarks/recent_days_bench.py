"""Reads of observations by day (issue 15, read paths): the web app's window of a region and the
streaming job's daily statistics of a live batch, read by `day` equality (now) and by an observed_at
range (the previous design), on the same data in one run.

FerretDB hands an equality on a top-level string to PostgreSQL (where the stack's indexes on
`region_id` and `day` serve it) but filters a range itself, after decoding every document PostgreSQL
returned: a range read of one region's window decodes the region's whole history (here 8 days), a read
by day only the days asked for.

Starts PostgreSQL + FerretDB through the stack code (ports: --port-offset, run directory
.run/bench-recent-days), stores --regions x 8 days of observations every --minutes through the
job's own sink, then times, alternating the two designs so load from other processes falls on both:
1. the web app's `Store.recent_window` of one region (the overview's day, the region page's 48 h);
2. the daily-statistics step of a live batch (one new observation per region): `DailyStatsSink.write`,
   against the previous design's single query (`$in` of the regions and an observed_at range).
Prints p50/p95 of each; records the figures with benchmarks/goals.py. Asserts nothing about speed.

    .venv/bin/python benchmarks/recent_days_bench.py            # 14 regions, every 10 min
    .venv/bin/python benchmarks/recent_days_bench.py --quick    # 14 regions, every 30 min, fewer repeats
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.goals import Figure, record  # noqa: E402
from benchmarks.store_backend_bench import start_all, timed  # noqa: E402
from pymongo import ASCENDING  # noqa: E402

from meteoflow.contracts import (  # noqa: E402
    OBSERVATIONS, DailyPoint, ObservationDocument, hour_floor, hourly_stats, valid_documents,
)
from meteoflow.mongo import make_mongo_client  # noqa: E402
from producer.sources.simulator import simulate_history  # noqa: E402
from stack.servers import FerretDBServer, PostgreSQLServer  # noqa: E402
from streaming.daily import DAY, DailyStatsSink, daily_stats, day_floor, touched_days  # noqa: E402
from streaming.records import observation_documents  # noqa: E402
from streaming.sinks import ObservationSink, RegionLatestSink, ensure_indexes  # noqa: E402
from tests.faults.harness import grid_regions, machine, percentile, pipeline_settings  # noqa: E402
from webapp.store import MAX_HISTORY_POINTS, Store  # noqa: E402

HISTORY = timedelta(days=8)  # the history stored: a week's window and the day before it


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regions", type=int, default=14)
    p.add_argument("--minutes", type=int, default=10, help="minutes between two observations of a region")
    p.add_argument("--repeat", type=int, default=30, help="reads per measure and design")
    p.add_argument("--port-offset", type=int, default=34000)
    p.add_argument("--quick", action="store_true", help="an observation every 30 min, 10 reads per measure")
    args = p.parse_args(argv)
    if args.quick:
        args.minutes, args.repeat = 30, 10
    return args


def previous_window(store: Store, region_id: str, start: datetime, end: datetime):
    """The previous design's Store.recent_window: one observed_at range over the region's documents,
    sorted and limited by FerretDB, then the same validation and hourly statistics."""
    first_hour = hour_floor(start)
    cursor = (store.db[OBSERVATIONS]
              .find({"region_id": region_id, "observed_at": {"$gte": first_hour, "$lte": end}})
              .sort("observed_at", ASCENDING).limit(MAX_HISTORY_POINTS))
    docs = valid_documents(ObservationDocument, cursor)
    computed_at = max((d.stored_at or d.observed_at for d in docs), default=end)
    hours = {(region_id, hour_floor(d.observed_at)) for d in docs}
    return [d for d in docs if d.observed_at >= start], hourly_stats(hours, docs, computed_at)


def previous_daily_read(db, keys) -> list[DailyPoint]:
    """The previous design's read for a batch's daily statistics: one `$in` + range query."""
    days = [day for _, day in keys]
    return valid_documents(DailyPoint, db[OBSERVATIONS].find(
        {"region_id": {"$in": sorted({region for region, _ in keys})},
         "observed_at": {"$gte": min(days), "$lt": max(days) + DAY}}, DailyPoint.projection()))


def summary(seconds: list[float]) -> tuple[float, float]:
    return statistics.median(seconds) * 1000, percentile(seconds, 95) * 1000


def main(argv=None) -> int:
    args = parse_args(argv)
    run_dir = REPO / ".run" / "bench-recent-days"
    shutil.rmtree(run_dir, ignore_errors=True)
    settings = pipeline_settings(run_dir, args.port_offset, store_backend="postgresql")
    print(f"machine: {machine()}")
    regions = grid_regions(args.regions)
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = end - HISTORY
    history = list(simulate_history(regions, start, HISTORY.total_seconds() / 3600, step_minutes=args.minutes))
    servers = start_all([PostgreSQLServer(settings), FerretDBServer(settings)], "store")
    client = make_mongo_client(settings)
    try:
        db = client[settings.mongo_db]
        ensure_indexes(db)
        sink, latest = ObservationSink(db), RegionLatestSink(db)
        docs = [d.to_document() for d in observation_documents(history, stored_at=end)]
        for i in range(0, len(docs), 2000):
            sink.write(history[i:i + 2000], end, docs[i:i + 2000])
        latest.write(docs)
        newest = max(o.observed_at for o in history)
        print(f"stored {len(docs):,} observations: {args.regions} regions x {HISTORY.days} days, "
              f"one every {args.minutes} min")

        store = Store(settings)
        figures, rows = [], []
        try:
            for label, hours in (("the overview's day (24 h)", 24), ("the region page (48 h)", 48)):
                now_times, before_times = [], []
                for n in range(args.repeat):
                    region = regions[n % len(regions)].id
                    window_start = newest - timedelta(hours=hours)
                    now_times.append(timed(lambda: store.recent_window(region, window_start, newest)))
                    before_times.append(timed(lambda: previous_window(store, region, window_start, newest)))
                got = store.recent_window(regions[0].id, newest - timedelta(hours=hours), newest)
                want = previous_window(store, regions[0].id, newest - timedelta(hours=hours), newest)
                assert got == want, "the read by day does not answer what the range read answers"
                rows.append((f"web window, {label}", summary(now_times), summary(before_times)))
        finally:
            store.close()

        daily = DailyStatsSink(db)
        now_times, before_times = [], []
        for n in range(args.repeat):
            batch = list(simulate_history(regions, newest + timedelta(minutes=args.minutes * (n + 1)), args.minutes / 60,
                                          seed=100 + n, step_minutes=args.minutes))
            sink.write(batch, end)
            latest.write([d.to_document() for d in observation_documents(batch, stored_at=end)])
            keys = touched_days(batch)
            now_times.append(timed(lambda: daily.write(batch, end)))
            before_times.append(timed(lambda: daily_stats(keys, previous_daily_read(db, keys), end)))
        assert len(keys) == args.regions and all(day == day_floor(batch[0].observed_at) for _, day in keys)
        rows.append(("daily statistics of a live batch", summary(now_times), summary(before_times)))

        print(f"\n{'measure':<44} {'by day p50':>11} {'p95':>8}   {'range p50':>10} {'p95':>8}   p50 gain")
        for name, (now50, now95), (was50, was95) in rows:
            print(f"{name:<44} {now50:9.1f} ms {now95:6.1f} ms   {was50:8.1f} ms {was95:6.1f} ms   {was50 / now50:5.1f}x")
            figures.append(Figure("3. read paths", f"{name}, p50 (8 days of {args.regions} regions, every "
                                  f"{args.minutes} min)", round(now50, 1), round(was50, 1), "does not scan", "ms",
                                  None))
        print(f"recorded: {record('recent_days', figures, machine())}")
    finally:
        client.close()
        for server in reversed(servers):
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
