"""The store's backend: the same workload on FerretDB with SQLite and with PostgreSQL, one run.

Starts its own FerretDB on SQLite and its own PostgreSQL + FerretDB on PostgreSQL through the
stack code (ports: --port-offset, run directories under .run/bench-store), then runs each phase on
both stores in turn (SQLite, PostgreSQL, next phase), so load from other processes on the machine
falls on both alike:

1. bulk insert: REGIONS x HOURS observation documents, insert_many in chunks of 1,000 (indexes on);
2. streaming backlog: one micro-batch of REGIONS x 24 new observations through the job's sinks
   (streaming.sinks ObservationSink + HourlyStatsSink + RegionLatestSink: insert new / update changed);
3. streaming steady state: BATCHES micro-batches of one observation per region, through the sinks;
4. replay: the backlog micro-batch again (nothing changed: reads only);
5. upserts: UPSERTS changed documents as per-document upserts (UpdateOne upsert=True, one bulk);
6. web reads: the web app's queries (webapp.store.Store) for every region: latest observation,
   24 h of observations, 24 h of hourly stats, and the region list (every region's latest).

The decision figure is the whole workload's time; the store switches only when one backend is
>= 2x faster on it (issue 15 goal 4). Figures go to benchmarks/goals.py; the machine's load
average is printed with them (a shared machine makes them noisy).

    .venv/bin/python benchmarks/store_backend_bench.py            # 50 regions x 72 h
    .venv/bin/python benchmarks/store_backend_bench.py --quick    # 14 regions x 24 h
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pymongo import UpdateOne  # noqa: E402

from benchmarks.goals import Figure, record  # noqa: E402
from meteoflow.contracts import OBSERVATIONS, ObservationDocument  # noqa: E402
from meteoflow.mongo import make_mongo_client  # noqa: E402
from meteoflow.settings import Settings  # noqa: E402
from producer.sources.simulator import simulate_history  # noqa: E402
from stack.servers import FerretDBServer, PostgreSQLServer  # noqa: E402
from streaming.records import observation_documents  # noqa: E402
from streaming.sinks import HourlyStatsSink, ObservationSink, RegionLatestSink, ensure_indexes  # noqa: E402
from tests.faults.harness import grid_regions, machine, percentile, pipeline_settings  # noqa: E402
from webapp.store import Store  # noqa: E402

BACKENDS = ("sqlite", "postgresql")
CHUNK = 1000


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regions", type=int, default=50)
    p.add_argument("--hours", type=int, default=72, help="history bulk-inserted first, one observation per hour")
    p.add_argument("--batches", type=int, default=10, help="steady-state micro-batches")
    p.add_argument("--upserts", type=int, default=500, help="documents changed by per-document upserts")
    p.add_argument("--port-offset", type=int, default=30000)
    p.add_argument("--run-dir", type=Path, default=REPO / ".run" / "bench-store")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--quick", action="store_true", help="14 regions x 24 h, 5 batches, 200 upserts")
    args = p.parse_args(argv)
    if args.quick:
        args.regions, args.hours, args.batches, args.upserts = 14, 24, 5, 200
    return args


def start_store(args, backend: str) -> tuple[Settings, list]:
    """A fresh store of `backend`: its own run directory (emptied) and FerretDB port."""
    run_dir = args.run_dir / backend
    shutil.rmtree(run_dir, ignore_errors=True)
    settings = pipeline_settings(run_dir, args.port_offset, store_backend=backend)
    if backend == "postgresql":  # both stores run at once: the second FerretDB on the next port
        settings = settings.model_copy(update={"mongo_port": settings.mongo_port + 1})
    servers = [PostgreSQLServer(settings)] if backend == "postgresql" else []
    servers.append(FerretDBServer(settings))
    return settings, start_all(servers, backend)


def start_all(servers: list, label: str) -> list:
    """Start `servers` in order (their lines printed under `label`); if one fails, stop the others."""
    started = []
    try:
        for server in servers:
            server.start(log=lambda line: print(f"  [{label}] {line}", flush=True))
            started.append(server)
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    return started


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    args = parse_args(argv)
    regions = grid_regions(args.regions)
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=args.hours + 24 + args.batches + 1)
    history = list(simulate_history(regions, start, args.hours, seed=args.seed))
    backlog = list(simulate_history(regions, start + timedelta(hours=args.hours), 24, seed=args.seed + 1))
    steady_start = start + timedelta(hours=args.hours + 24)
    steady = [list(simulate_history(regions, steady_start + timedelta(hours=i), 1, seed=args.seed + 2 + i))
              for i in range(args.batches)]
    history_docs = [d.to_document() for d in observation_documents(history, stored_at=datetime.now(timezone.utc))]
    print(f"workload: {len(regions)} regions; {len(history_docs)} documents bulk-inserted, a backlog batch of "
          f"{len(backlog)}, {args.batches} steady batches of {len(regions)}, {args.upserts} upserts; "
          f"web reads for every region", flush=True)

    stores: dict[str, dict] = {}
    try:
        for backend in BACKENDS:
            settings, servers = start_store(args, backend)
            client = make_mongo_client(settings)
            db = client[settings.mongo_db]
            ensure_indexes(db)
            stores[backend] = {"settings": settings, "servers": servers, "client": client, "db": db,
                               "times": {}, "reads": {}}

        def phase(name: str, run) -> None:
            for backend in BACKENDS:
                s = stores[backend]
                s["times"][name] = run(s)
                print(f"  {name:22s} {backend:10s} {s['times'][name] * 1000:9.0f} ms", flush=True)

        def bulk_insert(s) -> float:
            col = s["db"][OBSERVATIONS]
            return sum(timed(lambda i=i: col.insert_many(history_docs[i:i + CHUNK], ordered=False))
                       for i in range(0, len(history_docs), CHUNK))

        def sinks_write(batch):
            def run(s) -> float:
                now = datetime.now(timezone.utc)
                obs, hourly, latest = ObservationSink(s["db"]), HourlyStatsSink(s["db"]), RegionLatestSink(s["db"])
                docs = [ObservationDocument.document(o, now) for o in batch]
                return timed(lambda: (obs.write(batch, now, docs), hourly.write(batch, now), latest.write(docs)))
            return run

        def steady_batches(s) -> float:
            times = [sinks_write(batch)(s) for batch in steady]
            s["steady_p50"] = statistics.median(times)
            return sum(times)

        def upserts(s) -> float:
            col = s["db"][OBSERVATIONS]
            ids = [d["_id"] for d in history_docs[:args.upserts]]
            return timed(lambda: col.bulk_write([UpdateOne({"_id": i}, {"$set": {"temp": 99.5}}, upsert=True)
                                                 for i in ids], ordered=False))

        def web_reads(s) -> float:
            store = Store(s["settings"], db=s["db"], es=object())  # MongoDB reads only: no Elasticsearch call
            end = steady_start + timedelta(hours=args.batches)
            calls: dict[str, list[float]] = {"region list": [], "latest observation": [],
                                             "24 h observations": [], "24 h hourly stats": []}
            began = time.perf_counter()
            calls["region list"].append(timed(store.latest_observations))
            for region in regions:
                calls["latest observation"].append(timed(lambda: store.latest_observation(region.id)))
                calls["24 h observations"].append(
                    timed(lambda: store.observations(region.id, end - timedelta(hours=24), end)))
                calls["24 h hourly stats"].append(
                    timed(lambda: store.hourly_stats(region.id, end - timedelta(hours=24), end)))
            s["reads"] = calls
            return time.perf_counter() - began

        phase("bulk insert", bulk_insert)
        phase("streaming backlog", sinks_write(backlog))
        phase("streaming steady", steady_batches)
        phase("replay (no change)", sinks_write(backlog))
        phase("upserts", upserts)
        phase("web reads", web_reads)
    finally:
        for s in stores.values():
            s["client"].close()
            for server in reversed(s["servers"]):
                server.stop()

    sq, pg = stores["sqlite"], stores["postgresql"]
    total = {b: sum(stores[b]["times"].values()) for b in BACKENDS}
    rates = {b: {"bulk": len(history_docs) / stores[b]["times"]["bulk insert"],
                 "backlog": len(backlog) / stores[b]["times"]["streaming backlog"],
                 "upserts": args.upserts / stores[b]["times"]["upserts"]} for b in BACKENDS}
    read_p95 = {b: {k: percentile(v, 95) * 1000 for k, v in stores[b]["reads"].items() if len(v) > 1}
                for b in BACKENDS}
    mach = machine()
    print(f"\nmachine: {mach}")
    print(f"{'':34s}{'sqlite':>12s}{'postgresql':>12s}{'pg / sqlite':>13s}")

    def row(label, a, b, higher_better):
        ratio = b / a if higher_better else a / b  # > 1: PostgreSQL better
        print(f"  {label:32s}{a:12,.1f}{b:12,.1f}{ratio:12.2f}x")
        return ratio

    row("bulk insert (docs/s)", rates["sqlite"]["bulk"], rates["postgresql"]["bulk"], True)
    row("streaming backlog (records/s)", rates["sqlite"]["backlog"], rates["postgresql"]["backlog"], True)
    row("steady batch p50 (ms)", sq["steady_p50"] * 1000, pg["steady_p50"] * 1000, False)
    row("replay of the backlog (ms)", sq["times"]["replay (no change)"] * 1000,
        pg["times"]["replay (no change)"] * 1000, False)
    row("upserts (docs/s)", rates["sqlite"]["upserts"], rates["postgresql"]["upserts"], True)
    for kind in read_p95["sqlite"]:
        row(f"web: {kind} p95 (ms)", read_p95["sqlite"][kind], read_p95["postgresql"][kind], False)
    whole = row("whole workload (s)", total["sqlite"], total["postgresql"], False)
    faster = "postgresql" if whole >= 1 else "sqlite"
    factor = whole if whole >= 1 else 1 / whole
    print(f"\n{faster} is {factor:.2f}x faster on the whole workload: "
          + ("switch the native default (>= 2x)" if factor >= 2 and faster == "postgresql"
             else "keep the default (the other is not >= 2x better)"))

    def figure(measure, value, baseline, unit, higher_better):
        better = value / baseline if higher_better else baseline / value
        return Figure(goal="4. store", measure=f"{measure}, FerretDB on PostgreSQL vs on SQLite", value=value,
                      baseline=baseline, target=">= 2x to switch", unit=unit, met=better >= 2)

    path = record("store_backend", [
        figure("whole workload", total["postgresql"], total["sqlite"], "s", False),
        figure("bulk insert", rates["postgresql"]["bulk"], rates["sqlite"]["bulk"], "docs/s", True),
        figure("streaming backlog batch", rates["postgresql"]["backlog"], rates["sqlite"]["backlog"], "records/s",
               True),
        figure("streaming steady batch p50", pg["steady_p50"] * 1000, sq["steady_p50"] * 1000, "ms", False),
        figure("per-document upserts", rates["postgresql"]["upserts"], rates["sqlite"]["upserts"], "docs/s", True),
        figure("web read: 24 h observations p95", read_p95["postgresql"]["24 h observations"],
               read_p95["sqlite"]["24 h observations"], "ms", False),
    ], machine=str(mach))
    print(f"recorded in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
