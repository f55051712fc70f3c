"""Pure parts of the forecasting API: series cleaning, error wording, cache, model choices."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from forecasting_api.cache import LruCache, cache_key
from forecasting_api.model import DAY, ModelConfig, changepoints_for, seasonalities_for
from forecasting_api.validation import (
    TEMP_MAX,
    SeriesError,
    clean_series,
    describe_errors,
    parse_timestamp,
)
from meteoflow.contracts import PredictRequest, SeriesPoint
from meteoflow.errors import field_path

START = datetime(2024, 5, 1, tzinfo=timezone.utc)


def points(n: int, start: datetime = START, value: float = 20.0) -> list[SeriesPoint]:
    return [SeriesPoint(ds=(start + timedelta(hours=i)).isoformat(), y=value + i % 3) for i in range(n)]


def test_clean_series_normalizes_to_utc_epochs():
    series = clean_series(points(30), min_points=24)
    assert len(series.values) == 30
    assert series.epoch_seconds[0] == int(START.timestamp())
    assert series.last == START + timedelta(hours=29)
    assert series.duplicates_merged == 0


def test_offsets_and_naive_timestamps_are_utc():
    assert parse_timestamp("2024-05-01T14:00:00+02:00", "f") == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert parse_timestamp("2024-05-01 12:00:00", "f") == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert parse_timestamp("2024-05-01T12:00:00Z", "f") == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)


def test_duplicates_are_merged_by_mean_and_counted():
    data = points(26)
    data.insert(5, SeriesPoint(ds=data[4].ds, y=data[4].y + 2.0))  # same hour twice
    series = clean_series(data, min_points=24)
    assert series.duplicates_merged == 1
    assert len(series.values) == 26
    assert series.values[4] == pytest.approx(data[4].y + 1.0)


def test_out_of_order_names_first_offending_index():
    data = points(30)
    data[7], data[8] = data[8], data[7]
    with pytest.raises(SeriesError) as caught:
        clean_series(data, min_points=24)
    assert caught.value.field == "data[8].ds"
    assert "increasing" in caught.value.message and "data[7].ds" in caught.value.message


@pytest.mark.parametrize("bad", ["yesterday", "", "2024-13-01T00:00:00", "1700000000", "1800-01-01T00:00:00"])
def test_unparseable_timestamp_is_named(bad):
    data = points(30)
    data[3] = SeriesPoint(ds=bad, y=20.0)
    with pytest.raises(SeriesError) as caught:
        clean_series(data, min_points=24)
    assert caught.value.field == "data[3].ds"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), TEMP_MAX + 1])
def test_non_finite_or_implausible_temperature_is_named(bad):
    data = points(30)
    data[5] = SeriesPoint(ds=data[5].ds, y=bad)
    with pytest.raises(SeriesError) as caught:
        clean_series(data, min_points=24)
    assert caught.value.field == "data[5].y"


def test_too_few_points_counts_after_merging_duplicates():
    data = points(23) + [SeriesPoint(ds=points(23)[-1].ds, y=1.0)]
    with pytest.raises(SeriesError) as caught:
        clean_series(data, min_points=24)
    assert caught.value.field == "data"
    assert "23 distinct points" in caught.value.message and "1 duplicate" in caught.value.message


def test_pydantic_errors_become_field_paths():
    with pytest.raises(ValidationError) as caught:
        PredictRequest.model_validate({"latitude": 100, "longitude": 0, "data": [{"ds": "x", "y": "warm"}],
                                       "horizon_hours": 500})
    fields = {e.field: e.message for e in describe_errors(caught.value.errors())}
    assert set(fields) == {"latitude", "data[0].y", "horizon_hours"}
    assert "168" in fields["horizon_hours"]
    assert fields["data[0].y"].endswith("(got 'warm')")
    assert field_path(("series", 2, "data", 0, "ds")) == "series[2].data[0].ds"
    assert field_path(("data", 1), prefix="series[4]") == "series[4].data[1]"
    # FastAPI's locations start with where the value was: not part of the field's name.
    request = [{"loc": ("body", "series", 2, "ds"), "msg": "Field required", "type": "missing"},
               {"loc": ("body",), "msg": "Field required", "type": "missing"}]
    assert [(e.field, e.message) for e in describe_errors(request)] == [("series[2].ds", "missing"), ("body", "missing")]


def test_seasonalities_follow_history_length():
    assert seasonalities_for(7 * DAY) == ["daily"]
    assert seasonalities_for(14 * DAY) == ["daily", "weekly"]
    assert seasonalities_for(800 * DAY) == ["daily", "weekly", "yearly"]
    assert changepoints_for(24) == 2 and changepoints_for(168) == 14 and changepoints_for(10_000) == 25


def test_cache_key_depends_on_exact_values_horizon_and_config():
    series = clean_series(points(30), 24)
    other = clean_series(points(30, value=20.000000001), 24)
    key = cache_key(series, 24, ModelConfig())
    assert key == cache_key(clean_series(points(30), 24), 24, ModelConfig())
    assert key != cache_key(other, 24, ModelConfig())
    assert key != cache_key(series, 12, ModelConfig())
    assert key != cache_key(series, 24, ModelConfig(interval_width=0.8))


def test_lru_cache_evicts_least_recently_used_and_counts():
    cache = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None
    assert cache.stats() == {"size": 2, "capacity": 2, "hits": 1, "misses": 1, "evictions": 1}
    disabled = LruCache(0)
    disabled.put("a", 1)
    assert disabled.get("a") is None


def test_lru_cache_under_threads_keeps_its_bound_and_values():
    cache = LruCache(50)
    errors = []

    def worker(offset: int):
        for i in range(2000):
            key = (offset + i) % 120
            cache.put(key, key * 10)
            value = cache.get(key)
            if value is not None and value != key * 10:
                errors.append((key, value))

    threads = [threading.Thread(target=worker, args=(n * 7,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.stats()
    assert errors == []
    assert stats["size"] == 50 == len(cache)
    assert stats["hits"] + stats["misses"] == 8 * 2000
