"""Replay: recorded OpenWeatherMap responses from a JSONL file, as if fetched again.

One JSON object per line: {"region_id": "dakar", "response": {...One Call 3.0 response...}}
(a Current Weather 2.5 or a timemachine response works too). Each run takes the next
recorded response of every region, in file order, and keeps the recorded `dt`.
A line that is not JSON, has no region id, names a region that is not in the regions
file, or is not an OpenWeatherMap response is reported with its line number (and
dead-lettered by the run), never skipped silently. The source is exhausted when every
region's responses have been replayed.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from meteoflow.contracts import describe_exception, loads_json
from producer.regions import Region
from producer.sources.base import RegionFailure, Source, SourceResult
from producer.sources.owm_mapping import MappingError, map_response

UNKNOWN_REGION = "(unknown)"


class ReplayFileError(ValueError):
    """The replay file cannot be read at all."""


@dataclass(frozen=True)
class RecordedLine:
    line_no: int
    text: str
    region_id: str
    response: Any


def parse_replay_lines(lines: list[str], where: str) -> tuple[list[RecordedLine], list[RegionFailure]]:
    """Pure: JSONL lines -> recorded responses and failures for the lines that are unusable."""
    entries: list[RecordedLine] = []
    failures: list[RegionFailure] = []
    for line_no, text in enumerate(lines, start=1):
        text = text.strip()
        if not text:
            continue
        try:
            obj = loads_json(text)
        except ValueError as exc:
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            failures.append(RegionFailure(UNKNOWN_REGION, f"{where} line {line_no}: not JSON: {why}", text))
            continue
        region_id = obj.get("region_id") if isinstance(obj, dict) else None
        if not isinstance(region_id, str) or not region_id:
            failures.append(RegionFailure(UNKNOWN_REGION, f"{where} line {line_no}: no 'region_id'", text))
            continue
        response = obj["response"] if "response" in obj else {k: v for k, v in obj.items() if k != "region_id"}
        entries.append(RecordedLine(line_no, text, region_id, response))
    return entries, failures


class ReplaySource(Source):
    name = "replay"

    def __init__(self, path: Path | str, interval_seconds: float):
        self.path = Path(path)
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise ReplayFileError(f"{self.path}: replay file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ReplayFileError(f"{self.path}: cannot read replay file: {exc}") from None
        self.entries, self._pending = parse_replay_lines(lines, str(self.path))
        self.default_interval = interval_seconds
        self._queues: dict[str, deque[RecordedLine]] | None = None

    def _start(self, regions: list[Region]) -> None:
        known = {r.id for r in regions}
        self._queues = {r.id: deque() for r in regions}
        for entry in self.entries:
            if entry.region_id in known:
                self._queues[entry.region_id].append(entry)
            else:
                self._pending.append(RegionFailure(
                    entry.region_id, f"{self.path} line {entry.line_no}: region {entry.region_id!r} "
                    "is not in the regions file", entry.text))
        for region_id, queue in self._queues.items():
            if not queue:
                self._pending.append(RegionFailure(region_id, f"{self.path}: no recorded response for this region"))

    @property
    def exhausted(self) -> bool:
        return self._queues is not None and not any(self._queues.values())

    def fetch(self, regions: list[Region], now: datetime) -> SourceResult:
        if self._queues is None:
            self._start(regions)
        result = SourceResult(failures=self._pending)
        self._pending = []
        for region in regions:
            queue = self._queues.get(region.id)
            if not queue:
                continue
            entry = queue.popleft()
            try:
                result.records.extend(map_response(region, entry.response))
            except Exception as exc:  # noqa: BLE001 - one recorded line can cost only itself
                reason = str(exc) if isinstance(exc, MappingError) else describe_exception(exc)
                result.failures.append(RegionFailure(region.id, f"{self.path} line {entry.line_no}: {reason}",
                                                     entry.text))
        return result
