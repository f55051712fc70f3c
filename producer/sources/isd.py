"""NOAA ISD-Lite files (Integrated Surface Data - Lite) -> observation fields, and stations -> regions.

The format (NOAA's "ISD-Lite Format Documentation"): one file per station and year, named
`USAF-WBAN-YEAR` (e.g. `616410-99999-2024`, often gzipped), one fixed-width line per hour, UTC:

    columns  field                              scale   missing
     1- 4    year
     6- 7    month
     9-10    day
    12-13    hour (UTC)
    14-19    air temperature (deg C)            x10     -9999
    20-25    dew point temperature (deg C)      x10     -9999
    26-31    sea level pressure (hPa)           x10     -9999
    32-37    wind direction (deg; calm = 0)     x1      -9999
    38-43    wind speed (m/s)                   x10     -9999
    44-49    sky condition total coverage code  (0-8 oktas, 9-19 obscured or partial)
    50-55    liquid precipitation, 1 hour (mm)  x10     -9999 (trace: -1)
    56-61    liquid precipitation, 6 hours (mm) x10     -9999 (trace: -1)

(The documentation's positions for the day and dew point, "9-11" and "20-24", disagree with their
stated length of 2 and 6 and with the files; the columns above are the files'.)
`parse_line` reads one line into an `IsdRecord` or raises `IsdLineError` naming the column.
A record becomes an observation when temperature, dew point (for the humidity), sea-level
pressure and wind speed are present; the others are skipped and counted, not dead-lettered.

NOAA's Global Hourly CSV (the same Integrated Surface Data, one row per report, `*.csv`) is read
too: columns STATION, DATE (UTC, `2024-08-15T18:00:00`), LATITUDE, LONGITUDE, TMP and DEW
(`+0275,1`: deg C x10 and a quality code; +9999 missing), SLP (`10105,1`: hPa x10; 99999),
WND (`240,1,N,0046,1`: direction, quality, type, speed m/s x10, quality; 999/9999 missing) and,
when present, AA1 (`01,0052,9,1`: hours, depth mm x10, condition, quality). A value whose
quality code says erroneous or suspect (2, 3, 6, 7) counts as missing. The station's
coordinates are in each row.

Stations come from NOAA's station history (`isd-history.csv`: USAF, WBAN, STATION NAME, ...,
LAT, LON, ...), from a small CSV `station,lat,lon`, or from `--station USAF-WBAN=LAT,LON`; each
is mapped to the nearest region within a distance limit.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from functools import partial
from typing import Any, Callable, Iterator

from producer.regions import Region
from producer.sources.base import region_fields
from producer.sources.simulator import relative_humidity

MISSING = -9999
TRACE = -1
LINE_LENGTH = 61

# (name, first column, last column), 1-based and inclusive as the documentation counts.
COLUMNS: tuple[tuple[str, int, int], ...] = (
    ("year", 1, 4), ("month", 6, 7), ("day", 9, 10), ("hour", 12, 13),
    ("air_temperature", 14, 19), ("dew_point", 20, 25), ("sea_level_pressure", 26, 31),
    ("wind_direction", 32, 37), ("wind_speed", 38, 43), ("sky_cover", 44, 49),
    ("precipitation_1h", 50, 55), ("precipitation_6h", 56, 61),
)
COLUMN_NAMES = tuple(name for name, _, _ in COLUMNS)
_INTEGER = re.compile(r"^-?[0-9]+$")
# Plausible coded values (before scaling), beyond which a line is corrupt rather than weather.
_BOUNDS = {
    "air_temperature": (-900, 700), "dew_point": (-900, 700), "sea_level_pressure": (8000, 11000),
    "wind_direction": (0, 360), "wind_speed": (0, 1500), "sky_cover": (0, 19),
    "precipitation_1h": (TRACE, 5000), "precipitation_6h": (TRACE, 10000),
}


class IsdLineError(ValueError):
    """A line that is not ISD-Lite; `column` names the field (or "line" for its length)."""

    def __init__(self, column: str, reason: str):
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


@dataclass(frozen=True)
class IsdRecord:
    observed_at: datetime
    air_temperature: float | None  # deg C
    dew_point: float | None
    sea_level_pressure: float | None  # hPa
    wind_direction: int | None
    wind_speed: float | None  # m/s
    sky_cover: int | None  # code
    precipitation_1h: float | None  # mm (trace = 0)
    precipitation_6h: float | None


def parse_line(line: str) -> IsdRecord:
    """One line of an ISD-Lite file (without its newline), or IsdLineError naming the column."""
    text = line.rstrip("\r\n")
    if len(text) > LINE_LENGTH and text[LINE_LENGTH:].strip():
        raise IsdLineError("line", f"text after column {LINE_LENGTH}: {text[LINE_LENGTH:LINE_LENGTH + 20]!r}")
    if len(text) < LINE_LENGTH:
        short = next(name for name, _, last in COLUMNS if last > len(text))
        raise IsdLineError(short, f"line ends at column {len(text)}, before {short} (the format has {LINE_LENGTH})")
    values: dict[str, int] = {}
    for name, first, last in COLUMNS:
        field = text[first - 1:last]
        value = field.strip()
        if not _INTEGER.match(value):
            raise IsdLineError(name, f"columns {first}-{last}: not an integer: {field!r}")
        values[name] = int(value)
    for gap in (5, 8, 11):  # the separators between the date fields
        if text[gap - 1] != " ":
            name = next(n for n, first, _ in COLUMNS if first == gap + 1)
            raise IsdLineError(name, f"column {gap} must be a space before {name}, got {text[gap - 1]!r}")
    for name, low, high in (("year", 1, 9999), ("month", 1, 12), ("hour", 0, 23)):
        if not low <= values[name] <= high:
            raise IsdLineError(name, f"{values[name]} is outside {low}..{high}")
    try:
        when = datetime(values["year"], values["month"], values["day"], values["hour"], tzinfo=timezone.utc)
    except ValueError as exc:
        raise IsdLineError("day", f"not a day of {values['year']}-{values['month']:02d}: {exc}") from None
    for name, (low, high) in _BOUNDS.items():
        if values[name] != MISSING and not low <= values[name] <= high:
            raise IsdLineError(name, f"{values[name]} is outside {low}..{high} (missing is {MISSING})")

    def scaled(name: str) -> float | None:
        raw = values[name]
        if raw == MISSING:
            return None
        return 0.0 if raw == TRACE and name.startswith("precipitation") else raw / 10

    return IsdRecord(
        observed_at=when,
        air_temperature=scaled("air_temperature"), dew_point=scaled("dew_point"),
        sea_level_pressure=scaled("sea_level_pressure"),
        wind_direction=None if values["wind_direction"] == MISSING else values["wind_direction"],
        wind_speed=scaled("wind_speed"),
        sky_cover=None if values["sky_cover"] == MISSING else values["sky_cover"],
        precipitation_1h=scaled("precipitation_1h"), precipitation_6h=scaled("precipitation_6h"),
    )


def format_line(record: dict[str, int]) -> str:
    """An ISD-Lite line from coded values (as NOAA writes them: `%4d %2d %2d %2d` then `%6d` x 8)."""
    return "{:4d} {:02d} {:02d} {:02d}".format(record["year"], record["month"], record["day"], record["hour"]) + \
        "".join(f"{record[name]:6d}" for name in COLUMN_NAMES[4:])


class IsdSkip(ValueError):
    """A well-formed line that cannot be an observation (a required value is missing)."""


def observation_fields(record: IsdRecord, region: Region) -> dict[str, Any]:
    """Observation fields of one ISD-Lite record for its region, or IsdSkip saying what is missing."""
    for name in ("air_temperature", "dew_point", "sea_level_pressure", "wind_speed"):
        if getattr(record, name) is None:
            raise IsdSkip(f"{name} missing")
    temp, dew = record.air_temperature, record.dew_point
    clouds = None if record.sky_cover is None or record.sky_cover > 8 else record.sky_cover * 12.5
    fields = region_fields(region)
    fields.update(
        observed_at=record.observed_at, temp=temp, humidity=round(max(0.0, min(100.0, relative_humidity(temp, dew)))),
        pressure=record.sea_level_pressure, dew_point=dew, clouds=clouds, wind_speed=record.wind_speed,
        wind_deg=record.wind_direction, timezone_offset=region.utc_offset_seconds,
        # A station that reports no hourly amount did not measure it: unknown, not dry.
        rain_1h=record.precipitation_1h, snow_1h=None, precipitation_reported=record.precipitation_1h is not None,
    )
    return fields


# --- files and stations -------------------------------------------------------------------------
_FILE_NAME = re.compile(r"(?P<usaf>[0-9A-Z]{6})-(?P<wban>[0-9]{5})-(?P<year>[0-9]{4})")


def station_of_file(path: Path) -> str:
    """`USAF-WBAN` from an ISD-Lite file name (`616410-99999-2024[.gz]`)."""
    match = _FILE_NAME.search(path.name)
    if not match:
        raise ValueError(f"{path}: not an ISD-Lite file name (USAF-WBAN-YEAR, e.g. 616410-99999-2024.gz)")
    return f"{match['usaf']}-{match['wban']}"


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="ascii", errors="replace", newline="") as handle:
        return handle.read().splitlines()


@dataclass(frozen=True)
class Station:
    id: str  # USAF-WBAN
    lat: float
    lon: float


def _coordinate(text: str, low: float, high: float, what: str) -> float:
    value = float(text.strip().lstrip("+"))
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{what} {text!r} is outside {low:g}..{high:g}")
    return value


def parse_station_arg(text: str) -> Station:
    """`USAF-WBAN=LAT,LON` from the command line."""
    try:
        ident, coords = text.split("=", 1)
        lat, lon = coords.split(",", 1)
        return Station(ident.strip(), _coordinate(lat, -90, 90, "latitude"), _coordinate(lon, -180, 180, "longitude"))
    except ValueError as exc:
        raise ValueError(f"--station {text!r}: expected USAF-WBAN=LAT,LON ({exc})") from None


def load_stations(path: Path) -> dict[str, Station]:
    """NOAA's isd-history.csv (USAF, WBAN, ..., LAT, LON) or a CSV with station,lat,lon."""
    text = path.read_text(encoding="utf-8", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    header = {h.strip().upper(): h for h in reader.fieldnames or []}
    stations: dict[str, Station] = {}
    for row_number, row in enumerate(reader, start=2):
        try:
            if "USAF" in header and "WBAN" in header:
                ident = f"{row[header['USAF']].strip()}-{row[header['WBAN']].strip()}"
            elif "STATION" in header:
                ident = row[header["STATION"]].strip()
            else:
                raise ValueError("expected columns USAF,WBAN,...,LAT,LON (isd-history.csv) or station,lat,lon")
            lat_text, lon_text = row[header["LAT"]], row[header["LON"]]
        except KeyError as exc:
            raise ValueError(f"{path}: no column {exc} (expected USAF,WBAN,...,LAT,LON or station,lat,lon)") from None
        if not (lat_text or "").strip() or not (lon_text or "").strip():
            continue  # isd-history.csv lists stations without coordinates: unusable, not an error
        try:
            stations[ident] = Station(ident, _coordinate(lat_text, -90, 90, "LAT"), _coordinate(lon_text, -180, 180, "LON"))
        except ValueError as exc:
            raise ValueError(f"{path}: line {row_number} (station {ident}): {exc}") from None
    return stations


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


def nearest_region(station: Station, regions: list[Region], max_km: float) -> Region:
    """The region nearest the station, or ValueError when even it is beyond `max_km`."""
    best = min(regions, key=lambda r: distance_km(station.lat, station.lon, r.lat, r.lon))
    km = distance_km(station.lat, station.lon, best.lat, best.lon)
    if km > max_km:
        raise ValueError(f"station {station.id} ({station.lat:g}, {station.lon:g}) is {km:.0f} km from the nearest "
                         f"region ({best.id}); the limit is {max_km:g} km (--max-distance-km, "
                         "METEOFLOW_IMPORT_MAX_DISTANCE_KM)")
    return best


# --- Global Hourly CSV ----------------------------------------------------------------------------
GLOBAL_HOURLY_REQUIRED = ("STATION", "DATE", "LATITUDE", "LONGITUDE", "TMP", "DEW", "SLP", "WND")
_BAD_QUALITY = {"2", "3", "6", "7"}  # ISD quality codes: suspect or erroneous


def is_global_hourly(path: Path) -> bool:
    return path.name.removesuffix(".gz").endswith(".csv")


def _element(row: dict[str, str], column: str, parts: int) -> list[str]:
    text = (row.get(column) or "").strip()
    values = text.split(",")
    if len(values) != parts:
        raise IsdLineError(column, f"expected {parts} comma-separated parts, got {text[:40]!r}")
    return values


def _scaled(column: str, text: str, quality: str, missing: set[str], scale: float = 10) -> float | None:
    if text.lstrip("+") in missing or quality in _BAD_QUALITY:
        return None
    if not _INTEGER.match(text.lstrip("+")):
        raise IsdLineError(column, f"not an integer: {text[:20]!r}")
    return int(text.lstrip("+")) / scale


def parse_global_hourly(header: list[str], line: str) -> IsdRecord:
    """One data row of a Global Hourly CSV, or IsdLineError naming its column."""
    values = next(csv.reader([line]), [])
    if len(values) != len(header):
        raise IsdLineError("line", f"{len(values)} columns, the header has {len(header)}")
    row = dict(zip(header, values))
    try:
        when = datetime.fromisoformat(row["DATE"].strip())
        when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise IsdLineError("DATE", f"not a time: {row['DATE'][:30]!r}") from None
    temp, temp_q = _element(row, "TMP", 2)
    dew, dew_q = _element(row, "DEW", 2)
    slp, slp_q = _element(row, "SLP", 2)
    wdir, wdir_q, _, wspd, wspd_q = _element(row, "WND", 5)
    rain = None
    if (row.get("AA1") or "").strip():
        hours, depth, _, depth_q = _element(row, "AA1", 4)
        amount = _scaled("AA1", depth, depth_q, {"9999"})
        rain = amount if hours == "01" else None  # only a 1-hour period is rain_1h
    direction = _scaled("WND", wdir, wdir_q, {"999"}, scale=1)
    record = IsdRecord(
        observed_at=when, air_temperature=_scaled("TMP", temp, temp_q, {"9999"}),
        dew_point=_scaled("DEW", dew, dew_q, {"9999"}), sea_level_pressure=_scaled("SLP", slp, slp_q, {"99999"}),
        wind_direction=None if direction is None else int(direction), wind_speed=_scaled("WND", wspd, wspd_q, {"9999"}),
        sky_cover=None, precipitation_1h=rain, precipitation_6h=None)
    for name in ("air_temperature", "dew_point", "sea_level_pressure", "wind_direction", "wind_speed",
                 "precipitation_1h"):
        low, high = _BOUNDS[name]
        value = getattr(record, name)
        if value is not None and not low <= value * (1 if name == "wind_direction" else 10) <= high:
            raise IsdLineError(name, f"{value} is outside the plausible range")
    return record


def global_hourly_station(path: Path) -> Station:
    """The station of a Global Hourly CSV, from its first data row."""
    lines = read_lines(path)
    if len(lines) < 2:
        raise ValueError(f"{path}: no data rows")
    header = next(csv.reader([lines[0]]))
    missing = [c for c in GLOBAL_HOURLY_REQUIRED if c not in header]
    if missing:
        raise ValueError(f"{path}: not a Global Hourly CSV (no column {', '.join(missing)})")
    row = dict(zip(header, next(csv.reader([lines[1]]))))
    return Station(row["STATION"], _coordinate(row["LATITUDE"], -90, 90, "LATITUDE"),
                   _coordinate(row["LONGITUDE"], -180, 180, "LONGITUDE"))


def file_rows(path: Path) -> Iterator[tuple[int, str, Callable[[], IsdRecord]]]:
    """(line number, text, parse) of every data row of an ISD-Lite file or a Global Hourly CSV."""
    lines = read_lines(path)
    if is_global_hourly(path):
        header = next(csv.reader(lines[:1]), [])
        for number, line in enumerate(lines[1:], start=2):
            yield number, line, partial(parse_global_hourly, header, line)
    else:
        for number, line in enumerate(lines, start=1):
            yield number, line, partial(parse_line, line)


def count_rows(path: Path) -> int:
    return sum(1 for _ in file_rows(path))
