"""The one source interface every producer source implements.

`fetch(regions, now)` returns a `SourceResult`: candidate records (observation fields
without `batch_id`/`produced_at`, which the run stamps) and per-region failures. The run
validates every candidate with the shared schema before anything is published.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from producer.regions import Region


class FatalSourceError(RuntimeError):
    """The source cannot work at all (e.g. a rejected API key): stop, do not retry."""


@dataclass(frozen=True)
class RegionFailure:
    region_id: str
    reason: str
    # What the source received, when it received something unusable; it is dead-lettered.
    payload: str | None = None


@dataclass
class SourceResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    failures: list[RegionFailure] = field(default_factory=list)
    # History delivered late on purpose (back-fill); published as a separate back-fill batch.
    backfill: list[dict[str, Any]] = field(default_factory=list)


class Source(ABC):
    name: str  # the Observation.source value: openweathermap | simulator | replay
    default_interval: float = 900.0  # seconds between runs, unless interval_seconds() says otherwise

    @abstractmethod
    def fetch(self, regions: list[Region], now: datetime) -> SourceResult:
        """One run's worth of records for these regions at this (UTC, aware) time."""

    def interval_seconds(self) -> float:
        """Time until the next run should start; may change as the source's clock moves."""
        return self.default_interval

    @property
    def exhausted(self) -> bool:
        """True when the source has nothing more to give (a replay file read to its end)."""
        return False

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def region_fields(region: Region) -> dict[str, Any]:
    """The observation fields that come from the regions file, not from the weather."""
    return {"region_id": region.id, "region_name": region.name, "lat": region.lat, "lon": region.lon}
