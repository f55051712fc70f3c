"""Pure checks that turn a request's points into a clean hourly series, or say exactly
which field is wrong and why. No I/O, no Prophet: unit-testable in milliseconds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from meteoflow.contracts import ItemError, SeriesPoint
from meteoflow.contracts import Observation
from meteoflow.errors import field_errors

# pandas (used by Prophet) only represents 1677..2262; keep well inside it, with room for the horizon.
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


def _temperature_bounds() -> tuple[float, float]:
    """The plausible temperature range, taken from the observation schema (defined once)."""
    low = high = None
    for rule in Observation.model_fields["temp"].metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    return float(low), float(high)


TEMP_MIN, TEMP_MAX = _temperature_bounds()


class SeriesError(ValueError):
    """A series that cannot be forecast; `field` names the offending input (e.g. data[3].ds)."""

    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status  # 413 for a series over a size limit

    def as_item_error(self, prefix: str = "") -> ItemError:
        return ItemError(field=prefix + self.field, message=self.message)


@dataclass(frozen=True)
class CleanSeries:
    """Strictly increasing UTC timestamps (epoch seconds) and finite temperatures."""

    epoch_seconds: tuple[int, ...]
    values: tuple[float, ...]
    duplicates_merged: int

    @property
    def last(self) -> datetime:
        return datetime.fromtimestamp(self.epoch_seconds[-1], timezone.utc)

    @property
    def span_seconds(self) -> int:
        return self.epoch_seconds[-1] - self.epoch_seconds[0]


def parse_timestamp(text: str, field: str) -> datetime:
    """ISO 8601 to an aware UTC datetime; a naive timestamp is taken as UTC."""
    if not isinstance(text, str) or not text.strip():
        raise SeriesError(field, "timestamp is empty; use ISO 8601, e.g. 2024-05-01T13:00:00Z")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SeriesError(field, f"{text[:40]!r} is not an ISO 8601 timestamp (e.g. 2024-05-01T13:00:00Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        value = value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise SeriesError(field, f"{text[:40]!r} is out of range") from None
    if not EARLIEST <= value < LATEST:
        raise SeriesError(field, f"{text[:40]!r} is outside {EARLIEST.year}..{LATEST.year - 1}")
    if value.microsecond:
        value = value.replace(microsecond=0)  # sub-second precision means nothing for hourly data
    return value


def parse_temperature(value: Any, field: str) -> float:
    """A finite temperature in deg C. JSON may carry NaN/Infinity, and strings like "NaN" pass float()."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise SeriesError(field, f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise SeriesError(field, f"{value!r} is not a finite number (NaN and infinity are rejected)")
    if not TEMP_MIN <= number <= TEMP_MAX:
        raise SeriesError(
            field, f"{number:g} is outside the plausible range {TEMP_MIN:g}..{TEMP_MAX:g} deg C (wrong unit?)"
        )
    return number


def clean_series(points: Sequence[SeriesPoint], min_points: int, max_points: int | None = None) -> CleanSeries:
    """Validate and normalize the points of one request.

    Equal consecutive timestamps are merged by their mean (and counted); a timestamp earlier
    than the previous one is an error naming the first offending index. More than `max_points`
    points (before merging: each is parsed) is a 413.
    """
    if max_points is not None and len(points) > max_points:
        raise SeriesError("data", f"{len(points)} points; the limit is {max_points} per series "
                                  "(forecast_max_points)", status=413)
    stamps: list[int] = []
    sums: list[float] = []
    counts: list[int] = []
    previous_text = ""
    for index, point in enumerate(points):
        when = int(parse_timestamp(point.ds, f"data[{index}].ds").timestamp())
        value = parse_temperature(point.y, f"data[{index}].y")
        if stamps and when < stamps[-1]:
            raise SeriesError(
                f"data[{index}].ds",
                f"{point.ds!r} is earlier than data[{index - 1}].ds ({previous_text!r}); "
                "timestamps must be in increasing order",
            )
        if stamps and when == stamps[-1]:
            sums[-1] += value
            counts[-1] += 1
        else:
            stamps.append(when)
            sums.append(value)
            counts.append(1)
        previous_text = point.ds
    if len(stamps) < min_points:
        merged = len(points) - len(stamps)
        detail = f" ({merged} duplicate timestamps merged)" if merged else ""
        raise SeriesError("data", f"{len(stamps)} distinct points{detail}; at least {min_points} are needed")
    values = tuple(total / count for total, count in zip(sums, counts))
    return CleanSeries(tuple(stamps), values, duplicates_merged=len(points) - len(stamps))


def describe_errors(errors: Sequence[dict], prefix: str = "") -> list[ItemError]:
    """Pydantic/FastAPI error dicts as [{field, message}] readable by a person ('data[3].ds')."""
    # A batch entry (prefix 'series[i]') is validated on its own: its locations hold no 'body'.
    return [ItemError(field=e.field, message=e.detail)
            for e in field_errors(errors, default_field="body", prefix=prefix, request=not prefix)]
