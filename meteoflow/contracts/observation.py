"""The normalized observation: defined once, validated at the producer and again
at the consumer.

`Observation` is the contract of the `weather.observations` topic. Physical
ranges are part of the schema, so a 900 degree reading is rejected the same way
everywhere. `validate_observation` turns any payload (bytes, str or dict) into an
`Observation` or raises `InvalidRecord` with a reason that names the field, whatever
the payload holds: that is what lets one record cost only itself.

Times are checked for plausibility too: every timestamp must lie in [1970, 2200) (so any
later arithmetic on it is safe), and `observed_at` may not be more than `max_ahead` after
the time of processing (a far-future reading would otherwise stay a region's "latest" for
good). Old data (replay, back-fill) stays valid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from meteoflow.clock import utc_now
from meteoflow.contracts.deadletters import DEADLETTER_PAYLOAD_LIMIT
from meteoflow.errors import describe_errors

DEFAULT_MAX_AHEAD = timedelta(hours=1)

# noaa_isd: NOAA ISD-Lite files imported by `python -m producer import --source isd`.
Source = Literal["openweathermap", "simulator", "replay", "noaa_isd"]

# Precipitation over the last hour, mm (the wettest hour ever measured had about 305 mm).
MAX_PRECIPITATION_1H = 500.0


def _plain_text(value: str) -> str:
    # Each store must be able to hold it: BSON and JSON encoders refuse lone surrogates, and NUL
    # characters break C strings (SQLite under FerretDB, many log tools).
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text (lone surrogate)") from None
    return value


Text = Annotated[str, AfterValidator(_plain_text)]

# Field types shared with the producer's regions file, so a region valid there is valid here.
RegionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
RegionName = Annotated[Text, Field(min_length=1, max_length=128)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
TimezoneOffset = Annotated[int, Field(ge=-14 * 3600, le=14 * 3600)]


@dataclass(frozen=True)
class RecordLimits:
    """What every stage that judges records needs from the settings (see Settings.record_limits)."""

    max_ahead: timedelta = DEFAULT_MAX_AHEAD  # how far after processing an observed_at may lie
    max_payload_bytes: int = DEADLETTER_PAYLOAD_LIMIT  # of the original payload kept in a dead letter


class InvalidRecord(ValueError):
    """A payload that cannot be an observation; `reason` says why and where."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# Plausible timestamps: Unix time starts in 1970 (OpenWeatherMap's `dt`), and an upper bound
# far from datetime.max keeps `+ 1 hour`, time-zone shifts and BSON/Elasticsearch dates safe.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_TIME = datetime(2200, 1, 1, tzinfo=timezone.utc)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone (UTC)")
    try:
        value = value.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before datetime.min in UTC
        raise ValueError("is not a representable time") from None
    if not EARLIEST_TIME <= value < LATEST_TIME:
        raise ValueError(f"must be between {EARLIEST_TIME:%Y-%m-%d} and {LATEST_TIME:%Y-%m-%d}")
    return value


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
    # Precipitation over the hour before observed_at, mm. OpenWeatherMap leaves `rain`/`snow` out when
    # nothing fell, so its absence is stored as 0 with precipitation_reported=False; None = unknown
    # (a station that did not measure it, or a record written before these fields existed).
    rain_1h: float | None = Field(None, ge=0, le=MAX_PRECIPITATION_1H)
    snow_1h: float | None = Field(None, ge=0, le=MAX_PRECIPITATION_1H)
    precipitation_reported: bool | None = None  # True: the source sent the amounts; False: 0 by default
    weather_main: Text | None = Field(None, max_length=64)
    weather_description: Text | None = Field(None, max_length=256)
    weather_icon: Text | None = Field(None, max_length=8)
    sunrise: datetime | None = None
    sunset: datetime | None = None
    timezone_offset: TimezoneOffset | None = None
    source: Source
    batch_id: Text = Field(min_length=1, max_length=64)
    produced_at: datetime

    @field_validator("observed_at", "produced_at", "sunrise", "sunset")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _utc(value)

    @field_validator("observed_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        # Checked when a record is judged at a boundary (validate_observation gives the time of
        # processing); code that builds observations itself (the simulator's history) is not.
        if not info.context:
            return value
        now = info.context.get("now") or utc_now()
        max_ahead = info.context.get("max_ahead", DEFAULT_MAX_AHEAD)
        if value > now + max_ahead:
            raise ValueError(f"is more than {max_ahead} after the time of processing ({now:%Y-%m-%dT%H:%M:%SZ})")
        return value

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


def describe_exception(exc: BaseException, limit: int = 300) -> str:
    """`Type: message`, cut to `limit` characters: the reason of a record that raised."""
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # noqa: BLE001 - an exception whose str() fails still has a type
        text = type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def rejection_reason(exc: Exception) -> str:
    """Why a record was rejected: the schema's reason, or the type and message of what it raised.

    Every stage that handles one record at a time catches Exception around it and dead-letters
    the record with this reason, so one record can cost only itself."""
    return exc.reason if isinstance(exc, InvalidRecord) else describe_exception(exc)


def loads_json(text: str | bytes) -> Any:
    """json.loads that fails with JSONDecodeError-like ValueError only.

    The standard parser also raises RecursionError (deeply nested arrays) and ValueError
    (an integer of more than 4,300 digits); both are bad content, not bugs."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


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
            payload = loads_json(payload)
        except json.JSONDecodeError as exc:
            raise InvalidRecord(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except ValueError as exc:
            raise InvalidRecord(f"not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidRecord(f"not a JSON object: got {type(payload).__name__}")
    return payload


def validate_observation(payload: bytes | str | dict[str, Any], *, now: datetime | None = None,
                         max_ahead: timedelta = DEFAULT_MAX_AHEAD) -> Observation:
    """Parse and validate one payload, or raise InvalidRecord naming what is wrong.

    Total: whatever the payload holds, the outcome is an Observation or InvalidRecord.
    `now` is the time of processing (default: the clock) for the `observed_at` window."""
    payload = parse_json_object(payload)
    try:
        return Observation.model_validate(payload, context={"now": now, "max_ahead": max_ahead})
    except ValidationError as exc:
        raise InvalidRecord(describe_errors(exc)) from None
    except Exception as exc:  # noqa: BLE001 - content no validator foresaw still costs only this record
        raise InvalidRecord(describe_exception(exc)) from None


def parse_utc(value: str) -> datetime:
    """ISO 8601 text (with 'Z' or an offset) to an aware UTC datetime (ValueError if it is not one)."""
    return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
