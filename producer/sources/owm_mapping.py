"""OpenWeatherMap JSON -> observation fields (pure functions, no I/O).

Three shapes are understood, all with `units=metric`:
- One Call 3.0 `/data/3.0/onecall`: {"timezone_offset", "current": {dt, temp, ..., weather: [...]}}
- One Call 3.0 `/data/3.0/onecall/timemachine`: {"timezone_offset", "data": [{dt, temp, ...}]}
- Current Weather 2.5 `/data/2.5/weather`: {"dt", "main": {...}, "wind": {...}, "sys": {...}, "timezone"}
Precipitation: OpenWeatherMap sends `rain: {"1h": mm}` / `snow: {"1h": mm}` only when something
fell; absent, both are 0 and `precipitation_reported` is False (see contracts.Observation).
The result has no `batch_id`/`produced_at`/`source`: the run stamps those. Values are passed
through as sent; range checks belong to the shared schema, so a bad value is dead-lettered
with the schema's reason instead of being "fixed" here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from producer.regions import Region
from producer.sources.base import region_fields


class MappingError(ValueError):
    """The response is JSON but not the shape OpenWeatherMap documents; says what is missing."""


def _utc(ts: Any, where: str) -> datetime:
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):
        raise MappingError(f"{where}: expected a Unix timestamp, got {str(ts)[:40]!r}")
    try:
        return datetime.fromtimestamp(ts, timezone.utc)
    except (OverflowError, OSError, ValueError):  # NaN, or a year past 9999
        raise MappingError(f"{where}: {ts!r} is not a representable Unix timestamp") from None


def _opt_utc(ts: Any, where: str) -> datetime | None:
    return None if ts is None else _utc(ts, where)


def _require(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict):
        raise MappingError(f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj or obj[key] is None:
        raise MappingError(f"{where}.{key}: missing")
    return obj[key]


def _weather(entry: dict, where: str) -> dict[str, Any]:
    weather = entry.get("weather") or []
    if not isinstance(weather, list):
        raise MappingError(f"{where}.weather: expected a list")
    first = weather[0] if weather else {}
    if not isinstance(first, dict):
        raise MappingError(f"{where}.weather[0]: expected an object")
    return {
        "weather_main": first.get("main"),
        "weather_description": first.get("description"),
        "weather_icon": first.get("icon"),
    }


def _precipitation(entry: dict, where: str) -> dict[str, Any]:
    """rain_1h/snow_1h from `rain`/`snow` ({"1h": mm}; a bare number is read as mm/h, which
    older timemachine answers sent). Absent = 0 with precipitation_reported False."""
    amounts = {}
    for kind in ("rain", "snow"):
        value = entry.get(kind)
        if isinstance(value, dict):
            value = value.get("1h", 0.0)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise MappingError(f"{where}.{kind}: expected {{'1h': mm}} or a number, got {str(value)[:40]!r}")
        amounts[f"{kind}_1h"] = 0.0 if value is None else value
    reported = entry.get("rain") is not None or entry.get("snow") is not None
    return {**amounts, "precipitation_reported": reported}


def _onecall_point(region: Region, point: Any, offset: Any, where: str) -> dict[str, Any]:
    """One point of One Call 3.0 (`current` or an item of timemachine `data`)."""
    record = region_fields(region)
    record.update(
        observed_at=_utc(_require(point, "dt", where), f"{where}.dt"),
        temp=_require(point, "temp", where),
        feels_like=point.get("feels_like"),
        humidity=_require(point, "humidity", where),
        pressure=_require(point, "pressure", where),
        dew_point=point.get("dew_point"),
        clouds=point.get("clouds"),
        visibility=point.get("visibility"),
        uvi=point.get("uvi"),
        wind_speed=_require(point, "wind_speed", where),
        wind_deg=point.get("wind_deg"),
        wind_gust=point.get("wind_gust"),
        sunrise=_opt_utc(point.get("sunrise"), f"{where}.sunrise"),
        sunset=_opt_utc(point.get("sunset"), f"{where}.sunset"),
        timezone_offset=offset,
        **_precipitation(point, where),
        **_weather(point, where),
    )
    return record


def map_onecall(region: Region, body: Any) -> dict[str, Any]:
    """One Call 3.0 current conditions."""
    current = _require(body, "current", "response")
    return _onecall_point(region, current, body.get("timezone_offset"), "response.current")


def map_timemachine(region: Region, body: Any) -> list[dict[str, Any]]:
    """One Call 3.0 timemachine: usually one point in `data`."""
    data = _require(body, "data", "response")
    if not isinstance(data, list) or not data:
        raise MappingError("response.data: expected a non-empty list")
    offset = body.get("timezone_offset")
    return [_onecall_point(region, point, offset, f"response.data[{i}]") for i, point in enumerate(data)]


def map_current(region: Region, body: Any) -> dict[str, Any]:
    """Current Weather 2.5 (the free endpoint): no dew point, no UV index."""
    main = _require(body, "main", "response")
    wind = body.get("wind") or {}
    clouds = body.get("clouds") or {}
    sys = body.get("sys") or {}
    record = region_fields(region)
    record.update(
        observed_at=_utc(_require(body, "dt", "response"), "response.dt"),
        temp=_require(main, "temp", "response.main"),
        feels_like=main.get("feels_like"),
        humidity=_require(main, "humidity", "response.main"),
        pressure=_require(main, "pressure", "response.main"),
        dew_point=None,
        clouds=clouds.get("all") if isinstance(clouds, dict) else None,
        visibility=body.get("visibility"),
        uvi=None,
        wind_speed=_require(wind, "speed", "response.wind"),
        wind_deg=wind.get("deg"),
        wind_gust=wind.get("gust"),
        sunrise=_opt_utc(sys.get("sunrise"), "response.sys.sunrise"),
        sunset=_opt_utc(sys.get("sunset"), "response.sys.sunset"),
        timezone_offset=body.get("timezone"),
        **_precipitation(body, "response"),
        **_weather(body, "response"),
    )
    return record


def map_response(region: Region, body: Any) -> list[dict[str, Any]]:
    """Any of the three shapes, recognised by their keys (used by replay)."""
    if isinstance(body, dict):
        if "current" in body:
            return [map_onecall(region, body)]
        if "data" in body:
            return map_timemachine(region, body)
        if "main" in body:
            return [map_current(region, body)]
    raise MappingError("response: not a One Call 3.0 (current/data) or Current Weather 2.5 (main) object")
