"""Freshness: how long from produce to visible through the web app's API, at a steady rate.

Starts Kafka and FerretDB (stack.servers, ports + 30000, run dir .run/bench-freshness), the real
forecasting API, the streaming job (`python -m streaming`, 1 s trigger) and the web app
(`python -m webapp`). A feeder publishes one observation per region every --interval seconds
(produced_at = wall clock at publication) after a 26 h back-fill; a poller reads
GET /api/regions again 100 ms after each answer and notes when each published record's
observed_at first shows as its region's latest (at the time the answer arrived). Prints
p50/p95/max of visible - produced_at, and how long the API took to answer. Elasticsearch is not
started: the web app reports it missing and serves the MongoDB data, which is what this measures.

    .venv/bin/python benchmarks/freshness_bench.py            # 14 regions, one batch every 2 s, 120 s
    .venv/bin/python benchmarks/freshness_bench.py --quick    # 40 s
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from producer.regions import load_regions  # noqa: E402
from meteoflow.contracts import parse_utc  # noqa: E402
from tests.faults.harness import Feeder, Pipeline, machine, percentile, pipeline_settings, wait_until  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120.0, help="measured steady-state duration")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between two batches (one record per region)")
    p.add_argument("--quick", action="store_true", help="40 s of measurement")
    p.add_argument("--port-offset", type=int, default=30000)
    p.add_argument("--run-dir", type=Path, default=REPO / ".run" / "bench-freshness")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.quick:
        args.seconds = 40.0
    return args


class Poller(threading.Thread):
    """Records, per region, the wall time at which each latest observed_at was first served."""

    def __init__(self, url: str):
        super().__init__(daemon=True, name="poller")
        self.url = url
        self.first_seen: dict[tuple[str, datetime], float] = {}
        self.polls = 0
        self.failed_polls = 0  # no answer within 30 s, or not JSON
        self.poll_seconds: list[float] = []  # how long each answer took: the resolution of the figures
        self.stop = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        while not self.stop.wait(0.1):
            asked = time.time()
            try:
                body = session.get(self.url, timeout=30).json()
            except (requests.RequestException, ValueError):
                self.failed_polls += 1
                continue
            seen = time.time()  # visible to a client once the answer is in its hands
            self.polls += 1
            self.poll_seconds.append(seen - asked)
            for row in body.get("regions", []):
                latest = row.get("latest") or {}
                if latest.get("observed_at"):
                    self.first_seen.setdefault((row["region_id"], parse_utc(latest["observed_at"])), seen)


def visible_at(poller: Poller, obs) -> float | None:
    """When the record was first visible: its region's served latest reached its observed_at
    (two batches stored by one micro-batch make only the newer one ever "latest")."""
    times = [seen for (region, when), seen in list(poller.first_seen.items())
             if region == obs.region_id and when >= obs.observed_at]
    return min(times) if times else None


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = pipeline_settings(args.run_dir, args.port_offset, streaming_trigger_seconds=1.0,
                                 forecast_horizon_hours=24, forecast_history_days=2, log_level="WARNING")
    pipeline = Pipeline(settings, ["kafka", "ferretdb"], ["forecasting_api", "streaming", "webapp"])
    regions = load_regions()
    before = machine()
    feeder = None
    poller = Poller(f"http://{settings.bind_host}:{settings.webapp_port}/api/regions")
    try:
        pipeline.start_servers()
        for name in ("forecasting_api", "webapp", "streaming"):
            pipeline.start(name, supervise=False)
        start = (datetime.now(timezone.utc) - timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
        feeder = Feeder(settings, regions, start, step_minutes=20, tick_seconds=args.interval)
        feeder.backfill(hours=26)
        poller.start()
        warm = feeder.produced[-1]
        wait_until(lambda: visible_at(poller, warm) is not None, 600, "the back-fill to be visible")
        measured_from = len(feeder.produced)
        feeder.begin()
        time.sleep(args.seconds)  # the measurement window (the figures come from the poller)
        feeder.pause()
        records = feeder.produced[measured_from:]
        wait_until(lambda: all(visible_at(poller, o) is not None for o in records), 300,
                   "every measured record to be visible")
        latencies = [visible_at(poller, o) - o.produced_at.timestamp() for o in records]
        figures = {
            "records": len(records), "regions": len(regions), "interval_s": args.interval,
            "trigger_s": settings.streaming_trigger_seconds, "polls": poller.polls,
            "poll_answer_p50_s": round(percentile(poller.poll_seconds, 50), 2),
            "poll_answer_p95_s": round(percentile(poller.poll_seconds, 95), 2),
            "poll_answer_max_s": round(max(poller.poll_seconds), 2), "failed_polls": poller.failed_polls,
            "p50_s": round(percentile(latencies, 50), 2), "p95_s": round(percentile(latencies, 95), 2),
            "max_s": round(max(latencies), 2),
        }
        after = machine()
        print("\n=== freshness benchmark ===")
        print(f"machine    {before['cpu']}, {before['cores']} cores, {before['memory_gib']} GiB; load avg "
              f"{before['load_avg_1_5_15']} before, {after['load_avg_1_5_15']} after")
        print(f"load       {len(regions)} regions, one batch every {args.interval:g} s "
              f"({len(regions) / args.interval:.1f} records/s) for {args.seconds:g} s; trigger 1 s; API polled 0.1 s after each answer")
        print(f"freshness  produce -> visible in GET /api/regions: p50 {figures['p50_s']} s, p95 {figures['p95_s']} s, "
              f"max {figures['max_s']} s over {len(records)} records")
        print(f"API        {poller.polls} answers of GET /api/regions, each took p50 {figures['poll_answer_p50_s']} s, "
              f"p95 {figures['poll_answer_p95_s']} s, max {figures['poll_answer_max_s']} s; "
              f"{poller.failed_polls} polls failed")
        print(json.dumps({"machine_before": before, "machine_after": after, "freshness": figures}))
        if args.json:
            args.json.write_text(json.dumps({"machine_before": before, "machine_after": after, "freshness": figures},
                                            indent=2))
        return 0
    finally:
        poller.stop.set()
        if feeder is not None:
            feeder.stop()
        pipeline.stop_all()


if __name__ == "__main__":
    sys.exit(main())
