"""Read paths that do not scan: how long the web app's region reads take with 1 day and with 90
days of history stored, for the current design and the previous one, on the same data.

What it does (FerretDB on its own port and run directory, stopped at the end):
1. stores 1 day of hourly observations for --regions regions through the streaming job's own
   sinks (observations, hourly statistics, region_latest: the documents the job writes);
2. asks GET /api/regions and GET /api/regions/{id} (48 h window) of the web app (in process, its
   real Store; Elasticsearch is not started, so the app serves MongoDB's data and says so) --repeat
   times each, with the current reads and with the previous design's (benchmarks/previous_design.py);
3. adds the other days up to --days and asks again.
The previous design's GET /api/regions sorts every region's history, one region at a time (minutes
per answer on a loaded machine), so it is timed on --sample regions and scaled to all of them (the
script says so); its GET /api/regions/{id} is asked --repeat / 5 times. Asserts nothing about speed.

    .venv/bin/python benchmarks/read_paths_bench.py            # 200 regions, 1 day then 90 days
    .venv/bin/python benchmarks/read_paths_bench.py --quick    # 20 regions, 1 day then 10 days
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from goals import Figure, record  # noqa: E402
from previous_design import previous_store_class  # noqa: E402
from meteoflow.contracts import OBSERVATIONS, Observation  # noqa: E402
from meteoflow.mongo import database, make_mongo_client  # noqa: E402
from producer.sources.simulator import simulate_history  # noqa: E402
from streaming.records import observation_documents  # noqa: E402
from streaming.sinks import HourlyStatsSink, ObservationSink, RegionLatestSink, ensure_indexes  # noqa: E402
from tests.faults.harness import Pipeline, grid_regions, machine, percentile, pipeline_settings  # noqa: E402

PLATEAU_DAYS = 9  # past RECENT_HOURS (7 days) and the day before its first hour

CHUNK_HOURS = 24  # stored one simulated day at a time (one batch of the sinks each)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regions", type=int, default=200)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--repeat", type=int, default=20, help="answers timed per endpoint and design")
    p.add_argument("--sample", type=int, default=5,
                   help="regions the previous design's GET /api/regions is timed on at the long history")
    p.add_argument("--quick", action="store_true", help="20 regions, 10 days, 10 answers")
    p.add_argument("--port-offset", type=int, default=30000)
    p.add_argument("--run-dir", type=Path, default=REPO / ".run" / "bench-read-paths")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.quick:
        args.regions, args.days, args.repeat = 20, 10, 10
    return args


def store_days(db, regions, end: datetime, first_day: int, last_day: int, seed: int) -> int:
    """Store days [first_day, last_day) before `end` (day 0 ends at `end`), oldest first."""
    sinks = ObservationSink(db), HourlyStatsSink(db), RegionLatestSink(db)
    stored = 0
    for day in range(last_day - 1, first_day - 1, -1):
        start = end - timedelta(days=day + 1)
        now = datetime.now(timezone.utc)
        observations: list[Observation] = list(simulate_history(regions, start, CHUNK_HOURS, seed=seed + day,
                                                                step_minutes=60))
        documents = [d.to_document() for d in observation_documents(observations, stored_at=now)]
        sinks[0].write(observations, now, documents)
        sinks[1].write(observations, now)
        sinks[2].write(documents)
        stored += len(documents)
    return stored


def timed(client, url: str, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = client.get(url)
        out.append(time.perf_counter() - began)
        if response.status_code == 503:  # the store's read timed out (webapp MONGO_READ_TIMEOUT_MS): counted as is
            print(f"GET {url} answered 503 after {out[-1]:.1f} s: {response.text[:200]}", flush=True)
        elif response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}: {response.text[:300]}")
    return out


def measure(settings, regions, args) -> dict:
    from fastapi.testclient import TestClient

    from webapp.app import create_app
    from webapp.store import Store

    region = regions[len(regions) // 2].id
    out = {}
    for design, store_class in (("current", Store), ("previous", previous_store_class())):
        store = store_class(settings)
        with TestClient(create_app(settings, store=store)) as client:
            timed(client, f"/api/regions/{region}?hours=48", 1)  # warm: connections, first validation
            one = timed(client, f"/api/regions/{region}?hours=48",
                        args.repeat if design == "current" else max(3, args.repeat // 5))
            if design == "previous":
                # The region list (distinct over all observations), then every region's history sorted
                # one region at a time: timed on a sample of regions and scaled to all of them.
                # Timed outside the app, without its 10 s read timeout: at 90 days the distinct takes longer.
                unbounded = store_class(settings)
                unbounded.db.client.close()
                unbounded.db = database(settings, make_mongo_client(settings))
                began = time.perf_counter()
                unbounded.db[OBSERVATIONS].distinct("region_id")
                listed = time.perf_counter() - began
                began = time.perf_counter()
                for r in regions[:args.sample]:
                    unbounded.latest_observation(r.id)
                per_region = (time.perf_counter() - began) / args.sample
                listing = {"p50_s": round(listed + per_region * len(regions), 3), "p95_s": None,
                           "scaled_from_regions": args.sample}
                unbounded.close()
            else:
                answers = timed(client, "/api/regions", args.repeat)
                listing = {"p50_s": round(statistics.median(answers), 4),
                           "p95_s": round(percentile(answers, 95), 4)}
        out[design] = {"regions": listing, "region": {"p50_s": round(statistics.median(one), 4),
                                                      "p95_s": round(percentile(one, 95), 4)}}
        store.close()
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    # Elasticsearch is not started (its port answers nothing): the app serves MongoDB's data, and its
    # pages' Elasticsearch reads fail at once; their one warning per request would bury the figures.
    settings = pipeline_settings(args.run_dir, args.port_offset, log_level="WARNING")
    logging.getLogger("webapp").setLevel(logging.ERROR)
    regions = grid_regions(args.regions)
    pipeline = Pipeline(settings, ["ferretdb"], [])
    before = machine()
    print(f"machine: {json.dumps(before)}", flush=True)
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    try:
        pipeline.start_servers()
        db = database(settings, make_mongo_client(settings))
        ensure_indexes(db)
        began = time.perf_counter()
        stored = store_days(db, regions, end, 0, 1, args.seed)
        print(f"stored 1 day: {stored} observations in {time.perf_counter() - began:.1f} s", flush=True)
        short = measure(settings, regions, args)
        print(f"1 day: {json.dumps(short)}", flush=True)
        # Past the longest window the region page offers (RECENT_HOURS, 7 days): the window's reads (by
        # day) should stay as they are from here to --days.
        plateau_days = min(args.days, PLATEAU_DAYS)
        stored += store_days(db, regions, end, 1, plateau_days, args.seed)
        plateau = measure(settings, regions, args)
        print(f"{plateau_days} days: {json.dumps(plateau)}", flush=True)
        began = time.perf_counter()
        stored += store_days(db, regions, end, plateau_days, args.days, args.seed)
        print(f"stored {args.days} days: {stored} observations in {time.perf_counter() - began:.1f} s", flush=True)
        long = measure(settings, regions, args)
        print(f"{args.days} days: {json.dumps(long)}", flush=True)
        db.client.close()
        after = machine()
    finally:
        pipeline.stop_all()
    report(args, regions, short, long, before, after, plateau_days, plateau)
    return 0


def report(args, regions, short, long, before, after, plateau_days, plateau) -> None:
    load = f"load avg {before['load_avg_1_5_15']} before, {after['load_avg_1_5_15']} after"
    print("\n=== read paths benchmark ===")
    print(f"machine    {before['cpu']}, {before['cores']} cores, {before['memory_gib']} GiB; {load}")
    print(f"data       {len(regions)} regions, one observation per region and hour; GET /api/regions/{{id}} with a 48 h window")
    for design in ("current", "previous"):
        for endpoint, label in (("regions", "GET /api/regions"), ("region", "GET /api/regions/{id}")):
            a, b = short[design][endpoint], long[design][endpoint]
            scaled = f" (scaled from {b['scaled_from_regions']} regions)" if b.get("scaled_from_regions") else ""
            print(f"{design:<9}  {label:<22} 1 day p50 {a['p50_s']} s p95 {a['p95_s']} s; "
                  f"{args.days} days p50 {b['p50_s']} s p95 {b['p95_s']} s{scaled}")
    p = plateau["current"]["region"]
    print(f"current    GET /api/regions/{{id}}  {plateau_days} days p50 {p['p50_s']} s p95 {p['p95_s']} s "
          f"(past the longest window: from here on its reads by day read the same days)")
    days = f"{args.days} days"
    figures = []
    for endpoint, label in (("regions", "GET /api/regions"), ("region", "GET /api/regions/{id}")):
        cur, prev = long["current"][endpoint], long["previous"][endpoint]
        growth = cur["p50_s"] / short["current"][endpoint]["p50_s"]
        figures += [
            Figure("3. reads", f"{label} p50 at 1 day, {len(regions)} regions", short["current"][endpoint]["p50_s"] * 1000,
                   short["previous"][endpoint]["p50_s"] * 1000, "flat with history", "ms", None),
            Figure("3. reads", f"{label} p50 at {days}, {len(regions)} regions", cur["p50_s"] * 1000,
                   prev["p50_s"] * 1000, "flat with history", "ms", growth < 2),
        ]
    machine_text = f"{before['cpu']}, {before['cores']} cores; {load}" + ("; --quick" if args.quick else "")
    record("read_paths", figures, machine_text)
    if args.json:
        args.json.write_text(json.dumps({"machine_before": before, "machine_after": after, "short": short,
                                         "plateau": {"days": plateau_days, **plateau}, "long": long}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
