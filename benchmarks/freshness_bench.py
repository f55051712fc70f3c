"""Freshness: how long from produce to visible through the web app's API, at a steady rate.

Starts Kafka and FerretDB (stack.servers, ports + 30000, run dir .run/bench-freshness), the real
forecasting API, the streaming job (`python -m streaming`, 1 s trigger) and the web app
(`python -m webapp`). A feeder publishes one observation per region every --interval seconds
(produced_at = wall clock at publication; observed time advancing as the wall clock, or
--data-step-minutes per tick) after a 26 h back-fill; a poller reads
GET /api/regions again 100 ms after each answer and notes when each published record's
observed_at first shows as its region's latest (at the time the answer arrived). Prints
p50/p95/max of visible - produced_at, and how long the API took to answer. Elasticsearch is not
started: the web app reports it missing and serves the MongoDB data, which is what this measures.

    .venv/bin/python benchmarks/freshness_bench.py            # 14 regions, one batch every 2 s, 120 s
    .venv/bin/python benchmarks/freshness_bench.py --quick    # 40 s
    .venv/bin/python benchmarks/freshness_bench.py --data-step-minutes 20   # an hour of weather every 6 s
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
from goals import Figure, record  # noqa: E402
from tests.faults.harness import Feeder, Pipeline, machine, percentile, pipeline_settings, service, wait_until  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120.0, help="measured steady-state duration")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between two batches (one record per region)")
    p.add_argument("--quick", action="store_true", help="40 s of measurement")
    p.add_argument("--skip-previous", action="store_true", help="do not measure the previous design")
    p.add_argument("--data-step-minutes", type=float, default=None,
                   help="observed time between two records of a region while measuring; default: as the wall "
                        "clock (--interval), as a producer polling that often would send. 20 replays an hour of "
                        "weather every 3 ticks: every refresh then refits and scores a new hour of every region")
    p.add_argument("--port-offset", type=int, default=30000)
    p.add_argument("--run-dir", type=Path, default=REPO / ".run" / "bench-freshness")
    p.add_argument("--json", type=Path)
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="the services' log level (INFO logs each batch's stage durations; it costs a little)")
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
        self.answers: list[tuple[float, float]] = []  # (asked at, seconds it took): the resolution of the figures
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
            self.answers.append((asked, seen - asked))
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


VISIBLE_WITHIN = 180.0  # seconds after a phase's end for its records to show


def previous_service(settings, name: str):
    """The service `name` (streaming or webapp) running the previous design (benchmarks/previous_design.py)."""
    svc = service(settings, name)
    svc.command = lambda: [sys.executable, str(REPO / "benchmarks" / "previous_design.py"), name]
    return svc


def require_running(pipeline: Pipeline, phase: str) -> None:
    """A service that died during a phase makes its figures meaningless (nothing becomes visible):
    say which one, and where its log is, instead of reporting them."""
    dead = [name for name, svc in pipeline.services.items()
            if name in ("streaming", "webapp") and svc.recorded_pid() is None]
    if dead:
        logs = ", ".join(str(pipeline.services[name].log_file) for name in dead)
        raise SystemExit(f"freshness benchmark: {', '.join(dead)} exited during phase '{phase}' (see {logs})")


def measure_phase(name: str, feeder: Feeder, poller: Poller, seconds: float) -> dict:
    """Feed for `seconds`, then wait until every record fed is visible; the phase's figures."""
    measured_from = len(feeder.produced)
    began = time.time()
    feeder.resume() if feeder._thread.is_alive() else feeder.begin()
    time.sleep(seconds)  # the measurement window (the figures come from the poller)
    feeder.pause()
    ended = time.time()
    records = feeder.produced[measured_from:]
    try:
        wait_until(lambda: all(visible_at(poller, o) is not None for o in records), VISIBLE_WITHIN,
                   f"every record of phase '{name}' to be visible")
    except AssertionError:
        pass  # a design that cannot keep up: its unseen records count with what they waited so far
    gave_up = time.time()
    seen = [visible_at(poller, o) for o in records]
    latencies = [(s if s is not None else gave_up) - o.produced_at.timestamp() for s, o in zip(seen, records)]
    answers = [took for asked, took in list(poller.answers) if began <= asked <= ended]
    return {
        "phase": name, "records": len(records), "polls": len(answers),
        "poll_answer_p50_s": round(percentile(answers, 50), 3),
        "poll_answer_p95_s": round(percentile(answers, 95), 3),
        "poll_answer_max_s": round(max(answers), 3),
        "p50_s": round(percentile(latencies, 50), 2), "p95_s": round(percentile(latencies, 95), 2),
        "max_s": round(max(latencies), 2),
        # records never visible within VISIBLE_WITHIN s of the phase's end: their latency above is a lower bound
        "not_visible": sum(1 for s in seen if s is None),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = pipeline_settings(args.run_dir, args.port_offset, streaming_trigger_seconds=1.0,
                                 forecast_horizon_hours=24, forecast_history_days=2, log_level=args.log_level)
    pipeline = Pipeline(settings, ["kafka", "ferretdb"], ["forecasting_api", "streaming", "webapp"])
    regions = load_regions()
    before = machine()
    feeder = None
    poller = Poller(f"http://{settings.bind_host}:{settings.webapp_port}/api/regions")
    phases = []
    try:
        pipeline.start_servers()
        for name in ("forecasting_api", "webapp", "streaming"):
            pipeline.start(name, supervise=False)
        # The back-fill ends about now when the data then follows the wall clock; an accelerated replay starts
        # far enough back that its observations stay in the past.
        back = timedelta(hours=26) if args.data_step_minutes is None else timedelta(days=30)
        start = (datetime.now(timezone.utc) - back).replace(minute=0, second=0, microsecond=0)
        feeder = Feeder(settings, regions, start, step_minutes=20, tick_seconds=args.interval)
        feeder.backfill(hours=26)
        feeder.step_minutes = args.data_step_minutes or args.interval / 60
        poller.start()
        warm = feeder.produced[-1]
        wait_until(lambda: visible_at(poller, warm) is not None, 600, "the back-fill to be visible")
        phases.append(measure_phase("current", feeder, poller, args.seconds))
        print(f"phase: {json.dumps(phases[-1])}", flush=True)
        require_running(pipeline, phases[-1]["phase"])
        # The same design with the forecasting API stopped: forecasts are off the write path.
        pipeline.stop_service("forecasting_api")
        phases.append(measure_phase("current, forecasting API stopped", feeder, poller, args.seconds))
        print(f"phase: {json.dumps(phases[-1])}", flush=True)
        require_running(pipeline, phases[-1]["phase"])
        if not args.skip_previous:
            pipeline.start("forecasting_api", supervise=False)
            for name in ("streaming", "webapp"):
                pipeline.stop_service(name)
            # The previous design's retry timer ran every forecast_retry_seconds; its batches forecast inline.
            old = settings.model_copy(update={"forecast_refresh_seconds": settings.forecast_retry_seconds})
            for name in ("webapp", "streaming"):
                pipeline.services[name] = previous_service(old, name)
                pipeline.start(name, supervise=False)
            phases.append(measure_phase("previous design", feeder, poller, args.seconds))
            print(f"phase: {json.dumps(phases[-1])}", flush=True)
            require_running(pipeline, phases[-1]["phase"])
        after = machine()
        report(args, regions, phases, before, after)
        return 0
    finally:
        poller.stop.set()
        if feeder is not None:
            feeder.stop()
        pipeline.stop_all()


def report(args, regions, phases, before, after) -> None:
    load = f"load avg {before['load_avg_1_5_15']} before, {after['load_avg_1_5_15']} after"
    print("\n=== freshness benchmark ===")
    print(f"machine    {before['cpu']}, {before['cores']} cores, {before['memory_gib']} GiB; {load}")
    print(f"load       {len(regions)} regions, one batch every {args.interval:g} s "
          f"({len(regions) / args.interval:.1f} records/s) for {args.seconds:g} s per phase; trigger 1 s; "
          "API polled 0.1 s after each answer")
    step = args.data_step_minutes
    print(f"data       observed time advances {'as the wall clock' if step is None else f'{step:g} min per tick'}")
    for f in phases:
        print(f"{f['phase']:<34} produce -> visible in GET /api/regions p50 {f['p50_s']} s, p95 {f['p95_s']} s, "
              f"max {f['max_s']} s ({f['records']} records); answers p50 {f['poll_answer_p50_s']} s, "
              f"p95 {f['poll_answer_p95_s']} s, max {f['poll_answer_max_s']} s ({f['polls']} answers)"
              + (f"; {f['not_visible']} records not visible {VISIBLE_WITHIN:.0f} s after the phase (lower bounds)"
                 if f["not_visible"] else ""))
    print(json.dumps({"machine_before": before, "machine_after": after, "phases": phases}))
    cur, stopped = phases[0], phases[1]
    prev = phases[2] if len(phases) > 2 else {}
    figures = [
        Figure("2. freshness", "produce -> visible in GET /api/regions, p95", cur["p95_s"], prev.get("p95_s"),
               "<= 3 s", "s", cur["p95_s"] <= 3),
        Figure("2. freshness", "GET /api/regions answer under that load, p95", cur["poll_answer_p95_s"] * 1000,
               prev["poll_answer_p95_s"] * 1000 if prev else None, "<= 50 ms", "ms", cur["poll_answer_p95_s"] <= 0.05),
        Figure("2. freshness", "same, forecasting API stopped: produce -> visible p95", stopped["p95_s"],
               prev.get("p95_s"), "<= 3 s, unchanged", "s", stopped["p95_s"] <= 3),
        Figure("2. freshness", "same, forecasting API stopped: answer p95", stopped["poll_answer_p95_s"] * 1000,
               prev["poll_answer_p95_s"] * 1000 if prev else None, "<= 50 ms, unchanged", "ms",
               stopped["poll_answer_p95_s"] <= 0.05),
    ]
    record("freshness", figures, f"{before['cpu']}, {before['cores']} cores; {load}" + ("; --quick" if args.quick else "")
           + (f"; data {args.data_step_minutes:g} min per tick" if args.data_step_minutes else ""))
    if args.json:
        args.json.write_text(json.dumps({"machine_before": before, "machine_after": after, "phases": phases}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
