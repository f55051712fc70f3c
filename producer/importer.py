"""Bulk import of history through Kafka: `python -m producer import` and the first-start back-fill.

A history source cuts its work into units (an hour of every region for the APIs and the
simulator, a line for files) and yields chunks of them. Each chunk goes the way every record
goes (validated with the shared schema, invalid ones dead-lettered, one message per observation
on the observations topic) in a back-fill batch (batch id `backfill-...`, see
contracts.BACKFILL_BATCH_PREFIX), and only once Kafka acknowledged it is it counted done in the
job's progress file, `<run_dir>/imports/<job>.json`. Running the same import again resumes
where it stopped (failed requests are retried first); a finished job is not done twice unless
`--restart`. Records published twice (a stop between the acknowledgement and the progress write)
land on the same documents downstream (id = region|observed_at).

Progress is logged as `BackfillEvent`s (event.action "producer-backfill") at the start, at most
every `EVENT_EVERY_S` seconds, and at the end, and drawn as a progress bar on a terminal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from meteoflow.clock import utc_now
from meteoflow.contracts import BackfillEvent
from meteoflow.settings import Settings
from producer.budget import BudgetExhausted, schedule_reserve
from producer.regions import Region
from producer.run import KafkaPublisher, new_batch_id, prepare_batch, summarize
from producer.sources.base import RegionFailure, SourceResult

log = logging.getLogger("producer.import")
EVENT_EVERY_S = 10.0


class HistoryImportError(RuntimeError):
    """The import cannot start or go on (bad parameters, Kafka refused a chunk); says why."""


# --- progress --------------------------------------------------------------------------------
@dataclass
class Progress:
    """What a job did, saved after each acknowledged chunk (written to a temporary file, then renamed)."""

    path: Path
    job: str
    params: dict[str, Any]
    total: int = 0
    done: int = 0  # units done, in the source's order
    records: int = 0
    failed: int = 0  # records dead-lettered or skipped; requests to try again are in `retry`
    retry: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # what the source fixed at the first run
    complete: bool = False

    @classmethod
    def open(cls, directory: Path, job: str, params: dict[str, Any], restart: bool = False) -> "Progress":
        path = directory / f"{job}.json"
        if path.exists() and not restart:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                return cls(path=path, job=job, params=data["params"], total=int(data["total"]),
                           done=int(data["done"]), records=int(data["records"]), failed=int(data["failed"]),
                           retry=list(data["retry"]), state=dict(data["state"]), complete=bool(data["complete"]))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise HistoryImportError(f"{path}: unreadable progress file ({type(exc).__name__}: {exc}); "
                                   "run again with --restart to start over") from None
        return cls(path=path, job=job, params=params)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {k: getattr(self, k) for k in ("job", "params", "total", "done", "records", "failed", "retry",
                                              "state", "complete")}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, default=str, indent=1), encoding="utf-8")
        tmp.replace(self.path)


def job_name(source: str, params: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{source}-{digest}"


# --- sources of history --------------------------------------------------------------------------
@dataclass
class Chunk:
    units: int  # how far the cursor moves
    records: list[dict[str, Any]] = field(default_factory=list)
    failures: list[RegionFailure] = field(default_factory=list)
    retry: list[dict[str, Any]] = field(default_factory=list)  # units to try again later
    retried: list[dict[str, Any]] = field(default_factory=list)  # retry items this chunk settled
    skipped: int = 0  # well-formed units that cannot become observations (counted as failed, not dead-lettered)


class History(ABC):
    name: str  # Observation.source of the records

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """What is imported: names the job (the same parameters resume the same job)."""

    @abstractmethod
    def start(self, progress: Progress, now: datetime) -> None:
        """Fix what the first run decides (e.g. the end of "the last N hours") in progress.state, set total."""

    @abstractmethod
    def chunks(self, progress: Progress) -> Iterator[Chunk]:
        """The work left, retries first; may raise BudgetExhausted between chunks."""

    def time_range(self, progress: Progress) -> tuple[datetime | None, datetime | None]:
        return None, None


def _hours_range(progress: Progress) -> tuple[datetime, int]:
    end = datetime.fromisoformat(progress.state["end"])
    return end, int(progress.params["hours"])


class HourlyHistory(History):
    """History on an hourly grid ending at `end` (default: the start of the current hour)."""

    def __init__(self, regions: list[Region], hours: int, end: datetime | None = None):
        if hours < 1:
            raise HistoryImportError(f"nothing to import: {hours} hour(s)")
        self.regions = regions
        self.hours = hours
        self.end = end

    def base_params(self) -> dict[str, Any]:
        return {"regions": [r.id for r in self.regions], "hours": self.hours,
                "end": self.end.isoformat() if self.end else "now"}

    def start(self, progress: Progress, now: datetime) -> None:
        if "end" not in progress.state:
            end = self.end or now.replace(minute=0, second=0, microsecond=0)
            progress.state["end"] = end.astimezone(timezone.utc).isoformat()
        progress.total = self.hours

    def when(self, progress: Progress, index: int) -> datetime:
        end, hours = _hours_range(progress)
        return end - timedelta(hours=hours - index)

    def time_range(self, progress: Progress) -> tuple[datetime | None, datetime | None]:
        end, hours = _hours_range(progress)
        return end - timedelta(hours=hours), end - timedelta(hours=1)


class SimulatorHistory(HourlyHistory):
    """The simulator's weather, hour by hour, a day per chunk (a year = 365 batches)."""

    name = "simulator"

    def __init__(self, regions: list[Region], hours: int, seed: int, end: datetime | None = None,
                 chunk_hours: int = 24):
        super().__init__(regions, hours, end)
        self.seed = seed
        self.chunk_hours = chunk_hours

    def params(self) -> dict[str, Any]:
        return {**self.base_params(), "seed": self.seed}

    def chunks(self, progress: Progress) -> Iterator[Chunk]:
        from producer.sources.simulator import RegionSimulator

        models = [RegionSimulator(region, self.seed) for region in self.regions]
        for index in range(progress.done):  # a resumed run replays the state it stopped at (fast)
            for model in models:
                model.observe(self.when(progress, index))
        index = progress.done
        while index < self.hours:
            size = min(self.chunk_hours, self.hours - index)
            records = [model.observe(self.when(progress, i)) for i in range(index, index + size) for model in models]
            yield Chunk(units=size, records=records)
            index += size


