"""One request budget per OpenWeatherMap API key, shared by every process that uses the key.

The scheduled producer and the importers are separate processes: they share a small JSON file
under `<run_dir>/producer/` (named by a hash of the key, never the key), read and written under
an exclusive `flock`. It holds the calls made on the current UTC day (OpenWeatherMap's daily
limits reset at 00:00 UTC) and the earliest time of the next call. Calls are spread, one every
60/calls_per_minute seconds, instead of bursting; past the daily limit `acquire` raises
`BudgetExhausted` instead of calling (OpenWeatherMap would answer 429, or bill the call).

`reserve`: calls an importer leaves for the scheduled producer today, so a long import does not
starve the live data.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from meteoflow.settings import Settings


class BudgetExhausted(RuntimeError):
    """The key's calls for today are spent (or left to the schedule); try again after 00:00 UTC."""


def budget_file(settings: Settings, api: str) -> Path:
    """One file per key and product (One Call 3.0 and Current Weather have separate limits)."""
    key = settings.owm_api_key.get_secret_value() if settings.owm_api_key else ""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return settings.run_dir / "producer" / f"owm-budget-{digest}-{api}.json"


def _utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Usage:
    day: str
    calls: int
    next_at: float


class RequestBudget:
    def __init__(self, path: Path, per_minute: int, per_day: int, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        if per_minute < 1 or per_day < 1:
            raise ValueError(f"a request budget needs at least 1 call a minute and a day (got {per_minute}, {per_day})")
        self.path = Path(path)
        self.per_minute = per_minute
        self.per_day = per_day
        self.spacing = 60.0 / per_minute
        self.clock = clock
        self.sleep = sleep
        self._thread_lock = threading.Lock()  # flock is per open file: threads also take this one

    @classmethod
    def for_settings(cls, settings: Settings, api: str | None = None, **kwargs) -> "RequestBudget":
        api = api or settings.owm_api
        per_minute, per_day = settings.owm_budget(api)
        return cls(budget_file(settings, api), per_minute, per_day, **kwargs)

    # --- the file ----------------------------------------------------------------------------
    def _read(self, now: float) -> Usage:
        today = _utc_day(now)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            usage = Usage(str(data["day"]), int(data["calls"]), float(data["next_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return Usage(today, 0, 0.0)  # none yet, or unreadable: a fresh start is the safe reading
        if usage.day != today:
            return Usage(today, 0, usage.next_at)
        return usage

    def _write(self, usage: Usage) -> None:
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"day": usage.day, "calls": usage.calls, "next_at": usage.next_at}),
                       encoding="utf-8")
        tmp.replace(self.path)

    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return _FileLock(self.path.with_suffix(".lock"), self._thread_lock)

    def usage(self) -> Usage:
        with self._locked():
            return self._read(self.clock())

    # --- taking a call -------------------------------------------------------------------------
    def acquire(self, reserve: int = 0) -> None:
        """Wait for the next free slot and count one call, or raise BudgetExhausted."""
        while True:
            with self._locked():
                now = self.clock()
                usage = self._read(now)
                allowed = self.per_day - max(0, reserve)
                if usage.calls >= allowed:
                    left = f", {reserve} left to the schedule" if reserve else ""
                    raise BudgetExhausted(
                        f"request budget exhausted: {usage.calls} of {self.per_day} calls today (UTC){left} "
                        "(METEOFLOW_OWM_CALLS_PER_DAY); the next day starts at 00:00 UTC")
                wait = usage.next_at - now
                if wait <= 0:
                    self._write(Usage(usage.day, usage.calls + 1, max(now, usage.next_at) + self.spacing))
                    return
            self.sleep(min(wait, self.spacing))  # outside the lock: the others may queue meanwhile


class _FileLock:
    def __init__(self, path: Path, thread_lock: threading.Lock):
        self.path = path
        self.thread_lock = thread_lock
        self.fd: int | None = None

    def __enter__(self):
        self.thread_lock.acquire()
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            if self.fd is not None:
                os.close(self.fd)
            self.thread_lock.release()
            raise
        return self

    def __exit__(self, *exc):
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
        finally:
            self.thread_lock.release()


# --- does the schedule fit? ---------------------------------------------------------------------
def schedule_calls_per_day(settings: Settings, regions: int) -> int:
    """Calls the scheduled producer makes in a day: one per region per run."""
    return regions * math.ceil(86400 / settings.producer_interval_seconds)


def schedule_reserve(settings: Settings, regions: int, now: float) -> int:
    """Calls the schedule still needs today (UTC): what an importer leaves it."""
    left_today = 86400 - (now % 86400)
    return regions * math.ceil(left_today / settings.producer_interval_seconds)


def budget_problems(settings: Settings, regions: int, backfill_hours: int = 0) -> list[str]:
    """Why the schedule (and the first start's back-fill) cannot fit the key's budget; [] when it fits."""
    per_minute, per_day = settings.owm_budget()
    interval = settings.producer_interval_seconds
    problems = []
    need = schedule_calls_per_day(settings, regions)
    if need > per_day:
        fits = math.ceil(regions * 86400 / per_day)
        problems.append(
            f"the schedule needs {need:,} calls a day ({regions} regions every {interval:g}s) but the API key's budget "
            f"is {per_day:,} (METEOFLOW_OWM_CALLS_PER_DAY): each day's runs will fail with 'request budget exhausted' "
            f"after about {24 * per_day / need:.1f} h; an interval of at least {fits}s "
            f"(METEOFLOW_PRODUCER_INTERVAL_SECONDS) fits")
    run_seconds = regions * 60.0 / per_minute
    if run_seconds > interval:
        problems.append(
            f"one run spreads {regions} calls over {run_seconds:g}s ({per_minute}/min, METEOFLOW_OWM_CALLS_PER_MINUTE), "
            f"longer than the {interval:g}s interval: runs will follow each other late")
    if backfill_hours and settings.owm_api == "onecall" and need + regions * backfill_hours > per_day >= need:
        problems.append(
            f"the first start's back-fill ({regions} regions x {backfill_hours} h = {regions * backfill_hours:,} calls) "
            f"does not fit beside the schedule in one day's {per_day:,} calls: it will finish on a later day")
    return problems
