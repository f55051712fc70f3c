"""Forecasting API benchmark: one batch call versus the ancestor's one-call-per-region pattern.

Starts `python -m forecasting_api` on a free port, then for 14 regions x 168 hourly points,
24 h ahead, times (fresh series each time, so nothing is served from the cache):
  - 14 sequential POST /predict calls (the ancestor's pattern, the baseline),
  - one POST /predict/batch with 14 series (fits spread over the worker processes),
  - the same batch repeated (answered from the cache).
Prints figures; asserts nothing about speed.

    .venv/bin/python benchmarks/forecast_bench.py [--regions 14] [--hours 168] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the series generator lives with the test fakes (tests/fakes/temperature_series.py)

import requests  # noqa: E402

from tests.fakes.temperature_series import as_points, daily_cycle  # noqa: E402


def machine() -> str:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0, 0, 0)
    return (f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.1f} GiB RAM, "
            f"load avg {load[0]:.2f}, Python {platform.python_version()}")


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start_server(host: str, port: int, workers: int, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = dict(os.environ, METEOFLOW_BIND_HOST=host, METEOFLOW_FORECAST_API_PORT=str(port),
               METEOFLOW_FORECAST_WORKERS=str(workers), METEOFLOW_LOG_LEVEL="WARNING", **(extra_env or {}))
    errors = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server can never block on it
    server = subprocess.Popen([sys.executable, "-m", "forecasting_api"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=errors)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            errors.seek(0)
            raise SystemExit(f"the API exited: {errors.read().decode(errors='replace')[-2000:]}")
        try:
            if requests.get(f"http://{host}:{port}/health", timeout=2).ok:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise SystemExit("the API did not become healthy within 120 s")


def series_set(regions: int, hours: int, first_seed: int) -> list[dict]:
    return [{"region_id": f"region-{first_seed + n}", "latitude": 14.7, "longitude": -17.4, "horizon_hours": 24,
             "data": as_points(daily_cycle(hours, seed=first_seed + n))} for n in range(regions)]


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, default=14)
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--rounds", type=int, default=2, help="fresh series per round; the median is reported")
    parser.add_argument("--workers", type=int, default=0, help="forecast_workers of the server (0: one per core)")
    # `./run.sh bench --quick` passes --quick to every benchmark.
    parser.add_argument("--quick", action="store_true", help="one round instead of --rounds")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    host = "127.0.0.1"
    port = free_port(host)
    print(f"machine: {machine()}")
    server = start_server(host, port, args.workers)
    url = f"http://{host}:{port}"
    session = requests.Session()
    try:
        health = session.get(f"{url}/health").json()
        print(f"server: version {health['version']}, {health['workers']} worker processes, port {port}")

        def single(series: dict) -> dict:
            response = session.post(f"{url}/predict", json=series, timeout=300)
            response.raise_for_status()
            return response.json()

        def batch(all_series: list[dict]) -> dict:
            response = session.post(f"{url}/predict/batch", json={"series": all_series}, timeout=300)
            response.raise_for_status()
            body = response.json()
            failed = [item for item in body["results"] if item["status"] != "ok"]
            if failed:
                raise SystemExit(f"batch items failed: {failed[:3]}")
            return body

        single(series_set(1, args.hours, first_seed=999)[0])  # warm every code path once, outside the timings
        batch(series_set(health["workers"], args.hours, first_seed=900))

        sequential_times, batch_times, cached_times, fit_sums = [], [], [], []
        for round_ in range(args.rounds):
            seeds = 1000 * (round_ + 1)
            sequential_series = series_set(args.regions, args.hours, first_seed=seeds)
            batch_series = series_set(args.regions, args.hours, first_seed=seeds + 500)
            t_seq, answers = timed(lambda: [single(s) for s in sequential_series])
            t_batch, body = timed(lambda: batch(batch_series))
            t_cached, cached = timed(lambda: batch(batch_series))
            assert not any(a["model"]["cached"] for a in answers)
            assert not any(item["forecast"]["model"]["cached"] for item in body["results"])
            assert all(item["forecast"]["model"]["cached"] for item in cached["results"])
            sequential_times.append(t_seq)
            batch_times.append(t_batch)
            cached_times.append(t_cached)
            fit_sums.append(sum(item["forecast"]["model"]["fit_seconds"] for item in body["results"]))
            print(f"round {round_ + 1}: sequential {t_seq:.2f} s, batch {t_batch:.2f} s, "
                  f"cached batch {t_cached * 1000:.0f} ms")

        t_seq, t_batch, t_cached = (statistics.median(v) for v in (sequential_times, batch_times, cached_times))
        t_single_cached, _ = timed(lambda: single(sequential_series[0]))
        print()
        print(f"{args.regions} regions x {args.hours} hourly points, 24 h ahead (median of {args.rounds} rounds)")
        print(f"  14 sequential POST /predict (ancestor pattern): {t_seq:8.2f} s  ({t_seq / args.regions * 1000:.0f} ms per region)")
        print(f"  one POST /predict/batch:                        {t_batch:8.2f} s  (sum of fit times {statistics.median(fit_sums):.2f} s)")
        print(f"  speed-up, sequential / batch:                   {t_seq / t_batch:8.2f} x")
        print(f"  cached repeat of the batch:                     {t_cached * 1000:8.0f} ms  ({t_seq / t_cached:.0f} x faster than sequential)")
        print(f"  cached repeat of one single call:               {t_single_cached * 1000:8.1f} ms")
        print(f"  server cache: {session.get(f'{url}/health').json()['cache']}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
