"""The normalized observation: defined once, validated at the producer and again
at the consumer.

`Observation` is the contract of the `weather.observations` topic. Physical
ranges are part of the schema, so a 900 degree reading is rejected the same way
everywhere. `validate_observation` turns any payload (bytes, str or dict) into an
`Observation` or raises `InvalidRecord` with a reason that names the field.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Source = Literal["openweathermap", "simulator", "replay"]

# Field types shared with the producer's regions file, so a region valid there is valid here.
RegionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
RegionName = Annotated[str, Field(min_length=1, max_length=128)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
TimezoneOffset = Annotated[int, Field(ge=-14 * 3600, le=14 * 3600)]


class InvalidRecord(ValueError):
    """A payload that cannot be an observation; `reason` says why and where."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone (UTC)")
    return value.astimezone(timezone.utc)


class Observation(BaseModel):
    """One region's weather at one instant. Units are metric (deg C, hPa, m/s, m)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region_id: RegionId
    region_name: RegionName
    lat: Latitude
    lon: Longitude
    observed_at: datetime
    temp: float = Field(ge=-90, le=60)
    feels_like: float | None = Field(None, ge=-110, le=80)
    humidity: float = Field(ge=0, le=100)
    pressure: float = Field(ge=850, le=1090)
    dew_point: float | None = Field(None, ge=-100, le=40)
    clouds: float | None = Field(None, ge=0, le=100)
    visibility: float | None = Field(None, ge=0, le=100_000)
    uvi: float | None = Field(None, ge=0, le=20)
    wind_speed: float = Field(ge=0, le=120)
    wind_deg: float | None = Field(None, ge=0, le=360)
    wind_gust: float | None = Field(None, ge=0, le=150)
    weather_main: str | None = Field(None, max_length=64)
    weather_description: str | None = Field(None, max_length=256)
    weather_icon: str | None = Field(None, max_length=8)
    sunrise: datetime | None = None
    sunset: datetime | None = None
    timezone_offset: TimezoneOffset | None = None
    source: Source
    batch_id: str = Field(min_length=1, max_length=64)
    produced_at: datetime

    @field_validator("observed_at", "produced_at", "sunrise", "sunset")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _utc(value)

    def to_message(self) -> bytes:
        """The Kafka value: compact JSON, timestamps as ISO 8601 UTC with 'Z'."""
        return json.dumps(self.to_json_dict(), separators=(",", ":")).encode()

    def to_json_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        for key in ("observed_at", "produced_at", "sunrise", "sunset"):
            if data.get(key):
                data[key] = data[key].replace("+00:00", "Z")
        return data

    @property
    def key(self) -> bytes:
        """The Kafka key: the region id, so one region's records stay in order."""
        return self.region_id.encode()


OBSERVATION_FIELDS: tuple[str, ...] = tuple(Observation.model_fields)
REQUIRED_FIELDS: tuple[str, ...] = tuple(n for n, f in Observation.model_fields.items() if f.is_required())


def parse_json_object(payload: bytes | str | dict[str, Any] | None) -> dict[str, Any]:
    """Bytes or text of one JSON object to a dict, or InvalidRecord saying why not."""
    if payload is None:
        raise InvalidRecord("empty value (tombstone)")
    if isinstance(payload, (bytes, bytearray)):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRecord(f"not UTF-8 text: {exc}") from None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise InvalidRecord(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(payload, dict):
        raise InvalidRecord(f"not a JSON object: got {type(payload).__name__}")
    return payload


def validate_observation(payload: bytes | str | dict[str, Any]) -> Observation:
    """Parse and validate one payload, or raise InvalidRecord naming what is wrong."""
    payload = parse_json_object(payload)
    try:
        return Observation.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRecord(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "record"
        shown = repr(err.get("input"))
        if len(shown) > 60:
            shown = shown[:57] + "..."
        parts.append(f"{field}: {err['msg']} (got {shown})" if err["type"] != "missing" else f"{field}: missing")
    return "; ".join(parts)


def parse_utc(value: str) -> datetime:
    """ISO 8601 text (with 'Z' or an offset) to an aware UTC datetime."""
    return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
