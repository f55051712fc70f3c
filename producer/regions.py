"""The regions the producer observes: loaded from a JSON file and validated.

A file is either a JSON list of regions or an object with a "regions" list. Each region:
{"id": "dakar", "name": "Dakar", "lat": 14.69, "lon": -17.45,
 "coastal": true (optional, simulator hint), "timezone_offset": 0 (optional, seconds)}.
Errors name the entry (index and id) and the field, e.g.
`regions.json: entry 3 (id 'kaolack'): lat: Input should be less than or equal to 90 (got 91.0)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from meteoflow.contracts import Latitude, Longitude, RegionId, RegionName, TimezoneOffset
from meteoflow.errors import describe_errors

DEFAULT_REGIONS_FILE = Path(__file__).resolve().parent / "regions_senegal.json"


class RegionsError(ValueError):
    """The regions file cannot be used; the message says which entry and field."""


class Region(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RegionId
    name: RegionName
    lat: Latitude
    lon: Longitude
    coastal: bool = False
    timezone_offset: TimezoneOffset | None = None

    @property
    def utc_offset_seconds(self) -> int:
        """The declared offset, else the nautical one from the longitude."""
        if self.timezone_offset is not None:
            return self.timezone_offset
        return round(self.lon / 15) * 3600


def parse_regions(data: Any, where: str = "regions") -> list[Region]:
    """Validate already-parsed JSON; raise RegionsError naming the bad entry and field."""
    if isinstance(data, dict) and "regions" in data:
        data = data["regions"]
    if not isinstance(data, list):
        raise RegionsError(f"{where}: expected a JSON list of regions or an object with a 'regions' list")
    if not data:
        raise RegionsError(f"{where}: no regions")
    regions: list[Region] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(data):
        label = f"entry {index}"
        if isinstance(entry, dict) and "id" in entry:
            label += f" (id {entry['id']!r})"
        if not isinstance(entry, dict):
            raise RegionsError(f"{where}: {label}: expected an object, got {type(entry).__name__}")
        try:
            region = Region.model_validate(entry)
        except ValidationError as exc:
            raise RegionsError(f"{where}: {label}: {describe_errors(exc, default_field='entry')}") from None
        if region.id in first_index:
            raise RegionsError(f"{where}: {label}: id: duplicate of entry {first_index[region.id]}")
        first_index[region.id] = index
        regions.append(region)
    return regions


def load_regions(path: Path | str | None = None) -> list[Region]:
    """Read and validate a regions file (default: the 14 regions of Senegal)."""
    path = Path(path) if path is not None else DEFAULT_REGIONS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegionsError(f"{path}: regions file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegionsError(f"{path}: cannot read regions file: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegionsError(f"{path}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return parse_regions(data, where=str(path))
