"""Simulator-like observations for the streaming tests (until the producer's simulator can be reused)."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

from meteoflow.contracts import Observation

REGIONS = [("dakar", "Dakar", 14.69, -17.44), ("thies", "Thies", 14.79, -16.93),
           ("saint-louis", "Saint-Louis", 16.02, -16.49), ("kaolack", "Kaolack", 14.15, -16.07)]


def simulated_observations(regions: int = 3, hours: int = 30, per_hour: int = 2, end: datetime | None = None,
                           seed: int = 7) -> list[Observation]:
    """Valid observations with a daily temperature cycle: `per_hour` per region and hour,
    over the `hours` before `end` (default: the current hour)."""
    rng = random.Random(seed)
    end = end or datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=hours)
    out = []
    for step in range(hours * per_hour):
        when = start + timedelta(minutes=step * 60 // per_hour)
        for region_id, name, lat, lon in REGIONS[:regions]:
            temp = 26 + 5 * math.sin((when.hour - 9) / 24 * 2 * math.pi) + rng.uniform(-1, 1)
            out.append(Observation(
                region_id=region_id, region_name=name, lat=lat, lon=lon, observed_at=when, temp=round(temp, 2),
                humidity=rng.uniform(40, 90), pressure=rng.uniform(1005, 1015), wind_speed=rng.uniform(0, 8),
                source="simulator", batch_id=f"run-{step}", produced_at=when + timedelta(seconds=1)))
    return out


def recompute_hourly_stats(observations: list[Observation]) -> dict[str, tuple]:
    """The hourly stats the job must store, recomputed independently from the raw records:
    {doc id: (min, max, mean, count)}; a record sent twice counts once."""
    import statistics

    import pytest

    from meteoflow.contracts import doc_id

    by_key: dict[tuple, list[float]] = {}
    for obs in {(o.region_id, o.observed_at): o for o in observations}.values():
        hour = obs.observed_at.replace(minute=0, second=0, microsecond=0)
        by_key.setdefault((obs.region_id, hour), []).append(obs.temp)
    return {doc_id(r, h): (min(t), max(t), pytest.approx(statistics.fmean(t)), len(t)) for (r, h), t in by_key.items()}


def stored_hourly_stats(db) -> dict[str, tuple]:
    """{doc id: (min, max, mean, count)} of the stored hourly stats, each validated by its contract."""
    from meteoflow.contracts import HOURLY_STATS, HourlyStats

    return {s.id: (s.temp_min, s.temp_max, s.temp_mean, s.count)
            for s in map(HourlyStats.from_document, db[HOURLY_STATS].find())}
