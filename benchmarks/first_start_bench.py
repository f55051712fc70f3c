"""First start with a One Call 3.0 key: how soon a new deployment shows forecasts (issue 16).

Starts Kafka, FerretDB, the forecasting API, the streaming job, the web app and the producer with
`METEOFLOW_OWM_API=onecall` on an empty store, the producer pointed at a local stand-in of
OpenWeatherMap (`tests/fakes/owm_server.py`: this machine cannot reach api.openweathermap.org; it
answers in One Call 3.0's format at once, so what is timed is Meteoflow's own path, the request
budget's pacing included). Polls the web app's API and prints, from the producer's start, when
every region showed its latest observation, a forecast (a labelled persistence/climatology one
while history is short), every back-filled hour, and a forecast from the model (Prophet's blend,
which needs 2 days of history) for every region, waiting up to 10 min after the back-fill for it.
The stand-in answers at the current time with a daily cycle (`FakeOwm(live=True)`), so the
model has a day's shape to learn; its values are not real weather.

Without One Call there is no back-fill: the model needs `METEOFLOW_FORECAST_MIN_POINTS` (24) hourly
points, so its first forecast comes 23 hours after the first start at best. That comparison is
derived from the settings, not measured here.

    .venv/bin/python benchmarks/first_start_bench.py                  # 48 h back-fill, the free plan's 60 calls/min
    .venv/bin/python benchmarks/first_start_bench.py --hours 24 --calls-per-minute 120
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import requests
from pydantic import SecretStr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from goals import Figure, record  # noqa: E402
from meteoflow.contracts import BASELINE_MODELS  # noqa: E402
from producer.regions import load_regions  # noqa: E402
from tests.faults.harness import Pipeline, machine, pipeline_settings, wait_until  # noqa: E402
from tests.fakes.owm_server import TIMEMACHINE, FakeOwm  # noqa: E402

KEY = "first-start-bench-key-5d1f0a"
MODEL_MILESTONE = "every region's forecast comes from the model (prophet/blend)"
BACKFILLED = "every region's back-filled hours stored"
MODEL_GRACE_SECONDS = 600.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hours", type=int, default=48, help="METEOFLOW_OWM_BACKFILL_HOURS (default 48, the setting's)")
    p.add_argument("--calls-per-minute", type=int, default=None,
                   help="METEOFLOW_OWM_CALLS_PER_MINUTE (default: the free plan's 60)")
    p.add_argument("--quick", action="store_true", help="24 h back-filled (the fewest the model needs)")
    p.add_argument("--timeout", type=float, default=1800.0, help="give up after this many seconds")
    p.add_argument("--port-offset", type=int, default=37000)
    p.add_argument("--run-dir", type=Path, default=REPO / ".run" / "bench-first-start")
    args = p.parse_args(argv)
    if args.quick:
        args.hours = 24
    return args


class Timeline:
    """When each milestone was first seen for every region, in seconds from `started`."""

    def __init__(self, web: str, region_ids: list[str], started: float, hours: int):
        self.web, self.region_ids, self.started, self.hours = web, region_ids, started, hours
        self.seen: dict[str, float] = {}
        self.models: dict[str, str | None] = {}

    def mark(self, name: str, reached: bool) -> None:
        if reached and name not in self.seen:
            self.seen[name] = time.monotonic() - self.started
            print(f"[bench] {self.seen[name]:7.1f} s  {name}", flush=True)

    def poll(self) -> bool:
        """One look; True once every milestone is reached."""
        listed = requests.get(f"{self.web}/api/regions", timeout=10).json()["regions"]
        self.mark("every region's latest observation visible",
                  {r["region_id"] for r in listed if r.get("latest")} >= set(self.region_ids))
        hours = {}
        for rid in self.region_ids:
            answer = requests.get(f"{self.web}/api/regions/{rid}", params={"hours": self.hours}, timeout=10)
            if not answer.ok:  # e.g. 404 before the region's first observation is stored
                self.models[rid], hours[rid] = None, 0
                continue
            body = answer.json()
            forecast = body["forecast"]
            self.models[rid] = forecast["model"] if forecast and forecast.get("points") else None
            hours[rid] = len(body["hourly"])
        self.mark("every region has a forecast (a labelled baseline at first)", all(self.models.values()))
        self.mark(BACKFILLED, all(n >= self.hours for n in hours.values()))
        self.mark(MODEL_MILESTONE, all(m is not None and m not in BASELINE_MODELS for m in self.models.values()))
        # Done once the model serves every region, or 10 min after the back-fill without it.
        return MODEL_MILESTONE in self.seen or (
            BACKFILLED in self.seen and time.monotonic() - self.started - self.seen[BACKFILLED] > MODEL_GRACE_SECONDS)


def main(argv=None) -> int:
    args = parse_args(argv)
    regions = load_regions()
    extra = {"owm_calls_per_minute": args.calls_per_minute} if args.calls_per_minute else {}
    before = machine()
    with FakeOwm(api_key=KEY, live=True) as owm:
        settings = pipeline_settings(
            args.run_dir, args.port_offset, producer_source="openweathermap", owm_api="onecall",
            owm_api_key=SecretStr(KEY), owm_base_url=owm.url, owm_backfill_hours=args.hours, log_level="WARNING",
            **extra)
        per_minute, per_day = settings.owm_budget()
        pipeline = Pipeline(settings, ["kafka", "ferretdb"], ["forecasting_api", "streaming", "webapp", "producer"])
        try:
            pipeline.start_servers()
            for name in ("forecasting_api", "webapp", "streaming"):
                pipeline.start(name, supervise=False)
            started = time.monotonic()
            pipeline.start("producer", supervise=False)
            timeline = Timeline(f"http://{settings.bind_host}:{settings.webapp_port}", [r.id for r in regions], started,
                                args.hours)
            wait_until(timeline.poll, args.timeout, "every region's forecast and back-filled hours", every=2.0)
            calls = owm.count(TIMEMACHINE)
        finally:
            pipeline.stop_all()
    print(f"\nfirst start with One Call 3.0: {len(regions)} regions, {args.hours} h back-filled "
          f"({calls} timemachine calls), budget {per_minute} calls/min and {per_day:,}/day")
    print(f"machine before: {before}\nmachine after:  {machine()}")
    for name, seconds in timeline.seen.items():
        print(f"  {name:<62} {seconds:7.1f} s ({seconds / 60:.1f} min)")
    print(f"  served models at the end: {sorted(set(timeline.models.values()))}")
    record("first_start", [Figure(
        "16. first start (One Call)", f"minutes until {name} ({args.hours} h back-fill)",
        None if name not in timeline.seen else timeline.seen[name] / 60, None, "within minutes", "min")
        for name in ("every region has a forecast (a labelled baseline at first)", BACKFILLED, MODEL_MILESTONE)],
        machine=str(machine()))
    print(f"  without One Call (no back-fill), the first model forecast needs {settings.forecast_min_points} hourly "
          f"points: {settings.forecast_min_points - 1} h after the first start at best")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
