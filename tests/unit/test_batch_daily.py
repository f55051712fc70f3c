"""Daily statistics on plain lists: the aggregation (precipitation per hour, exact means), the
touched keys, and that a day's numbers do not depend on the order of its points."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from meteoflow.contracts import DailyPoint, DailyStats, doc_id
from streaming.daily import daily_stats, day_floor, touched_days
from tests.fakes.observations import simulated_observations

DAY0 = datetime(2026, 8, 14, tzinfo=timezone.utc)
NOW = datetime(2026, 8, 20, tzinfo=timezone.utc)


def point(minutes: int, temp: float, humidity: float = 80.0, wind: float = 3.0, rain=None, snow=None,
          region: str = "dakar") -> DailyPoint:
    when = DAY0 + timedelta(minutes=minutes)
    return DailyPoint(_id=doc_id(region, when), region_id=region, observed_at=when, temp=temp, lat=14.7, lon=-17.4,
                      humidity=humidity, wind_speed=wind, rain_1h=rain, snow_1h=snow)


def test_daily_stats_of_one_day():
    points = [point(0, 24.0, 70, 2, rain=None), point(15, 26.0, 90, 4, rain=2.0), point(30, 28.0, 80, 6, rain=4.0),
              point(60 * 5, 30.0, 60, 0, rain=1.0, snow=0.5), point(60 * 7, 22.0, 100, 8)]
    stats = DailyStats.build("dakar", DAY0, points, NOW)
    assert stats.id == "dakar|2026-08-14T00:00:00Z"
    assert (stats.temp_min, stats.temp_max, stats.temp_mean) == (22.0, 30.0, 26.0)
    assert stats.humidity_mean == 80.0 and stats.wind_speed_mean == 4.0 and stats.count == 5
    # Hour 0: two readings of the last hour's rain (2 and 4) are one hour of 3 mm, not 6 mm; hour 5: 1.5 mm.
    assert stats.precipitation_mm == 4.5
    assert stats.precipitation_hours == 2


def test_a_dry_day_without_precipitation_fields_counts_zero_hours():
    stats = DailyStats.build("dakar", DAY0, [point(0, 25.0), point(600, 27.0)], NOW)
    assert stats.precipitation_mm == 0 and stats.precipitation_hours == 0


def test_daily_stats_keep_exactly_the_keys_asked_and_ignore_the_rest():
    points = [point(10, 20.0), point(60 * 24 + 10, 30.0), point(10, 25.0, region="thies")]
    stats = daily_stats([("dakar", DAY0), ("thies", DAY0), ("kaolack", DAY0)], points, NOW)
    assert [(s.region_id, s.day, s.temp_mean) for s in stats] == [("dakar", DAY0, 20.0), ("thies", DAY0, 25.0)]


def test_the_numbers_do_not_depend_on_the_order_of_the_points():
    rng = random.Random(3)
    points = [point(m, rng.uniform(15, 40), rng.uniform(0, 100), rng.uniform(0, 20), rain=rng.choice([None, 0.3, 1.7]))
              for m in range(0, 24 * 60, 7)]
    first = DailyStats.build("dakar", DAY0, points, NOW)
    rng.shuffle(points)
    assert DailyStats.build("dakar", DAY0, points, NOW) == first
    assert first.temp_mean == math.fsum(p.temp for p in points) / len(points)


def test_touched_days_are_utc_days():
    obs = simulated_observations(regions=2, hours=30, per_hour=1, end=DAY0 + timedelta(hours=6))
    assert touched_days(obs) == {(r, d) for r in ("dakar", "thies") for d in (DAY0 - timedelta(days=1), DAY0)}
    assert day_floor(datetime(2026, 8, 14, 23, 30, tzinfo=timezone(timedelta(hours=-2)))) == DAY0 + timedelta(days=1)


def test_a_point_with_negative_rain_is_refused():
    with pytest.raises(ValueError, match="rain_1h"):
        point(0, 25.0, rain=-1.0)


def test_a_stored_day_with_a_damaged_reading_key_is_invalid_not_a_batch_failure():
    from meteoflow.contracts import InvalidDocument

    doc = DailyStats.build("dakar", DAY0, [point(0, 25.0, rain=0.5)], NOW).to_document()
    assert DailyStats.from_document(doc).readings  # a sound one reads back
    for key in ("abc", "", "1" * 40):
        with pytest.raises(InvalidDocument, match="readings"):
            DailyStats.from_document({**doc, "readings": {key: [25.0, 50.0, 3.0, None]}})
