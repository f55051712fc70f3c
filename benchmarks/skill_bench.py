"""What tracking forecast skill adds to a forecast refresh, on FerretDB: the same hours of live
data refreshed by a refresher that scores skill (streaming/skill.py, as shipped) and by one whose
skill step does nothing (the design before it), each on its own database, hour by hour in turn.

Baseline forecasts only (forecast_min_points above the history), so no forecasting API is needed
and the figures are the MongoDB work: storing runs, reading the targets, writing buckets,
recomputing windows. Starts its own FerretDB through the stack, like every benchmark.

    .venv/bin/python benchmarks/skill_bench.py              # 4 regions, 7 days stored, 24 live hours
    .venv/bin/python benchmarks/skill_bench.py --quick      # 8 live hours
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from meteoflow.contracts import FORECAST_SKILL, FORECAST_SKILL_BUCKETS  # noqa: E402
from meteoflow.mongo import make_mongo_client  # noqa: E402
from meteoflow.settings import REPO_ROOT, load_settings  # noqa: E402
from stack.servers import servers, store_servers  # noqa: E402
from streaming.forecasts import ForecastRefresher  # noqa: E402
from streaming.records import latest_per_region  # noqa: E402
from streaming.sinks import HourlyStatsSink, ObservationSink, ensure_indexes  # noqa: E402
from streaming.skill import SkillTracker, SkillUpdate  # noqa: E402
from tests.fakes.observations import simulated_observations  # noqa: E402

HOUR = timedelta(hours=1)


class NoSkill(SkillTracker):
    """The refresher before skill tracking: the step does nothing."""

    def update(self, observed, runs) -> SkillUpdate:
        return SkillUpdate()


class Arm:
    """One refresher on its own database, 7 days stored; `step` adds one live hour and times its refresh."""

    def __init__(self, settings, db, skill: bool, start: datetime):
        ensure_indexes(db)
        self.db, self.start, self.clock = db, start, [start]
        self.refresher = ForecastRefresher(db, settings, clock=lambda: self.clock[0])
        if not skill:
            self.refresher.skill = NoSkill(db)
        history = simulated_observations(regions=4, hours=7 * 24, per_hour=1, end=start)
        ObservationSink(db).write(history, start)
        HourlyStatsSink(db).write(history, start)
        self.refresher.mark(latest_per_region(history))
        self.refresher.refresh()
        self.times: list[float] = []

    def step(self, hour: int) -> None:
        now = self.start + hour * HOUR
        self.clock[0] = now
        batch = simulated_observations(regions=4, hours=1, per_hour=1, end=now, seed=hour)
        ObservationSink(self.db).write(batch, now)
        HourlyStatsSink(self.db).write(batch, now)
        self.refresher.mark(latest_per_region(batch))
        began = time.perf_counter()
        outcome = self.refresher.refresh()
        self.times.append(time.perf_counter() - began)
        assert len(outcome.ok) == 4, outcome


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=int, default=24, help="live hours refreshed one by one")
    parser.add_argument("--quick", action="store_true", help="8 live hours")
    parser.add_argument("--mongo-port", type=int, default=57217, help="port of the benchmark's own FerretDB")
    args = parser.parse_args(argv)
    if args.quick:
        args.hours = 8
    settings = load_settings(run_dir=REPO_ROOT / ".run" / "bench-skill", mongo_port=args.mongo_port,
                             postgres_port=args.mongo_port - 27017 + 5432,
                             forecast_min_points=100_000, forecast_max_points=100_000, forecast_horizon_hours=24)
    store = servers(settings, store_servers(settings))  # FerretDB, after its PostgreSQL on that backend
    started = [server for server in store if server.start() == "started"]
    client = make_mongo_client(settings)
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - (args.hours + 1) * HOUR
    names = {arm: f"bench-skill-{arm}-{uuid.uuid4().hex[:8]}" for arm in ("without", "with")}
    try:
        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
        arms = {arm: Arm(settings, client[name], arm == "with", start) for arm, name in names.items()}
        # Hour by hour, alternately first, so both see the same load on a shared machine.
        for hour in range(1, args.hours + 1):
            for arm in (list(arms) if hour % 2 else list(reversed(arms))):
                arms[arm].step(hour)
        results = {arm: a.times for arm, a in arms.items()}
        db = client[names["with"]]
        print(f"4 regions, 7 days stored, {args.hours} live hours refreshed one by one; with skill: "
              f"{db[FORECAST_SKILL_BUCKETS].count_documents({})} buckets, "
              f"{db[FORECAST_SKILL].count_documents({'window': '24h', 'count': {'$gt': 0}})} scored 24 h leads")
        for arm in ("without", "with"):
            t = results[arm]
            print(f"  refresh {arm:7s} skill tracking: median {statistics.median(t) * 1000:7.0f} ms, "
                  f"mean {statistics.fmean(t) * 1000:7.0f} ms, max {max(t) * 1000:7.0f} ms")
        added = statistics.median(results["with"]) - statistics.median(results["without"])
        print(f"  skill tracking adds {added * 1000:.0f} ms to the median refresh "
              f"(x{statistics.median(results['with']) / statistics.median(results['without']):.2f})")
        print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        for name in names.values():
            client.drop_database(name)
        client.close()
        for server in reversed(started):
            server.stop()


if __name__ == "__main__":
    main()