class TimemachineHistory(HourlyHistory):
    """OpenWeatherMap One Call 3.0 `timemachine`: one call per region and hour, within the key's
    budget (the client's), leaving the scheduled producer its calls of the day."""

    name = "openweathermap"

    def __init__(self, client, regions: list[Region], hours: int, end: datetime | None = None):
        super().__init__(regions, hours, end)
        self.client = client

    def params(self) -> dict[str, Any]:
        return {**self.base_params(), "api": "timemachine"}

    def _fetch(self, region: Region, when: datetime, result: SourceResult) -> dict[str, Any] | None:
        """One call into `result`; the retry item when it failed for a reason worth retrying."""
        from producer.sources.openweathermap import OwmBudgetError, collect
        from producer.sources.owm_mapping import map_timemachine

        before = len(result.failures)
        try:
            collect(self.client, result, region, lambda: self.client.timemachine(region.lat, region.lon,
                                                                                   int(when.timestamp())),
                    map_timemachine, context=f"back-fill {when:%Y-%m-%dT%H:%MZ}: ", reraise=(OwmBudgetError,))
        except OwmBudgetError as exc:
            raise BudgetExhausted(exc.reason) from None
        if len(result.failures) > before and result.failures[-1].payload is None:  # no answer: worth retrying
            return {"region_id": region.id, "at": when.isoformat(), "reason": result.failures[-1].reason}
        return None

    def chunks(self, progress: Progress) -> Iterator[Chunk]:
        by_id = {r.id: r for r in self.regions}
        for item in list(progress.retry):
            region = by_id.get(item.get("region_id"))
            result = SourceResult()
            again = None if region is None else self._fetch(region, datetime.fromisoformat(item["at"]), result)
            yield Chunk(units=0, records=result.records, failures=result.failures,
                        retry=[again] if again else [], retried=[item])
        for index in range(progress.done, self.hours):
            when = self.when(progress, index)
            result, retry = SourceResult(), []
            for i, region in enumerate(self.regions):
                try:
                    item = self._fetch(region, when, result)
                except BudgetExhausted:
                    # What was fetched of this hour is published; the rest waits for the next run.
                    rest = [{"region_id": r.id, "at": when.isoformat(), "reason": "budget"} for r in self.regions[i:]]
                    yield Chunk(units=1, records=result.records, failures=result.failures, retry=retry + rest)
                    raise
                if item:
                    retry.append(item)
            yield Chunk(units=1, records=result.records, failures=result.failures, retry=retry)


class IsdHistory(History):
    """NOAA ISD-Lite files or Global Hourly CSVs, each mapped to the region nearest its station; 500
    rows a chunk."""

    name = "noaa_isd"

    def __init__(self, files: list[tuple[Path, Region]], chunk_lines: int = 500):
        self.files = files
        self.chunk_lines = chunk_lines

    def params(self) -> dict[str, Any]:
        return {"files": [[str(p.resolve()), p.stat().st_size, r.id] for p, r in self.files]}

    def start(self, progress: Progress, now: datetime) -> None:
        from producer.sources.isd import count_rows

        progress.total = sum(count_rows(path) for path, _ in self.files)

    def chunks(self, progress: Progress) -> Iterator[Chunk]:
        from producer.sources.isd import IsdLineError, IsdSkip, file_rows, observation_fields

        skip = progress.done
        chunk = Chunk(units=0)
        for path, region in self.files:
            for number, line, parse in file_rows(path):
                if skip:
                    skip -= 1
                    continue
                chunk.units += 1
                try:
                    chunk.records.append(observation_fields(parse(), region))
                except IsdLineError as exc:  # dead-lettered with the line
                    chunk.failures.append(RegionFailure(region.id, f"{path.name} line {number}: {exc}", payload=line))
                except IsdSkip:
                    chunk.skipped += 1  # a value the observation needs is missing: counted, not dead-lettered
                if chunk.units >= self.chunk_lines:
                    yield chunk
                    chunk = Chunk(units=0)
        if chunk.units:
            yield chunk


