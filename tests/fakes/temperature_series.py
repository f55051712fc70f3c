"""Simulator-like hourly temperatures with a known daily cycle, for the forecasting tests and benchmark.

25 deg C mean, a 6 deg C daily swing peaking at 15:00 UTC, and AR(1) weather noise
(persistent anomalies, as real temperatures have), so a forecast can be scored against truth.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone


def daily_cycle(hours: int, *, seed: int, start: datetime = datetime(2024, 5, 1, tzinfo=timezone.utc),
                mean: float = 25.0, amplitude: float = 6.0, peak_hour: int = 15,
                phi: float = 0.7, noise: float = 0.8) -> list[tuple[datetime, float]]:
    rng = random.Random(seed)
    anomaly = 0.0
    series = []
    for step in range(hours):
        when = start + timedelta(hours=step)
        anomaly = phi * anomaly + rng.gauss(0.0, noise)
        cycle = amplitude * math.cos(2 * math.pi * (when.hour - peak_hour) / 24)
        series.append((when, mean + cycle + anomaly))
    return series


def as_points(series: list[tuple[datetime, float]]) -> list[dict]:
    """The API's `data` field: [{ds: ISO 8601, y}]."""
    return [{"ds": when.isoformat().replace("+00:00", "Z"), "y": round(value, 3)} for when, value in series]
