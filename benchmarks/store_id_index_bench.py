"""The store's _id index (issue 15): the streaming job's writes and reads by _id with a year of
history, on FerretDB over PostgreSQL with the GIN index the stack adds (METEOFLOW_STORE_ID_INDEX,
stack/servers.py) and without it (FerretDB's own indexes only), in one run.

FerretDB sends an `_id` equality as `_jsonb -> '_id' @> $1`, which its own btree indexes cannot
serve, so without the index every read or update by _id is a pass over the collection. Starts two
PostgreSQL + FerretDB stores through the stack code (ports: --port-offset, run directories under
.run/bench-store-id), then, on both in turn so that load from other processes falls on both alike:

1. history: REGIONS x DAYS x 24 observations and as many hourly statistics, bulk-inserted in chunks
   of 1,000 (the index's cost on inserts), in two steps: one day, then the rest;
2. after each step: FINDS reads of one document by _id (what upserts, the hourly merge and the
   skill tracker do), and live micro-batches of one observation per region through the job's sinks
   (streaming.sinks ObservationSink + HourlyStatsSink): the first of an hour inserts, the second
   merges into the hour already stored (reads and replaces by _id);
3. at the full history: REWRITES observations already stored, written again with a changed field
   (a back-fill overlapping what the job stored: compare, then update by _id).

Figures go to benchmarks/goals.py with the machine's load average.

    .venv/bin/python benchmarks/store_id_index_bench.py            # 14 regions x 365 days
    .venv/bin/python benchmarks/store_id_index_bench.py --quick    # 14 regions x 30 days
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.goals import Figure, record  # noqa: E402
from benchmarks.store_backend_bench import start_all, timed  # noqa: E402
from meteoflow.contracts import HOURLY_STATS, OBSERVATIONS, HourlyStats  # noqa: E402
from meteoflow.mongo import make_mongo_client  # noqa: E402
from meteoflow.settings import Settings  # noqa: E402
from producer.sources.simulator import simulate_history  # noqa: E402
from stack.servers import FerretDBServer, PostgreSQLServer  # noqa: E402
from streaming.records import hour_points, observation_documents  # noqa: E402
from streaming.sinks import HourlyStatsSink, ObservationSink, ensure_indexes  # noqa: E402
from tests.faults.harness import grid_regions, machine, pipeline_settings  # noqa: E402

STORES = {"index": True, "no index": False}  # name -> METEOFLOW_STORE_ID_INDEX
CHUNK = 1000
HOUR = timedelta(hours=1)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regions", type=int, default=14)
    p.add_argument("--days", type=int, default=365, help="history stored before the measures (at least 2)")
    p.add_argument("--finds", type=int, default=100, help="reads by _id per measure")
    p.add_argument("--batches", type=int, default=3, help="live hours per measure (two micro-batches each)")
    p.add_argument("--rewrites", type=int, default=500, help="stored observations written again, changed")
    p.add_argument("--port-offset", type=int, default=37000)
    p.add_argument("--run-dir", type=Path, default=REPO / ".run" / "bench-store-id")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--quick", action="store_true", help="14 regions x 30 days, 50 finds, 200 rewrites")
    args = p.parse_args(argv)
    if args.quick:
        args.days, args.finds, args.rewrites = 30, 50, 200
    if args.days < 2:
        p.error("--days: at least 2 (one day, then the rest)")
    return args


def start_store(args, name: str, index: bool, slot: int) -> tuple[Settings, list]:
    """A fresh PostgreSQL + FerretDB, its own run directory (emptied) and ports."""
    run_dir = args.run_dir / name.replace(" ", "-")
    shutil.rmtree(run_dir, ignore_errors=True)
    settings = pipeline_settings(run_dir, args.port_offset, store_backend="postgresql", store_id_index=index)
    settings = settings.model_copy(update={"mongo_port": settings.mongo_port + slot,
                                           "postgres_port": settings.postgres_port + slot})
    return settings, start_all([PostgreSQLServer(settings), FerretDBServer(settings)], name)


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    regions = grid_regions(args.regions)
    hours = args.days * 24
    live_hours = 2 * args.batches
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - (hours + live_hours + 1) * HOUR
    history = list(simulate_history(regions, start, hours, seed=args.seed))
    now = datetime.now(timezone.utc)
    observations = [d.to_document() for d in observation_documents(history, stored_at=now)]
    hourly = [HourlyStats.document(region, hour, points, now) for (region, hour), points in hour_points(history).items()]
    first_day = len(regions) * 24
    steps = {"1 day": (observations[:first_day], hourly[:first_day]),
             f"{args.days} days": (observations[first_day:], hourly[first_day:])}
    live = [list(simulate_history(regions, start + (hours + i) * HOUR, 1, seed=args.seed + 1 + i))
            for i in range(live_hours)]
    print(f"workload: {len(regions)} regions; {len(observations):,} observations and {len(hourly):,} hourly "
          f"statistics stored in two steps (1 day, then the rest); at each: {args.finds} reads by _id and "
          f"{args.batches} live hours of two micro-batches; then {args.rewrites} stored observations rewritten",
          flush=True)

    stores: dict[str, dict] = {}
    try:
        for slot, (name, index) in enumerate(STORES.items()):
            settings, servers = start_store(args, name, index, slot)
            client = make_mongo_client(settings)
            db = client[settings.mongo_db]
            ensure_indexes(db)
            stores[name] = {"client": client, "db": db, "servers": servers, "figures": {}}

        def each(label: str, run) -> None:
            for name, s in stores.items():
                value = run(s)
                s["figures"][label] = value
                print(f"  {label:44s} {name:9s} {value:12,.1f}", flush=True)

        def bulk(docs_obs, docs_hourly):
            def run(s) -> float:
                seconds = 0.0
                for collection, docs in ((OBSERVATIONS, docs_obs), (HOURLY_STATS, docs_hourly)):
                    for i in range(0, len(docs), CHUNK):
                        seconds += timed(lambda c=collection, d=docs[i:i + CHUNK]: s["db"][c].insert_many(d, ordered=False))
                return (len(docs_obs) + len(docs_hourly)) / seconds
            return run

        def finds(pool):
            ids = [rng.choice(pool)["_id"] for _ in range(args.finds)]

            def run(s) -> float:
                col = s["db"][HOURLY_STATS]
                return statistics.median(timed(lambda i=i: col.find_one({"_id": i})) for i in ids) * 1000
            return run

        def live_batches(batches, second: bool):
            def run(s) -> float:
                obs, stats = ObservationSink(s["db"]), HourlyStatsSink(s["db"])
                times = []
                for batch in batches:
                    if second:  # the same hour again, 30 minutes later: the merge path
                        batch = [o.model_copy(update={"observed_at": o.observed_at + timedelta(minutes=30)})
                                 for o in batch]
                    moment = datetime.now(timezone.utc)
                    times.append(timed(lambda b=batch: (obs.write(b, moment), stats.write(b, moment))))
                return statistics.median(times) * 1000
            return run

        for step, (docs_obs, docs_hourly) in enumerate(steps.values()):
            label = list(steps)[step]
            each(f"bulk insert to {label} (docs/s)", bulk(docs_obs, docs_hourly))
            each(f"{label}: read by _id p50 (ms)", finds(hourly[:first_day] if step == 0 else hourly))
            batches = live[step * args.batches:(step + 1) * args.batches]
            each(f"{label}: live batch, new hour p50 (ms)", live_batches(batches, second=False))
            each(f"{label}: live batch, same hour p50 (ms)", live_batches(batches, second=True))

        picked = rng.sample(range(len(history)), min(args.rewrites, len(history)))
        rewritten = [history[i].model_copy(update={"temp": history[i].temp + 0.5}) for i in picked]

        def rewrites(s) -> float:
            return len(rewritten) / timed(lambda: ObservationSink(s["db"]).write(rewritten, datetime.now(timezone.utc)))
        each(f"rewrite {len(rewritten)} stored observations (records/s)", rewrites)
    finally:
        for s in stores.values():
            s["client"].close()
            for server in reversed(s["servers"]):
                server.stop()

    mach = machine()
    with_index, without = stores["index"]["figures"], stores["no index"]["figures"]
    print(f"\nmachine: {mach}")
    print(f"{'':50s}{'index':>12s}{'no index':>12s}{'gain':>9s}")
    figures = []
    for label in with_index:
        higher_better = label.endswith("/s)")
        a, b = with_index[label], without[label]
        gain = a / b if higher_better else b / a
        print(f"  {label:48s}{a:12,.1f}{b:12,.1f}{gain:8.1f}x")
        unit = label[label.rindex("(") + 1:-1]
        figures.append(Figure(goal="3/1. store _id index", measure=label[:label.rindex(" (")] + ", GIN _id index vs none",
                              value=a, baseline=b, target="no growth with history", unit=unit, met=None))
    path = record("store_id_index", figures, machine=str(mach))
    print(f"recorded in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