# --- running a job -----------------------------------------------------------------------------
@dataclass
class ImportOutcome:
    job: str
    state: str  # finished | paused | failed
    progress: Progress
    message: str | None = None


class _Bar:
    """rich's progress bar on a terminal (stderr); nothing otherwise."""

    def __init__(self, enabled: bool, description: str, total: int, done: int):
        self.progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, \
                TimeRemainingColumn

            console = Console(stderr=True)
            if console.is_terminal:
                self.progress = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                             TimeRemainingColumn(), console=console)
                self.progress.start()
                self.task = self.progress.add_task(description, total=total, completed=done)

    def update(self, done: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def run_import(settings: Settings, history: History, publisher: KafkaPublisher, *, restart: bool = False,
               stop: threading.Event | None = None, progress_bar: bool = False,
               clock: Callable[[], datetime] = utc_now, job: str | None = None,
               logger: logging.Logger | None = None) -> ImportOutcome:
    """Import what `history` holds (or what is left of it) through `publisher`."""
    logger = logger or log
    params = history.params()
    job = job or job_name(history.name, params)
    progress = Progress.open(settings.run_dir / "imports", job, params, restart=restart)
    if progress.params != json.loads(json.dumps(params, default=str)):
        raise HistoryImportError(f"{progress.path} belongs to another import (its parameters differ); "
                           "run again with --restart to start over")
    if progress.complete and not restart:
        logger.info("import %s is already complete (%s): nothing to do (--restart imports it again)", job,
                    progress.path)
        return ImportOutcome(job, "finished", progress)
    history.start(progress, clock())
    progress.save()
    first, last = history.time_range(progress)

    def event(state: str, message: str | None = None) -> None:
        body = BackfillEvent(job=job, source=history.name, state=state, done=progress.done, total=progress.total,
                             records=progress.records, failed=progress.failed + len(progress.retry),
                             first=first, last=last, message=message)
        level = logging.WARNING if state in ("failed", "paused") else logging.INFO
        logger.log(level, "back-fill %s (%s): %s, %d/%d done, %d record(s), %d failed%s", job, history.name, state,
                   progress.done, progress.total, progress.records, body.failed, f": {message}" if message else "",
                   extra=body.log_extra())

    event("running")
    bar = _Bar(progress_bar, f"{history.name} import", progress.total, progress.done)
    last_event = time.monotonic()
    state, message = "finished", None
    try:
        for chunk in history.chunks(progress):
            now = clock()
            batch = prepare_batch(SourceResult(records=chunk.records, failures=chunk.failures), history.name,
                                  new_batch_id(history.name, now, backfill=True), produced_at=now,
                                  limits=settings.record_limits)
            errors = publisher.publish(batch)
            if errors:  # nothing of this chunk counts: a rerun sends it again
                raise HistoryImportError(f"Kafka did not take {len(errors)} record(s): {next(iter(errors.values()))}")
            summary = summarize(batch, errors, 0.0)
            progress.done += chunk.units
            progress.records += summary.records
            progress.failed += chunk.skipped + len(batch.dead_letters)
            settled = {json.dumps(i, sort_keys=True) for i in chunk.retried}
            progress.retry = [i for i in progress.retry if json.dumps(i, sort_keys=True) not in settled] + chunk.retry
            progress.save()
            bar.update(progress.done)
            if time.monotonic() - last_event >= EVENT_EVERY_S:
                event("running")
                last_event = time.monotonic()
            if stop is not None and stop.is_set():
                state, message = "paused", "stop asked; run the same import again to resume"
                break
        else:
            progress.complete = not progress.retry
            if progress.retry:
                state = "paused"
                message = f"{len(progress.retry)} request(s) failed; run the same import again to retry them"
    except BudgetExhausted as exc:
        state, message = "paused", f"{exc}; progress saved in {progress.path}, run the same import again to resume"
    except Exception as exc:  # noqa: BLE001 - logged as the job's end, then raised for the caller's exit code
        progress.save()
        event("failed", f"{type(exc).__name__}: {exc}"[:500])
        bar.close()
        raise
    progress.save()
    bar.close()
    event(state, message)
    return ImportOutcome(job, state, progress, message)


def owm_reserve(settings: Settings, regions: int) -> Callable[[], int]:
    """What an importer leaves the scheduled producer today (when it calls One Call with the same key)."""
    if settings.effective_source != "openweathermap" or settings.owm_api != "onecall":
        return lambda: 0
    return lambda: schedule_reserve(settings, regions, time.time())
